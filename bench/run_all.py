"""Run every benchmark (``make bench``) and write ``bench/RESULTS.md``.

Each bench script runs in its own subprocess with ``--json ROWS``; its rows, the baseline it is
measured against, its target and whether the target is met go to RESULTS.md with the machine it
ran on. A bench that exits non-zero is reported as failed with its last error line, and this
script then exits 1; a bench script that does not exist (yet) is reported as missing.

    python bench/run_all.py [--only NAME ...] [--out bench/RESULTS.md] [--update]
                            [--rows NAME=ROWS.json ...]

``--update`` keeps the other benches' sections of an existing RESULTS.md (with ``--only``);
``--rows`` renders a bench from the rows its script already wrote with ``--json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clipgap.errors import ClipgapError
from clipgap.paths import atomic_write_text
from clipgap.registry import Registry

ROOT = Path(__file__).resolve().parent.parent

Verdict = tuple[bool | None, str]  # (target met; None = no target), how it was judged


@dataclass(frozen=True)
class Bench:
    """One bench script: its arguments, baseline, target and how rows are shown and judged.

    ``header`` names the table's columns (``" | "``-separated) and ``row`` formats one JSON row
    into its cells with :meth:`str.format_map`; empty: every key, floats to 4 significant digits.
    """

    script: str
    args: tuple[str, ...]
    baseline: str
    target: str
    verdict: Callable[[list[dict]], Verdict]
    header: str = ""
    row: str = ""


@dataclass
class BenchResult:
    """``status``: ``ok`` (exit 0), ``failed`` (non-zero exit or unreadable rows) or ``missing``."""

    name: str
    status: str
    rows: list[dict] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


def _silhouette(rows: list[dict]) -> Verdict:
    worst = min(r["speedup"] for r in rows)
    diff = max(r["max_abs_diff"] for r in rows)
    big = [r["speedup"] for r in rows if r["n"] >= 50000]
    met = worst >= 10 and diff <= 1e-6 and bool(big) and min(big) >= 300
    at_50k = f"{min(big):.0f}x at N=50000" if big else "N=50000 not measured"
    return met, f"slowest speed-up {worst:.0f}x, {at_50k}, max |diff| {diff:.1e}"


def _embeddings(rows: list[dict]) -> Verdict:
    ratio = max(r["ratio"] for r in rows)
    return ratio <= 1.20, f"ratio {ratio:.3f}"


def _zeroshot(rows: list[dict]) -> Verdict:
    ratio = sum(r["clipgap_s"] for r in rows) / sum(r["clip_benchmark_s"] for r in rows)
    equal = all(r["equal"] for r in rows)
    accs = "equal on every task" if equal else "DIFFERENT"
    return equal and ratio <= 1.20, f"accuracies {accs}; total time ratio {ratio:.3f}"


def _own_targets(rows: list[dict]) -> Verdict:
    judged = [r for r in rows if "met" in r]
    if not judged:
        return None, "the script states no target"
    met = all(bool(r["met"]) for r in judged)
    return met, f"{sum(bool(r['met']) for r in judged)} of {len(judged)} rows meet their target"


def _gpu(rows: list[dict]) -> Verdict:
    skipped = [r for r in rows if r.get("what") == "skipped"]
    if skipped:
        return None, f"skipped: {skipped[0].get('note', 'no CUDA device')}"
    return _own_targets(rows)


def _study_time(rows: list[dict]) -> Verdict:
    r = rows[0]
    met = r["ratio"] <= 1 and r["second_run_now"] == 0
    return met, (
        f"{r['first_s']:.0f} s = {r['ratio']:.2f} of the target; "
        f"second invocation ran {r['second_run_now']} runs in {r['second_s']:.1f} s"
    )


def _pixel_cache(rows: list[dict]) -> Verdict:
    r = rows[0]
    same = "bit-identical" if r["identical"] else "DIFFERENT inputs"
    return r["ratio"] >= 10 and r["identical"], f"{r['ratio']:.1f}x, {same}"


benches: Registry[Bench] = Registry("bench")
benches.register("silhouette")(
    Bench(
        "silhouette.py",
        ("--sizes", "10000", "50000"),
        "Baseline: `sklearn.metrics.silhouette_score(X, labels, metric='cosine')` (O(N^2 d)) on "
        "the same seeded embeddings (d=512, K=10, float32) in the same process (clipgap: best "
        "of 3 runs; sklearn: one run).",
        "exact (max |clipgap - sklearn| <= 1e-6) and at least 10x faster at each N measured, "
        "300x at N=50000",
        _silhouette,
        "N | clipgap s | sklearn s | speed-up | max abs diff",
        "{n} | {clipgap_s:.3f} | {sklearn_s:.2f} | {speedup:.0f}x | {max_abs_diff:.1e}",
    )
)
benches.register("measures")(
    Bench(
        "measures.py",
        (),
        "Each transferability measure (IIMM, LogME, H-score, TransRate, GBC) and probe "
        "(probe_accuracy: 5-fold ridge probe; knn_accuracy: 10-NN on 500 sampled queries) alone on seeded "
        "float32 embeddings, N=50000, d=512, C=100; best of 3 runs (no baseline: a time target).",
        "every measure under 1 s (best of 3)",
        _own_targets,
    )
)
benches.register("embeddings")(
    Bench(
        "embeddings.py",
        (),
        "Baseline: open_clip `encode_image` in a loop over images decoded and transformed "
        "beforehand (the model's own time); clipgap: `encode_images` from the JPEG files, cache off.",
        "clipgap / baseline wall time <= 1.20 (the data path costs at most 20% over the model)",
        _embeddings,
        "model | images | baseline s | clipgap s | ratio | max abs diff",
        "{model} | {n_images} | {baseline_s:.2f} | {clipgap_s:.2f} | {ratio:.3f} | "
        "{max_abs_diff:.1e}",
    )
)
benches.register("zeroshot")(
    Bench(
        "zeroshot.py",
        (),
        "Baseline: CLIP_benchmark 1.6.2 `zeroshot_classification.evaluate` (amp off) over a "
        "torchvision `ImageFolder` of the world tasks' test images, same checkpoint (`world`), "
        "transform and prompts; clipgap: a `folder:` task scored by `evaluate.accuracy`, cache off.",
        "identical top-1 on every task, and clipgap / CLIP_benchmark total time <= 1.20",
        _zeroshot,
        "task | images | clipgap acc | CLIP_benchmark acc | equal | clipgap s | CLIP_benchmark s "
        "| ratio",
        "{task} | {n_images} | {clipgap_acc:.4f} | {clip_benchmark_acc:.4f} | {equal} | "
        "{clipgap_s:.3f} | {clip_benchmark_s:.3f} | {ratio:.3f}",
    )
)
benches.register("finetune")(
    Bench(
        "finetune.py",
        (),
        "Per-method training throughput and peak memory, and training from cached embeddings vs "
        "through the encoder (baselines as named in the table).",
        "as stated by the script's rows (`target`, `met`)",
        _own_targets,
    )
)
benches.register("gpu")(
    Bench(
        "gpu.py",
        (),
        "On one CUDA device (skipped without one): ViT-B-32 (random init) images/s of "
        "`clipgap.training.finetune` per method vs a bare autocast forward + backward + step "
        "loop on the same batches (bf16, batch 256); `encode_images` vs a bare `encode_image` "
        "loop over preprocessed tensors.",
        "trainer overhead over the bare loop <= 15% for every method",
        _gpu,
    )
)
benches.register("memory")(
    Bench(
        "memory.py",
        (),
        "Peak resident memory (`ru_maxrss`, each case a fresh subprocess) of ViT-B-32 (open_clip, "
        "random init) `clipgap finetune --method full --shots 2` (batch 32, 1 epoch) on synthetic "
        "10- and 100-class folders, and of `clipgap study` (full, bitfit, lora, clip_adapter; "
        "alphas 0, 0.5, 1) on the 10-class folder; `steps`: seconds per full fine-tuning step at "
        "100 classes with the class-prompt pass checkpointed vs kept (`CLIPGAP_TEXT_CHUNK=0`).",
        "peak at 100 classes <= 1.2x the 10-class run's; the study's <= 1.3x one run's",
        _own_targets,
    )
)
benches.register("pixel_cache")(
    Bench(
        "pixel_cache.py",
        (),
        "Baseline: a one-worker DataLoader over `TaskImages` (each 640x480 JPEG decoded, resized "
        "and cropped by ViT-B-32's eval transform); clipgap: the same loader over "
        "`clipgap.pixels.task_images` reading the pixel cache built once (300 images, batch 32, "
        "best of 2 passes, files in the page cache).",
        "cache / decode images per second >= 10, bit-identical inputs",
        _pixel_cache,
        "images | decode img/s | cache img/s | ratio | identical | build s (not counted)",
        "{images} | {decode_images_per_s:.1f} | {cache_images_per_s:.1f} | {ratio:.1f}x | "
        "{identical} | {build_s:.1f}",
    )
)
benches.register("study_time")(
    Bench(
        "study_time.py",
        (),
        "Baseline: the 10-minute target for `make study` (`clipgap study`, default world study), "
        "run in a subprocess with a fresh cache holding only the pretrained world checkpoint; "
        "then the same command again, which must skip every run.",
        "first invocation <= 600 s (ratio <= 1) and the second runs nothing",
        _study_time,
        "runs | first s | ratio to 600 s | second s | second ran | pretrain s (not counted)",
        "{runs} | {first_s:.1f} | {ratio:.3f} | {second_s:.1f} | {second_run_now} | "
        "{pretrain_s:.1f}",
    )
)


def machine_info() -> dict:
    """CPU count, CPU model, OS, Python, torch version and threads, date, git commit, and the
    1/5/15-minute load average before the benches (other work on the machine skews timings)."""
    import torch

    model = next(
        (ln.split(":", 1)[1].strip() for ln in _read("/proc/cpuinfo") if "model name" in ln), ""
    )
    git = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model or platform.processor() or "unknown",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git.stdout.strip() or "unknown",
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "-",
    }


def _read(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def last_line(text: str) -> str:
    """The last non-empty line of ``text`` (progress-bar carriage returns split lines too)."""
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def run_bench(name: str, python: str = sys.executable) -> BenchResult:
    """Run one bench script in a subprocess and collect its JSON rows.

    Its stdout (the bench's own table) goes to ours as it runs; its stderr is kept for the
    error line.
    """
    bench = benches.get(name)
    script = ROOT / "bench" / bench.script
    if not script.is_file():
        return BenchResult(name, "missing", error=f"bench/{bench.script} does not exist")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix=f"clipgap-bench-{name}-") as tmp:
        out = Path(tmp) / "rows.json"
        start = time.perf_counter()
        cmd = [python, str(script), *bench.args, "--json", str(out)]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        try:
            rows = json.loads(out.read_text()) if out.is_file() else []
        except json.JSONDecodeError as exc:
            return BenchResult(name, "failed", error=f"{out}: bad JSON ({exc})", seconds=seconds)
    if proc.returncode != 0:
        error = f"exit {proc.returncode}: {last_line(proc.stderr)}"
        return BenchResult(name, "failed", rows, error, seconds)
    if not rows:
        return BenchResult(name, "failed", error="wrote no rows", seconds=seconds)
    return BenchResult(name, "ok", rows, seconds=seconds)


def md_table(header: list[str], body: list[list[str]]) -> str:
    """A markdown table; a ``|`` inside a cell is escaped."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, body)])


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def rows_table(bench: Bench, rows: list[dict]) -> str:
    """A markdown table of ``rows``; a row lacking a key of ``bench.row`` raises KeyError."""
    if not bench.row:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        return md_table(keys, [[_cell(r.get(k, "")) for k in keys] for r in rows])
    body = [bench.row.format_map(r).split(" | ") for r in rows]
    return md_table(bench.header.split(" | "), body)


def _rows_or_error(bench: Bench, rows: list[dict]) -> str:
    try:
        return rows_table(bench, rows)
    except (KeyError, ValueError) as exc:
        return f"(rows not shown: they lack or mistype {exc}; see the script's `--json`)"


def judge(result: BenchResult) -> Verdict:
    """Whether ``result`` meets its bench's target; (None, reason) when it cannot be judged."""
    if result.status != "ok":
        return None, result.status
    try:
        return benches.get(result.name).verdict(result.rows)
    except (KeyError, TypeError, ZeroDivisionError, IndexError) as exc:
        return None, f"rows lack what the verdict needs ({type(exc).__name__}: {exc})"


def _met_word(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "-"}[met]


def render_results(results: list[BenchResult], machine: dict) -> str:
    """The text of RESULTS.md for ``results`` measured on ``machine`` (see :func:`machine_info`)."""
    m = machine
    out = [
        "# Benchmark results",
        "",
        f"Written by `python bench/run_all.py` (`make bench`) on {m['date']}. Each ratio was "
        "measured in one run against the baseline named in its section.",
        "",
        f"Machine: {m['cpus']} CPUs ({m['usable_cpus']} usable), {m['cpu_model']}; "
        f"{m['platform']}; Python {m['python']}; torch {m['torch']} ({m['torch_threads']} "
        f"threads); commit {m['commit']}; load average before the run {m['load']}.",
        "",
        "## Summary",
        "",
    ]
    verdicts = [judge(r) for r in results]
    summary = [
        [r.name, r.status, benches.get(r.name).target, _met_word(v[0]), f"{r.seconds:.0f}"]
        for r, v in zip(results, verdicts, strict=True)
    ]
    out += [md_table(["bench", "status", "target", "met", "wall s"], summary), ""]
    for r, (met, how) in zip(results, verdicts, strict=True):
        bench = benches.get(r.name)
        command = " ".join(["python", f"bench/{bench.script}", *bench.args])
        out += [f"## {r.name}", "", f"`{command}`", "", bench.baseline, ""]
        if r.rows:
            out += [_rows_or_error(bench, r.rows), ""]
        if r.status == "ok":
            out += [f"Target: {bench.target}. **{_met_word(met)}** ({how}).", ""]
        else:
            out += [f"**{r.status}**: {r.error}", ""]
    return "\n".join(out)


def merge_results(old: str, new: str, machine: dict) -> str:
    """``old`` RESULTS.md with the summary rows and sections of the benches in ``new``
    replaced (or added), each saying when it was measured; the other benches' rows and
    sections, and ``old``'s header, stay."""

    def parts(text: str) -> tuple[str, list[str], dict[str, str]]:
        head, _, rest = text.partition("## Summary\n")
        blocks = rest.split("\n## ")
        rows = [ln for ln in blocks[0].splitlines() if ln.startswith("| ") and "---" not in ln]
        return head, rows, {b.split("\n", 1)[0]: "## " + b.strip() for b in blocks[1:]}

    head, rows, sections = parts(old)
    _, new_rows, new_sections = parts(new)
    names = {r.split(" | ")[0][2:] for r in new_rows[1:]}
    kept = [r for r in rows[1:] if r.split(" | ")[0][2:] not in names]
    table = sorted(kept + new_rows[1:])
    when = f"Measured on {machine['date']} (load average before {machine['load']}, commit "
    when += f"{machine['commit']}), apart from the other sections."
    for name, text in new_sections.items():
        title, _, rest = text.partition("\n\n")
        sections[name] = f"{title}\n\n{when}\n\n{rest}"
    summary = [rows[0] if rows else new_rows[0], "|---|---|---|---|---|", *table]
    body = [sections[n] for n in sorted(sections)]
    return "\n\n".join([head.rstrip() + "\n\n## Summary", "\n".join(summary), *body]) + "\n\n"


def _given_rows(spec: str) -> BenchResult:
    """``NAME=ROWS.json``: a bench's rows as its script wrote them with ``--json``."""
    name, _, path = spec.partition("=")
    benches.get(name)
    rows = json.loads(Path(path).read_text())
    return BenchResult(name, "ok", rows, seconds=sum(r.get("wall_s", 0.0) for r in rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="NAME", help=f"subset of {benches.names()}")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"), help="markdown to write")
    ap.add_argument(
        "--update", action="store_true", help="keep the other benches' sections of --out"
    )
    ap.add_argument(
        "--rows",
        nargs="+",
        default=[],
        metavar="NAME=FILE",
        help="a bench's rows measured already (its --json output) instead of running it",
    )
    args = ap.parse_args(argv)
    names = args.only or ([] if args.rows else benches.names())
    try:
        for name in names:
            benches.get(name)
        given = [_given_rows(spec) for spec in args.rows]
    except (ClipgapError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    machine = machine_info()  # before the benches: its load average is the machine's own
    results = list(given)
    for name in names:
        print(f"== {name}", flush=True)
        results.append(run_bench(name))
        r = results[-1]
        print(f"== {name}: {r.status} in {r.seconds:.1f} s" + (f" ({r.error})" if r.error else ""))
    text = render_results(results, machine) + "\n"
    if args.update and Path(args.out).is_file():
        text = merge_results(Path(args.out).read_text(), text, machine)
    atomic_write_text(Path(args.out), text)
    print(f"wrote {args.out}")
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
