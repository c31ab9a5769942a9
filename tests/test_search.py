"""The search axis's pieces: a typed SearchConfig, its checks, reproducible trials, selection."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from clipgap.errors import ConfigError
from clipgap.report.selection import select_trials, selected, trial_index
from clipgap.study.search import (
    Choice,
    Range,
    SearchConfig,
    draw_trials,
    method_seed,
    method_space,
    plan_trials,
    search_from_dict,
)

METHODS = ["full", "lora"]
SPACE = {"lr": Range(1e-4, 1e-1, "log"), "rank": Choice((2, 4, 8))}


def test_search_config_parses_ranges_and_choices():
    cfg = search_from_dict(
        {"trials": 3, "seed": 1, "space": {"lora": {"lr": [1e-4, 1e-1, "log"], "rank": [2, 4]}}},
        METHODS,
    )
    assert cfg == SearchConfig(
        3, 1, {"lora": {"lr": Range(1e-4, 0.1, "log"), "rank": Choice((2, 4))}}
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"trials": 0}, "search.trials is 0; expected an integer >= 1"),
        ({"trials": -2}, "search.trials is -2; expected an integer >= 1"),
        ({"trials": 2.5}, "search.trials is 2.5; expected an integer >= 1"),
        ({"trials": "3"}, "search.trials is '3'; expected an integer >= 1"),
        ({"trials": True}, "search.trials is True"),
        ({"trials": 2, "seed": -1}, "search.seed is -1"),
        ({"trials": 2, "budget": 1}, "search.budget is not a search key"),
        ({"trials": 2, "space": {"bitfit": {"lr": [1e-3, 1e-1, "log"]}}}, "search.space.bitfit:"
         " not a method of this study"),
        ({"trials": 2, "space": {"full": {"rank": [2, 4]}}}, "search.space.full.rank: method "
         "'full' has no setting 'rank'"),
        ({"trials": 2, "space": {"lora": {"rnak": [2, 4]}}}, "method 'lora' has no setting "
         "'rnak'; expected a train key"),
        ({"trials": 2, "space": {"lora": {"val_fraction": [0.1, 0.2]}}}, "search.space.lora."
         "val_fraction: train.val_fraction is the same for every trial"),
        ({"trials": 2, "space": {"lora": {"lr": [1e-2, 1e-2, "log"]}}}, "search.space.lora.lr: "
         "range [0.01, 0.01] is empty; expected lo < hi"),
        ({"trials": 2, "space": {"lora": {"lr": [1e-1, 1e-3, "log"]}}}, "search.space.lora.lr: "
         "range [0.1, 0.001] is inverted"),
        ({"trials": 2, "space": {"lora": {"lr": [1e-3, 1e-1, "ln"]}}}, "search.space.lora.lr: "
         "unknown scale 'ln'; expected one of log, linear"),
        ({"trials": 2, "space": {"lora": {"lr": [0, 1e-1, "log"]}}}, "a log range needs lo > 0"),
        ({"trials": 2, "space": {"lora": {"lr": []}}}, "search.space.lora.lr is []; expected a "
         "range"),
        ({"trials": 2, "space": {"lora": {"rank": [0, 4]}}}, "search.space.lora.rank: 0 is not "
         "allowed"),
        ({"trials": 2, "space": {"lora": {"optimizer": ["sgd", "adam"]}}}, "search.space.lora."
         "optimizer: 'adam' is not allowed"),
    ],
)  # fmt: skip
def test_bad_search_is_one_line_naming_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        search_from_dict(data, METHODS)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_trials_are_reproducible_and_extend():
    three = draw_trials("lora", SPACE, trials=3, seed=0)
    assert three == draw_trials("lora", SPACE, trials=3, seed=0)
    assert draw_trials("lora", SPACE, trials=5, seed=0)[:3] == three
    assert [t.index for t in three] == [0, 1, 2]
    assert draw_trials("lora", SPACE, trials=3, seed=1) != three
    for trial in three:
        assert set(trial.train) == {"lr"} and set(trial.method_options) == {"rank"}
        assert 1e-4 <= trial.values["lr"] <= 1e-1 and trial.values["rank"] in (2, 4, 8)
        assert trial.values["lr"] == float(f"{trial.values['lr']:.4g}")


def test_each_method_has_its_own_stream_stable_across_processes():
    assert method_seed(0, "lora") != method_seed(0, "full")
    code = "from clipgap.study.search import method_seed; print(method_seed(7, 'lora'))"
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONHASHSEED": str(s), "PYTHONPATH": ":".join(sys.path)},
                       check=True).stdout
        for s in (1, 2)
    }  # fmt: skip
    assert runs == {f"{method_seed(7, 'lora')}\n"}


def test_log_range_is_log_uniform():
    trials = draw_trials("full", {"lr": Range(1e-6, 1e-2, "log")}, trials=4000, seed=3)
    logs = np.log10([t.values["lr"] for t in trials])
    # log-uniform over four decades: each decade holds a quarter, mean log10 at -4
    counts = np.histogram(logs, bins=[-6, -5, -4, -3, -2])[0] / len(logs)
    assert np.allclose(counts, 0.25, atol=0.03) and abs(logs.mean() + 4) < 0.05


def test_integer_settings_draw_integers_within_the_range():
    trials = draw_trials("lora", {"rank": Range(2, 16, "log")}, trials=200, seed=0)
    ranks = {t.values["rank"] for t in trials}
    assert all(isinstance(r, int) and 2 <= r <= 16 for r in ranks) and len(ranks) > 5


def test_plan_gives_every_method_the_same_count_and_uses_defaults():
    cfg = search_from_dict({"trials": 4, "space": {"lora": {"rank": [2, 4, 8]}}}, METHODS)
    plan = plan_trials(cfg, METHODS, {"full": {"lr": [1e-6, 1e-4, "log"]}})
    assert {m: len(t) for m, t in plan.items()} == {"full": 4, "lora": 4}
    assert all(1e-6 <= t.values["lr"] <= 1e-4 for t in plan["full"])
    assert all(set(t.values) == {"rank"} for t in plan["lora"])
    with pytest.raises(ConfigError, match="search.space.bitfit: the preset has no search space"):
        method_space(cfg, "bitfit", None)


class Rec:
    def __init__(self, task, method, seed, trial, val):
        self.task, self.method, self.seed, self.val_accuracy = task, method, seed, val
        self.config = {"trial": {"index": trial}}


def test_selection_picks_best_validation_ties_to_lower_trial():
    records = [
        Rec("a", "lora", 0, 2, 0.80),
        Rec("a", "lora", 0, 0, 0.80),  # tie with trial 2: the lower index wins
        Rec("a", "lora", 0, 1, 0.70),
        Rec("a", "lora", 1, 0, None),  # failed: never selected
        Rec("a", "lora", 1, 1, 0.60),
        Rec("b", "lora", 0, 0, math.nan),  # no validation at all: nothing selected
        Rec("a", "full", 0, 0, 0.50),
        Rec("a", "full", 0, 1, 0.90),
    ]
    flags = select_trials(records)
    assert flags == [False, True, False, False, True, False, False, True]
    assert [trial_index(r) for r in selected(records)] == [0, 1, 1]
    assert records[0].val_accuracy == 0.80  # pure: records untouched


def test_selection_of_dicts_and_runs_outside_a_search():
    rows = [
        {"task": "t", "method": "m", "seed": 0, "val_accuracy": 0.4, "config": {}},
        {"task": "t", "method": "m", "seed": 0, "val_accuracy": 0.5, "config": {}},
    ]
    assert select_trials(rows, trial=lambda r: 0) == [False, True]
    assert trial_index(Rec("t", "m", 0, 3, 0.1)) == 3


def test_plan_expands_trials_innermost_with_typed_trials():
    from clipgap.study.config import study_from_dict
    from clipgap.study.plan import plan_runs
    from clipgap.study.search import Trial

    data = {
        "model": "world-tiny", "tasks": [{"name": "world:shape"}, {"name": "world:light"}],
        "methods": ["full", "lora"], "seeds": [0, 1],
        "search": {"trials": 3, "space": {"lora": {"lr": [1e-4, 1e-1, "log"], "rank": [2, 8]}}},
    }  # fmt: skip
    cfg = study_from_dict(data)
    runs = plan_runs(cfg)
    assert len(runs) == 2 * 2 * 2 * 3
    assert [r.trial.index for r in runs[:6]] == [0, 1, 2, 0, 1, 2]  # trials vary fastest
    assert [(r.task, r.method, r.seed) for r in runs[:3]] == [("world:shape", "full", 0)] * 3
    assert all(isinstance(r.trial, Trial) for r in runs)
    assert len({r.run_id for r in runs}) == len(runs)
    lora = [r for r in runs if r.method == "lora"]
    for run in lora:
        assert run.train.lr == run.trial.values["lr"]
        assert run.resolved.options.rank == run.trial.values["rank"]
        assert run.config()["trial"] == {"index": run.trial.index, "values": run.trial.values}
        assert run.dirname.endswith(f"__t{run.trial.index}__{run.run_id}")
    # the same trial on another task or seed has the same values, drawn once per method
    assert {r.trial.values["lr"] for r in lora if r.trial.index == 1} == {
        lora[1].trial.values["lr"]
    }
    # the identity reads back into the same study (what `--status` does)
    again = study_from_dict(cfg.identity())
    assert again.search == cfg.search and [r.run_id for r in plan_runs(again)] == [
        r.run_id for r in runs
    ]
    without = study_from_dict({k: v for k, v in data.items() if k != "search"})
    assert all(r.trial is None and "trial" not in r.config() for r in plan_runs(without))
    assert "search" not in without.identity()
