"""Linear probe: a linear head on frozen, normalised image features, zero-shot initialised.

``W = logit_scale.exp() * T`` (T: the task's zero-shot class text features), ``b = 0``, so the
probe starts exactly at the zero-shot classifier. Trainable: d * C + C. Interpolation (WiSE-FT)
goes from that zero-shot head (also for ``init="zeros"``) to the trained head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from clipgap.backbones import Backbone
from clipgap.embeddings import class_text_features
from clipgap.errors import ConfigError, ModelError, TrainingError
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
                head.weight.copy_(zero_shot_head(text.to(model.device), model.backbone))
            else:
                head.weight.zero_()
            head.bias.zero_()
        model.head = head
        model.head_classes = list(context.class_names)

    def origin(self, model: AdaptedModel, base: Backbone) -> dict[str, torch.Tensor]:
        """The zero-shot head of ``base`` for the head's classes and templates, bias 0."""
        if model.head is None or model.head_classes is None:
            raise ModelError("method 'linear_probe': the model has no head bound to class names")
        with torch.no_grad():
            text = class_text_features(base, model.head_classes, model.templates or ["{c}"])
            weight = zero_shot_head(text.detach().float(), base)
        return {"head.weight": weight, "head.bias": torch.zeros_like(model.head.bias)}

    def param_formula(self, model: AdaptedModel) -> str:
        return f"{int(model.backbone.embed_dim)}*C + C"


def zero_shot_head(text: torch.Tensor, backbone: Backbone) -> torch.Tensor:
    """``logit_scale.exp() * text``: the weight of the linear head equal to zero-shot CLIP for
    class text features ``text`` (C, d), float32, on ``text``'s device."""
    return backbone.logit_scale.detach().exp().float().to(text.device) * text
