"""The shared training loop: config validation, validation split, best epoch, speed paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clipgap.backbones.open_clip_backbone import OpenClipBackbone
from clipgap.data import ImageArrays, Task
from clipgap.errors import ConfigError, DataError, TrainingError, UnknownNameError
from clipgap.evaluate import accuracy, zero_shot_model
from clipgap.presets import PAPER, TUNED, preset
from clipgap.train import TrainConfig, finetune, split_validation
from clipgap.tuned import clone
from tests.test_methods import ALL, colour_task

pytestmark = pytest.mark.usefixtures("one_thread")


def fast(**kw) -> TrainConfig:
    base = {"optimizer": "adamw", "lr": 1e-2, "weight_decay": 0.0, "epochs": 2, "batch_size": 16}
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0}, r"train\.lr must be a finite number > 0\.0, got 0"),
        ({"lr": -1e-3}, r"train\.lr must be a finite number > 0\.0, got -0\.001"),
        ({"lr": math.nan}, r"train\.lr must be a finite number > 0\.0, got nan"),
        ({"optimizer": "adam"}, r"train\.optimizer must be one of adamw, sgd, got 'adam'"),
        ({"epochs": 0}, r"train\.epochs must be an integer >= 1, got 0"),
        ({"batch_size": 2.5}, r"train\.batch_size must be an integer >= 1, got 2\.5"),
        ({"val_fraction": 1.0}, r"train\.val_fraction must be a finite number >= 0\.0 and < 1"),
        ({"momentum": 1.0}, r"train\.momentum must be a finite number >= 0\.0 and < 1"),
        ({"weight_decay": -1}, r"train\.weight_decay must be a finite number >= 0\.0"),
        ({"max_steps": 0}, r"train\.max_steps must be an integer >= 1, got 0"),
        ({"bf16": "yes"}, r"train\.bf16 must be true or false, got 'yes'"),
    ],
)
def test_train_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


def test_presets():
    assert (
        preset("paper", "lora")
        == PAPER
        == {
            "optimizer": "sgd",
            "momentum": 0.9,
            "lr": 1e-6,
            "weight_decay": 1e-4,
            "batch_size": 128,
            "epochs": 10,
        }
    )
    assert TrainConfig(**preset("paper", "full")) == TrainConfig()  # the defaults are the paper's
    for method in ALL:
        assert preset("tuned", method) == TUNED[method]
        assert TrainConfig(**preset("tuned", method)).lr > 0
    with pytest.raises(UnknownNameError, match=r"unknown preset 'tunned'.*did you mean 'tuned'"):
        preset("tunned", "lora")
    with pytest.raises(UnknownNameError, match=r"unknown method 'ful'"):
        preset("tuned", "ful")


def test_validation_split_is_ten_percent_seeded_and_disjoint():
    task = colour_task(100)
    fit, val = split_validation(task, 0.1, seed=0)
    again_fit, again_val = split_validation(task, 0.1, seed=0)
    assert (len(fit), len(val)) == (90, 10)
    assert val.fingerprint == again_val.fingerprint and fit.fingerprint == again_fit.fingerprint
    idx_val = set(val.images.indices.tolist())
    idx_fit = set(fit.images.indices.tolist())
    assert not idx_val & idx_fit and len(idx_val | idx_fit) == 100
    expected = set(np.random.default_rng(0).permutation(100)[:10].tolist())
    assert idx_val == expected
    assert len(split_validation(task, 0.5, max_images=7)[1]) == 7
    assert split_validation(task, 0.0) == (task, None)
    with pytest.raises(DataError, match="has 1 images: too few to hold out 1 for validation"):
        split_validation(colour_task(1), 0.1)


def test_one_class_task_is_refused(tiny):
    task = colour_task(8, classes=["red"])
    with pytest.raises(DataError, match=r"task colours has 1 class \(red\); .* at least 2"):
        finetune(tiny, task, "lora", train=fast(), progress=False)


def test_non_finite_loss_stops_with_a_clear_error(tiny):
    cfg = fast(optimizer="sgd", lr=1e30, epochs=3, val_fraction=0.0)
    with pytest.raises(
        TrainingError, match=r"non-finite loss .* of method 'full' .*lower train\.lr"
    ):
        finetune(tiny, colour_task(32), "full", train=cfg, progress=False)


def test_history_best_epoch_and_validation(tiny):
    task = colour_task(60)
    result = finetune(tiny, task, "bitfit", train=fast(epochs=3, val_fraction=0.2), progress=False)
    hist = result.history
    assert [h["epoch"] for h in hist] == [0, 1, 2, 3]
    assert hist[0]["train_loss"] is None and hist[0]["steps"] == 0
    assert all(h["steps"] == 3 for h in hist[1:])  # 48 fit images / batch 16
    _, val = split_validation(task, 0.2)
    zs_val = accuracy(zero_shot_model(clone(tiny)), val, progress=False)
    assert hist[0]["val_accuracy"] == pytest.approx(zs_val)
    accs = [h["val_accuracy"] for h in hist]
    assert result.best_epoch == int(np.argmax(accs)) and result.val_accuracy == max(accs)
    # the returned model is the best epoch's: its validation accuracy is the recorded one
    assert accuracy(result.model, val, progress=False) == pytest.approx(result.val_accuracy)
    assert result.trainable_params == result.model.n_trainable == 2112
    assert result.seconds > 0 and result.peak_memory_mb > 0
    assert result.method == "bitfit" and result.steps == 9


def test_same_seed_same_weights_and_max_steps(tiny):
    cfg = fast(epochs=3, max_steps=4, val_fraction=0.0, seed=3)
    a = finetune(tiny, colour_task(48), "lora", train=cfg, progress=False)
    b = finetune(tiny, colour_task(48), "lora", train=cfg, progress=False)
    assert a.steps == 4 and len(a.history) == 3  # 3 steps in epoch 1, 1 in epoch 2
    for (na, pa), (nb, pb) in zip(
        a.model.trainable_parameters().items(), b.model.trainable_parameters().items(), strict=True
    ):
        assert na == nb and torch.equal(pa, pb)


def _count_calls(monkeypatch, name):
    calls = {"n": 0}
    original = getattr(OpenClipBackbone, name)

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(OpenClipBackbone, name, counting)
    return calls


@pytest.mark.parametrize("method", ["clip_adapter", "linear_probe"])
def test_frozen_image_tower_trains_on_cached_embeddings(tiny, monkeypatch, method):
    images = _count_calls(monkeypatch, "encode_image")
    cfg = fast(epochs=4, batch_size=8, eval_batch_size=64, val_fraction=0.25)
    result = finetune(tiny, colour_task(48), method, train=cfg, progress=False)
    assert result.steps == 4 * 5  # 36 fit images, batch 8
    assert images["n"] == 2  # one encoding pass each for the fit and validation images


def test_class_text_recomputed_per_step_only_when_text_trains(tiny, monkeypatch):
    texts = _count_calls(monkeypatch, "encode_text")
    cfg = fast(epochs=2, batch_size=8, val_fraction=0.25)  # 36 fit images: 5 steps per epoch
    finetune(tiny, colour_task(48), "clip_adapter", train=cfg, progress=False)
    assert texts["n"] == 1 + 3  # once for training + once per validation (epochs 0, 1, 2)
    texts["n"] = 0
    finetune(
        tiny, colour_task(48), "lora", method_options={"towers": "image"}, train=cfg, progress=False
    )
    assert texts["n"] == 1 + 3
    texts["n"] = 0
    finetune(
        tiny, colour_task(48), "lora", method_options={"towers": "text"}, train=cfg, progress=False
    )
    assert texts["n"] == 10 + 3  # every step + each validation


def test_input_backbone_untouched_and_bf16(tiny):
    before = tiny.fingerprint()
    result = finetune(
        tiny, colour_task(32), "full", train=fast(bf16=True, max_steps=2), progress=False
    )
    assert tiny.fingerprint() == before
    assert result.model.backbone.fingerprint() != before
    assert all(math.isfinite(h["val_accuracy"]) for h in result.history)


def test_images_stream_when_pixel_cache_is_off(tiny):
    task = Task(
        "noise",
        "train",
        ImageArrays(np.zeros((20, 32, 32, 3), np.uint8)),
        np.arange(20) % 2,
        ["a", "b"],
        ["{c}"],
        "noise-20",
    )
    cfg = fast(optimizer="sgd", lr=0.1, epochs=2, batch_size=32, val_fraction=0.0)  # 1 batch
    cached = finetune(tiny, task, "bitfit", train=cfg, progress=False)
    cfg = fast(
        optimizer="sgd", lr=0.1, epochs=2, batch_size=32, val_fraction=0.0, pixel_cache_mb=0.0
    )
    streamed = finetune(tiny, task, "bitfit", train=cfg, progress=False)
    for (_, a), (_, b) in zip(
        cached.model.trainable_parameters().items(),
        streamed.model.trainable_parameters().items(),
        strict=True,
    ):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("method", [None, "lora"])
def test_accuracy_matches_open_clip_zero_shot_classifier(tiny, method):
    from open_clip import build_zero_shot_classifier

    task = colour_task(30, seed=4, split="test")
    if method is None:
        model = zero_shot_model(clone(tiny))
    else:
        cfg = fast(epochs=1, val_fraction=0.0, max_steps=2)
        model = finetune(tiny, colour_task(32), method, train=cfg, progress=False).model
    net = model.backbone.model  # the open_clip CLIP (LoRA lives inside its weights)
    templates = [lambda c, t=t: t.format(c=c) for t in task.templates]
    with torch.no_grad():
        weights = build_zero_shot_classifier(
            net, model.backbone.tokenize, task.class_names, templates, num_classes_per_batch=2
        )
        images = torch.stack([tiny.transform(task.images.load(i)) for i in range(len(task))])
        feats = net.encode_image(images, normalize=True)
        expected = float(((feats @ weights).argmax(dim=1).numpy() == task.labels).mean())
    assert accuracy(model, task, progress=False) == pytest.approx(expected)


def test_copy_false_fine_tunes_in_place(tiny):
    backbone = clone(tiny)
    result = finetune(
        backbone,
        colour_task(16),
        "bitfit",
        train=fast(max_steps=1, val_fraction=0),
        progress=False,
        copy=False,
    )
    assert result.model.backbone is backbone
