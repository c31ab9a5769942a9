"""Bench scripts: each parses ``--help``; run_all's RESULTS.md writer formats fixed rows.

No benchmark is run here (they take minutes and measure the machine); only the command lines and
the report text are checked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import runpy
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py"))

MACHINE = {
    "cpus": 2,
    "usable_cpus": 2,
    "cpu_model": "Test CPU",
    "platform": "Linux-test",
    "python": "3.11.0",
    "torch": "2.14.1",
    "torch_threads": 2,
    "date": "2030-01-02 03:04 UTC",
    "commit": "abc1234",
    "load": "0.10 0.20 0.30",
}


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("bench_run_all", BENCH / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_every_bench_is_a_script_here():
    assert {"run_all.py", "zeroshot.py", "study_time.py", "silhouette.py", "measures.py"} <= set(
        SCRIPTS
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_parses_help(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(BENCH / script), "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(BENCH / script), run_name="__main__")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:")
    if script != "run_all.py":  # every bench writes its rows with --json for run_all
        assert "--json" in out


def test_gpu_bench_skips_without_cuda(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    out = tmp_path / "rows.json"
    monkeypatch.setattr(sys, "argv", [str(BENCH / "gpu.py"), "--json", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(BENCH / "gpu.py"), run_name="__main__")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == "bench/gpu.py: no CUDA device here; skipped\n"
    rows = json.loads(out.read_text())
    assert rows == [{"what": "skipped", "note": "no CUDA device"}]


def test_gpu_bench_runs_its_code_on_cpu(monkeypatch, tmp_path, capsys):
    """The same code path as on a GPU, on the tiny model (a check of the script only)."""
    out = tmp_path / "rows.json"
    argv = ["--device", "cpu", "--model", "clipgap-tiny", "--batch-size", "4", "--steps", "1"]
    argv += ["--image-size", "32", "--methods", "lora", "linear_probe", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", [str(BENCH / "gpu.py"), *argv])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(BENCH / "gpu.py"), run_name="__main__")
    assert exit_info.value.code == 0
    rows = json.loads(out.read_text())
    assert [r["what"] for r in rows][:2] == ["lora", "linear_probe"]
    assert rows[2]["what"].startswith("embedding")
    for r in rows:
        ratio = r["bare_img_s"] / r["clipgap_img_s"] - 1
        assert r["overhead_pct"] == pytest.approx(100 * ratio, abs=0.2)
    assert rows[0]["met"] == (rows[0]["overhead_pct"] <= 15) and "cached_img_s" in rows[1]
    stdout = capsys.readouterr().out
    assert "| what | trainable_params | clipgap_img_s | bare_img_s | overhead_pct |" in stdout


def test_run_all_help_names_only(run_all, capsys):
    with pytest.raises(SystemExit):
        run_all.main(["--help"])
    out = capsys.readouterr().out
    assert "--only" in out and "zeroshot" in out and "study_time" in out


def test_run_all_rejects_unknown_bench(run_all, capsys):
    assert run_all.main(["--only", "zeroshoot"]) == 2
    err = capsys.readouterr().err
    assert "unknown bench 'zeroshoot'" in err and "did you mean 'zeroshot'" in err


def _results(run_all):
    R = run_all.BenchResult
    silhouette = [
        {"n": 10000, "clipgap_s": 0.1234, "sklearn_s": 9.876, "speedup": 80.03,
         "max_abs_diff": 2.5e-9},
        {"n": 50000, "clipgap_s": 0.61, "sklearn_s": 250.0, "speedup": 409.8,
         "max_abs_diff": 4e-9},
    ]  # fmt: skip
    zeroshot = [
        {"task": "world:shape", "n_images": 500, "clipgap_acc": 0.812, "clip_benchmark_acc": 0.812,
         "equal": True, "clipgap_s": 1.0, "clip_benchmark_s": 2.0, "ratio": 0.5},
        {"task": "world:count", "n_images": 500, "clipgap_acc": 0.5, "clip_benchmark_acc": 0.498,
         "equal": False, "clipgap_s": 1.0, "clip_benchmark_s": 1.0, "ratio": 1.0},
    ]  # fmt: skip
    study = [
        {"runs": 36, "first_s": 480.4, "ratio": 0.8007, "second_s": 9.25, "second_run_now": 0,
         "pretrain_s": 0.0},
    ]  # fmt: skip
    return [
        R("silhouette", "ok", silhouette, seconds=260.4),
        R("zeroshot", "ok", zeroshot, seconds=30.0),
        R("finetune", "missing", error="bench/finetune.py does not exist"),
        R("study_time", "ok", study, seconds=500.0),
        R("embeddings", "failed", error="exit 2: error: cannot read image /x.jpg", seconds=3.0),
    ]


def test_results_markdown(run_all):
    text = run_all.render_results(_results(run_all), MACHINE)
    assert text.startswith("# Benchmark results\n")
    assert "on 2030-01-02 03:04 UTC" in text
    assert "commit abc1234; load average before the run 0.10 0.20 0.30." in text
    assert "Machine: 2 CPUs (2 usable), Test CPU; Linux-test; Python 3.11.0; torch 2.14.1" in text
    lines = text.splitlines()
    # summary: one row per bench, with status and verdict
    assert any(
        ln.startswith("| silhouette | ok |") and ln.endswith("| met | 260 |") for ln in lines
    )
    assert any(ln.startswith("| zeroshot | ok |") and "| NOT met |" in ln for ln in lines)
    assert (
        "| finetune | missing | as stated by the script's rows (`target`, `met`) | - | 0 |" in text
    )
    assert any(ln.startswith("| study_time | ok |") and "| met |" in ln for ln in lines)
    assert any(ln.startswith("| embeddings | failed |") and "| - |" in ln for ln in lines)
    # per-bench tables, formatted by each bench's row template
    assert "| exact (max \\|clipgap - sklearn\\| <= 1e-6) and" in text  # | escaped in cells
    assert "| N | clipgap s | sklearn s | speed-up | max abs diff |\n|---|---|---|---|---|" in text
    assert "| 10000 | 0.123 | 9.88 | 80x | 2.5e-09 |" in text
    assert "| 50000 | 0.610 | 250.00 | 410x | 4.0e-09 |" in text
    assert "| world:count | 500 | 0.5000 | 0.4980 | False | 1.000 | 1.000 | 1.000 |" in text
    assert "| 36 | 480.4 | 0.801 | 9.2 | 0 | 0.0 |" in text
    # verdict lines name how they were judged
    assert "**met** (slowest speed-up 80x, 410x at N=50000, max |diff| 4.0e-09)" in text
    assert "**NOT met** (accuracies DIFFERENT; total time ratio 0.667)" in text
    assert "**met** (480 s = 0.80 of the target; second invocation ran 0 runs in 9.2 s)" in text
    assert "**missing**: bench/finetune.py does not exist" in text
    assert "**failed**: exit 2: error: cannot read image /x.jpg" in text
    assert "`python bench/silhouette.py --sizes 10000 50000`" in text
    assert text.count("\n## ") == 6  # summary + five benches


def test_verdicts_judge_the_numbers(run_all):
    R = run_all.BenchResult
    slow = [{"n": 10000, "speedup": 9.5, "max_abs_diff": 1e-9}]
    assert run_all.judge(R("silhouette", "ok", slow))[0] is False
    inexact = [{"n": 10000, "speedup": 50.0, "max_abs_diff": 2e-6}]
    assert run_all.judge(R("silhouette", "ok", inexact))[0] is False
    below_300 = [{"n": 50000, "speedup": 250.0, "max_abs_diff": 1e-9}]
    assert run_all.judge(R("silhouette", "ok", below_300))[0] is False
    assert run_all.judge(R("silhouette", "ok", [{**below_300[0], "speedup": 301.0}]))[0] is True
    assert run_all.judge(R("embeddings", "ok", [{"ratio": 1.19}]))[0] is True
    assert run_all.judge(R("embeddings", "ok", [{"ratio": 1.21}]))[0] is False
    study = {"first_s": 700.0, "ratio": 700 / 600, "second_s": 5.0, "second_run_now": 0}
    assert run_all.judge(R("study_time", "ok", [study]))[0] is False
    rerun = {**study, "first_s": 300.0, "ratio": 0.5, "second_run_now": 3}
    assert run_all.judge(R("study_time", "ok", [rerun]))[0] is False
    # the finetune script's own targets, or none stated
    own = [{"method": "lora", "met": True}, {"method": "full", "met": False}]
    assert run_all.judge(R("finetune", "ok", own)) == (False, "1 of 2 rows meet their target")
    assert run_all.judge(R("finetune", "ok", [{"method": "lora"}]))[0] is None
    gpu = [{"what": "full", "met": True}, {"what": "lora", "met": True}, {"what": "embedding"}]
    assert run_all.judge(R("gpu", "ok", gpu)) == (True, "2 of 2 rows meet their target")
    skipped = [{"what": "skipped", "note": "no CUDA device"}]
    assert run_all.judge(R("gpu", "ok", skipped)) == (None, "skipped: no CUDA device")
    # rows that lack a key the verdict reads are not judged rather than crashing the report
    met, how = run_all.judge(R("embeddings", "ok", [{"speed": 1.0}]))
    assert met is None and "ratio" in how


def test_generic_table_and_bad_rows(run_all):
    R = run_all.BenchResult
    rows = [{"method": "lora", "img_per_s": 1234.5678, "peak_mb": 12}, {"method": "full"}]
    text = run_all.render_results([R("finetune", "ok", rows)], MACHINE)
    assert "| method | img_per_s | peak_mb |" in text
    assert "| lora | 1235 | 12 |" in text and "| full |  |  |" in text
    text = run_all.render_results([R("zeroshot", "ok", [{"task": "world:shape"}])], MACHINE)
    assert "(rows not shown: they lack or mistype 'n_images'" in text


def test_last_line_skips_progress_bars(run_all):
    err = "100%|####| 6/6 [00:01]\r\nTraceback ...\nValueError: bad\n\n"
    assert run_all.last_line(err) == "ValueError: bad"
    assert run_all.last_line("") == "no output"


def test_memory_bench_runs_a_case_on_the_tiny_model(tmp_path, capsys):
    """A case of the memory bench in its own subprocess (the tiny CLIP instead of ViT-B-32)."""
    out = tmp_path / "rows.json"
    argv = ["--model", "clipgap-tiny", "--threads", "1", "--cases", "api-10"]
    assert _bench_main("memory.py")([*argv, "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert row["case"] == "api-10" and row["classes"] == 10 and row["steps"] == 2
    assert row["peak_mb"] > 100  # a whole python + torch process


def test_memory_bench_times_steps_with_and_without_checkpointing(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPGAP_BENCH_MODEL", "clipgap-tiny")
    row = _bench_module("memory.py").case_steps(tmp_path, "1", steps=1)
    assert row["step_s"] > 0 and row["step_s_without"] > 0
    assert row["cost"] == pytest.approx(row["step_s"] / row["step_s_without"] - 1)
    assert "CLIPGAP_TEXT_CHUNK" not in os.environ


def test_memory_bench_ratios_judge_the_goals():
    summarise = _bench_module("memory.py").summarise
    rows = [
        {"case": "run-10", "peak_mb": 1000.0},
        {"case": "run-100", "peak_mb": 1250.0},
        {"case": "study-10", "peak_mb": 1200.0},
    ]
    ratios = {r["case"]: r for r in summarise(rows)}
    assert ratios["run-100 / run-10"]["ratio"] == 1.25
    assert ratios["run-100 / run-10"]["met"] is False
    assert ratios["study-10 / run-10"]["met"] is True and len(ratios) == 2


def test_pixel_cache_bench_prints_its_ratio_last(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert (
        _bench_main("pixel_cache.py")(["--images", "72", "--repeats", "1", "--json", str(out)]) == 0
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    (row,) = json.loads(out.read_text())
    assert row["identical"] is True and row["images"] == 68  # 4 of 72 are the test split
    assert last == f"pixel cache: {row['ratio']:.1f}x"
    assert row["ratio"] == row["cache_images_per_s"] / row["decode_images_per_s"]


def _bench_module(script: str):
    spec = importlib.util.spec_from_file_location(f"bench_{script[:-3]}", BENCH / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench_main(script: str):
    return _bench_module(script).main


def test_update_replaces_only_the_benches_measured_now(run_all):
    old = run_all.render_results(_results(run_all), MACHINE) + "\n"
    R = run_all.BenchResult
    rows = [{"images": 300, "decode_images_per_s": 40.0, "cache_images_per_s": 800.0,
             "ratio": 20.0, "identical": True, "build_s": 9.0}]  # fmt: skip
    new = run_all.render_results(
        [R("pixel_cache", "ok", rows, seconds=60.0), R("zeroshot", "missing", error="gone")],
        MACHINE,
    )
    merged = run_all.merge_results(old, new, MACHINE)
    assert merged.startswith(old.split("## Summary")[0])
    summary = merged.split("## Summary")[1].split("\n## ")[0]
    names = [ln.split(" | ")[0][2:] for ln in summary.splitlines() if ln.startswith("| ")][1:]
    assert names == [
        "embeddings",
        "finetune",
        "pixel_cache",
        "silhouette",
        "study_time",
        "zeroshot",
    ]
    assert "| zeroshot | missing |" in summary and "| zeroshot | ok |" not in summary
    assert "| 300 | 40.0 | 800.0 | 20.0x | True | 9.0 |" in merged
    assert "**met** (20.0x, bit-identical)" in merged
    for kept in ("## silhouette", "| 10000 | 0.123 | 9.88 | 80x | 2.5e-09 |"):
        assert merged.count(kept) == old.count(kept) == 1
    assert merged.count("## zeroshot") == 1 and "**missing**: gone" in merged
