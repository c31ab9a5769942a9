"""Weight-space interpolation between the zero-shot and a fine-tuned model (WiSE-FT), any method.

``interpolate(finetuned, base, 0.5)`` returns a new model half way between the zero-shot model of
``base`` (alpha = 0, exactly) and ``finetuned`` (alpha = 1, exactly); no retraining, so one
fine-tuned model or checkpoint gives every alpha. What "half way" means is the method's own rule
(``Method.interpolate`` in :mod:`clipgap.methods`): trained tensors linearly for full / A-CLIP /
BitFit, the low-rank update scaled for LoRA, the residual ratio scaled for CLIP-Adapter, the head
linearly from the zero-shot head for the linear probe. See docs/science.md, "Interpolation".

The interpolated model records its alpha (``model.alpha``, relative to the fine-tuned model it
came from); checkpoints store it (:mod:`clipgap.checkpoint`). Interpolating an interpolated model
composes: alpha ``b`` of a model at ``a`` is the model at ``a * b``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from clipgap.alphas import check_alpha, check_alphas
from clipgap.backbones import Backbone
from clipgap.data import Task
from clipgap.errors import ConfigError, DataError, ModelError
from clipgap.model import AdaptedModel, clone
from clipgap.training.data import SplitData
from clipgap.training.evaluate import split_accuracy

log = logging.getLogger(__name__)

__all__ = ["accuracy_along_alphas", "interpolate", "model_alpha"]


def model_alpha(model: AdaptedModel) -> float | None:
    """The alpha ``model`` was interpolated at (None: not interpolated, i.e. the fine-tuned
    model itself or a zero-shot model)."""
    return getattr(model, "alpha", None)


def _check_pair(finetuned: AdaptedModel, base: Backbone) -> None:
    if not isinstance(finetuned, AdaptedModel) or getattr(finetuned, "method_impl", None) is None:
        raise ModelError("interpolation needs a fine-tuned model (one a method was applied to)")
    if not isinstance(base, Backbone):
        raise ModelError(f"interpolation needs the base Backbone, not {type(base).__name__}")
    have = base.fingerprint()
    if finetuned.base_fingerprint is not None and have != finetuned.base_fingerprint:
        raise ModelError(
            f"the {finetuned.method} model was fine-tuned from a base model with fingerprint "
            f"{finetuned.base_fingerprint}, not from {base.spec} (fingerprint {have})"
        )


def _interpolated(finetuned: AdaptedModel, base: Backbone, alpha: float) -> AdaptedModel:
    model = clone(finetuned)
    finetuned.method_impl.interpolate(model, base, alpha)
    prior = model_alpha(finetuned)
    model.alpha = alpha if prior is None else prior * alpha
    model.eval()
    return model


def interpolate(finetuned: AdaptedModel, base: Backbone, alpha: float) -> AdaptedModel:
    """A new model at ``alpha`` in [0, 1] between the zero-shot model and ``finetuned``.

    ``base``: the untouched base model ``finetuned`` was fine-tuned from (checked by
    fingerprint); neither it nor ``finetuned`` is modified. ``alpha = 0`` gives the zero-shot
    model's tensors exactly, ``alpha = 1`` a copy of ``finetuned``. The result records
    ``alpha`` (see :func:`model_alpha`) and saves with :func:`clipgap.checkpoint.save_checkpoint`.
    ConfigError for an alpha outside [0, 1]; ModelError for a model without a method or
    another base model.
    """
    alpha = check_alpha(alpha)
    _check_pair(finetuned, base)
    return _interpolated(finetuned, base, alpha)


def _keyed(tasks: Mapping[str, Task] | Sequence[Task]) -> dict[str, Task]:
    if isinstance(tasks, Mapping):
        return dict(tasks)
    out: dict[str, Task] = {}
    for task in tasks:
        if task.name in out:
            raise ConfigError(
                f"tasks: two tasks named {task.name!r}; pass a mapping from name to task"
            )
        out[task.name] = task
    return out


def accuracy_along_alphas(
    finetuned: AdaptedModel,
    base: Backbone,
    tasks: Mapping[str, Task | SplitData] | Sequence[Task],
    alphas: Iterable[float],
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    pixel_cache_mb: float = 1024.0,
    progress: bool = False,
) -> dict[str, dict[float, float]]:
    """Top-1 accuracy of the model interpolated at each alpha, on each task.

    Returns ``{task: {alpha: accuracy}}`` with accuracies in [0, 1] (the task's own class names
    and prompts), tasks keyed by the mapping's keys or by ``task.name``, alphas ascending
    (``alphas`` follow :func:`clipgap.alphas.check_alphas`: each once, in [0, 1]). Equal to
    :func:`clipgap.training.accuracy` of :func:`interpolate` at every alpha.
    Each alpha's model is built once (all of them are held at once) and each task's images are
    prepared once for all alphas: with a frozen image tower (linear probe, CLIP-Adapter,
    text-only LoRA) as raw image embeddings of the base model (disk cache), otherwise as
    preprocessed pixels (in memory up to ``pixel_cache_mb``); a mapping's value may also be a
    :class:`~clipgap.training.data.SplitData` prepared that way already.
    """
    alphas = check_alphas(alphas, where="alphas")
    keyed = _keyed(tasks)
    _check_pair(finetuned, base)
    embedded = finetuned.image_tower_frozen
    models = {a: _interpolated(finetuned, base, a) for a in alphas}
    out: dict[str, dict[float, float]] = {}
    for key, task in keyed.items():
        if isinstance(task, SplitData):  # prepared by the caller (a study's shared splits)
            if task.embedded != embedded:
                raise ValueError(f"{key}: prepared with embedded={task.embedded}, need {embedded}")
            data = task
        elif len(task) == 0:
            raise DataError(f"task {task.name} ({task.split}) has no images to evaluate")
        else:
            data = SplitData(
                AdaptedModel(base),
                task,
                embedded=embedded,
                pixel_cache_mb=pixel_cache_mb,
                batch_size=batch_size,
                num_workers=num_workers,
                progress=progress,
            )
        out[key] = {a: split_accuracy(models[a], data) for a in alphas}
        log.info("%s along alpha: %s", key, out[key])
    return out
