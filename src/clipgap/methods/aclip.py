"""A-CLIP: train only the attention input projections (packed Q, K, V) of both towers."""

from __future__ import annotations

from clipgap.methods import methods
from clipgap.methods.base import Method, MethodContext, freeze_all, projection_sites
from clipgap.model import AdaptedModel


@methods.register("aclip")
class AClip(Method):
    summary = "attention input projections (Q, K, V) of every block of both towers"

    def apply(self, model: AdaptedModel, options, *, context: MethodContext | None) -> None:
        sites = projection_sites(self.name, model)
        freeze_all(model)
        for site in sites:  # fused in_proj: the Q, K and V sites share one weight
            getattr(site.module, site.param_name).requires_grad_(True)
