"""Benchmark: clipgap's exact O(N K d) cosine silhouette against sklearn's O(N^2 d) one.

Run: python bench/silhouette.py [--sizes 20000] [--repeat 3] [--threads T] [--json OUT]
Both implementations score the same seeded random embeddings (K clusters around random
centres in d dimensions) in one process; the table gives the wall time of each (clipgap: the
best of ``--repeat`` runs; sklearn: one run, it takes minutes at N = 50,000), the speed-up
(sklearn / clipgap), the absolute difference of the two scores and the load average before.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import silhouette_score as sklearn_silhouette
from threadpoolctl import threadpool_limits

from clipgap.cli.output import table
from clipgap.metrics import silhouette_score


def make_embeddings(
    n: int, dim: int, clusters: int, *, seed: int, dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """n points around `clusters` random unit centres; noise sized so clusters overlap a bit."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, n)
    X = centres[labels] + rng.normal(scale=1.5 / np.sqrt(dim), size=(n, dim))
    return X.astype(dtype), labels


def _timed(fn, repeat: int = 1) -> tuple[float, float]:
    """(value, best wall time of ``repeat`` runs)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return float(value), best


def bench_one(n: int, args: argparse.Namespace) -> dict:
    X, labels = make_embeddings(n, args.dim, args.clusters, seed=args.seed, dtype=args.dtype)
    load = os.getloadavg()[0]
    ours, t_ours = _timed(lambda: silhouette_score(X, labels, metric="cosine"), args.repeat)
    ref, t_ref = _timed(lambda: sklearn_silhouette(X, labels, metric="cosine"))
    return {
        "n": n,
        "dim": args.dim,
        "clusters": args.clusters,
        "dtype": args.dtype,
        "silhouette": ours,
        "clipgap_s": t_ours,
        "sklearn_s": t_ref,
        "speedup": t_ref / t_ours,
        "max_abs_diff": abs(ours - ref),
        "load_before": load,
        "blas_threads": args.threads,
    }


def _row_text(row: dict) -> dict:
    return {
        "N": str(row["n"]),
        "clipgap s": f"{row['clipgap_s']:.3f}",
        "sklearn s": f"{row['sklearn_s']:.2f}",
        "speed-up": f"{row['speedup']:.0f}x",
        "max abs diff": f"{row['max_abs_diff']:.1e}",
        "silhouette": f"{row['silhouette']:.6f}",
        "load": f"{row['load_before']:.2f}",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[20000], help="values of N")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--clusters", type=int, default=10)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3, help="clipgap runs (the best is reported)")
    p.add_argument(
        "--threads", type=int, default=None, help="BLAS threads for both (default: as is)"
    )
    p.add_argument("--json", default=None, metavar="OUT", help="also write the rows to OUT")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if any(n < args.clusters + 1 for n in args.sizes):
        p.error(f"every size must be at least clusters + 1 = {args.clusters + 1}")
    threads = "default" if args.threads is None else args.threads
    print(
        f"cosine silhouette, d={args.dim}, K={args.clusters}, {args.dtype}, seed {args.seed}, "
        f"BLAS threads {threads}"
    )
    limit = contextlib.nullcontext() if args.threads is None else threadpool_limits(args.threads)
    with limit:
        rows = [bench_one(n, args) for n in args.sizes]
    print(table([_row_text(r) for r in rows]))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
