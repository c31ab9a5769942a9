"""Linear probe: a linear head on frozen, normalised image features, zero-shot initialised.

``W = logit_scale.exp() * T`` (T: the task's zero-shot class text features), ``b = 0``, so the
probe starts exactly at the zero-shot classifier. Trainable: d * C + C.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from clipgap.errors import ConfigError, TrainingError
from clipgap.methods import methods
from clipgap.methods.base import Method, MethodContext, freeze_all
from clipgap.model import AdaptedModel


@dataclass
class ProbeOptions:
    """``init``: ``zero_shot`` (default, starts equal to zero-shot) or ``zeros``."""

    init: Literal["zero_shot", "zeros"] = "zero_shot"

    def __post_init__(self) -> None:
        if self.init not in ("zero_shot", "zeros"):
            raise ConfigError(f"method.init must be 'zero_shot' or 'zeros', got {self.init!r}")


@methods.register("linear_probe")
class LinearProbe(Method):
    name = "linear_probe"
    summary = "linear head on frozen image features, initialised from the zero-shot head"
    Options = ProbeOptions
    needs_text_features = True

    def apply(self, model: AdaptedModel, options: ProbeOptions, *, context: MethodContext | None):
        if context is None or context.text_features is None:
            raise TrainingError(
                "method 'linear_probe' needs the task's class names and zero-shot text features"
            )
        text = context.text_features.detach().float()
        n_classes, dim = text.shape
        freeze_all(model)
        head = nn.Linear(dim, n_classes).to(model.device)
        with torch.no_grad():
            if options.init == "zero_shot":
                scale = model.backbone.logit_scale.detach().exp().float()
                head.weight.copy_(scale * text.to(model.device))
            else:
                head.weight.zero_()
            head.bias.zero_()
        model.head = head
        model.head_classes = list(context.class_names)

    def param_formula(self, model: AdaptedModel) -> str:
        return f"{int(model.backbone.embed_dim)}*C + C"
