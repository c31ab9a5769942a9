"""The shared training loop: config validation, presets, best epoch, speed paths, head scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clipgap.backbones.open_clip_backbone import OpenClipBackbone
from clipgap.data import ImageArrays, Task
from clipgap.errors import ConfigError, DataError, TrainingError, UnknownNameError
from clipgap.model import clone
from clipgap.training import (
    TrainConfig,
    accuracy,
    finetune,
    preset,
    presets,
    split_validation,
    zero_shot_model,
)
from clipgap.training.presets import load_presets
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
        ({"shots": 0}, r"train\.shots must be an integer >= 1, got 0"),
        ({"shots": -3}, r"train\.shots must be an integer >= 1, got -3"),
        ({"select_start": 1}, r"train\.select_start must be true or false, got 1"),
    ],
)
def test_train_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


PAPER_PROTOCOL = {  # science.md, "Training protocol"
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 1e-6,
    "weight_decay": 1e-4,
    "batch_size": 128,
    "epochs": 10,
}
# The tuned preset as the README's table states it (lr, batch, epochs; AdamW, weight decay 1e-4).
TUNED_TABLE = {
    "full": (1.116e-4, 64, 3),
    "aclip": (4.774e-4, 64, 3),
    "bitfit": (6.912e-3, 32, 3),
    "lora": (1.154e-2, 64, 3),
    "clip_adapter": (5.069e-2, 64, 20),
    "linear_probe": (0.6268, 64, 20),
}


def test_paper_preset_is_the_protocol_and_the_defaults():
    for method in ALL:
        assert preset("paper", method, model="world") == PAPER_PROTOCOL
    # the defaults are the paper's
    assert TrainConfig(**preset("paper", "full", model="world")) == TrainConfig()


@pytest.mark.parametrize("method", ALL)
def test_tuned_preset_matches_the_documented_table(method):
    lr, batch, epochs = TUNED_TABLE[method]
    expected = {
        "optimizer": "adamw",
        "lr": lr,
        "weight_decay": 1e-4,
        "batch_size": batch,
        "epochs": epochs,
    }
    assert preset("tuned", method, model="world") == expected
    assert TrainConfig(**preset("tuned", method, model="world")).lr == lr


def test_presets_name_their_source_and_refuse_unknown_names():
    assert presets.names() == ["paper", "tuned"]
    assert "2402.09613" in presets.get("paper").source
    world = presets.get("tuned").per_family["world"].source
    assert "configs/world-tune.yaml" in world and "validation accuracy" in world
    a = preset("tuned", "lora", model="world")
    a["lr"] = 1.0  # callers get a copy: the preset itself is unchanged
    assert preset("tuned", "lora", model="world")["lr"] == 1.154e-2
    with pytest.raises(UnknownNameError, match=r"unknown preset 'tunned'.*did you mean 'tuned'"):
        preset("tunned", "lora", model="world")
    with pytest.raises(UnknownNameError, match=r"unknown method 'ful'"):
        preset("tuned", "ful", model="world")


def test_tuned_holds_settings_per_model_family():
    world, vit = (preset("tuned", "full", model=m) for m in ("world", "ViT-B-32"))
    assert world["lr"] == 1.116e-4 and world["epochs"] == 3
    # real ViT-B/32: WiSE-FT's end-to-end setting, not the world's (10x smaller lr)
    assert vit == {"optimizer": "adamw", "lr": 3e-5, "weight_decay": 0.1, "batch_size": 512,
                   "epochs": 10}  # fmt: skip
    assert preset("tuned", "lora", model="hf:openai/clip-vit-base-patch32")["lr"] == 2e-4
    assert "WiSE-FT" in presets.get("tuned").per_family["clip_vit"].source
    # the paper's protocol applies to every family
    assert preset("paper", "lora", model="RN50") == PAPER_PROTOCOL


def test_preset_without_settings_for_the_family_is_refused_in_one_line():
    with pytest.raises(ConfigError) as info:
        preset("tuned", "lora", model="RN50")
    assert str(info.value) == (
        "preset 'tuned' has no settings for model family 'clip_resnet' (model RN50); presets "
        "with settings for it: paper"
    )


@pytest.mark.parametrize("family", ["world", "clip_vit"])
def test_every_family_space_is_a_valid_search_space(family):
    from clipgap.study.search import parse_space

    found = presets.get("tuned").per_family[family]
    assert set(found.space) == set(found.per_method) == set(ALL)
    for method, data in found.space.items():
        space = parse_space(method, data, f"{family}.{method}")
        assert found.per_method[method]["lr"] >= space["lr"].lo  # the setting lies inside
        assert found.per_method[method]["lr"] <= space["lr"].hi


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p: {source: s, per_family: {moon: {every_method: {}}}}\n", "unknown model family 'moon'"),
        (
            "p: {source: s, every_method: {lr: 1}, per_family: {world: {}}}\n",
            "has per_family settings; put every_method",
        ),
        ("- a\n- b\n", r"x\.yaml: expected a mapping of preset names to presets"),
        ("p: {every_method: {}}\n", r"x\.yaml: preset 'p' needs a 'source' text"),
        ("p: {source: s, extra: 1}\n", r"x\.yaml: preset 'p' has unknown key 'extra'"),
        (
            "p: {source: s, per_method: {lora: {lr: -1}}}\n",
            r"x\.yaml: preset 'p', lora: train\.lr must be a finite number > 0\.0",
        ),
        (
            "p: {source: s, every_method: {learning_rate: 1}}\n",
            r"x\.yaml: preset 'p', \(every method\): .*learning_rate",
        ),
    ],
)
def test_bad_preset_files_are_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        load_presets(text, where="x.yaml")


def test_preset_with_per_method_settings_has_no_others():
    registry = load_presets("p: {source: s, per_method: {lora: {lr: 0.5}}}\n")
    assert registry.get("p").settings("lora") == {"lr": 0.5}
    with pytest.raises(UnknownNameError, match=r"preset 'p' has no settings for method 'full'"):
        registry.get("p").settings("full")


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
    assert result.val_accuracy_start == hist[0]["val_accuracy"]
    trained = [h["val_accuracy"] for h in hist[1:]]
    assert result.best_epoch == 1 + int(np.argmax(trained))  # earliest trained epoch on ties
    assert result.val_accuracy == max(trained)
    # the returned model is the best epoch's: its validation accuracy is the recorded one
    assert accuracy(result.model, val, progress=False) == pytest.approx(result.val_accuracy)
    assert result.trainable_params == result.model.n_trainable == 2112
    assert result.seconds > 0 and result.peak_memory_mb > 0
    assert result.method == "bitfit" and result.steps == 9
    assert (result.train_images, result.val_images) == (48, 12)


def _lora_b(model) -> list[torch.Tensor]:
    return [p for n, p in model.trainable_parameters().items() if ".B." in n]


def test_paper_preset_keeps_a_trained_epoch(tiny):
    """lr 1e-6 barely moves LoRA (B starts at 0): validation accuracy ties with the start, and
    the untouched model must still not come back as the fine-tuned one."""
    task = colour_task(60)
    result = finetune(
        tiny,
        task,
        "lora",
        train=TrainConfig(**preset("paper", "lora", model="world")),
        progress=False,
    )
    accs = [h["val_accuracy"] for h in result.history]
    assert len(accs) == 11 and result.best_epoch >= 1
    assert result.best_epoch == 1 + int(np.argmax(accs[1:]))
    assert all(torch.any(b != 0) for b in _lora_b(result.model))  # weights moved from the start
    _, val = split_validation(task, 0.1)
    zs_val = accuracy(zero_shot_model(clone(tiny)), val, progress=False)
    assert result.val_accuracy_start == pytest.approx(zs_val) == accs[0]


def test_select_start_restores_the_old_rule(tiny):
    """With select_start the starting model competes; a later epoch must be strictly better."""
    cfg = TrainConfig(**preset("paper", "lora", model="world"), select_start=True)
    result = finetune(tiny, colour_task(60), "lora", train=cfg, progress=False)
    accs = [h["val_accuracy"] for h in result.history]
    assert result.best_epoch == int(np.argmax(accs)) and result.val_accuracy == max(accs)
    # lr 1e-6 does not beat the start here, so the untouched model comes back (B = 0)
    assert result.best_epoch == 0 and len(set(accs)) == 1
    assert all(torch.all(b == 0) for b in _lora_b(result.model))
    assert result.val_accuracy_start == accs[0]


def test_without_validation_the_last_epoch_is_kept(tiny):
    result = finetune(tiny, colour_task(32), "bitfit", train=fast(val_fraction=0.0), progress=False)
    assert result.best_epoch == 2 and result.val_accuracy is None
    assert result.val_accuracy_start is None and result.val_images == 0


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


def _colour_subset(full: Task, names: list[str]) -> Task:
    """The images of ``full`` whose class is in ``names``, labelled in ``names``' order."""
    keep = np.flatnonzero(np.isin(np.array(full.class_names)[full.labels], names))
    labels = [names.index(full.class_names[y]) for y in full.labels[keep]]
    pixels = ImageArrays(full.images.pixels[keep])
    return Task("colours-sub", "test", pixels, labels, names, full.templates, "colours-sub")


def test_probe_scores_a_class_subset_with_its_head_rows(tiny):
    """ImageNet-R/A under an ImageNet probe: the probe's rows for the subset, not zero-shot."""
    cfg = fast(lr=0.3, epochs=1, val_fraction=0.0, max_steps=3)
    model = finetune(tiny, colour_task(32), "linear_probe", train=cfg, progress=False).model
    assert model.head_classes == ["red", "green", "blue"]
    sub = _colour_subset(colour_task(30, seed=6, split="test"), ["blue", "red"])
    images = torch.stack([tiny.transform(sub.images.load(i)) for i in range(len(sub))])
    with torch.no_grad():
        feats = model.image_features(images)
        w, b = model.head.weight, model.head.bias
        expected = feats @ torch.stack([w[2], w[0]]).T + torch.stack([b[2], b[0]])
        assert torch.allclose(model.logits(feats, sub.class_names, sub.templates), expected)
        zero_shot = model.scaled_cosine(
            feats, model.class_text_features(sub.class_names, sub.templates)
        )
        assert not torch.allclose(zero_shot, expected, atol=1e-3)  # the probe has moved
        # a class the head never saw: every class is scored zero-shot again
        names = ["blue", "purple"]
        text = model.class_text_features(names, sub.templates)
        assert torch.equal(
            model.logits(feats, names, sub.templates), model.scaled_cosine(feats, text)
        )
    want = float((expected.argmax(dim=1).numpy() == sub.labels).mean())
    assert accuracy(model, sub, progress=False) == pytest.approx(want)
