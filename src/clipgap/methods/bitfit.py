"""BitFit: train every bias inside the residual blocks of both towers, nothing else.

Attention in/out projection biases, both LayerNorm biases and both MLP biases of each block;
``ln_pre`` / ``ln_post`` / ``ln_final`` and the projections stay frozen.
"""

from __future__ import annotations

from clipgap.methods import methods
from clipgap.methods.base import Method, MethodContext, freeze_all, unsupported
from clipgap.model import AdaptedModel


@methods.register("bitfit")
class BitFit(Method):
    summary = "every bias inside the residual blocks of both towers"

    def apply(self, model: AdaptedModel, options, *, context: MethodContext | None) -> None:
        try:
            biases = model.backbone.block_biases()
        except NotImplementedError:
            raise unsupported(self.name, model, "it does not list its block biases") from None
        if not biases:
            raise unsupported(self.name, model, "its residual blocks have no biases")
        freeze_all(model)
        for p in biases.values():
            p.requires_grad_(True)
