"""Zero-shot heads and image embeddings, batched, with an on-disk cache.

The cache key is (backbone weights fingerprint, task fingerprint, transform); a second
measurement of the same model on the same images reads the cache instead of re-encoding.
"""

from __future__ import annotations

import logging
import os

import torch
from safetensors.torch import load_file, save_file
from torch.utils.checkpoint import checkpoint
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from clipgap.backbones import Backbone
from clipgap.data import Task, digest
from clipgap.devices import loader_options
from clipgap.errors import ConfigError, MetricError
from clipgap.paths import cache_dir
from clipgap.pixels import TaskImages, task_images

log = logging.getLogger(__name__)

__all__ = [
    "TEXT_CHUNK_ENV",
    "TaskImages",
    "class_text_features",
    "encode_images",
    "format_prompts",
    "text_chunk_prompts",
    "zero_shot_logits",
]

# Prompts per activation-checkpointed chunk of the class-prompt pass through a trainable text
# tower (see class_text_features); the environment variable overrides it, 0 turns it off.
TEXT_CHUNK_ENV = "CLIPGAP_TEXT_CHUNK"
TEXT_CHUNK_DEFAULT = 32


def format_prompts(templates: list[str], class_name: str) -> list[str]:
    return [t.format(c=class_name) for t in templates]


def class_text_features(
    backbone: Backbone, class_names: list[str], templates: list[str], *, grad: bool = False
) -> torch.Tensor:
    """Class text embeddings (C, d): normalised mean over templates of normalised embeddings.

    With ``grad=True`` the computation is differentiable (text tower being fine-tuned). Then,
    when the prompts are more than one chunk (:func:`text_chunk_prompts`), the classes are
    encoded in chunks under activation checkpointing: only each chunk's (k, d) output is kept
    and its activations are recomputed in the backward pass, so memory grows with the number
    of classes through the (C, d) result only; the gradients are the same as in one pass.
    """
    texts = [p for c in class_names for p in format_prompts(templates, c)]
    tokens = backbone.tokenize(texts).to(backbone.device)
    n_templates = len(templates)
    per_chunk = max(1, text_chunk_prompts() // n_templates) * n_templates
    with torch.set_grad_enabled(grad):
        if grad and text_chunk_prompts() and len(texts) > per_chunk:
            parts = [
                checkpoint(
                    _mean_over_templates,
                    backbone,
                    tokens[start : start + per_chunk],
                    n_templates,
                    use_reentrant=False,
                )
                for start in range(0, len(texts), per_chunk)
            ]
            emb = torch.cat(parts)
        else:
            emb = _mean_over_templates(backbone, tokens, n_templates)
        return emb / emb.norm(dim=-1, keepdim=True)


def _mean_over_templates(backbone: Backbone, tokens: torch.Tensor, n_templates: int):
    """Prompt tokens (k * T, L) -> (k, d): the mean over templates of normalised embeddings."""
    emb = backbone.encode_text(tokens).float()
    emb = emb / emb.norm(dim=-1, keepdim=True)
    return emb.reshape(-1, n_templates, emb.shape[-1]).mean(dim=1)


def text_chunk_prompts() -> int:
    """Prompts encoded per checkpointed chunk when the text tower trains: whole classes of up
    to ``$CLIPGAP_TEXT_CHUNK`` prompts (default 32, at least one class; 0 = no checkpointing,
    every prompt's activations kept for the backward pass)."""
    raw = os.environ.get(TEXT_CHUNK_ENV, "").strip()
    if not raw:
        return TEXT_CHUNK_DEFAULT
    if not raw.isdigit():
        raise ConfigError(
            f"environment variable {TEXT_CHUNK_ENV}={raw!r}: expected an integer >= 0 "
            "(prompts per checkpointed chunk; 0 = off)"
        )
    return int(raw)


def zero_shot_logits(
    image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """``logit_scale.exp() * cos(image, class text)``; ``text_features`` already normalised."""
    img = image_features / image_features.norm(dim=-1, keepdim=True)
    return logit_scale.exp() * img @ text_features.T


def _cache_path(backbone: Backbone, task: Task):
    key = digest(backbone.fingerprint(), task.fingerprint, repr(backbone.transform))
    return cache_dir("embeddings") / f"{key}.safetensors"


def encode_images(
    backbone: Backbone,
    task: Task,
    *,
    batch_size: int = 256,
    num_workers: int | str | None = None,
    pin_memory: bool | str | None = None,
    cache: bool = True,
    progress: bool = True,
) -> torch.Tensor:
    """Raw (unnormalised) image embeddings of every image of ``task``, shape (N, d), float32.

    Images are read by ``num_workers`` loader processes into pinned memory when
    ``pin_memory``; None / ``auto``: workers and pinning on CUDA, in-process on CPU (see
    :func:`clipgap.devices.loader_options`). The encoder runs in float32.
    """
    path = _cache_path(backbone, task) if cache else None
    if path is not None and path.is_file():
        try:
            emb = load_file(str(path))["embeddings"]
            if emb.shape[0] == len(task):
                log.info("embedding cache hit: %s", path.name)
                return emb
        except Exception:  # corrupt cache entry: recompute
            log.warning("ignoring unreadable embedding cache %s", path)
    device = backbone.device
    loading = loader_options(num_workers, pin_memory, device)
    dataset = task_images(task, backbone.transform, num_workers=loading["num_workers"])
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, **loading)
    chunks = []
    was_training = backbone.training
    backbone.eval()
    with torch.inference_mode():
        for images, _ in tqdm(
            loader,
            desc=f"encode {task.name}:{task.split}",
            unit="batch",
            disable=not progress,
            leave=False,
        ):
            images = images.to(device, non_blocking=True)
            chunks.append(backbone.encode_image(images).float().cpu())
    backbone.train(was_training)
    emb = torch.cat(chunks)
    if not torch.isfinite(emb).all():
        raise MetricError(f"non-finite image embeddings for {task.name} (model {backbone.spec})")
    if path is not None:
        tmp = path.with_name(path.name + ".tmp")
        save_file({"embeddings": emb.contiguous()}, str(tmp))
        tmp.replace(path)
    return emb
