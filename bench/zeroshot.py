"""Zero-shot evaluation: clipgap vs CLIP_benchmark on the same checkpoint, images and prompts.

Baseline: CLIP_benchmark 1.6.2's ``zeroshot_classification.evaluate`` (amp off) over a torchvision
``ImageFolder`` with the model's own transform. clipgap: ``load_task("folder:ROOT")`` with the
class names and templates given as files, then ``evaluate.accuracy`` of the zero-shot model with
the embedding cache off. Both read the same PNG files: the test split of each world task, written
to ``ROOT/test/NNN/*.png`` (one folder per class, numbered so both sides sort them alike).

Each side is timed from listing the folder to the accuracy (decode, transform, encode, head),
after one untimed warm-up; the best of ``--repeats`` interleaved rounds is kept. The ratio is
clipgap / CLIP_benchmark wall time. The top-1 accuracies must be equal (same correct count);
the script exits 1 when they are not. One shim: CLIP_benchmark's ``accuracy`` helper fails on
numpy >= 2.4 (``float`` of a 1-element array), so it is replaced by the same count with
``.item()``; everything else (classifier, encoding loop, metrics) is CLIP_benchmark's own.

    python bench/zeroshot.py [--model world] [--tasks shape color] [--repeats 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def write_folder(task, root: Path) -> tuple[Path, Path]:
    """``task``'s images as ``root/test/NNN/IIIII.png``; returns the class-names/templates files."""
    present = set(int(y) for y in task.labels)
    if len(present) != task.n_classes:
        from clipgap.errors import DataError

        missing = sorted(set(range(task.n_classes)) - present)
        raise DataError(f"{task.name} ({task.split}) has no images of classes {missing}")
    for k in range(task.n_classes):
        (root / "test" / f"{k:03d}").mkdir(parents=True)
    for i, label in enumerate(task.labels):
        task.images.load(i).save(root / "test" / f"{int(label):03d}" / f"{i:05d}.png")
    names, templates = root / "classnames.txt", root / "templates.txt"
    names.write_text("\n".join(task.class_names) + "\n")
    templates.write_text("\n".join(task.templates) + "\n")
    return names, templates


def run_clipgap(backbone, root: Path, names: Path, templates: Path, batch_size: int):
    """(top-1 accuracy, correct count) through clipgap's folder task and evaluation."""
    from clipgap.data import DataOptions, load_task
    from clipgap.training import accuracy, zero_shot_model

    options = DataOptions(classnames_file=str(names), templates_file=str(templates))
    task = load_task(f"folder:{root}", "test", options=options)
    model = zero_shot_model(backbone)
    acc = accuracy(model, task, batch_size=batch_size, cache=False, progress=False)
    return acc, round(acc * len(task))


def _topk_accuracy(output, target, topk=(1,)):
    """CLIP_benchmark's ``accuracy`` with ``.item()``: its ``float(array of shape (1,))`` raises
    TypeError on numpy >= 2.4. Same arithmetic: correct top-k count / number of examples."""
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    return [correct[:k].reshape(-1).float().sum().item() / len(target) for k in topk]


def run_clip_benchmark(backbone, root: Path, class_names, templates, batch_size: int):
    """(top-1 accuracy, correct count) through CLIP_benchmark's zero-shot evaluation."""
    from clip_benchmark.metrics import zeroshot_classification
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder

    zeroshot_classification.accuracy = _topk_accuracy  # numpy-2 fix, see _topk_accuracy
    evaluate = zeroshot_classification.evaluate
    dataset = ImageFolder(str(root / "test"), transform=backbone.transform)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    metrics = evaluate(
        backbone.model, loader, backbone.tokenize, class_names, templates, "cpu", amp=False
    )
    return metrics["acc1"], round(metrics["acc1"] * len(dataset))


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_task(backbone, spec: str, args: argparse.Namespace) -> dict:
    from clipgap.data import load_task

    task = load_task(spec, "test")
    with tempfile.TemporaryDirectory(prefix="clipgap-zeroshot-") as tmp:
        root = Path(tmp)
        names, templates = write_folder(task, root)
        ours = partial(run_clipgap, backbone, root, names, templates, args.batch_size)
        theirs = partial(
            run_clip_benchmark, backbone, root, task.class_names, task.templates, args.batch_size
        )
        ours(), theirs()  # warm-up: lazy imports, first-call allocations
        t_ours, t_theirs = [], []
        for _ in range(args.repeats):
            (acc, correct), t = _timed(ours)
            t_ours.append(t)
            (ref_acc, ref_correct), t = _timed(theirs)
            t_theirs.append(t)
    return {
        "task": spec,
        "n_images": len(task),
        "n_classes": task.n_classes,
        "clipgap_acc": acc,
        "clip_benchmark_acc": ref_acc,
        "equal": correct == ref_correct,
        "clipgap_s": min(t_ours),
        "clip_benchmark_s": min(t_theirs),
        "ratio": min(t_ours) / min(t_theirs),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="world", help="world (default) or world-tiny")
    ap.add_argument("--tasks", nargs="+", default=None, help="world tasks (default: all)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds; the best is kept")
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the rows to OUT")
    args = ap.parse_args(argv)
    # measures the data path from the files (set after parsing: --help and imports leave it)
    os.environ.setdefault("CLIPGAP_PIXEL_CACHE", "off")
    if args.repeats < 1 or args.batch_size < 1:
        ap.error("--repeats and --batch-size must be >= 1")

    import torch

    from clipgap.backbones import load_backbone
    from clipgap.cli.output import table
    from clipgap.errors import ClipgapError
    from clipgap.world.tasks import WORLD_TASKS

    try:
        backbone = load_backbone(args.model)
        tasks = args.tasks or list(WORLD_TASKS)
        rows = [bench_task(backbone, f"world:{t}", args) for t in tasks]
    except ClipgapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"zero-shot top-1, model {args.model}, batch {args.batch_size}, best of {args.repeats}, "
        f"{torch.get_num_threads()} torch threads"
    )
    print(table(rows))
    ours = sum(r["clipgap_s"] for r in rows)
    theirs = sum(r["clip_benchmark_s"] for r in rows)
    print(f"total: clipgap {ours:.3f} s, CLIP_benchmark {theirs:.3f} s, ratio {ours / theirs:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    unequal = [r["task"] for r in rows if not r["equal"]]
    if unequal:
        print(f"error: accuracies differ on {', '.join(unequal)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
