"""`clipgap evaluate`: a checkpoint from `clipgap finetune` scores as the fine-tune reported."""

from __future__ import annotations

import json

import pytest

from clipgap.cli import main

from .conftest import TINY_MODEL


def test_evaluate_reproduces_finetune_accuracy(image_folder, tmp_path, capsys):
    out = tmp_path / "ft"
    argv = ["finetune", "--model", TINY_MODEL, "--dataset", f"folder:{image_folder}", "--method",
            "clip_adapter", "--out", str(out), "--no-progress", "train.epochs=3", "train.lr=0.05"]  # fmt: skip
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    report = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", str(out / "checkpoint.safetensors"), "--dataset",
                 f"folder:{image_folder}", "--json", str(report)]) == 0  # fmt: skip
    (row,) = json.loads(report.read_text())["results"]
    assert row["finetuned"] == pytest.approx(metrics["finetuned_accuracy"])
    assert row["zero_shot"] == pytest.approx(metrics["zero_shot_accuracy"])
    assert row["delta"] == pytest.approx(row["finetuned"] - row["zero_shot"])
    assert "clip_adapter on clipgap-tiny" in capsys.readouterr().out
