"""Wall time of the default study (``make study``) against the 10-minute target.

Runs ``python -m clipgap --threads 1 study --out TMP/study --no-progress`` (what ``make study``
runs, without progress bars) in a subprocess whose ``CLIPGAP_CACHE`` is a fresh temporary
directory holding a copy of ``world/`` from your cache (the pretrained world CLIPs) and nothing
else: no embedding cache, no runs. The world model the study uses is pretrained into your cache first when it is
missing; that time is reported separately (``pretrain_s``), not counted in the study time.

Then the same command runs again on the same directory: every run must be skipped
(``0 run now``), and its time is the cost of re-planning and rebuilding the report.
Ratio = first-run seconds / target seconds (600); at most 1 meets the target.

    python bench/study_time.py [--json OUT] [key=value ...]   (overrides as for `clipgap study`)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SUMMARY = re.compile(r"(\d+) runs, (\d+) already done, (\d+) run now, (\d+) failed")


def ensure_world_model(overrides: list[str]) -> tuple[str, float, bool]:
    """(model name, seconds spent, whether it was pretrained now) for the study's model."""
    from clipgap.study import load_study_config
    from clipgap.world.model import ensure_checkpoint, is_world_model

    model = load_study_config(None, overrides).model
    if not is_world_model(model):
        return model, 0.0, False
    start = time.perf_counter()
    ckpt = ensure_checkpoint(model, progress=False)
    return model, time.perf_counter() - start, ckpt.trained


def fresh_cache(tmp: Path) -> Path:
    """A new cache directory under ``tmp`` with a copy of the user's ``world/`` only."""
    from clipgap.paths import cache_dir

    cache = tmp / "cache"
    shutil.copytree(cache_dir("world"), cache / "world")
    return cache


def run_study(out: Path, cache: Path, overrides: list[str], timeout: float) -> tuple[float, dict]:
    """Seconds and the parsed summary counts of one ``clipgap study`` subprocess."""
    from clipgap.errors import ClipgapError

    cmd = [sys.executable, "-m", "clipgap", "--threads", "1", "study", "--out", str(out)]
    cmd.append("--no-progress")
    env = {**os.environ, "CLIPGAP_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.run(cmd + overrides, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise ClipgapError(f"`{' '.join(cmd)}` exited {proc.returncode}: {tail[0]}")
    found = SUMMARY.search(proc.stdout)
    if not found:
        raise ClipgapError(f"`{' '.join(cmd)}` printed no 'N runs, ... failed' summary line")
    keys = ("runs", "skipped", "run_now", "failed")
    return seconds, dict(zip(keys, map(int, found.groups()), strict=True))


def measure(overrides: list[str], args: argparse.Namespace) -> dict:
    model, pretrain_s, pretrained_now = ensure_world_model(overrides)
    with tempfile.TemporaryDirectory(prefix="clipgap-study-time-") as tmp:
        cache = fresh_cache(Path(tmp))
        out = Path(tmp) / "study"
        first_s, first = run_study(out, cache, overrides, args.timeout)
        second_s, second = run_study(out, cache, overrides, args.timeout)
    return {
        "study": "default" if not overrides else "default + " + " ".join(overrides),
        "model": model,
        "runs": first["runs"],
        "first_s": first_s,
        "first_run_now": first["run_now"],
        "second_s": second_s,
        "second_run_now": second["run_now"],
        "target_s": args.target_s,
        "ratio": first_s / args.target_s,
        "pretrain_s": pretrain_s,
        "pretrained_now": pretrained_now,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target-s", type=float, default=600.0, help="target seconds (600)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="give up after this (s)")
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the row to OUT")
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="study overrides")
    args = ap.parse_args(argv)
    if args.target_s <= 0 or args.timeout <= 0:
        ap.error("--target-s and --timeout must be > 0")

    from clipgap.errors import ClipgapError

    try:
        row = measure(args.overrides, args)
    except ClipgapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except subprocess.TimeoutExpired:
        print(f"error: the study ran past --timeout {args.timeout:.0f} s", file=sys.stderr)
        return 2
    if row["pretrained_now"]:
        print(f"pretrained {row['model']} first: {row['pretrain_s']:.1f} s (not counted)")
    print(
        f"study ({row['study']}, {row['runs']} runs): first {row['first_s']:.1f} s "
        f"({row['first_run_now']} run), ratio to {args.target_s:.0f} s target {row['ratio']:.3f}; "
        f"second {row['second_s']:.1f} s ({row['second_run_now']} run)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps([row], indent=2) + "\n")
    if row["second_run_now"] != 0 or row["first_run_now"] != row["runs"]:
        print("error: the first run must run every run and the second none", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
