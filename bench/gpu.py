"""GPU throughput: clipgap's trainer vs a bare training loop, and its embedding extraction vs a
bare ``encode_image`` loop, on one CUDA device.

Model: open_clip ViT-B-32 built from its config with random weights (nothing is downloaded).
Data: synthetic 224x224 images held in memory (``--steps`` x ``--batch-size`` of them).

Trainer, per method: images/s of :func:`clipgap.training.finetune` over its training epoch
(AdamW, batch 256, precision ``auto`` = bf16 autocast with TF32, the pixel cache on the GPU)
vs a bare loop on the same batches (same seeded order, same model with the method applied the
same way, same optimiser): autocast forward, cross-entropy, backward, optimiser step, nothing
else. Both after a warm-up. ``overhead`` = bare images/s / trainer images/s - 1; target <= 15%.
``clip_adapter`` and ``linear_probe`` are compared with ``cache_embeddings=False`` (the frozen
encoder runs every step, as in the bare loop); their default, training on cached embeddings,
is shown as ``cached_img_s``.

Embedding: :func:`clipgap.embeddings.encode_images` (preprocessing in loader workers, pinned
memory, float32 encoder, cache off) vs ``encode_image`` over the same images already
preprocessed and on the GPU (float32): the data path's cost over the model's own time.

Without CUDA it prints one line and exits 0 (``--json`` then holds one row saying so);
``--device cpu`` runs the same code on the CPU (a check of the script, not a benchmark).

    python bench/gpu.py [--steps 40] [--batch-size 256] [--model ViT-B-32] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")

METHODS = ["full", "aclip", "bitfit", "lora", "clip_adapter", "linear_probe"]
CACHED = {"clip_adapter", "linear_probe"}
TARGET = 0.15
WARMUP = 3


def synthetic_task(n: int, size: int, classes: int = 10):
    from clipgap.data import ImageArrays, Task

    rng = np.random.default_rng(0)
    return Task(
        name="gpu-bench",
        split="train",
        images=ImageArrays(rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)),
        labels=np.arange(n) % classes,
        class_names=[f"class {i}" for i in range(classes)],
        templates=["a photo of a {c}."],
        fingerprint=f"gpu-bench-{n}-{size}-{classes}",
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_config(args, steps: int, cached: bool):
    from clipgap.training import TrainConfig

    return TrainConfig(
        optimizer="adamw",
        lr=1e-5,
        epochs=1,
        batch_size=args.batch_size,
        val_fraction=0.0,
        max_steps=steps,
        device=args.device,
        cache_embeddings=cached,
        pixel_cache_mb=1e6,
        num_workers="auto",
    )


def trainer_img_s(backbone, task, method: str, args, *, cached: bool) -> tuple[float, int]:
    """(images/s of the trainer's training epoch, trainable parameters), after a warm-up run."""
    from clipgap.training import finetune

    warm = task.subset(np.arange(WARMUP * args.batch_size), split="warm-up")
    finetune(backbone, warm, method, train=train_config(args, WARMUP, cached), progress=False)
    cfg = train_config(args, args.steps, cached)
    result = finetune(backbone, task, method, train=cfg, progress=False)
    return result.steps * args.batch_size / result.history[1]["seconds"], result.trainable_params


def bare_img_s(backbone, task, method: str, args) -> float:
    """Images/s of a plain loop: the method's model, autocast forward, loss, backward, step."""
    from clipgap.methods import apply_method
    from clipgap.model import AdaptedModel, clone
    from clipgap.training import TrainConfig, optimizers
    from clipgap.training.data import load_pixels
    from clipgap.training.device import autocast, fast_math, resolve_precision
    from clipgap.training.forward import ClassText

    device = torch.device(args.device)
    model = AdaptedModel(clone(backbone)).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        apply_method(model, method, None, class_names=task.class_names, templates=task.templates)
    model.eval()
    cfg = TrainConfig(optimizer="adamw", lr=1e-5, batch_size=args.batch_size)
    opt = optimizers.get("adamw")(list(model.trainable_parameters().values()), cfg)
    text = ClassText(model, task)
    x = load_pixels(task, backbone.transform, num_workers=min(8, os.cpu_count() or 1)).to(device)
    y = torch.as_tensor(task.labels).to(device)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    batches = [order[i : i + args.batch_size] for i in range(0, len(y), args.batch_size)]
    precision = resolve_precision("auto", device)

    def step(idx):
        with autocast(precision, device):
            logits = text.logits(model.image_features(x[idx]))
        loss = F.cross_entropy(logits.float(), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    with fast_math(device, precision):
        for idx in batches[:WARMUP]:
            step(idx)
        sync(device)
        start = time.perf_counter()
        for idx in batches[: args.steps]:
            step(idx)
        sync(device)
    return args.steps * args.batch_size / (time.perf_counter() - start)


def method_row(backbone, task, method: str, args) -> dict:
    trainer, params = trainer_img_s(backbone, task, method, args, cached=False)
    bare = bare_img_s(backbone, task, method, args)
    overhead = bare / trainer - 1
    row = {
        "what": method,
        "trainable_params": params,
        "clipgap_img_s": trainer,
        "bare_img_s": bare,
        "overhead_pct": round(100 * overhead, 1),
        "target": f"<= {TARGET:.0%}",
        "met": overhead <= TARGET,
    }
    if method in CACHED:
        row["cached_img_s"] = trainer_img_s(backbone, task, method, args, cached=True)[0]
    return row


def embedding_row(backbone, task, args) -> dict:
    """encode_images from the images vs encode_image over preprocessed tensors on the device."""
    from clipgap.embeddings import encode_images
    from clipgap.training.data import load_pixels

    device = torch.device(args.device)
    warm = task.subset(np.arange(args.batch_size), split="warm-up")
    encode_images(backbone, warm, cache=False, progress=False)
    sync(device)
    start = time.perf_counter()
    encode_images(backbone, task, batch_size=args.batch_size, cache=False, progress=False)
    sync(device)
    clipgap = len(task) / (time.perf_counter() - start)
    x = load_pixels(task, backbone.transform, num_workers=min(8, os.cpu_count() or 1)).to(device)
    with torch.inference_mode():
        backbone.encode_image(x[: args.batch_size])
        sync(device)
        start = time.perf_counter()
        for i in range(0, len(x), args.batch_size):
            backbone.encode_image(x[i : i + args.batch_size]).float().cpu()
        sync(device)
    bare = len(task) / (time.perf_counter() - start)
    return {
        "what": "embedding (encode_images vs encode_image, fp32)",
        "clipgap_img_s": clipgap,
        "bare_img_s": bare,
        "overhead_pct": round(100 * (bare / clipgap - 1), 1),
    }


def _cell(value) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def markdown(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def write_json(path: str | None, rows: list[dict]) -> None:
    if path:
        with open(path, "w") as fh:
            json.dump(rows, fh, indent=2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ViT-B-32", help="open_clip config, random init")
    ap.add_argument("--steps", type=int, default=40, help="timed optimiser steps per method")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--image-size", type=int, default=224, help="side of the synthetic images")
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--device", default="cuda", help="cuda (default), or cpu to check the script")
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the rows to OUT")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA device here; skipped")
        write_json(args.json, [{"what": "skipped", "note": "no CUDA device"}])
        return 0
    from clipgap.backbones import load_backbone

    backbone = load_backbone(args.model, device=args.device)
    task = synthetic_task(max(args.steps, WARMUP) * args.batch_size, args.image_size)
    rows = []
    for method in args.methods:
        rows.append(method_row(backbone, task, method, args))
        print(f"{method}: {rows[-1]}", file=sys.stderr, flush=True)
    rows.append(embedding_row(backbone, task, args))
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"{args.model} on {name}, batch {args.batch_size}, {args.steps} steps per method")
    print(markdown(rows))
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
