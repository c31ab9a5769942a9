"""Full fine-tuning: every parameter of the backbone, ``logit_scale`` included."""

from __future__ import annotations

from clipgap.methods import methods
from clipgap.methods.base import Method, MethodContext, freeze_all
from clipgap.model import AdaptedModel


@methods.register("full")
class Full(Method):
    summary = "every backbone parameter, logit_scale included"

    def apply(self, model: AdaptedModel, options, *, context: MethodContext | None) -> None:
        freeze_all(model)
        model.backbone.requires_grad_(True)
