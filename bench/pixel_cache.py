"""Images per second delivered to the model from the pixel cache vs decoding and resizing.

Makes ``--images`` photo-size JPEGs (640x480, smooth colour fields with grain, quality 90) as a
folder task, and reads the task through ViT-B-32's eval transform (open_clip: resize to 224,
centre crop, normalise) with one loader worker, batch 32, two ways:

- decode: ``TaskImages`` (every image decoded, resized and cropped again: what every run of a
  study did before the cache);
- cache: ``clipgap.pixels.task_images`` reading the entry built once beforehand (the build's
  time is reported, not counted).

Both best of ``--repeats`` passes over the files in the page cache, timed from the first
batch (the worker's start-up is left out); the batches are checked to be bit-identical.
Prints, last, ``pixel cache: N.Nx`` (cache / decode images per second; goal >= 10x).

    python bench/pixel_cache.py [--images 300] [--repeats 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_photos(root: Path, n: int, *, classes: int = 4, size=(640, 480)) -> Path:
    """``root/train/cK/i.jpg`` and one test image per class: ``n`` JPEGs in all."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    w, h = size
    for i in range(n):
        split = "test" if i < classes else "train"
        d = root / split / f"c{i % classes}"
        d.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        field = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), np.int16)
        grain = rng.integers(-12, 13, (h, w, 3))
        pixels = np.clip(field + grain, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(d / f"{i}.jpg", quality=90)
    return root


def images_per_s(dataset, repeats: int) -> tuple[float, object]:
    """Best images/s over ``repeats`` passes of a one-worker loader, timed from its first batch
    (the worker's start is not counted), and that first batch."""
    from torch.utils.data import DataLoader

    best, first = 0.0, None
    for _ in range(repeats):
        batches = iter(DataLoader(dataset, batch_size=32, num_workers=1))
        x, _ = next(batches)
        first = x if first is None else first
        start, n = time.perf_counter(), 0
        for x, _ in batches:
            n += len(x)
        best = max(best, n / (time.perf_counter() - start))
    return best, first


def measure(n_images: int, repeats: int, root: Path) -> dict:
    import open_clip
    import torch

    from clipgap import pixels
    from clipgap.data import DataOptions, load_task

    make_photos(root / "photos", n_images)
    task = load_task(f"folder:{root / 'photos'}", "train", options=DataOptions())
    transform = open_clip.image_transform(224, is_train=False)
    start = time.perf_counter()
    cached = pixels.task_images(task, transform)
    build_s = time.perf_counter() - start
    if not isinstance(cached, pixels.CachedImages):
        raise SystemExit("error: the pixel cache did not take the task (is it turned off?)")
    decode, decoded = images_per_s(pixels.TaskImages(task, transform), repeats)
    cache, from_cache = images_per_s(cached, repeats)
    return {
        "images": len(task),
        "image_size": "640x480",
        "build_s": build_s,
        "decode_images_per_s": decode,
        "cache_images_per_s": cache,
        "ratio": cache / decode,
        "identical": bool(torch.equal(decoded, from_cache)),
        "target": ">= 10x",
        "met": cache / decode >= 10 and bool(torch.equal(decoded, from_cache)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=300, help="JPEGs to make (300)")
    ap.add_argument("--repeats", type=int, default=2, help="passes per way; best counts (2)")
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the row to OUT")
    args = ap.parse_args(argv)
    if args.images < 72 or args.repeats < 1:
        ap.error("--images must be >= 72 (two batches after the first) and --repeats >= 1")
    import torch

    torch.set_num_threads(1)
    names = ("CLIPGAP_CACHE", "CLIPGAP_PIXEL_CACHE")
    before = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="clipgap-bench-pixels-") as tmp:
        os.environ["CLIPGAP_CACHE"] = str(Path(tmp) / "cache")  # a cold cache of its own
        os.environ["CLIPGAP_PIXEL_CACHE"] = "on"  # what is measured
        try:
            row = measure(args.images, args.repeats, Path(tmp))
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    print(
        f"{row['images']} images 640x480: decode {row['decode_images_per_s']:.1f} img/s, "
        f"cache {row['cache_images_per_s']:.1f} img/s (built once in {row['build_s']:.1f} s); "
        f"bit-identical: {row['identical']}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps([row], indent=2) + "\n")
    print(f"pixel cache: {row['ratio']:.1f}x")
    return 0 if row["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
