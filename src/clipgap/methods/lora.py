"""LoRA on the Q and V attention input projections of every block (not K, not out_proj).

Each projection weight ``W`` gets a :mod:`torch.nn.utils.parametrize` parametrisation that
returns ``W`` with ``scale * B @ A`` added to the Q rows and the V rows. open_clip packs Q, K, V
into one ``in_proj_weight`` (rows ``[0:d]``, ``[d:2d]``, ``[2d:3d]``), so both updates live on
that one weight; a backend with separate ``q_proj`` / ``v_proj`` weights gets one update per
weight from the same code. ``A ~ N(0, init_std)`` (0.02), ``B = 0``, so training starts at the
untouched model; the scale is 0.2 (``scale_mode="fixed"``) or ``alpha / rank``.
The same maths as ``peft``'s LoRA on an ``nn.Linear``: ``y = W x + scale * B (A x)``.
Interpolation (WiSE-FT) scales the update: ``W_0 + alpha * scale * B A``, done by scaling ``B``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

from clipgap.errors import ConfigError
from clipgap.methods import methods
from clipgap.methods.base import Method, MethodContext, freeze_all, projection_sites
from clipgap.model import AdaptedModel

ROLES = ("q", "v")
TOWERS = {"both": ("image", "text"), "image": ("image",), "text": ("text",)}


@dataclass
class LoraOptions:
    """``rank`` r >= 1; ``towers`` both | image | text; ``scale`` used when
    ``scale_mode="fixed"``, else ``alpha / rank``; ``init_std`` is the std of A's init."""

    rank: int = 4
    towers: Literal["both", "image", "text"] = "both"
    scale_mode: Literal["fixed", "alpha_over_r"] = "fixed"
    scale: float = 0.2
    alpha: float = 0.8
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ConfigError(f"method.rank must be an integer >= 1, got {self.rank!r}")
        if self.towers not in TOWERS:
            raise ConfigError(
                f"method.towers must be one of {', '.join(TOWERS)}, got {self.towers!r}"
            )
        if self.scale_mode not in ("fixed", "alpha_over_r"):
            raise ConfigError(
                f"method.scale_mode must be 'fixed' or 'alpha_over_r', got {self.scale_mode!r}"
            )
        for key in ("scale", "alpha", "init_std"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"method.{key} must be a finite number > 0, got {value!r}")

    @property
    def effective_scale(self) -> float:
        return float(self.scale if self.scale_mode == "fixed" else self.alpha / self.rank)


class LoraDelta(nn.Module):
    """Parametrisation ``W -> W`` with ``scale * B[s] @ A[s]`` added on the rows of each slot.

    ``slots`` maps a role (``"q"``, ``"v"``) to its row range ``(start, stop)`` in ``W``.
    """

    def __init__(
        self, weight: torch.Tensor, slots: dict[str, tuple[int, int]], opts: LoraOptions
    ) -> None:
        super().__init__()
        self.slots = dict(sorted(slots.items(), key=lambda kv: kv[1][0]))
        self.scale = opts.effective_scale
        self.A = nn.ParameterDict()
        self.B = nn.ParameterDict()
        kw = {"dtype": weight.dtype, "device": weight.device}
        for role, (start, stop) in self.slots.items():
            self.A[role] = nn.Parameter(
                torch.randn(opts.rank, weight.shape[1], **kw) * opts.init_std
            )
            self.B[role] = nn.Parameter(torch.zeros(stop - start, opts.rank, **kw))

    def delta(self, role: str) -> torch.Tensor:
        """The update ``scale * B @ A`` of one slot, shape (rows, in_features)."""
        return self.scale * (self.B[role] @ self.A[role])

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        pieces, pos = [], 0
        for role, (start, stop) in self.slots.items():
            if start > pos:
                pieces.append(weight[pos:start])
            pieces.append(weight[start:stop] + self.delta(role).to(weight.dtype))
            pos = stop
        if pos < weight.shape[0]:
            pieces.append(weight[pos:])
        return torch.cat(pieces)


@methods.register("lora")
class Lora(Method):
    summary = "rank-r update on the Q and V attention projections of both towers"
    Options = LoraOptions

    def apply(self, model: AdaptedModel, options: LoraOptions, *, context: MethodContext | None):
        towers = TOWERS[options.towers]
        groups: dict[tuple[int, str], list] = defaultdict(list)
        for site in projection_sites(self.name, model):
            if site.role in ROLES and site.tower in towers:
                groups[(id(site.module), site.param_name)].append(site)
        if not groups:
            raise ConfigError(f"method.towers={options.towers!r}: no Q/V projection to adapt")
        freeze_all(model)
        for sites in groups.values():
            module, pname = sites[0].module, sites[0].param_name
            weight = getattr(module, pname)
            limit = min(weight.shape[1], *(s.out_features for s in sites))
            if options.rank > limit:
                raise ConfigError(f"method.rank={options.rank} exceeds the projection size {limit}")
            slots = {s.role: (s.rows.start, s.rows.stop) for s in sites}
            parametrize.register_parametrization(module, pname, LoraDelta(weight, slots, options))

    @torch.no_grad()
    def interpolate(self, model: AdaptedModel, base, alpha: float) -> None:
        """``W_0 + alpha * scale * B A``: every ``B`` becomes ``alpha * B`` (A, scale and the
        frozen ``W_0`` unchanged), so the update is exactly zero at 0 and untouched at 1."""
        for delta in lora_deltas(model):
            for b in delta.B.values():
                b.mul_(alpha)


def lora_deltas(model: nn.Module) -> list[LoraDelta]:
    """Every LoRA parametrisation inside ``model``."""
    return [m for m in model.modules() if isinstance(m, LoraDelta)]


def merge(model: nn.Module) -> None:
    """Fold every LoRA update into its weight in place (plain weights again, same outputs).

    Safe on a deep copy: the copy and the original share the class that ``parametrize``
    generated, and removing a parametrisation deletes its property from that class, so each
    module first gets a private copy of the class (the original keeps working).
    """
    for module in list(model.modules()):
        if not parametrize.is_parametrized(module):
            continue
        shared = type(module)
        private = {k: v for k, v in vars(shared).items() if k not in ("__dict__", "__weakref__")}
        module.__class__ = type(shared.__name__, shared.__bases__, private)
        for pname in list(module.parametrizations):
            if any(isinstance(p, LoraDelta) for p in module.parametrizations[pname]):
                parametrize.remove_parametrizations(module, pname, leave_parametrized=True)
