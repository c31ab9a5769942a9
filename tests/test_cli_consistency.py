"""One consistent CLI (docs/cli.md): every registered command's real parser is walked and the
common flags are checked to exist with the same semantics; exit codes, one-line bad values,
progress rules, the study's flags and dry-run checks, and the list contents. Parse-only where
possible, a few real invocations on tiny inputs."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from clipgap.cli import EXIT_CODES, build_parser, main
from clipgap.cli.common import settle
from clipgap.cli.flagtable import COMMON_FLAGS, commands, flag_table, meaning, option
from clipgap.cli.flagtable import replace_section as replace_flag_section
from clipgap.errors import ConfigError, DataError

from .conftest import TINY_MODEL, make_image_folder

ROOT = Path(__file__).resolve().parents[1]
CMDS = commands()
JSON_COMMANDS = ["difficulty", "finetune", "evaluate", "recommend", "report", "study", "list"]
DATA_COMMANDS = ["difficulty", "finetune", "evaluate", "recommend", "study"]
SEED_COMMANDS = ["finetune", "study"]  # the commands that train: also --tracking


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def minimal_argv(name: str) -> list[str]:
    """The command's words, its positionals and its required options, with dummy values."""
    parser = CMDS[name]
    argv = name.split()
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        if action.nargs not in ("*", "?"):
            argv.append(action.choices[0] if action.choices else "x")
    for action in parser._actions:
        if action.required and action.option_strings:
            argv += [action.option_strings[0], action.choices[0] if action.choices else "x"]
    return argv


def parse(argv: list[str], *, stderr=None):
    args = build_parser().parse_args(argv)
    settle(args, stderr=stderr or io.StringIO())
    return args


@pytest.fixture
def tiny_folder(tmp_path):
    return make_image_folder(tmp_path / "imgs" / "test", per_class=3).parent


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- the parsers


def test_every_registered_command_is_walked():
    from clipgap.cli.commands import commands as registry

    top = {name.split()[0] for name in CMDS}
    assert top == set(registry.names())
    assert {"world pretrain", "world sample", "world tasks"} <= set(CMDS)


@pytest.mark.parametrize("name", list(CMDS))
def test_every_command_takes_verbosity_and_no_progress(name):
    for flag in ("-v", "--verbose", "-q", "--quiet", "--no-progress"):
        assert option(CMDS[name], flag) is not None, (name, flag)
    args = parse([*minimal_argv(name), "-v", "-v", "--no-progress"], stderr=Terminal())
    assert args.verbosity == 2 and args.progress is False


def test_flags_where_the_issue_asks_for_them():
    for name in JSON_COMMANDS:
        assert option(CMDS[name], "--json"), name
    for name in DATA_COMMANDS:
        for flag in ("--data-root", "--download", "--device"):
            assert option(CMDS[name], flag), (name, flag)
    for name in SEED_COMMANDS:
        assert option(CMDS[name], "--seed") and option(CMDS[name], "--tracking"), name


@pytest.mark.parametrize("flag", [f for fs in COMMON_FLAGS for f in fs.split("/")])
def test_a_common_flag_means_the_same_everywhere(flag):
    actions = {n: option(p, flag) for n, p in CMDS.items() if option(p, flag)}
    assert actions, flag
    assert len({meaning(a) for a in actions.values()}) == 1, {n: a.help for n, a in actions.items()}
    shapes = {
        (type(a).__name__, tuple(a.option_strings), a.nargs, a.const, a.type, a.metavar)
        for a in actions.values()
    }
    assert len(shapes) == 1, shapes


@pytest.mark.parametrize("name", JSON_COMMANDS)
def test_json_with_and_without_file(name):
    argv = minimal_argv(name)
    assert parse(argv).json is None
    assert parse([*argv, "--json"]).json == "-"
    assert parse([*argv, "--json", "-"]).json == "-"
    assert parse([*argv, "--json", "out.json"]).json == "out.json"
    assert parse([*argv, "--json=out.json"]).json == "out.json"


def test_verbosity_adds_up_across_levels():
    assert parse(["-v", "study", "-v", "-v"]).verbosity == 3
    assert parse(["-v", "world", "-v", "tasks", "-v"]).verbosity == 3
    assert parse(["-q", "list", "models"]).verbosity == -1
    assert parse(["--no-progress", "list", "models"], stderr=Terminal()).progress is False


def test_progress_is_on_only_on_a_terminal():
    assert parse(["report", "x"], stderr=Terminal()).progress is True
    assert parse(["report", "x"], stderr=io.StringIO()).progress is False
    assert parse(["report", "x", "--no-progress"], stderr=Terminal()).progress is False
    assert parse(["report", "x", "-q"], stderr=Terminal()).progress is False


def test_docs_table_is_the_parsers_table():
    text = (ROOT / "docs" / "cli.md").read_text()
    assert replace_flag_section(text, flag_table()) == text, (
        "docs/cli.md is out of date: python -m clipgap.cli.flagtable --write docs/cli.md"
    )


# ---- bad values: one line naming the option, exit 2


BATCH = [n for n in CMDS if option(CMDS[n], "--batch-size")]
DEVICE = [n for n in CMDS if option(CMDS[n], "--device")]


@pytest.mark.parametrize("name", BATCH)
@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_batch_size_below_one_is_one_line(name, value, capsys):
    code, out, err = run_cli(capsys, *minimal_argv(name), "--batch-size", value)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"error: --batch-size: expected an integer >= 1, got {value} (see clipgap {name} --help)"
    ]


@pytest.mark.parametrize("name", DEVICE)
def test_unknown_device_is_one_line(name, capsys):
    code, out, err = run_cli(capsys, *minimal_argv(name), "--device", "gpu")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "error: --device: unknown device 'gpu'; choose from cpu, cuda, cuda:N, mps, auto "
        f"(see clipgap {name} --help)"
    ]


def test_absent_device_is_one_line(capsys):
    # the flag names a device for this machine: checked here, even with --dry-run (a config's
    # device is only planned for, test_dry_run_plans_for_a_device_absent_here)
    code, _, err = run_cli(capsys, "study", "--device", "cuda:99", "--dry-run")
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: --device: 'cuda:99' is not available here")


def test_device_auto_and_cpu_parse():
    assert parse(["study", "--device", "cpu"]).device == "cpu"
    assert parse(["study", "--device", "auto"]).device == "auto"  # clipgap.devices resolves it
    assert parse(["study"]).device is None  # the config's device


# ---- exit codes


def test_exit_codes_are_documented(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "exit codes:" in out
    docs = (ROOT / "docs" / "cli.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for number in (0, 1, 2, 3, 4, 130):
        assert number in EXIT_CODES
        assert f"\n  {number} " in out
        assert f"\n| {number} | " in docs
        assert f"**{number}**" in readme


def _boom(args):
    raise RuntimeError("boom\nsecond line")


def test_internal_error_is_one_line_and_exit_3(capsys, monkeypatch):
    monkeypatch.setattr("clipgap.cli.listing.run", _boom)
    code, _, err = run_cli(capsys, "list", "models")
    assert code == 3
    assert err.splitlines() == [
        "error: internal error (RuntimeError: boom); this is a bug in clipgap, please report it "
        "with the command line (-v shows the traceback)"
    ]
    code, _, err = run_cli(capsys, "list", "models", "-v")
    assert code == 3 and "Traceback (most recent call last)" in err and "_boom" in err
    assert err.splitlines()[-1].startswith("error: internal error (RuntimeError: boom)")


def test_expected_error_is_exit_2_and_interrupt_130(capsys, monkeypatch):
    def bad(args):
        raise DataError("data is bad")

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("clipgap.cli.listing.run", bad)
    assert run_cli(capsys, "list", "models")[::2] == (2, "error: data is bad\n")
    monkeypatch.setattr("clipgap.cli.listing.run", interrupted)
    assert run_cli(capsys, "list", "models")[0] == 130


def test_failed_runs_exit_1_with_the_json_summary(tmp_path, capsys, monkeypatch):
    outcome = SimpleNamespace(out_dir=tmp_path, planned=2, skipped=0, completed=1, elsewhere=0,
                              failed=["run-b: boom"], records=[], report_built=True)  # fmt: skip
    seen = {}

    def fake_run_study(cfg, *, add, shard, progress, on_finished):
        seen.update(cfg=cfg, progress=progress, shard=shard, on_finished=on_finished)
        return outcome

    monkeypatch.setattr("clipgap.study.run_study", fake_run_study)
    argv = ["study", "--out", str(tmp_path), "--seed", "5", "--shard", "1/3", "model=clipgap-tiny",
            "--json"]  # fmt: skip
    code, out, _ = run_cli(capsys, *argv)
    assert code == 1
    summary = json.loads(out)  # stdout holds the JSON and nothing else
    assert summary["failed"] == ["run-b: boom"] and summary["planned"] == 2
    assert summary["report"] == str(tmp_path / "report" / "report.html")
    assert summary["shard"] == [1, 3] and seen["shard"] == (1, 3)
    assert seen["cfg"].seeds == [5] and seen["progress"] is False  # stderr is not a terminal
    from clipgap.report import build_report

    assert seen["on_finished"] is build_report  # the CLI hands the report build to the study


# ---- study flags and dry run


def test_study_flags_override_the_config(tmp_path):
    from clipgap.cli.study import with_flags
    from clipgap.study import load_study_config

    cfg = load_study_config(None, ["model=clipgap-tiny", "data.download=false"])
    argv = ["study", "--data-root", str(tmp_path), "--download", "--device", "cpu", "--seed",
            "7", "--batch-size", "9", "--tracking", "none"]  # fmt: skip
    new = with_flags(cfg, parse(argv))
    assert new.data.data_root == str(tmp_path) and new.data.download is True
    assert (new.device, new.seeds, new.eval.batch_size) == ("cpu", [7], 9)
    assert new.tracking == []
    with pytest.raises(ConfigError, match="^--tracking: unknown tracker 'tensorbord'"):
        with_flags(cfg, parse(["study", "--tracking", "tensorbord"]))
    assert with_flags(cfg, parse(["study"])) == cfg


def test_study_runs_get_progress_bars_only_on_a_terminal(tmp_path, monkeypatch):
    from clipgap.study import attempt, grid, load_study_config

    class Stop(Exception):
        pass

    def for_study(cfg, out, *, progress=False, model=None):
        raise Stop(progress)

    monkeypatch.setattr(attempt.RunContext, "for_study", staticmethod(for_study))
    monkeypatch.setattr(attempt, "_CONTEXTS", {})  # one context per process: start afresh
    cases = [(True, Terminal(), True), (True, io.StringIO(), False), (False, Terminal(), False)]
    for i, (progress, stderr, expected) in enumerate(cases):
        monkeypatch.setattr("sys.stderr", stderr)
        cfg = load_study_config(None, ["model=clipgap-tiny"], out=str(tmp_path / str(i)))
        with pytest.raises(Stop) as stop:
            grid.run_study(cfg, progress=progress)
        assert stop.value.args == (expected,)


def _study_yaml(tmp_path, **fields) -> str:
    root = make_image_folder(tmp_path / "imgs" / "test", per_class=2)
    lines = [f"model: {TINY_MODEL}", f"tasks: [{{name: 'folder:{root.parent}'}}]",
             "methods: [linear_probe]", f"out: {tmp_path / 'out'}"]  # fmt: skip
    lines += [f"{k}: {v}" for k, v in fields.items()]
    path = tmp_path / "study.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_dry_run_checks_weights_file_and_warns_of_device(tmp_path, capsys):
    cfg = _study_yaml(tmp_path, pretrained=str(tmp_path / "missing.pt"), device="cuda:99")
    code, out, err = run_cli(capsys, "study", "--config", cfg, "--dry-run")
    assert code == 2 and "1 runs" in out
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("warning: device 'cuda:99' is not available here (")
    assert lines[0].endswith("planned anyway; the machine that runs it needs one")
    assert lines[1] == f"error: pretrained: weights file {tmp_path / 'missing.pt'} does not exist"
    code, out, _ = run_cli(capsys, "study", "--config", cfg, "--dry-run", "--json")
    plan = json.loads(out)
    assert code == 2 and len(plan["problems"]) == 1 and len(plan["runs"]) == 1
    assert len(plan["warnings"]) == 1


@pytest.mark.parametrize("flag", [[], ["--batch-size", "8"]])
def test_dry_run_plans_for_a_device_absent_here(tmp_path, capsys, flag):
    """A study is planned where it will not run: the absent device is a warning, exit 0."""
    cfg = _study_yaml(tmp_path, device="cuda:99", train="{epochs: 3, val_fraction: 0.25}")
    make_image_folder(tmp_path / "imgs" / "train", per_class=2)
    code, out, err = run_cli(capsys, "study", "--config", cfg, "--dry-run", *flag)
    assert code == 0 and err.startswith("warning: device 'cuda:99' is not available here")
    assert len(err.splitlines()) == 1 and "device cuda:99" in out
    code, out, _ = run_cli(capsys, "study", "--config", cfg, "--dry-run", "--json", *flag)
    (row,) = json.loads(out)["runs"]
    assert code == 0 and row["model"] == TINY_MODEL
    assert set(row["train"]) == {"optimizer", "lr", "batch_size", "epochs"}
    assert row["train"]["epochs"] == 3
    # the folder task: 3 classes x 2 images; a quarter of the 6 train images held out
    assert row["train_images"] == 6 - 2 and row["train_image_epochs"] == 4 * 3
    assert row["eval_images"] == 6


def test_dry_run_work_comes_from_the_catalogue_without_data(tmp_path, capsys):
    from clipgap.study.describe import split_size

    assert split_size("cifar100", "train", str(tmp_path)) == (50000, 0)
    assert split_size("eurosat", "train", str(tmp_path)) is None  # no published split here
    root = Path(__file__).resolve().parents[1]
    argv = ["study", "--config", str(root / "configs" / "paper-tuned.yaml"), "--dry-run",
            f"data.data_root={tmp_path}", "--json"]  # fmt: skip
    code, out, _ = run_cli(capsys, *argv)
    runs = {(r["task"], r["method"]): r for r in json.loads(out)["runs"]}
    cifar = runs["cifar100", "full"]
    assert code == 0 and cifar["train"] == {"optimizer": "adamw", "lr": 3e-5,
                                            "batch_size": 512, "epochs": 10}  # fmt: skip
    assert cifar["train_images"] == 50000 - 5000 and cifar["train_image_epochs"] == 450000
    assert cifar["eval_images"] == "unknown" and "eurosat" in cifar["eval_unknown"]
    assert runs["eurosat", "lora"]["train_images"] == "unknown"


def test_dry_run_passes_with_weights_and_device(tmp_path, capsys):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    cfg = _study_yaml(tmp_path, pretrained=str(weights))
    code, out, err = run_cli(capsys, "study", "--config", cfg, "--dry-run", "--device", "cpu")
    assert code == 0 and err == "" and "device cpu" in out
    assert run_cli(capsys, "study", "--config", cfg, "--dry-run", "pretrained=openai")[0] == 0


# ---- lists


def test_list_datasets_names_every_world_task(capsys):
    from clipgap.data import dataset_names
    from clipgap.world.tasks import world_tasks

    code, out, _ = run_cli(capsys, "list", "datasets", "--json")
    names = json.loads(out)
    assert code == 0 and len(world_tasks.names()) >= 12
    assert {f"world:{t}" for t in world_tasks.names()} | set(dataset_names()) == set(names)
    code, out, _ = run_cli(capsys, "list", "datasets")
    words = out.split()
    assert all(f"world:{t}" in words for t in world_tasks.names()) and "folder" in words


def test_list_models_shows_pretrained_tags(capsys):
    import open_clip

    code, out, _ = run_cli(capsys, "list", "models", "--json")
    tags = json.loads(out)
    assert code == 0 and tags["world"] == [] and tags[TINY_MODEL] == []
    for model in ("ViT-B-32", "RN50", "convnext_base"):
        assert tags[model] == open_clip.list_pretrained_tags_by_model(model)
    assert "openai" in tags["ViT-B-32"] and "laion2b_s34b_b79k" in tags["ViT-B-32"]
    code, out, _ = run_cli(capsys, "list", "models")
    row = next(line for line in out.splitlines() if line.split()[:1] == ["ViT-B-32"])
    assert "openai," in row and "laion2b_s34b_b79k" in row


# ---- progress bars


def test_world_pretraining_bar_follows_the_flags(tiny_folder, capsys, monkeypatch):
    import clipgap.world.model as world_model

    calls = []

    def ensure(model, *, force=False, progress=True):
        calls.append(progress)
        raise DataError("stop here")

    monkeypatch.setattr(world_model, "ensure_checkpoint", ensure)
    monkeypatch.setattr("sys.stderr", Terminal())
    for extra, expected in (([], True), (["--no-progress"], False), (["-q"], False)):
        main(["world", "pretrain", "--model", "world-tiny", *extra])
        main(["difficulty", "--model", "world-tiny", "--dataset", f"folder:{tiny_folder}", *extra])
        assert calls == [expected, expected], extra
        calls.clear()
    monkeypatch.setattr("sys.stderr", io.StringIO())
    main(["world", "pretrain", "--model", "world-tiny"])
    assert calls == [False]


def test_world_pretraining_bar_is_off_without_a_terminal(monkeypatch):
    import open_clip

    from clipgap.world.config import PretrainConfig
    from clipgap.world.model import architecture, world_models
    from clipgap.world.pretrain import pretrain

    model = world_models.get("world-tiny")
    cfg = PretrainConfig(steps=2, batch_size=8, warmup_steps=1, threads=1)
    seen = {}
    for stream in (Terminal(), io.StringIO()):
        monkeypatch.setattr("sys.stderr", stream)
        net = architecture(model).model
        tokenizer = open_clip.get_tokenizer(model.config_path.stem)
        pretrain(net, tokenizer, model.world, cfg, progress=True, desc="pt")
        seen[stream.isatty()] = stream.getvalue()
    assert "pt: 100%" in seen[True] and seen[False] == ""


# ---- real invocations on tiny inputs


def test_difficulty_json_to_stdout_and_to_file(tiny_folder, tmp_path, capsys):
    argv = ["difficulty", "--model", TINY_MODEL, "--dataset", f"folder:{tiny_folder}"]
    code, out, _ = run_cli(capsys, *argv, "--no-cache", "--json")
    data = json.loads(out)  # nothing but the JSON on stdout
    assert code == 0 and data["n_images"] == 9 and data["n_classes"] == 3
    path = tmp_path / "d.json"
    code, out, _ = run_cli(capsys, *argv, "--batch-size", "4", "--json", str(path))
    assert code == 0 and out.splitlines()[-1] == f"wrote {path}" and "silhouette_class" in out
    written = json.loads(path.read_text())
    numbers = {k: v for k, v in data.items() if isinstance(v, (int, float))}
    assert len(numbers) >= 5 and written == {**data, **written}
    assert {k: written[k] for k in numbers} == pytest.approx(numbers, rel=1e-5)


def test_list_methods_json_to_file(tmp_path, capsys):
    path = tmp_path / "m.json"
    code, out, _ = run_cli(capsys, "list", "methods", "--json", str(path))
    rows = json.loads(path.read_text())
    assert code == 0 and "lora" in out and {r["method"] for r in rows} >= {"lora", "bitfit"}
