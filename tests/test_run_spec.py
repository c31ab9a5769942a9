"""The typed run spec: one resolution for the study and ``clipgap finetune``, the method looked
up once, identities read from field metadata, one rule for alphas, executors from their
registry."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

import pytest

from clipgap.alphas import check_alphas, parse_alphas
from clipgap.cli.finetune import resolve
from clipgap.config import INLINE, NEW_SETTING, NOT_HASHED, identity
from clipgap.errors import ConfigError
from clipgap.methods import ResolvedMethod, methods, resolve_method
from clipgap.study import RunSpec, load_study_config, plan_runs, resolve_run
from clipgap.study.spec import Columns, DifficultySpec
from clipgap.training import TrainConfig
from clipgap.training.config import Holdout
from tests.test_methods import colour_task

pytestmark = pytest.mark.usefixtures("one_thread")

STUDY = """\
model: clipgap-tiny
device: cpu
tasks:
  - name: folder:/a
  - name: folder:/b
methods: [lora, clip_adapter]
seeds: [0, 1]
method_options: {lora: {rank: 2}}
method_train: {clip_adapter: {lr: 0.5}}
"""


def _study(tmp_path, *overrides):
    path = tmp_path / "study.yaml"
    path.write_text(STUDY)
    return load_study_config(str(path), list(overrides))


def _finetune_args(**extra):
    args = {"dataset": "world:shape", "method": "lora", "preset": "tuned", "seed": None,
            "batch_size": None, "shots": None, "difficulty_split": "train", "overrides": []}  # fmt: skip
    return argparse.Namespace(model="world", pretrained=None, device="cpu", **{**args, **extra})


# ---- the run spec is typed -----------------------------------------------------------------
def test_no_field_of_a_run_spec_is_a_dict(tmp_path):
    runs = plan_runs(_study(tmp_path, "eval.alphas=[0, 1]", "train.val_fraction=0.25"))
    runs.append(resolve(_finetune_args(overrides=["method.rank=3"])))
    for run in runs:
        for f in dataclasses.fields(RunSpec):
            assert not isinstance(getattr(run, f.name), dict), f.name
        assert isinstance(run.train, TrainConfig) and run.train.device == run.device == "cpu"
        assert isinstance(run.resolved, ResolvedMethod) and run.method == run.resolved.name
        assert dataclasses.is_dataclass(run.resolved.options)
        assert isinstance(run.difficulty, DifficultySpec) and isinstance(run.columns, Columns)
    study, single = runs[0], runs[-1]
    assert study.alphas == (0.0, 1.0) and single.alphas == (1.0,)
    assert study.difficulty == DifficultySpec("train", Holdout(0.25, 5000, 0))
    assert study.resolved.options.rank == 2 and single.resolved.options.rank == 3
    clip = next(r for r in runs if r.method == "clip_adapter")
    assert clip.train.lr == 0.5 and study.train.lr != 0.5  # method_train reaches its method only
    # the record's config holds plain data; the device is where a run executes: not in it
    config = study.config()
    assert "device" not in config["train"] and config["method_options"]["rank"] == 2
    assert config["eval"]["alphas"] == [0.0, 1.0]


def test_finetune_and_study_resolve_a_run_alike(tmp_path):
    """``clipgap finetune`` and a study resolve through the same resolve_run: the same settings
    give the same train config and options, whichever way they arrive."""
    cfg = _study(tmp_path, "train.epochs=3")
    study = plan_runs(cfg)[0]  # folder:/a, lora, seed 0
    args = _finetune_args(dataset="folder:/a", overrides=["train.epochs=3", "method.rank=2"])
    args.model = "clipgap-tiny"
    single = resolve(args)
    assert single.train == study.train and single.resolved == study.resolved
    assert single.config()["train"] == study.config()["train"]
    same = resolve_run("folder:/a", resolve_method("lora", {"rank": 2}), preset="tuned",
                       model="clipgap-tiny", pretrained=None, device="cpu",
                       train={"epochs": 3})  # fmt: skip
    assert same.run_id == single.run_id


def test_a_bad_train_setting_or_option_is_named_once(tmp_path):
    with pytest.raises(ConfigError, match=r"^train\.lr must be a finite number > 0.0, got -1.0$"):
        plan_runs(_study(tmp_path, "train.lr=-1"))
    with pytest.raises(ConfigError, match=r"^method_train\.clip_adapter\.train\.epochs must"):
        plan_runs(_study(tmp_path, "method_train.clip_adapter.epochs=0"))
    with pytest.raises(ConfigError, match=r"^unknown key 'method\.rnak' \(did you mean 'rank'"):
        plan_runs(_study(tmp_path, "method_options.lora.rnak=2"))
    with pytest.raises(ConfigError, match=r"^unknown key 'method\.rnak'"):
        resolve(_finetune_args(overrides=["method.rnak=2"]))


def test_a_study_device_torch_does_not_know_is_named_when_runs_are_planned(tmp_path, capsys):
    from clipgap.cli import main

    _study(tmp_path)  # writes study.yaml
    argv = ["study", "--config", str(tmp_path / "study.yaml"), "device=gpu", "--dry-run"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: device: unknown device 'gpu'; expected auto, cpu, cuda, cuda:N or mps"


# ---- the method is looked up once ------------------------------------------------------------
def test_the_method_name_is_looked_up_once_from_plan_to_interpolation(tmp_path, tiny, monkeypatch):
    from clipgap.interpolate import interpolate

    looked_up = []
    real = methods.get

    def counting(name):
        looked_up.append(name)
        return real(name)

    monkeypatch.setattr(methods, "get", counting)
    runs = plan_runs(_study(tmp_path))
    assert len(runs) == 8 and sorted(looked_up) == ["clip_adapter", "lora"]  # once per method
    looked_up.clear()
    from clipgap.training import finetune

    run = next(r for r in runs if r.method == "clip_adapter")
    train = dataclasses.replace(run.train, max_steps=2, val_fraction=0.0)
    result = finetune(tiny, colour_task(24), run.resolved, train=train, progress=False)
    half = interpolate(result.model, tiny, 0.5)
    assert looked_up == []  # neither the trainer nor interpolation looked the name up again
    assert result.method == half.method == "clip_adapter"
    assert half.method_options.ratio == pytest.approx(0.5 * run.resolved.options.ratio)


def test_apply_method_refuses_options_beside_a_resolved_method(tiny):
    from clipgap.methods import apply_method
    from clipgap.model import AdaptedModel, clone

    with pytest.raises(TypeError, match="carries its options"):
        apply_method(AdaptedModel(clone(tiny)), resolve_method("bitfit"), {"x": 1})


# ---- which fields enter an identity ---------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Inner:
    a: int = 1
    b: tuple[float, ...] = dataclasses.field(default=(1.0,), metadata=NEW_SETTING)


@dataclasses.dataclass(frozen=True)
class _Outer:
    name: str
    where: str = dataclasses.field(default="here", metadata=NOT_HASHED)
    inner: _Inner | None = dataclasses.field(default=None, metadata=INLINE)
    added: int | None = dataclasses.field(default=None, metadata=NEW_SETTING)


def test_identity_reads_the_field_metadata():
    assert identity(_Outer("x")) == {"name": "x"}
    assert identity(_Outer("x", where="there", inner=_Inner())) == {"name": "x", "a": 1}
    got = identity(_Outer("x", inner=_Inner(2, (0.0, 1.0)), added=3))
    assert got == {"name": "x", "a": 2, "b": [0.0, 1.0], "added": 3}


# ---- one rule for alphas ---------------------------------------------------------------------
def test_alphas_follow_one_rule_everywhere(tmp_path, capsys):
    from clipgap.cli import main
    from clipgap.study.config import EvalConfig

    want = (0.0, 0.5, 1.0)
    assert check_alphas([1, 0, 0.5]) == parse_alphas("1,0,0.5") == want
    assert _study(tmp_path, "eval.alphas=[1, 0, 0.5]").eval.alphas == want
    assert EvalConfig(alphas=[0.5, 0]).alphas == (0.0, 0.5)
    for call in (lambda: check_alphas([0.5, 0.5], where="eval.alphas"),
                 lambda: parse_alphas("0.5,0.5"),
                 lambda: _study(tmp_path, "eval.alphas=[0.5, 0.5]")):  # fmt: skip
        with pytest.raises(ConfigError, match="a value is listed more than once in"):
            call()
    argv = ["evaluate", "--checkpoint", "c", "--dataset", "d", "--alphas", "0,0.5,0.5"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --alphas: a value is listed more than once in '0,0.5,0.5'"


def test_the_alpha_rule_imports_no_torch():
    code = "import sys, clipgap.alphas; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- executor names come from the registry alone --------------------------------------------
def test_executor_choices_and_the_config_check_read_the_registry(monkeypatch, capsys):
    from clipgap.cli import main
    from clipgap.study.execution import EXECUTORS, check_executor_name

    assert EXECUTORS.names() == ["local", "ray"]
    monkeypatch.setitem(EXECUTORS._items, "queue", object)  # a newly registered executor
    check_executor_name("queue")
    assert main(["study", "--executor", "rey"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --executor: invalid choice: 'rey' (choose from 'local', 'queue',")
    with pytest.raises(ConfigError, match=r"^executor: unknown executor 'rey' \(did you mean"):
        check_executor_name("rey")
