"""CLIP-Adapter: a bottleneck MLP on image features and one on text features, backbone frozen.

``adapter = Linear(d, d/reduction, no bias) - ReLU - Linear(d/reduction, d, no bias) - ReLU``;
with ``f`` the unit-norm feature, ``f' = ratio * adapter(f) + (1 - ratio) * f`` and the
:class:`~clipgap.model.AdaptedModel` re-normalises ``f'``. With ``ratio > 0`` the model is *not*
the zero-shot model at init (the adapter's random output is blended in). Interpolation
(WiSE-FT) scales the ratio: ``ratio * alpha`` (0.2 alpha by default), so at ``alpha = 0`` each
adapter is the identity map.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from clipgap.errors import ConfigError
from clipgap.methods import methods
from clipgap.methods.base import Method, MethodContext, freeze_all
from clipgap.model import AdaptedModel


@dataclass
class AdapterOptions:
    """``reduction``: bottleneck width is d / reduction (integer >= 1 dividing d);
    ``ratio`` in [0, 1]: weight of the adapter output in the blend."""

    reduction: int = 4
    ratio: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.reduction, bool) or not isinstance(self.reduction, int):
            raise ConfigError(f"method.reduction must be an integer >= 1, got {self.reduction!r}")
        if self.reduction < 1:
            raise ConfigError(f"method.reduction must be an integer >= 1, got {self.reduction}")
        ok = isinstance(self.ratio, (int, float)) and math.isfinite(self.ratio)
        if not ok or not 0.0 <= self.ratio <= 1.0:
            raise ConfigError(f"method.ratio must be a number in [0, 1], got {self.ratio!r}")


class Adapter(nn.Module):
    """``ratio * net(f) + (1 - ratio) * f`` with the bias-free bottleneck MLP ``net``."""

    def __init__(self, dim: int, reduction: int, ratio: float) -> None:
        super().__init__()
        hidden = dim // reduction
        self.net = nn.Sequential(
            nn.Linear(dim, hidden, bias=False),
            nn.ReLU(),
            nn.Linear(hidden, dim, bias=False),
            nn.ReLU(),
        )
        self.ratio = float(ratio)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.ratio * self.net(f) + (1.0 - self.ratio) * f


@methods.register("clip_adapter")
class ClipAdapter(Method):
    summary = "backbone frozen; residual bottleneck adapters on image and text features"
    Options = AdapterOptions

    def apply(self, model: AdaptedModel, options: AdapterOptions, *, context: MethodContext | None):
        dim = int(model.backbone.embed_dim)
        if dim % options.reduction:
            raise ConfigError(
                f"method.reduction={options.reduction} does not divide the embedding size {dim} "
                f"of {model.backbone.spec}"
            )
        freeze_all(model)
        device = model.device
        model.image_adapter = Adapter(dim, options.reduction, options.ratio).to(device)
        model.text_adapter = Adapter(dim, options.reduction, options.ratio).to(device)

    def interpolate(self, model: AdaptedModel, base, alpha: float) -> None:
        """Both adapters' residual ratio becomes ``ratio * alpha``; the recorded options follow
        (so a checkpoint of the interpolated model rebuilds it)."""
        ratio = float(model.method_options.ratio) * alpha
        for adapter in (model.image_adapter, model.text_adapter):
            if adapter is not None:
                adapter.ratio = ratio
        model.method_options = dataclasses.replace(model.method_options, ratio=ratio)
