"""The bad-input matrix (docs/bad-input.md): every expected error is one line, exit code 2,
no traceback, and results written earlier stay intact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipgap.cli import main
from clipgap.errors import MetricError
from clipgap.metrics import silhouette_score, task_difficulty

from .conftest import TINY_MODEL, make_image_folder

STUDY = """\
# bad-input study: clipgap study --config study.yaml
model: world-tiny
tasks:
  - {name: "world:shape"}
  - {name: "world:light"}
methods: [linear_probe]
train: {epochs: 1, max_steps: 1}
eval: {max_test_images: 16}
"""


def _folder(tmp: Path) -> Path:
    root = tmp / "imgs"
    make_image_folder(root / "train", per_class=5, seed=1)
    make_image_folder(root / "test", per_class=3, seed=2)
    return root


def corrupt_image(tmp):
    root = _folder(tmp)
    good = (root / "test" / "cat" / "0.png").read_bytes()
    (root / "test" / "cat" / "truncated.png").write_bytes(good[: len(good) // 2])
    return ["difficulty", "--model", TINY_MODEL, "--dataset", f"folder:{root}"], "truncated.png"


def empty_class(tmp):
    root = _folder(tmp)
    (root / "test" / "empty").mkdir()
    return [
        "difficulty",
        "--model",
        TINY_MODEL,
        "--dataset",
        f"folder:{root}",
    ], "empty has no images"


def one_class(tmp):
    root = tmp / "one"
    make_image_folder(root / "train", classes=("cat",), per_class=6)
    make_image_folder(root / "test", classes=("cat",), per_class=2)
    return (["finetune", "--model", TINY_MODEL, "--dataset", f"folder:{root}", "--method", "lora",
             "--out", str(tmp / "ft")], "fine-tuning needs at least 2")  # fmt: skip


def unknown_model(tmp):
    return [
        "difficulty",
        "--model",
        "ViT-B-23",
        "--dataset",
        "world:shape",
    ], "did you mean 'ViT-B-32'"


def unknown_pretrained(tmp):
    return (["difficulty", "--model", "ViT-B-32", "--pretrained", "opnai", "--dataset",
             "world:shape"], "unknown pretrained tag 'opnai'")  # fmt: skip


def unknown_dataset(tmp):
    return ["difficulty", "--model", TINY_MODEL, "--dataset", "cifar101"], "did you mean 'cifar100'"


def unknown_world_task(tmp):
    return ["difficulty", "--model", TINY_MODEL, "--dataset", "world:shapes"], "shape"


def unknown_style(tmp):
    return ["difficulty", "--model", TINY_MODEL, "--dataset", "world:shape@oil"], "sketch"


def unknown_method(tmp):
    root = _folder(tmp)
    return (["finetune", "--model", TINY_MODEL, "--dataset", f"folder:{root}", "--method", "lorra",
             "--out", str(tmp / "ft")], "did you mean 'lora'")  # fmt: skip


def lr_not_positive(tmp):
    root = _folder(tmp)
    return (["finetune", "--model", TINY_MODEL, "--dataset", f"folder:{root}", "--method", "lora",
             "--out", str(tmp / "ft"), "train.lr=0"], "train.lr")  # fmt: skip


def non_finite_loss(tmp):
    root = _folder(tmp)
    return (["finetune", "--model", TINY_MODEL, "--dataset", f"folder:{root}", "--method", "full",
             "--out", str(tmp / "ft"), "--preset", "paper", "train.lr=1e30", "train.epochs=3",
             "train.batch_size=4"], "non-finite loss")  # fmt: skip


def missing_data(tmp):
    (tmp / "empty").mkdir()
    return (["difficulty", "--model", TINY_MODEL, "--dataset", "cifar100", "--data-root",
             str(tmp / "empty")], "cifar-100-python")  # fmt: skip


def hostile_csv(tmp):
    (tmp / "d").mkdir()
    Image.new("RGB", (8, 8)).save(tmp / "outside.png")
    (tmp / "d" / "t.csv").write_text("path,label,split\n../outside.png,cat,test\n")
    return [
        "difficulty",
        "--model",
        TINY_MODEL,
        "--dataset",
        f"csv:{tmp / 'd' / 't.csv'}",
    ], "outside.png"


def csv_missing_column(tmp):
    (tmp / "t.csv").write_text("file,label\na.png,cat\n")
    return ["difficulty", "--model", TINY_MODEL, "--dataset", f"csv:{tmp / 't.csv'}"], "path"


def csv_unknown_label(tmp):
    Image.new("RGB", (8, 8)).save(tmp / "a.png")
    (tmp / "classnames.txt").write_text("cat\ndog\n")
    (tmp / "t.csv").write_text("path,label,split\na.png,fox,test\n")
    return ["difficulty", "--model", TINY_MODEL, "--dataset", f"csv:{tmp / 't.csv'}"], "fox"


def _checkpoint(tmp) -> Path:
    root = _folder(tmp)
    argv = ["finetune", "--model", TINY_MODEL, "--dataset", f"folder:{root}", "--method", "bitfit",
            "--out", str(tmp / "ft"), "--no-progress", "train.max_steps=1"]  # fmt: skip
    assert main(argv) == 0
    return tmp / "ft" / "checkpoint.safetensors"


def mismatched_checkpoint(tmp):
    ckpt = _checkpoint(tmp)
    return (["evaluate", "--checkpoint", str(ckpt), "--dataset", "world:shape", "--model",
             "world-tiny"], "not from world-tiny")  # fmt: skip


def not_safetensors(tmp):
    (tmp / "model.safetensors").write_bytes(b"\x80\x04pickle")
    return (["evaluate", "--checkpoint", str(tmp / "model.safetensors"), "--dataset",
             "world:shape"], "not a safetensors file")  # fmt: skip


def hf_not_clip(tmp):
    (tmp / "bert").mkdir()
    (tmp / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return ["difficulty", "--model", f"hf:{tmp / 'bert'}", "--dataset", "world:shape"], "bert"


def _study(tmp, text: str):
    (tmp / "study.yaml").write_text(text)
    return [
        "study",
        "--config",
        str(tmp / "study.yaml"),
        "--out",
        str(tmp / "out"),
        "--no-progress",
    ]


def yaml_wrong_type(tmp):
    return _study(tmp, STUDY + "seeds: zero\n"), "seeds: expected list[int], got str 'zero'"


def yaml_unknown_key(tmp):
    return _study(tmp, STUDY + "method: [lora]\n"), "did you mean 'methods'"


def control_is_task(tmp):
    text = STUDY.replace(
        '{name: "world:light"}', '{name: "world:light", controls: ["world:light"]}'
    )
    return _study(tmp, text), "lists itself as a control task"


def other_study_in_out(tmp):
    (tmp / "out").mkdir()
    (tmp / "out" / "study.json").write_text(json.dumps({"studies": {"0" * 16: {}}}))
    return _study(tmp, STUDY), "holds runs of a different study"


SEARCH = "search: {trials: 2, space: {linear_probe: {lr: [1.0e-3, 1.0e-1, log]}}}\n"


def other_search_in_out(tmp):
    from clipgap.config import digest
    from clipgap.study import load_study_config

    _study(tmp, STUDY + SEARCH.replace("trials: 2", "trials: 3"))
    ident = load_study_config(str(tmp / "study.yaml")).identity()
    (tmp / "out").mkdir()
    (tmp / "out" / "study.json").write_text(json.dumps({"studies": {digest(ident): ident}}))
    return _study(tmp, STUDY + SEARCH), "holds runs of another search of this study"


def search_trials_zero(tmp):
    return _study(tmp, STUDY + SEARCH.replace("trials: 2", "trials: 0")), (
        "study.yaml: search.trials is 0; expected an integer >= 1"
    )


def search_without_holdout(tmp):
    text = STUDY.replace("max_steps: 1}", "max_steps: 1, val_fraction: 0}") + SEARCH
    return _study(tmp, text), "search: trials are chosen on validation accuracy"


def old_schema_dir(tmp):
    run = tmp / "out" / "runs" / "world-shape__linear_probe__s0__0123456789abcdef"
    run.mkdir(parents=True)
    (tmp / "out" / "study.json").write_text(json.dumps({"studies": {"0" * 16: {}}}))
    record = {
        "schema": 1,
        "run_id": "0123456789abcdef",
        "status": "complete",
        "task": "world:shape",
    }
    (run / "record.json").write_text(json.dumps(record))
    (run / "DONE").write_text("complete\n")
    return _study(tmp, STUDY), "record schema 1, but this clipgap reads schema 2"


def unknown_difficulty_split(tmp):
    return _study(tmp, STUDY + "difficulty: {split: val}\n"), "difficulty.split must be one of"


def shots_too_large(tmp):
    return _study(tmp, STUDY + "shots: [4, 5000]\n"), "train.shots=5000 is more than class"


def shots_zero(tmp):
    return _study(tmp, STUDY + "shots: [0]\n"), "shots[0]: 0 is not allowed"


def shots_negative(tmp):
    return _study(tmp, STUDY + "shots: [-4]\n"), "shots[0]: -4 is not allowed"


def finetune_shots_too_large(tmp):
    root = _folder(tmp)
    return (["finetune", "--model", TINY_MODEL, "--dataset", f"folder:{root}", "--method", "lora",
             "--out", str(tmp / "ft"), "--shots", "50"], "after validation is held out")  # fmt: skip


def batch_size_zero(tmp):
    return (["difficulty", "--model", TINY_MODEL, "--dataset", "world:shape", "--batch-size", "0"],
            "error: --batch-size: expected an integer >= 1, got 0")  # fmt: skip


def unknown_device(tmp):
    return (["finetune", "--model", TINY_MODEL, "--dataset", "world:shape", "--method", "lora",
             "--device", "gpu"],
            "--device: unknown device 'gpu'; choose from cpu, cuda, cuda:N, mps, auto")  # fmt: skip


def absent_device(tmp):
    return ["evaluate", "--checkpoint", "c", "--dataset", "d", "--device", "cuda:99"], (
        "--device: 'cuda:99' is not available here"
    )


def missing_flag(tmp):
    return ["difficulty", "--model", TINY_MODEL], (
        "the following arguments are required: --dataset (see clipgap difficulty --help)"
    )


def dry_run_missing_weights(tmp):
    text = STUDY.replace("model: world-tiny", f"model: {TINY_MODEL}\npretrained: w/missing.pt")
    return _study(tmp, text) + ["--dry-run"], "pretrained: weights file w/missing.pt does not exist"


def study_absent_device(tmp):  # a --dry-run only warns (test_cli_consistency)
    return _study(tmp, STUDY) + ["--device", "cuda:99"], (
        "--device: 'cuda:99' is not available here"
    )


def preset_without_family_settings(tmp):
    return (["finetune", "--model", "RN50", "--dataset", "world:shape", "--method", "lora",
             "--preset", "tuned"],
            "preset 'tuned' has no settings for model family 'clip_resnet' (model RN50); presets "
            "with settings for it: paper")  # fmt: skip


def _difficulty(model: str, dataset: str = "world:shape") -> list[str]:
    return ["difficulty", "--model", model, "--dataset", dataset, "--no-progress"]


def variant_unknown_dial(tmp):
    return _difficulty("world:mention_rates.textur=0.1"), (
        "model 'world:mention_rates.textur=0.1': unknown world dial 'mention_rates.textur' "
        "(did you mean 'mention_rates.texture'"
    )


def variant_rate_out_of_range(tmp):
    return _difficulty("world:mention_rates.texture=1.5"), (
        "model 'world:mention_rates.texture=1.5': world mention_rates.texture=1.5: expected a "
        "value in [0, 1]"
    )


def variant_wrong_type(tmp):
    return _difficulty("world:pretrain.steps=many"), "pretrain.steps='many': expected an integer"


def variant_hidden_attribute(tmp):
    return _difficulty("world:mention_rates.light=0.5"), (
        "mention_rates.light: 'light' is the hidden attribute, never named in captions"
    )


def class_count_not_integer(tmp):
    return _difficulty(TINY_MODEL, "world:color/three"), (
        "world:color/three: the class count after '/' must be a whole number, got 'three'"
    )


def class_count_too_small(tmp):
    return _difficulty(TINY_MODEL, "world:color/1"), "world:color/1: a task needs at least 2"


def class_count_too_large(tmp):
    return _difficulty(TINY_MODEL, "world:texture/5"), (
        "world:texture/5: texture has 4 values; choose a class count in 2..4"
    )


ROWS = [
    corrupt_image, empty_class, one_class, unknown_model, unknown_pretrained, unknown_dataset,
    unknown_world_task, unknown_style, unknown_method, lr_not_positive, non_finite_loss,
    missing_data, hostile_csv, csv_missing_column, csv_unknown_label, mismatched_checkpoint,
    not_safetensors, hf_not_clip, yaml_wrong_type, yaml_unknown_key, control_is_task,
    other_study_in_out, other_search_in_out, search_trials_zero, search_without_holdout,
    old_schema_dir, unknown_difficulty_split, shots_too_large, shots_zero,
    shots_negative, finetune_shots_too_large, batch_size_zero, unknown_device, absent_device,
    missing_flag, dry_run_missing_weights, study_absent_device, preset_without_family_settings,
    variant_unknown_dial, variant_rate_out_of_range, variant_wrong_type, variant_hidden_attribute,
    class_count_not_integer, class_count_too_small, class_count_too_large,
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.__name__ for r in ROWS])
def test_bad_input_is_one_clear_line(row, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    earlier = tmp_path / "earlier-result.json"
    earlier.write_text('{"kept": true}\n')
    argv, expected = row(tmp_path)
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, (rc, err)
    last = err[-1] if err else ""
    assert last.startswith("error: ") and expected in last, err
    assert not any("Traceback" in line for line in err)
    assert earlier.read_text() == '{"kept": true}\n'


def test_study_state_survives_a_bad_invocation(tmp_path, capsys):
    argv = _study(tmp_path, STUDY)
    assert main(argv) == 0
    records = {p: p.read_bytes() for p in (tmp_path / "out").rglob("record.json")}
    (tmp_path / "study.yaml").write_text(STUDY + "seeds: zero\n")
    assert main(argv) == 2
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("record.json")} == records


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: silhouette_score(np.ones((4, 2)), [0, 0, 0, 0]), "cluster"),
        (lambda: silhouette_score(np.array([[np.nan, 1], [1, 0], [0, 1]]), [0, 1, 1]), "NaN"),
        (lambda: silhouette_score(np.array([[0.0, 0], [1, 0], [0, 1]]), [0, 1, 1]), "zero norm"),
        (lambda: task_difficulty(np.eye(3), np.eye(3), np.array([0, 1, 5])), "label"),
    ],
)
def test_api_bad_inputs_raise_typed_errors(call, message):
    with pytest.raises(MetricError, match=message):
        call()
