"""Benchmark: wall time of each transferability measure at N = 50,000, d = 512, C = 100.

Run: python bench/measures.py [--n 50000] [--dim 512] [--classes 100] [--repeat 3]
                              [--threads T] [--json OUT] [--only NAME ...]
Each measure (IIMM, LogME, H-score, TransRate, GBC spherical and diagonal, and the probes:
5-fold ridge probe_accuracy and 10-NN knn_accuracy on 500 sampled queries) runs on the same
seeded float32 embeddings (C random unit class centres, images = centre + noise, class texts
= centre + smaller noise), ``--repeat`` times in this process. The table gives the best and
the median wall time and the least CPU time of this process (with ``--threads 1``, about the
wall time on one idle core; with more threads it includes their waiting). The target is a
best wall time under ``--target`` seconds (1 s) for each. The last
row times ``task_difficulty``, which computes all of them plus the silhouettes (no target).
``--threads`` caps the BLAS threads (default: the BLAS library's own choice, as users get it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from clipgap.cli.output import table
from clipgap.metrics import gbc, h_score, iimm, logme, task_difficulty, transrate
from clipgap.metrics.probes import knn_accuracy, probe_accuracy


def make_task(n: int, dim: int, classes: int, *, seed: int):
    """(images float32 (n, dim), texts float32 (classes, dim), labels (n,)), classes overlap."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, classes, n)
    images = centres[labels] + rng.normal(scale=1.5 / np.sqrt(dim), size=(n, dim))
    texts = centres + rng.normal(scale=0.5 / np.sqrt(dim), size=(classes, dim))
    return images.astype(np.float32), texts.astype(np.float32), labels


MEASURES = {
    "iimm": lambda x, t, y: iimm(x, t, y),
    "logme": lambda x, t, y: logme(x, y),
    "hscore": lambda x, t, y: h_score(x, y),
    "transrate": lambda x, t, y: transrate(x, y),
    "gbc": lambda x, t, y: gbc(x, y),
    "gbc_diagonal": lambda x, t, y: gbc(x, y, kind="diagonal"),
    "probe_accuracy": lambda x, t, y: probe_accuracy(x, y, len(t)),
    "knn_accuracy": lambda x, t, y: knn_accuracy(x, y, len(t)),
}


def time_one(fn, repeat: int) -> tuple[float, list[float], list[float]]:
    """(value, wall times, CPU times of this process) over ``repeat`` runs."""
    value, walls, cpus = None, [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        value = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return value, walls, cpus


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50000, help="images (default 50000)")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3, help="runs per measure (best is judged)")
    p.add_argument("--target", type=float, default=1.0, help="seconds allowed per measure")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="BLAS threads (default: as is)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the rows to OUT")
    p.add_argument(
        "--only", nargs="+", choices=sorted(MEASURES), default=None, metavar="NAME",
        help="time only these measures (and skip the task_difficulty row)",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.repeat < 1 or args.n < 2 or args.classes < 2:
        p.error("--repeat must be >= 1, --n and --classes >= 2")
    images, texts, labels = make_task(args.n, args.dim, args.classes, seed=args.seed)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    threads = "default" if args.threads is None else args.threads
    print(
        f"N={args.n}, d={args.dim}, C={args.classes}, float32, seed {args.seed}; BLAS threads "
        f"{threads}; load average {load}"
    )
    rows = []
    limit = contextlib.nullcontext() if args.threads is None else threadpool_limits(args.threads)
    with limit:
        for name, fn in MEASURES.items():
            if args.only and name not in args.only:
                continue
            value, walls, cpus = time_one(lambda fn=fn: fn(images, texts, labels), args.repeat)
            rows.append(_row(name, args, value, walls, cpus, met=min(walls) < args.target))
        if not args.only:
            _, walls, cpus = time_one(lambda: task_difficulty(images, texts, labels), 1)
            rows.append(_row("task_difficulty (all)", args, None, walls, cpus, met=None))
    print(table([_text(r) for r in rows]))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _row(name, args, value, times, cpus, *, met) -> dict:
    row = {
        "measure": name,
        "n": args.n,
        "dim": args.dim,
        "classes": args.classes,
        "value": value,
        "best_s": min(times),
        "median_s": statistics.median(times),
        "cpu_s": min(cpus),
        "blas_threads": args.threads,
        "load_before": os.getloadavg()[0],
    }
    if met is not None:
        row.update(target=f"best < {args.target:g} s", met=bool(met))
    return row


def _text(row: dict) -> dict:
    return {
        "measure": row["measure"],
        "value": "-" if row["value"] is None else f"{row['value']:.6g}",
        "best s": f"{row['best_s']:.3f}",
        "median s": f"{row['median_s']:.3f}",
        "cpu s": f"{row['cpu_s']:.3f}",
        "met": {True: "yes", False: "NO"}.get(row.get("met"), "-"),
    }


if __name__ == "__main__":
    raise SystemExit(main())
