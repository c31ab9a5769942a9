"""Embedding extraction: clipgap's data path vs a plain loop over pre-made tensors.

Baseline: open_clip's ``encode_image`` called in a loop on tensors that were decoded and
transformed beforehand (the model's own time). clipgap: ``encode_images`` from image files on disk
(decode + transform + batching + model), cache off. The ratio is clipgap / baseline wall time;
the target is at most 1.20 (data path costs at most 20% over the model).

    python bench/embeddings.py [--model ViT-B-32] [--n 128] [--batch-size 32] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_folder(root: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / "test" / f"class{i % 4}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(d / f"{i}.jpg")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=256, help="side of the JPEGs on disk")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    # measures the data path from the files (set after parsing: --help and imports leave it)
    os.environ.setdefault("CLIPGAP_PIXEL_CACHE", "off")

    from clipgap.backbones import load_backbone
    from clipgap.data import load_task
    from clipgap.embeddings import encode_images

    backbone = load_backbone(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        make_folder(Path(tmp), args.n, args.image_size)
        task = load_task(f"folder:{tmp}", "test")
        pre = torch.stack([backbone.transform(task.images.load(i)) for i in range(len(task))])
        with torch.inference_mode():  # warm-up
            backbone.encode_image(pre[: args.batch_size])
        t0 = time.perf_counter()
        with torch.inference_mode():
            ref = torch.cat(
                [
                    backbone.encode_image(pre[i : i + args.batch_size])
                    for i in range(0, len(pre), args.batch_size)
                ]
            )
        base_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = encode_images(
            backbone, task, batch_size=args.batch_size, cache=False, progress=False
        )
        ours_s = time.perf_counter() - t0
    row = {
        "model": args.model,
        "n_images": args.n,
        "baseline": "open_clip encode_image loop on pre-made tensors",
        "baseline_s": base_s,
        "clipgap_s": ours_s,
        "baseline_img_per_s": args.n / base_s,
        "clipgap_img_per_s": args.n / ours_s,
        "ratio": ours_s / base_s,
        "max_abs_diff": float((ours - ref.float()).abs().max()),
    }
    print(
        f"embedding extraction, {args.model}, {args.n} images of {args.image_size}px, batch {args.batch_size}"
    )
    print(
        f"  baseline (encode_image on pre-made tensors): {base_s:.2f} s ({row['baseline_img_per_s']:.1f} img/s)"
    )
    print(
        f"  clipgap encode_images from files:           {ours_s:.2f} s ({row['clipgap_img_per_s']:.1f} img/s)"
    )
    print(
        f"  ratio clipgap/baseline: {row['ratio']:.3f} (target <= 1.20); max |diff| {row['max_abs_diff']:.2e}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps([row], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
