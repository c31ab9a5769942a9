"""A search study end to end: each trial a run with its own hash, the selection in results.csv,
the report on selected runs only, shards, and a directory of another search refused."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from clipgap.cli import main
from clipgap.report.analysis import analyse
from clipgap.report.study import load_study
from clipgap.study import load_study_config, plan_runs
from clipgap.study.grid import shard_runs

SEARCH_STUDY = """\
# search study: clipgap study --config search.yaml
model: world-tiny
tasks:
  - {name: "world:shape"}
methods: [lora, linear_probe]
search:
  trials: 2
  seed: 0
  space:
    lora: {lr: [1.0e-4, 1.0e-1, log], rank: [2, 4]}
train: {epochs: 1, max_steps: 3, batch_size: 32}
eval: {max_test_images: 32}
"""
GROUP = ["task", "method", "seed"]


def write_config(tmp: Path, text: str = SEARCH_STUDY) -> str:
    path = tmp / "search.yaml"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("search-cache")


@pytest.fixture
def world_cache(cache, monkeypatch):
    monkeypatch.setenv("CLIPGAP_CACHE", str(cache))


@pytest.fixture(scope="module")
def search_study(tmp_path_factory, cache):
    mp = pytest.MonkeyPatch()
    mp.setenv("CLIPGAP_CACHE", str(cache))
    tmp = tmp_path_factory.mktemp("search")
    out = tmp / "out"
    rc = main(["study", "--config", write_config(tmp), "--out", str(out), "--no-progress"])
    mp.undo()
    return rc, out, tmp


def run_configs(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in out.glob("runs/*/config.json")}


def test_each_trial_is_a_run_with_its_own_hash(search_study):
    rc, out, _ = search_study
    assert rc == 0
    configs = run_configs(out)
    assert len(configs) == 1 * 2 * 2  # tasks x methods x trials
    hashes = {name.rsplit("__", 1)[1] for name in configs}
    assert len(hashes) == 4
    for name, config in configs.items():
        trial = config["trial"]
        assert f"__t{trial['index']}__" in name
        assert config["train"]["lr"] == trial["values"]["lr"]  # the drawn value is what ran
        if config["method"] == "lora":
            assert config["method_options"]["rank"] == trial["values"]["rank"]
    lora = [c["trial"]["values"] for c in configs.values() if c["method"] == "lora"]
    assert lora[0] != lora[1]


def test_results_csv_selects_the_best_validation_trial(search_study):
    _, out, _ = search_study
    frame = pd.read_csv(out / "report" / "results.csv")
    assert {"trial", "val_accuracy", "selected"} <= set(frame.columns)
    assert sorted(frame["trial"]) == [0, 0, 1, 1]
    for _, group in frame.groupby(GROUP):
        assert group["selected"].sum() == 1
        best = group["val_accuracy"].max()
        expected = group.loc[group["val_accuracy"] == best, "trial"].min()  # ties: lower trial
        assert group.loc[group["selected"], "trial"].item() == expected


def test_tables_and_claims_use_selected_runs_only(search_study):
    _, out, _ = search_study
    frame = pd.read_csv(out / "report" / "results.csv")
    analysis = analyse(load_study(out))
    assert len(analysis.frame) == 2 and len(analysis.results) == 4
    assert set(analysis.methods["n_runs"]) == {1}
    cells = analysis.cells.set_index(["unit", "arm"])
    for row in frame[frame["selected"]].to_dict("records"):
        assert cells.at[(row["task"], row["method"]), "delta_id"] == row["delta_id"]
    report = (out / "report" / "report.md").read_text()
    assert "## Search: selected settings" in report and "search_sensitivity.png" in report
    assert (out / "report" / "figures" / "search_sensitivity.png").stat().st_size > 0


def test_status_reads_the_search_back(search_study, capsys):
    _, out, _ = search_study
    capsys.readouterr()
    assert main(["study", "--status", str(out)]) == 0
    assert "4 runs: 4 done" in capsys.readouterr().out


def test_shards_cover_every_trial_once(search_study, world_cache, tmp_path):
    _, out, _ = search_study
    config = write_config(tmp_path)
    planned = plan_runs(load_study_config(config))
    halves = [shard_runs(planned, (i, 2)) for i in range(2)]
    assert sorted(r.dirname for h in halves for r in h) == sorted(r.dirname for r in planned)
    sharded = tmp_path / "sharded"
    for i in range(2):
        argv = ["study", "--config", config, "--out", str(sharded), "--shard", f"{i}/2"]
        assert main([*argv, "--no-progress"]) == 0
    assert sorted(run_configs(sharded)) == sorted(run_configs(out))


def test_another_search_is_refused_unless_added(search_study, world_cache, tmp_path, capsys):
    _, out, tmp = search_study
    target = tmp_path / "copy"
    import shutil

    shutil.copytree(out, target)
    argv = ["study", "--config", write_config(tmp), "--out", str(target), "--no-progress"]
    capsys.readouterr()
    assert main([*argv, "search.trials=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds runs of another search of this study" in err[0], err
    assert "--add" in err[0]
    assert main([*argv, "search.trials=3", "--add"]) == 0
    assert "4 already done, 2 run now" in capsys.readouterr().out  # trials 0 and 1 are shared
    frame = pd.read_csv(target / "report" / "results.csv")
    assert len(frame) == 6 and frame.groupby(GROUP)["selected"].sum().tolist() == [1, 1]
