"""Study configuration: typed YAML, helpful errors, dotted overrides, run hashing."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipgap.errors import ConfigError
from clipgap.study import load_study_config, plan_runs
from clipgap.study.spec import DifficultySpec
from clipgap.training.config import Holdout

BASE = """\
model: clipgap-tiny
tasks:
  - name: folder:/a
    dg: [folder:/b]
  - name: folder:/c
methods: [lora, bitfit]
seeds: [0, 1]
"""


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "study.yaml"
    p.write_text(text)
    return str(p)


def test_valid_config_plans_every_run(tmp_path):
    cfg = load_study_config(write(tmp_path, BASE))
    runs = plan_runs(cfg)
    assert len(runs) == 2 * 2 * 2
    first = runs[0]
    assert (first.task, first.method, first.seed) == ("folder:/a", "lora", 0)
    assert first.dg == ("folder:/b",) and first.controls == ("folder:/c",)
    assert len({r.run_id for r in runs}) == len(runs)


def test_run_id_depends_on_config_not_out(tmp_path):
    a = plan_runs(load_study_config(write(tmp_path, BASE), out=str(tmp_path / "x")))
    b = plan_runs(load_study_config(write(tmp_path, BASE), out=str(tmp_path / "y")))
    c = plan_runs(load_study_config(write(tmp_path, BASE), ["train.epochs=7"]))
    assert [r.run_id for r in a] == [r.run_id for r in b]
    assert a[0].run_id != c[0].run_id


@pytest.mark.parametrize(
    "text,message",
    [
        (BASE + "seedz: [1]\n", "unknown key 'seedz' (did you mean 'seeds'?)"),
        (BASE.replace("seeds: [0, 1]", "seeds: zero"), "seeds: expected list[int], got str 'zero'"),
        (BASE.replace("model: clipgap-tiny", "model: 3"), "model: expected str, got int 3"),
        (BASE + "eval: {batch_size: 0}\n", "eval.batch_size must be >= 1"),
        (BASE + "eval: {bach_size: 4}\n", "unknown key 'eval.bach_size'"),
        (
            BASE.replace("  - name: folder:/c", "  - name: folder:/c\n    controls: [folder:/c]"),
            "lists itself as a control task",
        ),
        ("model: x\ntasks: []\n", "at least one task"),
        ("- a\n- b\n", "must hold a mapping"),
        ("model: [unclosed\n", "not valid YAML at line"),
    ],
)
def test_bad_yaml_is_named(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        load_study_config(write(tmp_path, text))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_override_errors(tmp_path):
    with pytest.raises(ConfigError, match="not of the form"):
        load_study_config(write(tmp_path, BASE), ["epochs"])
    with pytest.raises(ConfigError, match="methods: expected list"):
        load_study_config(write(tmp_path, BASE), ["methods=5"])
    cfg = load_study_config(write(tmp_path, BASE), ["seeds=[3]", "eval.batch_size=8"])
    assert cfg.seeds == [3] and cfg.eval.batch_size == 8


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_study_config(str(tmp_path / "nope.yaml"))


def test_every_yaml_in_repo_loads():
    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "configs").glob("*.yaml"))
    assert files, "the repository ships study configs"
    for f in files:
        first = f.read_text().splitlines()[0]
        assert first.startswith("#"), f"{f.name} must open with a comment saying how to run it"
        cfg = load_study_config(str(f))
        assert plan_runs(cfg)


def test_run_id_is_of_the_resolved_config(tmp_path):
    """An override equal to the preset's value is the same run; resolved values are stored."""
    from clipgap.training import preset

    same = preset("tuned", "lora", model="clipgap-tiny")["epochs"]
    a = plan_runs(load_study_config(write(tmp_path, BASE)))
    b = plan_runs(load_study_config(write(tmp_path, BASE), [f"train.epochs={same}"]))
    assert a[0].run_id == b[0].run_id
    assert a[0].train.epochs == same and a[0].resolved.options.rank == 4
    assert a[0].config()["train"]["epochs"] == same and a[0].config()["method_options"]["rank"] == 4


# ---- the shots axis and where difficulty is measured ---------------------------------------


def test_shots_axis_crosses_tasks_methods_and_seeds(tmp_path):
    cfg = load_study_config(write(tmp_path, BASE + "shots: [4, all]\n"))
    assert cfg.shots == [4, None]
    runs = plan_runs(cfg)
    assert len(runs) == 2 * 2 * 2 * 2 and len({r.run_id for r in runs}) == len(runs)
    assert [r.shots for r in runs[:4]] == [4, 4, None, None]  # tasks x methods x shots x seeds
    for r in runs:
        assert r.train.shots == r.shots == r.config()["shots"]
        assert f"__k{'all' if r.shots is None else r.shots}__s{r.seed}__" in r.dirname
    # the default axis is [all], and `all` is the same run whether written or not
    default = plan_runs(load_study_config(write(tmp_path, BASE)))
    explicit = plan_runs(load_study_config(write(tmp_path, BASE), ["shots=[all]"]))
    assert [r.run_id for r in default] == [r.run_id for r in explicit]
    assert all(r.shots is None for r in default)


@pytest.mark.parametrize(
    "value,message",
    [
        ("[0]", "shots[0]: 0 is not allowed; expected a positive number"),
        ("[4, -2]", "shots[1]: -2 is not allowed"),
        ("[few]", "shots[0]: 'few' is not allowed"),
        ("[1.5]", "shots[0]: expected int or str or null, got float 1.5"),
        ("[4, 4]", "shots: a value is listed more than once"),
        ("[]", "shots: a study needs at least one value"),
    ],
)
def test_bad_shots_are_one_line(tmp_path, value, message):
    with pytest.raises(ConfigError) as err:
        load_study_config(write(tmp_path, BASE), [f"shots={value}"])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_shots_belong_to_the_axis_not_to_train(tmp_path):
    with pytest.raises(ConfigError, match="train.shots: set training images per class with"):
        load_study_config(write(tmp_path, BASE), ["train.shots=4"])


def test_difficulty_split_defaults_to_train_and_is_part_of_the_run(tmp_path):
    train = plan_runs(load_study_config(write(tmp_path, BASE), ["train.val_fraction=0.2"]))
    assert train[0].difficulty == DifficultySpec("train", Holdout(0.2, 5000, 0))
    assert train[0].config()["difficulty"] == {
        "split": "train",
        "val_fraction": 0.2,
        "val_max": 5000,
        "val_seed": 0,
    }
    test = plan_runs(load_study_config(write(tmp_path, BASE + "difficulty: {split: test}\n")))
    assert test[0].difficulty == DifficultySpec("test")
    assert test[0].config()["difficulty"] == {"split": "test"}
    base = plan_runs(load_study_config(write(tmp_path, BASE)))
    assert base[0].run_id != test[0].run_id  # a change of split is another run


def test_unknown_difficulty_split_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_study_config(write(tmp_path, BASE + "difficulty: {split: val}\n"))
    assert str(err.value) == "study.yaml: difficulty.split must be one of train, test, got 'val'"


def test_dry_run_lists_the_shots_axis(capsys):
    from clipgap.cli import main

    root = Path(__file__).resolve().parents[1]
    argv = ["study", "--config", str(root / "configs" / "world.yaml"), "shots=[4,16,all]"]
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "x 3 shots (4, 16, all) x" in out and "difficulty on the train split" in out
    header = out.splitlines()[1].split()
    assert header[:5] == ["run", "task", "method", "shots", "seed"]
    rows = [line.split() for line in out.splitlines()[3:] if "__k" in line]
    assert sorted({row[3] for row in rows}) == ["16", "4", "all"]
    assert len(rows) == 3 * len({(row[1], row[2], row[4]) for row in rows})  # x seeds
