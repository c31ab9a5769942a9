"""Study configuration: typed YAML, helpful errors, dotted overrides, run hashing."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipgap.errors import ConfigError
from clipgap.study import load_study_config, plan_runs

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

    same = preset("tuned", "lora")["epochs"]
    a = plan_runs(load_study_config(write(tmp_path, BASE)))
    b = plan_runs(load_study_config(write(tmp_path, BASE), [f"train.epochs={same}"]))
    assert a[0].run_id == b[0].run_id
    assert a[0].train["epochs"] == same and a[0].method_options["rank"] == 4
