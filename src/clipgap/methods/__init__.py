"""Fine-tuning methods: one module each, registered by name in :data:`methods`.

``apply_method(model, "lora", {"rank": 8}, class_names=..., templates=...)`` freezes, adds and
unfreezes on a :class:`~clipgap.model.AdaptedModel`; nothing else differs between methods (one
training loop, :func:`clipgap.training.finetune`). A name is looked up once,
by :func:`resolve_method`, into a :class:`ResolvedMethod` (name, method, options dataclass) that
the run spec, the trainer and :func:`apply_method` pass on; the applied model keeps the method
(``model.method_impl``) for interpolation.
"""

from __future__ import annotations

import torch

from clipgap.errors import TrainingError
from clipgap.methods.base import Method, MethodContext, ResolvedMethod, options_dict
from clipgap.model import AdaptedModel, clone
from clipgap.registry import Registry

methods: Registry[type] = Registry(
    "method",
    plugins=[
        f"clipgap.methods.{m}"
        for m in ("full", "aclip", "bitfit", "lora", "clip_adapter", "linear_probe")
    ],
)

__all__ = [
    "Method",
    "MethodContext",
    "ResolvedMethod",
    "apply_method",
    "build_context",
    "count_trainable",
    "get_method",
    "method_names",
    "methods",
    "options_dict",
    "resolve_method",
]


def get_method(name: str) -> Method:
    """The method registered as ``name`` (UnknownNameError listing the valid ones otherwise)."""
    return methods.get(name)()


def resolve_method(name: str, options=None) -> ResolvedMethod:
    """Method ``name`` looked up once, with ``options`` (dict, dataclass or None) validated into
    its options dataclass (defaults filled in). UnknownNameError listing the valid names, or a
    one-line ConfigError naming the bad ``method.KEY``."""
    method = get_method(name)
    return ResolvedMethod(name, method, method.make_options(options))


def method_names() -> list[str]:
    return methods.names()


def build_context(
    model: AdaptedModel, method: Method, class_names: list[str], templates: list[str]
) -> MethodContext:
    """The context for ``method`` on a task; zero-shot text features only if it needs them."""
    text = None
    if method.needs_text_features:
        text = model.class_text_features(list(class_names), list(templates))
    return MethodContext(list(class_names), list(templates), text)


def apply_method(
    model: AdaptedModel,
    method: str | ResolvedMethod,
    options=None,
    *,
    class_names: list[str] | None = None,
    templates: list[str] | None = None,
):
    """Apply ``method`` to ``model`` in place: a :class:`ResolvedMethod`, or a name with
    ``options`` (dict, dataclass or None), resolved here (a resolved method takes no
    ``options``: it carries its own).

    Records the base fingerprint (before any change), the method name, the method itself, its
    resolved options and the task's class names / templates on the model (checkpoints store
    them). Returns the resolved options dataclass.
    """
    if isinstance(method, ResolvedMethod):
        if options is not None:
            raise TypeError("apply_method: a ResolvedMethod carries its options; pass none")
        chosen = method
    else:
        chosen = resolve_method(method, options)
    if model.method is not None:
        raise TrainingError(
            f"model already fine-tuned with {model.method!r}; apply {chosen.name!r} to a "
            "fresh model"
        )
    if model.base_fingerprint is None:
        model.base_fingerprint = model.backbone.fingerprint()
    context = None
    if class_names is not None:
        context = build_context(model, chosen.impl, class_names, templates or ["{c}"])
    chosen.impl.apply(model, chosen.options, context=context)
    model.method, model.method_options = chosen.name, chosen.options
    model.method_impl = chosen.impl  # what interpolation moves the model by
    model.templates = list(templates) if templates is not None else None
    if model.head is None:
        model.head_classes = None
    return chosen.options


def count_trainable(backbone, name: str, options=None) -> int:
    """Trainable scalars of method ``name`` on a deep copy of ``backbone`` (one class for a head).

    The backbone is left untouched. On a meta-device backbone (``backbone.to("meta")``) the
    copy costs neither memory nor time, which is how ``clipgap list methods`` counts.
    """
    model = AdaptedModel(clone(backbone))
    model.base_fingerprint = "(count only)"
    method = get_method(name)
    text = torch.zeros(1, int(backbone.embed_dim), device=backbone.device)
    method.apply(model, method.make_options(options), context=MethodContext(["c"], ["{c}"], text))
    return model.n_trainable
