"""A labelled grid of world examples, so a user can look at the world a study runs in."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from clipgap.errors import ConfigError
from clipgap.world.tasks import check_style, render_split, task_spec

HEADER = 14
LABEL = 56
PAD = 2


def sample_grid(
    task: str,
    styles: list[str],
    *,
    split: str = "test",
    per_class: int = 4,
    scale: int = 3,
) -> Image.Image:
    """One column per class, ``per_class`` examples per style, the first examples of the split.

    Column headers name the classes; each style's block is labelled on the left.
    """
    if not 1 <= per_class <= 32:
        raise ConfigError(f"per_class={per_class}: expected 1..32")
    if not 1 <= scale <= 16:
        raise ConfigError(f"scale={scale}: expected 1..16")
    spec = task_spec(task)
    for style in styles:
        check_style(style)
    n_classes = len(spec.class_names)
    blocks = [_block(task, style, split, per_class, n_classes) for style in styles]
    size = blocks[0].shape[2] * scale
    cell = size + PAD
    width = LABEL + n_classes * cell
    height = HEADER + len(styles) * per_class * cell
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for c, name in enumerate(spec.class_names):
        draw.text((LABEL + c * cell + 2, 1), name, fill="black")
    for b, (style, block) in enumerate(zip(styles, blocks, strict=True)):
        top = HEADER + b * per_class * cell
        draw.text((2, top + 2), style, fill="black")
        for c in range(n_classes):
            for r in range(per_class):
                img = Image.fromarray(block[c, r]).resize((size, size), Image.NEAREST)
                canvas.paste(img, (LABEL + c * cell, top + r * cell))
    return canvas


def _block(task: str, style: str, split: str, per_class: int, n_classes: int) -> np.ndarray:
    """Images (C, per_class, S, S, 3): the first ``per_class`` of each class."""
    pixels, labels = render_split(task, style, split)
    picks = [np.flatnonzero(labels == c)[:per_class] for c in range(n_classes)]
    if min(len(p) for p in picks) < per_class:
        raise ConfigError(f"world:{task} {split} has fewer than {per_class} images per class")
    return np.stack([pixels[p] for p in picks])
