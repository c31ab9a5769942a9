"""Experiment tracking: TensorBoard event files and W&B offline runs hold the run's numbers, a
tracked run trains the same weights as an untracked one, and bad kinds fail in one line."""

from __future__ import annotations

import json
import math
import struct
import sys

import pytest
import torch

from clipgap.errors import ConfigError
from clipgap.record import Difficulty, RunRecord, Scores
from clipgap.tracking import (
    KINDS,
    Tracker,
    default_tracking,
    open_tracker,
    record_summary,
    track_run,
    tracking_kinds,
)
from clipgap.training import TrainConfig, finetune
from tests.test_methods import colour_task

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = TrainConfig(optimizer="adamw", lr=1e-2, weight_decay=0.0, epochs=3, batch_size=8)
RUN_CONFIG = {"task": "colours", "method": "lora", "train": {"epochs": 3, "lr": 1e-2}}


def _train(tiny, callbacks=()):
    return finetune(tiny, colour_task(), "lora", train=CFG, progress=False, callbacks=callbacks)


@pytest.fixture(scope="module")
def untracked(tiny):
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests' one_thread: results are bitwise equal only so
    try:
        return _train(tiny)
    finally:
        torch.set_num_threads(old)


def _weights(result) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in result.model.trainable_parameters().items()}


def _same_weights(a, b) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and wa
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name

    def strip(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert strip(a.history) == strip(b.history)


def _record() -> RunRecord:
    """A complete record with hand-picked accuracies (deltas known by subtraction)."""
    return RunRecord(
        run_id="colours__lora__0",
        status="complete",
        task="colours",
        method="lora",
        seed=0,
        preset="tuned",
        model="clipgap-tiny",
        config=RUN_CONFIG,
        difficulty=Difficulty(n_images=48, n_classes=3, acs=0.25, modality_gap=0.75),
        zero_shot=Scores(id=0.5, dg={"a": 0.25, "b": 0.5}, control={"c": 0.75}),
        finetuned=Scores(id=0.875, dg={"a": 0.5, "b": 0.25}, control={"c": 0.5}),
        trainable_params=1234,
        best_epoch=2,
        val_accuracy=0.8,
    )


# ---- kinds --------------------------------------------------------------------------------


def test_kinds_are_parsed_from_flags_and_lists():
    assert KINDS == ("tensorboard", "wandb")
    assert tracking_kinds("tensorboard,wandb") == ("tensorboard", "wandb")
    assert tracking_kinds(["wandb", "tensorboard", "wandb"]) == ("wandb", "tensorboard")
    assert tracking_kinds(" wandb , ") == ("wandb",)
    assert tracking_kinds("none") == tracking_kinds("") == tracking_kinds([]) == ()
    assert tracking_kinds(None) == default_tracking() == ("tensorboard",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "tensorbord",
            r"^--tracking: unknown tracker 'tensorbord' \(did you mean 'tensorboard'\?\)",
        ),
        (["mlflow"], r"^--tracking: unknown tracker 'mlflow'; choose from: tensorboard, wandb"),
        (3, r"^--tracking must be a list of tracker names \(tensorboard, wandb\), got 3$"),
    ],
)
def test_unknown_kind_is_one_line_listing_the_valid_ones(value, message):
    with pytest.raises(ConfigError, match=message) as info:
        tracking_kinds(value, where="--tracking")
    assert "\n" not in str(info.value)


def test_open_tracker_refuses_an_unknown_kind(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown tracker 'neptune'.*tensorboard, wandb"):
        open_tracker(["neptune"], tmp_path)
    assert not (tmp_path / "tb").exists()


@pytest.mark.parametrize(
    ("kind", "module", "extra"),
    [("wandb", "wandb", "wandb"), ("tensorboard", "torch.utils.tensorboard", "tracking")],
)
def test_missing_package_says_how_to_install_it(tmp_path, monkeypatch, kind, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(ConfigError) as info:
        open_tracker([kind], tmp_path / "run")
    text = str(info.value)
    assert text == f"tracking {kind!r} needs the {kind} package: pip install 'clipgap[{extra}]'"


def test_no_kinds_is_a_tracker_that_writes_nothing(tmp_path):
    with track_run([], tmp_path / "run", RUN_CONFIG) as tracker:
        tracker.log_step(1, loss=1.0)
        tracker.log_record(_record())
    assert tracker.kinds == () and not (tmp_path / "run").exists()
    assert track_run("none", None, RUN_CONFIG).kinds == ()
    with pytest.raises(ConfigError, match="^tracking tensorboard needs a run directory$"):
        track_run(["tensorboard"], None, RUN_CONFIG)


def test_record_summary_is_the_records_numbers():
    s = record_summary(_record())
    assert s["finetuned/id"] == 0.875 and s["zero_shot/id"] == 0.5
    assert s["delta/id"] == 0.875 - 0.5
    assert s["delta/dg/a"] == 0.25 and s["delta/dg/b"] == -0.25 and s["delta/dg"] == 0.0
    assert s["cf/c"] == s["cf/mean"] == 0.5 - 0.75
    assert s["difficulty/acs"] == 0.25 and s["difficulty/modality_gap"] == 0.75
    assert "difficulty/logme" not in s  # not measured: left out, never NaN
    assert s["best_epoch"] == 2 and s["trainable_params"] == 1234
    assert all(isinstance(v, float) and math.isfinite(v) for v in s.values())


# ---- TensorBoard --------------------------------------------------------------------------


def _events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _series(acc, tag) -> tuple[list[int], list[float]]:
    events = acc.Scalars(tag)
    return [e.step for e in events], [e.value for e in events]


def test_tensorboard_events_hold_the_training_history(tiny, untracked, tmp_path):
    run_dir = tmp_path / "colours__lora__abc"
    with track_run(["tensorboard"], run_dir, RUN_CONFIG) as tracker:
        result = _train(tiny, callbacks=[tracker])
        tracker.log_record(_record())
    _same_weights(result, untracked)  # tracking never changes what is trained

    acc = _events(run_dir / "tb")
    steps, losses = _series(acc, "train/loss")
    assert steps == list(range(1, result.steps + 1)) and result.steps >= 9
    lr_steps, lrs = _series(acc, "train/lr")
    assert lr_steps == steps and lrs == pytest.approx([CFG.lr] * len(steps))
    epochs, val = _series(acc, "epoch/val_accuracy")
    assert epochs == [h["epoch"] for h in result.history] == [0, 1, 2, 3]
    assert val == pytest.approx([h["val_accuracy"] for h in result.history], abs=1e-6)
    # the epoch's train loss is the mean of its steps' losses (steps per epoch from history)
    ends = [sum(h["steps"] for h in result.history[: e + 1]) for e in range(4)]
    for epoch in (1, 2, 3):
        mean = sum(losses[ends[epoch - 1] : ends[epoch]]) / result.history[epoch]["steps"]
        assert mean == pytest.approx(result.history[epoch]["train_loss"], rel=1e-5)
    e_train, train_acc = _series(acc, "epoch/train_accuracy")
    assert e_train == [1, 2, 3]  # epoch 0 has no training: nothing logged, never NaN
    assert train_acc == pytest.approx([h["train_accuracy"] for h in result.history[1:]])
    assert _series(acc, "delta/id")[1] == pytest.approx([0.375])
    assert _series(acc, "difficulty/acs")[1] == pytest.approx([0.25])
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"run": "colours__lora__abc"' in text and '"method": "lora"' in text


def test_every_k_steps(tmp_path):
    with open_tracker(["tensorboard"], tmp_path, every=3) as tracker:
        for step in range(1, 11):
            tracker.on_step(step, loss=1.0 / step, lr=0.1)
        tracker.on_epoch(0, {"epoch": 0, "train_loss": None, "val_accuracy": 0.5, "tag": "x"})
    acc = _events(tmp_path / "tb")
    assert _series(acc, "train/loss") == ([3, 6, 9], pytest.approx([1 / 3, 1 / 6, 1 / 9]))
    assert set(acc.Tags()["scalars"]) == {"train/loss", "train/lr", "epoch/val_accuracy"}
    with pytest.raises(ConfigError, match="every must be an integer >= 1, got 0"):
        Tracker(every=0)


def test_tracker_closes_on_error(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), open_tracker(["tensorboard"], tmp_path) as t:
        t.log_epoch(0, val_accuracy=0.5)
        raise RuntimeError("boom")
    assert t.closed
    assert _series(_events(tmp_path / "tb"), "epoch/val_accuracy") == ([0], [0.5])


# ---- Weights & Biases (offline) -----------------------------------------------------------


def _wandb_records(path):
    """The protobuf records of a ``.wandb`` file: a 7-byte header, then 32 KiB blocks of
    chunks (crc32 4 bytes, length 2, type 1: full / first / middle / last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw = path.read_bytes()
    assert raw[:4] == b":W&B"
    pos, chunk, out = 7, b"", []
    while pos + 7 <= len(raw):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _, n, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        chunk, pos = chunk + raw[pos + 7 : pos + 7 + n], pos + 7 + n
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(chunk)
            out.append(record)
            chunk = b""
    return out


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    for var in ("DIR", "CACHE_DIR", "CONFIG_DIR", "DATA_DIR", "ARTIFACT_DIR"):
        monkeypatch.setenv(f"WANDB_{var}", str(tmp_path / "wandb-home" / var.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_PROJECT", "clipgap-tests")
    monkeypatch.setenv("WANDB_SILENT", "true")
    yield wandb
    wandb.teardown()


def test_wandb_offline_run_holds_the_logged_keys(tiny, untracked, tmp_path, wandb_offline):
    run_dir = tmp_path / "colours__lora__abc"
    with track_run(["wandb"], run_dir, RUN_CONFIG) as tracker:
        result = _train(tiny, callbacks=[tracker])
        tracker.log_record(_record())
    _same_weights(result, untracked)
    wandb_offline.teardown()  # wait for W&B's service to write the run file out

    files = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    records = _wandb_records(files[0])
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.display_name == "colours__lora__abc" and run.project == "clipgap-tests"
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["method"] == "lora" and config["train"] == RUN_CONFIG["train"]

    rows = [
        {
            i.nested_key[0] if i.nested_key else i.key: json.loads(i.value_json)
            for i in r.history.item
        }
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    step_rows = [r for r in rows if "train/loss" in r]
    assert [r["train/step"] for r in step_rows] == list(range(1, result.steps + 1))
    assert all(r["train/lr"] == CFG.lr for r in step_rows)
    epoch_rows = [r for r in rows if "epoch" in r]
    assert [r["epoch"] for r in epoch_rows] == [0, 1, 2, 3]
    assert [r["epoch/val_accuracy"] for r in epoch_rows] == pytest.approx(
        [h["val_accuracy"] for h in result.history]
    )
    summary = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            for u in r.summary.update:
                summary[u.nested_key[0] if u.nested_key else u.key] = json.loads(u.value_json)
    assert summary["delta/id"] == pytest.approx(0.375)
    assert summary["finetuned/dg/a"] == 0.5 and summary["difficulty/acs"] == 0.25
    exit_record = next(r.exit for r in records if r.WhichOneof("record_type") == "exit")
    assert exit_record.exit_code == 0


def test_wandb_that_cannot_start_is_one_line(tmp_path, monkeypatch, wandb_offline):
    def refuse(**kwargs):
        raise wandb_offline.errors.UsageError("No API key configured.\nUse `wandb login`.")

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setattr(wandb_offline, "init", refuse)
    with pytest.raises(ConfigError) as info:
        open_tracker(["tensorboard", "wandb"], tmp_path / "run")
    assert str(info.value) == (
        "tracking 'wandb' (mode online) could not start a run: No API key configured "
        "(or set WANDB_MODE=offline)"
    )
