"""What a fine-tuning method is: a typed options dataclass and ``apply`` (freeze, add, unfreeze).

A method never trains anything itself; :func:`clipgap.training.finetune` runs the one shared loop
over whatever ``model.trainable_parameters()`` the method leaves trainable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from clipgap.backbones.base import ProjectionSite
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


def freeze_all(model: AdaptedModel) -> None:
    """Every parameter of ``model`` (backbone, adapters, head) stops requiring gradients."""
    model.requires_grad_(False)


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
