"""``clipgap finetune`` and ``clipgap list``, end to end, checking what a user would see."""

from __future__ import annotations

import json

import pytest

from clipgap.backbones import load_backbone
from clipgap.checkpoint import load_checkpoint, read_checkpoint
from clipgap.cli import main
from clipgap.data import load_task
from clipgap.record import SCHEMA_VERSION, read_record
from clipgap.tracking import default_tracking
from clipgap.training import accuracy, zero_shot_model

pytestmark = pytest.mark.usefixtures("one_thread")


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_finetune_writes_checkpoint_metrics_and_log(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    dataset = f"folder:{image_folder}"
    code, stdout, err = run_cli(
        capsys,
        "finetune",
        "--model",
        "clipgap-tiny",
        "--dataset",
        dataset,
        "--method",
        "lora",
        "--out",
        str(out),
        "--seed",
        "1",
        "--no-progress",
        "train.epochs=2",
        "train.lr=1e-3",
        "train.batch_size=8",
        "method.rank=2",
    )
    assert code == 0, err
    tracked = {"tb"} if default_tracking() else set()  # TensorBoard events when installed
    assert {p.name for p in out.iterdir()} == {
        "checkpoint.safetensors",
        "metrics.json",
        "record.json",
        "DONE",
        "train.log",
    } | tracked
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trainable_params"] == 2 * 2 * 2 * (2 * 64) + 2 * 2 * 2 * (2 * 32)
    assert metrics["train"]["lr"] == 1e-3 and metrics["train"]["seed"] == 1
    assert metrics["train"]["optimizer"] == "adamw"  # from the default preset, tuned
    assert metrics["method_options"]["rank"] == 2
    assert [h["epoch"] for h in metrics["history"]] == [0, 1, 2]
    assert 0 <= metrics["best_epoch"] <= 2
    # the numbers are the ones a user gets by evaluating the models themselves
    test = load_task(dataset, "test")
    zs = accuracy(zero_shot_model(load_backbone("clipgap-tiny")), test, progress=False)
    ft = accuracy(load_checkpoint(out / "checkpoint.safetensors"), test, progress=False)
    assert metrics["zero_shot_accuracy"] == pytest.approx(zs)
    assert metrics["finetuned_accuracy"] == pytest.approx(ft)
    assert metrics["delta_id"] == pytest.approx(ft - zs)
    meta, _ = read_checkpoint(out / "checkpoint.safetensors")
    assert meta["extra"] == {"dataset": dataset, "preset": "tuned", "shots": None}
    # the run record: the same numbers, typed, with difficulty on the training portion
    record = read_record(out)
    assert record.schema == SCHEMA_VERSION and record.complete and record.shots is None
    assert (record.zero_shot.id, record.finetuned.id) == pytest.approx((zs, ft))
    assert record.zero_shot.dg == {} and record.outcomes.cf_per_control == {}
    assert record.outcomes.cf is None
    n_train = len(load_task(dataset, "train"))  # 3 classes x 6 images; 10 % held out
    assert record.difficulty.split == "train"
    assert record.difficulty.n_images == n_train - round(0.1 * n_train) == 16
    assert record.val_accuracy_start == metrics["history"][0]["val_accuracy"]
    assert record.config["train"]["seed"] == 1 and record.best_epoch == metrics["best_epoch"]
    assert f"zero-shot {zs:.4f} -> fine-tuned {ft:.4f}" in stdout
    assert "1,536 trainable parameters" in stdout
    log = (out / "train.log").read_text()
    assert "lora epoch 2:" in log and "best epoch" in log


def test_finetune_with_shots_trains_on_k_images_per_class(image_folder, tmp_path, capsys):
    out = tmp_path / "k2"
    dataset = f"folder:{image_folder}"
    code, stdout, err = run_cli(
        capsys, "finetune", "--model", "clipgap-tiny", "--dataset", dataset, "--method",
        "clip_adapter", "--out", str(out), "--shots", "2", "--no-progress", "train.epochs=2",
        "train.batch_size=4", "--difficulty-split", "test",
    )  # fmt: skip
    assert code == 0, err
    record = read_record(out)
    assert (
        record.shots == 2 and record.config["shots"] == 2 and record.config["train"]["shots"] == 2
    )
    # 2 images x 3 classes in batches of 4: two steps an epoch (all 16 images would take four)
    assert [h["steps"] for h in record.history if h["epoch"] >= 1] == [2, 2]
    # difficulty on the test split: 3 classes x 4 test images
    assert record.difficulty.split == "test" and record.difficulty.n_images == 12
    assert "2 images per class" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "lorra"], "error: unknown method 'lorra' (did you mean 'lora'?)"),
        (["--method", "lora", "train.lr=0"], "error: train.lr must be a finite number > 0.0"),
        (["--method", "lora", "train.lrr=1"], "error: unknown key 'train.lrr' (did you mean"),
        (["--method", "lora", "method.rank=0"], "error: method.rank must be an integer >= 1"),
        (["--method", "lora", "rank=2"], "expected train.KEY=VALUE or method.KEY=VALUE"),
        (["--method", "lora", "--preset", "fast"], "error: unknown preset 'fast'"),
        (["--method", "lora", "--shots", "0"], "error: --shots: 0 is not allowed; expected a"),
        (["--method", "lora", "--shots", "-3"], "error: --shots: -3 is not allowed"),
        (["--method", "lora", "--shots", "few"], "error: --shots: 'few' is not allowed"),
        (["--method", "lora", "--shots", "50"], "after validation is held out"),
    ],
)
def test_finetune_bad_input_is_one_line(image_folder, tmp_path, capsys, args, message):
    code, _, err = run_cli(
        capsys,
        "finetune",
        "--model",
        "clipgap-tiny",
        "--dataset",
        f"folder:{image_folder}",
        "--out",
        str(tmp_path / "x"),
        *args,
    )
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_list_methods_counts_on_a_model(capsys):
    code, out, _ = run_cli(capsys, "list", "methods", "--model", "clipgap-tiny", "--json")
    assert code == 0
    rows = {r["method"]: r for r in json.loads(out)}
    assert {m: r["trainable"] for m, r in rows.items()} == {
        "aclip": 30_720,
        "bitfit": 2_112,
        "clip_adapter": 1_024,
        "full": 1_723_777,
        "linear_probe": "32*C + C",
        "lora": 3_072,
    }
    assert rows["lora"]["options"]["rank"] == 4
    code, out, _ = run_cli(capsys, "list", "methods", "--model", "clipgap-tiny")
    assert "32*C + C" in out and "1,723,777" in out


def test_list_models_and_datasets(capsys):
    code, out, _ = run_cli(capsys, "list", "models", "--json")
    assert code == 0 and {"clipgap-tiny", "ViT-B-32"} <= set(json.loads(out))
    code, out, _ = run_cli(capsys, "list", "datasets")
    assert code == 0 and "folder" in out.split()


@pytest.mark.slow
def test_finetune_on_the_tiny_world(tmp_path, capsys):
    out = tmp_path / "world"
    code, stdout, err = run_cli(
        capsys,
        "finetune",
        "--model",
        "world-tiny",
        "--dataset",
        "world:color",
        "--method",
        "linear_probe",
        "--out",
        str(out),
        "--no-progress",
    )
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trainable_params"] == 32 * 6 + 6
    assert metrics["finetuned_accuracy"] > metrics["zero_shot_accuracy"]
