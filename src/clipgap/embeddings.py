"""Zero-shot heads and image embeddings, batched, with an on-disk cache.

The cache key is (backbone weights fingerprint, task fingerprint, transform); a second
measurement of the same model on the same images reads the cache instead of re-encoding.
"""

from __future__ import annotations

import logging

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from clipgap.backbones import Backbone
from clipgap.data import Task, digest
from clipgap.devices import loader_options
from clipgap.errors import MetricError
from clipgap.paths import cache_dir

log = logging.getLogger(__name__)


class TaskImages(Dataset):
    """A task's images through a backbone's transform, with their labels."""

    def __init__(self, task: Task, transform) -> None:
        self.task = task
        self.transform = transform

    def __len__(self) -> int:
        return len(self.task)

    def __getitem__(self, index: int):
        return self.transform(self.task.images.load(index)), int(self.task.labels[index])


def format_prompts(templates: list[str], class_name: str) -> list[str]:
    return [t.format(c=class_name) for t in templates]


def class_text_features(
    backbone: Backbone, class_names: list[str], templates: list[str], *, grad: bool = False
) -> torch.Tensor:
    """Class text embeddings (C, d): normalised mean over templates of normalised embeddings.

    With ``grad=True`` the computation is differentiable (text tower being fine-tuned).
    """
    texts = [p for c in class_names for p in format_prompts(templates, c)]
    tokens = backbone.tokenize(texts).to(backbone.device)
    with torch.set_grad_enabled(grad):
        emb = backbone.encode_text(tokens).float()
        emb = emb / emb.norm(dim=-1, keepdim=True)
        emb = emb.reshape(len(class_names), len(templates), -1).mean(dim=1)
        return emb / emb.norm(dim=-1, keepdim=True)


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
    loader = DataLoader(
        TaskImages(task, backbone.transform),
        batch_size=batch_size,
        shuffle=False,
        **loader_options(num_workers, pin_memory, device),
    )
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
