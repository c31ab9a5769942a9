"""Fine-tuning throughput per method, peak memory, and the cached-embedding speed-up.

For each method on each model (the embedded ``world`` CLIP when its pretrained checkpoint is
cached, and open_clip ViT-B-32 with random init), a few optimiser steps of the shared trainer
on synthetic images: training images/s (optimiser steps only; embedding caching and pixel
loading are reported as setup) and peak memory. Each (model, method) runs in its own child
process, so peaks do not leak between methods: on CPU the process's peak resident set size
(``peak_mb``) and its rise over the size with the model loaded (``train_peak_mb``, sampled
every 5 ms); on GPU the CUDA peak allocated during fine-tuning.

Speed-up rows: ``clip_adapter`` and ``linear_probe`` trained on cached image embeddings (the
default) vs the same trainer with ``cache_embeddings=False`` (the frozen image encoder runs
every step), same steps and batch; target >= 10x training images/s.

    python bench/finetune.py [--models world ViT-B-32] [--steps 4] [--batch-size 8]
                             [--world-steps 15] [--world-batch-size 64] [--threads N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

METHODS = ["full", "aclip", "bitfit", "lora", "clip_adapter", "linear_probe"]
CACHED = ["clip_adapter", "linear_probe"]
TARGET = 10.0


class PeakRSS:
    """Peak resident set size (MB) of this process while the context is open (5 ms sampling)."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE") / 2**20
        self.start = self.peak = self._now()
        self._stop = threading.Event()

    def _now(self) -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self.page

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._now())

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._now())


def synthetic_task(n: int, classes: int = 4, size: int = 64):
    from clipgap.data import ImageArrays, Task

    rng = np.random.default_rng(0)
    labels = np.arange(n) % classes
    return Task(
        name="bench",
        split="train",
        images=ImageArrays(rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)),
        labels=labels,
        class_names=[f"class {i}" for i in range(classes)],
        templates=["a photo of a {c}."],
        fingerprint=f"bench-{n}-{classes}-{size}",
    )


def run_method(backbone, method: str, task, args, *, cached: bool = True) -> dict:
    from clipgap.training import TrainConfig, finetune

    cfg = TrainConfig(
        optimizer="adamw",
        lr=1e-5,
        epochs=1,
        batch_size=args.batch_size,
        val_fraction=0.0,
        max_steps=args.steps,
        device=args.device,
        cache_embeddings=cached,
    )
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with PeakRSS() as rss:
        result = finetune(backbone, task, method, train=cfg, progress=False)
    if cuda:
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    train_s = result.history[1]["seconds"]
    images = result.steps * args.batch_size
    return {
        "method": method,
        "trainable_params": result.trainable_params,
        "steps": result.steps,
        "batch_size": args.batch_size,
        "train_s": train_s,
        "setup_s": total - train_s,
        "images_per_s": images / train_s,
        "peak_mb": result.peak_memory_mb if cuda else rss.peak,
    }


def _model_args(name: str, args) -> argparse.Namespace:
    if name.startswith("world"):  # a study-sized epoch on the small world model
        return argparse.Namespace(
            **{**vars(args), "batch_size": args.world_batch_size, "steps": args.world_steps}
        )
    return args


def child(name: str, method: str, args) -> list[dict]:
    """One method on one model in this (fresh) process: throughput row (+ speed-up row)."""
    from clipgap.backbones import load_backbone

    args = _model_args(name, args)
    backbone = load_backbone(name, device=args.device)
    task = synthetic_task(args.steps * args.batch_size)
    warm = argparse.Namespace(**{**vars(args), "steps": 1})
    with PeakRSS() as rss:  # from the loaded model on: warm-up + measured run
        run_method(backbone, method, task, warm)  # lazy initialisation, allocator
        row = run_method(backbone, method, task, args)
    if not args.device.startswith("cuda"):
        row["peak_mb"], row["train_peak_mb"] = rss.peak, rss.peak - rss.start
    else:
        row["train_peak_mb"] = row["peak_mb"]
    rows = [{"model": name, "kind": "throughput", **row}]
    if method in CACHED:
        slow = run_method(backbone, method, task, args, cached=False)
        speedup = row["images_per_s"] / slow["images_per_s"]
        rows.append(
            {
                "model": name,
                "kind": "speedup",
                "method": method,
                "cached_images_per_s": row["images_per_s"],
                "encoder_images_per_s": slow["images_per_s"],
                "speedup": speedup,
                "target": f">= {TARGET:.0f}x",
                "met": speedup >= TARGET,
            }
        )
    return rows


def bench_model(name: str, argv: list[str]) -> list[dict]:
    """Every method on ``name``, each in a child process running this script with --child."""
    rows = []
    for method in METHODS:
        cmd = [sys.executable, __file__, "--child", name, method, *argv]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"{name} {method} failed: {out.stderr.strip().splitlines()[-1]}")
        got = json.loads(out.stdout.strip().splitlines()[-1])
        rows += got
        r = got[0]
        print(
            f"{name:9s} {method:13s} {r['images_per_s']:10.1f} img/s  "
            f"peak {r['peak_mb']:8.0f} MB (training +{r['train_peak_mb']:.0f})",
            file=sys.stderr,
        )
    return rows


def world_available() -> bool:
    """True when the world CLIP's pretrained checkpoint is already cached (no pretraining)."""
    try:
        from clipgap.world.model import checkpoint_path, world_models
    except ModuleNotFoundError:
        return False
    return checkpoint_path(world_models.get("world")).is_file()


def table(rows: list[dict]) -> str:
    lines = ["model | method | trainable | batch | img/s | setup s | peak MB | training MB"]
    for r in rows:
        if r["kind"] == "throughput":
            lines.append(
                f"{r['model']} | {r['method']} | {r['trainable_params']:,} | {r['batch_size']} | "
                f"{r['images_per_s']:.1f} | {r['setup_s']:.2f} | {r['peak_mb']:.0f} | "
                f"{r['train_peak_mb']:.0f}"
            )
    lines += ["", "model | method | cached img/s | encoder img/s | speed-up | target met"]
    for r in rows:
        if r["kind"] == "speedup":
            lines.append(
                f"{r['model']} | {r['method']} | {r['cached_images_per_s']:.0f} | "
                f"{r['encoder_images_per_s']:.1f} | {r['speedup']:.0f}x | {r['met']}"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["world", "ViT-B-32"])
    ap.add_argument("--steps", type=int, default=4, help="optimiser steps per method")
    ap.add_argument("--batch-size", type=int, default=8, help="batch on open_clip models")
    ap.add_argument("--world-batch-size", type=int, default=64, help="batch on world models")
    ap.add_argument("--world-steps", type=int, default=15, help="steps on world models")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the rows to OUT")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(child(*args.child, args)))
        return 0
    passed = [
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--world-steps",
        str(args.world_steps),
        "--world-batch-size",
        str(args.world_batch_size),
        "--device",
        args.device,
    ]
    passed += ["--threads", str(args.threads)] if args.threads else []
    rows = []
    for name in args.models:
        if name == "world" and not world_available():
            print(
                "world: pretrained checkpoint not cached; skipped (run `clipgap world "
                "pretrain` first)",
                file=sys.stderr,
            )
            continue
        rows += bench_model(name, passed)
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}; steps per method: "
        f"{args.world_steps} on world models, {args.steps} on the others"
    )
    print(table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
