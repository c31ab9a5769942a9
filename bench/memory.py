"""Peak resident memory of ViT-B-32 full fine-tuning: 10 vs 100 classes, one run vs a study.

Every case runs in a fresh subprocess (``python bench/memory.py --case NAME``) and reports its
peak resident set (``ru_maxrss`` of itself and of any worker it waited for). ViT-B-32 is
open_clip's, random init (``pretrained=None``); the tasks are tiny synthetic image folders made
here (32x32 PNGs in ``train/CLASS`` and ``test/CLASS``: 5 and 1 per class).

- ``run-10`` / ``run-100``: ``clipgap finetune --method full --shots 2`` (batch 32, 1 epoch) on
  10 and 100 classes; goal: peak(100) / peak(10) <= 1.2.
- ``study-10``: ``clipgap study`` over the 10-class task with full, bitfit, lora and clip_adapter,
  scored at alpha 0, 0.5 and 1; goal: peak(study) / peak(run-10) <= 1.3.
- ``steps``: seconds per full fine-tuning step at 100 classes with the class-prompt pass
  checkpointed (the default) and without (``CLIPGAP_TEXT_CHUNK=0``): the cost of the change.
- ``--imagenet``: also ``api-10`` and ``api-1000``: ``finetune`` (training only, 2 steps, one
  prompt template) on the 10-class folder and on an ImageNet-layout task (``imagenet/train/WNID``,
  1000 classes x 1 image); slow, several GB.

    python bench/memory.py [--json OUT] [--threads 2] [--imagenet] [--cases NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODEL = os.environ.get("CLIPGAP_BENCH_MODEL", "ViT-B-32")  # --model sets it for the cases
CASES = ("run-10", "run-100", "study-10", "steps")
IMAGENET_CASES = ("api-10", "api-1000")


def make_folder(root: Path, n_classes: int, train: int = 5, test: int = 1) -> Path:
    """ROOT/{train,test}/cNNN/i.png: 32x32 images of a class-dependent colour."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in range(n_classes):
        colour = rng.integers(0, 256, 3)
        for split, count in (("train", train), ("test", test)):
            d = root / split / f"c{k:03d}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                noise = rng.integers(-20, 21, (32, 32, 3))
                Image.fromarray(np.clip(colour + noise, 0, 255).astype("uint8")).save(
                    d / f"{i}.png"
                )
    return root


def make_imagenet(root: Path) -> Path:
    """``root/imagenet/{train,val}/WNID/0.png`` for the 1000 ImageNet WNIDs, one image each."""
    import numpy as np
    from PIL import Image

    from clipgap.data.catalog import imagenet_wnids

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for wnid in imagenet_wnids():
            d = root / "imagenet" / split / wnid
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype="uint8")).save(d / "0.png")
    return root


def peak_mb() -> float:
    """Peak resident MiB of this process and of the children it waited for (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def _cli(argv: list[str]) -> None:
    from clipgap.cli import main

    code = main(argv)
    if code != 0:
        raise SystemExit(f"clipgap {' '.join(argv)} exited {code}")


def case_run(root: Path, n: int, threads: str) -> dict:
    out = root / f"run-{n}"
    _cli(
        ["--threads", threads, "finetune", "--model", MODEL, "--dataset", f"folder:{root}/c{n}"]
        + ["--method", "full", "--shots", "2", "--out", str(out), "--no-progress", "-q"]
        + ["--tracking", "none", "--device", "cpu", "train.batch_size=32", "train.epochs=1"]
    )
    return {"classes": n}


def case_study(root: Path, threads: str) -> dict:
    config = root / "study.yaml"
    config.write_text(
        f"model: {MODEL}\npretrained: null\ndevice: cpu\npreset: tuned\nseeds: [0]\n"
        "shots: [2]\nmethods: [full, bitfit, lora, clip_adapter]\n"
        f"tasks:\n  - {{name: 'folder:{root / 'c10'}'}}\n"
        "eval: {alphas: [0, 0.5, 1]}\ntrain: {batch_size: 32, epochs: 1}\n"
    )
    out = root / "study"
    _cli(
        ["--threads", threads, "study", "--config", str(config), "--out", str(out)]
        + ["--tracking", "none", "--no-progress", "-q"]
    )
    return {"classes": 10, "runs": 4}


def case_steps(root: Path, threads: str, steps: int = 2) -> dict:
    """Seconds per step (forward + backward + SGD step) at 100 classes, with and without the
    checkpointed prompt pass, alternating so machine load hits both alike."""
    import torch

    from clipgap.backbones import load_backbone
    from clipgap.embeddings import TEXT_CHUNK_ENV
    from clipgap.methods import apply_method
    from clipgap.model import AdaptedModel
    from clipgap.training.forward import ClassText, Forward

    torch.set_num_threads(int(threads))
    names = [f"class {k}" for k in range(100)]
    model = AdaptedModel(load_backbone(MODEL, None, device="cpu"))
    apply_method(model, "full", None, class_names=names, templates=["a photo of a {c}."])
    task = type("T", (), {"class_names": names, "templates": ["a photo of a {c}."]})()
    forward = Forward(model, ClassText(model, task), embedded=False)
    opt = torch.optim.SGD(list(model.trainable_parameters().values()), lr=1e-6)
    from PIL import Image

    shape = model.backbone.transform(Image.new("RGB", (64, 64))).shape
    x, y = torch.randn(32, *shape), torch.arange(32) % 100
    seconds: dict[str, list[float]] = {"checkpointed": [], "kept": []}
    for i in range(steps + 1):
        for label, chunk in (("checkpointed", ""), ("kept", "0")):
            os.environ[TEXT_CHUNK_ENV] = chunk
            t = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(forward(x), y).backward()
            opt.step()
            if i:  # the first round warms up
                seconds[label].append(time.perf_counter() - t)
    os.environ.pop(TEXT_CHUNK_ENV)
    on, off = (min(seconds[k]) for k in ("checkpointed", "kept"))
    return {"classes": 100, "step_s": on, "step_s_without": off, "cost": on / off - 1}


def case_api(root: Path, n: int, threads: str) -> dict:
    """``finetune`` alone (2 steps of batch 32, no validation, one template)."""
    import torch

    from clipgap.backbones import load_backbone
    from clipgap.data import DataOptions, load_task
    from clipgap.training import TrainConfig, finetune

    torch.set_num_threads(int(threads))
    if n == 1000:
        task = load_task("imagenet", "train", options=DataOptions(data_root=str(root)))
    else:
        task = load_task(f"folder:{root / f'c{n}'}", "train", options=DataOptions())
    task.templates = ["a photo of a {c}."]
    cfg = TrainConfig(lr=1e-6, batch_size=32, epochs=1, max_steps=2, val_fraction=0.0, device="cpu")
    backbone = load_backbone(MODEL, None, device="cpu")
    result = finetune(backbone, task, "full", train=cfg, progress=False, copy=False)
    return {"classes": task.n_classes, "steps": result.steps}


def child(name: str, root: Path, threads: str) -> None:
    """Run one case here and print its JSON row (with this process's peak) last."""
    if name.startswith("run-"):
        row = case_run(root, int(name[4:]), threads)
    elif name.startswith("api-"):
        row = case_api(root, int(name[4:]), threads)
    elif name == "study-10":
        row = case_study(root, threads)
    else:
        row = case_steps(root, threads)
    print(json.dumps({"case": name, **row, "peak_mb": peak_mb()}))


def run_case(name: str, root: Path, threads: str, model: str = MODEL) -> dict:
    cmd = [sys.executable, __file__, "--case", name, "--root", str(root), "--threads", threads]
    env = {**os.environ, "CLIPGAP_CACHE": str(root / "cache"), "CLIPGAP_BENCH_MODEL": model}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise SystemExit(f"case {name} exited {proc.returncode}: {tail[0]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["wall_s"] = time.perf_counter() - start
    print(json.dumps(row), flush=True)
    return row


def summarise(rows: list[dict]) -> list[dict]:
    """Ratio rows (10 vs 100 classes; study vs run; 1000 vs 10 classes) with goals."""
    by = {r["case"]: r for r in rows}
    out = []
    pairs = (
        ("run-100", "run-10", 1.2, "peak at 100 classes / at 10"),
        ("study-10", "run-10", 1.3, "peak of the study / of one run"),
        ("api-1000", "api-10", None, "peak at 1000 classes / at 10 (training only)"),
    )
    for a, b, goal, what in pairs:
        if a in by and b in by:
            ratio = by[a]["peak_mb"] / by[b]["peak_mb"]
            row = {"case": f"{a} / {b}", "what": what, "ratio": ratio}
            if goal is not None:
                row.update(target=f"<= {goal}", met=ratio <= goal)
            out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the rows to OUT")
    ap.add_argument("--threads", default="2", help="torch threads per case (2)")
    ap.add_argument("--imagenet", action="store_true", help="add the 1000-class case (slow)")
    ap.add_argument("--model", default=MODEL, help=f"open_clip model, random init ({MODEL})")
    ap.add_argument("--cases", nargs="+", choices=CASES + IMAGENET_CASES, help="a subset")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        child(args.case, Path(args.root), args.threads)
        return 0
    cases = list(args.cases or CASES + (IMAGENET_CASES if args.imagenet else ()))
    with tempfile.TemporaryDirectory(prefix="clipgap-bench-memory-") as tmp:
        root = Path(tmp)
        make_folder(root / "c10", 10)
        make_folder(root / "c100", 100)
        if "api-1000" in cases:
            make_imagenet(root)
        rows = [run_case(name, root, args.threads, args.model) for name in cases]
    rows += summarise(rows)
    for row in rows[len(cases) :]:
        verdict = "" if "met" not in row else f" (goal {row['target']}: {row['met']})"
        print(f"{row['case']}: {row['ratio']:.2f}x{verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
