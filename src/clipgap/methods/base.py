"""What a fine-tuning method is: a typed options dataclass and ``apply`` (freeze, add, unfreeze).

A method never trains anything itself; :func:`clipgap.training.finetune` runs the one shared loop
over whatever ``model.trainable_parameters()`` the method leaves trainable. It also says how to
move a model it fine-tuned back towards the zero-shot model (``interpolate``, WiSE-FT): by
default every trainable tensor goes linearly from its zero-shot value (``origin``) to its
trained value; a method overrides ``origin`` or ``interpolate`` where that is not the rule.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from clipgap.backbones.base import Backbone, ProjectionSite
from clipgap.errors import ClipgapError, ConfigError, ModelError
from clipgap.model import AdaptedModel


@dataclass
class MethodContext:
    """What a method may need from the task it is applied for.

    ``text_features`` are the zero-shot class text features (C, d) of ``class_names`` under the
    untouched backbone; they are computed only for methods that ask for them.
    """

    class_names: list[str]
    templates: list[str]
    text_features: torch.Tensor | None = field(default=None, repr=False)


@dataclass
class NoOptions:
    """A method without options."""


class Method:
    """Base class of the methods; subclasses register in :data:`clipgap.methods.methods`."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    needs_text_features: ClassVar[bool] = False

    def apply(self, model: AdaptedModel, options, *, context: MethodContext | None) -> None:
        """Freeze, add and unfreeze on ``model`` in place."""
        raise NotImplementedError

    def interpolate(self, model: AdaptedModel, base: Backbone, alpha: float) -> None:
        """Move ``model`` (fine-tuned with this method) in place to ``alpha`` in [0, 1].

        ``alpha = 0`` is the zero-shot model of ``base`` (the untouched base model), ``1`` leaves
        ``model`` as it is. Default: ``p <- (1 - alpha) * origin + alpha * p`` for every
        trainable tensor ``p``, with ``origin`` from :meth:`origin`.
        """
        lerp_(model.trainable_parameters(), self.origin(model, base), alpha, method=self.name)

    def origin(self, model: AdaptedModel, base: Backbone) -> dict[str, torch.Tensor]:
        """The zero-shot value (alpha = 0) of every trainable tensor of ``model``.

        Default: the tensor of the same name in ``base`` (``backbone.`` prefix removed).
        """
        ref = dict(base.named_parameters())
        out = {}
        for name in model.trainable_parameters():
            key = name.removeprefix("backbone.")
            if key == name or key not in ref:
                raise ModelError(
                    f"method {self.name!r}: trainable tensor {name} has no zero-shot value in "
                    f"base model {base.spec}"
                )
            out[name] = ref[key]
        return out

    def param_formula(self, model: AdaptedModel) -> str | None:
        """A formula for the trainable count when it depends on the task (else ``None``)."""
        return None

    def make_options(self, options=None):
        """``options`` as this method's Options dataclass (from a dict, the dataclass, or None)."""
        if options is None:
            return self.Options()
        if isinstance(options, self.Options):
            return options
        if isinstance(options, dict):
            from clipgap.config import from_dict

            return from_dict(self.Options, options, where="method")
        raise ConfigError(
            f"options for method {self.name!r} must be a mapping or {self.Options.__name__}, "
            f"not {type(options).__name__}"
        )


@dataclass(frozen=True)
class ResolvedMethod:
    """A method looked up once: its registered ``name``, the :class:`Method` itself (``impl``)
    and its validated ``options`` dataclass. Built by :func:`clipgap.methods.resolve_method`;
    what a run spec carries and what :func:`clipgap.methods.apply_method` and the trainer take,
    so nothing downstream looks the name up again."""

    name: str
    impl: Method = field(compare=False, repr=False)
    options: Any = None


def freeze_all(model: AdaptedModel) -> None:
    """Every parameter of ``model`` (backbone, adapters, head) stops requiring gradients."""
    model.requires_grad_(False)


@torch.no_grad()
def lerp_(
    params: dict[str, torch.Tensor],
    origin: dict[str, torch.Tensor],
    alpha: float,
    *,
    method: str = "",
) -> None:
    """``p <- (1 - alpha) * origin[name] + alpha * p`` for every ``name, p`` of ``params``.

    Exact at the ends: ``alpha = 0`` copies ``origin``, ``alpha = 1`` keeps ``p`` bit for bit
    (finite tensors). ModelError when the names or shapes of ``origin`` do not match.
    """
    if set(origin) != set(params):
        missing = sorted(set(params) - set(origin))[:3]
        raise ModelError(f"method {method!r}: no zero-shot value for trainable tensors {missing}")
    for name, p in params.items():
        start = origin[name].detach().to(p.device, p.dtype)
        if start.shape != p.shape:
            raise ModelError(
                f"method {method!r}: zero-shot value of {name} has shape {tuple(start.shape)}, "
                f"the model has {tuple(p.shape)}"
            )
        p.copy_((1.0 - alpha) * start + alpha * p)


def unsupported(method: str, model: AdaptedModel, why: str) -> ModelError:
    """The error for a method that cannot run on this backbone (names both)."""
    return ModelError(f"method {method!r} does not support backbone {model.backbone.spec}: {why}")


def projection_sites(method: str, model: AdaptedModel) -> list[ProjectionSite]:
    """The backbone's attention input-projection sites, or an error naming method and backbone."""
    try:
        sites = model.backbone.projection_sites()
    except NotImplementedError:
        raise unsupported(method, model, "it exposes no attention projection sites") from None
    except ClipgapError as exc:
        raise unsupported(method, model, str(exc)) from None
    if not sites:
        raise unsupported(method, model, "it has no attention blocks")
    return sites


def options_dict(options) -> dict:
    """An options dataclass as a plain JSON-able dict."""
    return dataclasses.asdict(options)
