"""Fine-tuning methods on the tiny CLIP: registry, LoRA maths against peft, learning, exact
ViT-B-32 counts, bad options. The per-method contracts (what changes, shapes, checkpoints, init,
counts) over both backbone kinds are in test_contracts.py."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from clipgap.backbones import load_backbone
from clipgap.data import ImageArrays, Task
from clipgap.errors import ConfigError, ModelError, TrainingError, UnknownNameError
from clipgap.methods import apply_method, count_trainable, method_names, methods
from clipgap.methods.lora import LoraDelta, LoraOptions, lora_deltas
from clipgap.model import AdaptedModel, clone
from clipgap.training import TrainConfig, accuracy, finetune, zero_shot_model

ALL = ["aclip", "bitfit", "clip_adapter", "full", "linear_probe", "lora"]
COLOURS = ["red", "green", "blue"]


def colour_task(n: int = 48, *, seed: int = 0, split: str = "train", classes=COLOURS) -> Task:
    """Synthetic 32x32 images whose dominant colour channel is the class: separable."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(classes)
    pixels = rng.integers(0, 60, (n, 32, 32, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        pixels[i, ..., label % 3] += 180
    return Task(
        name="colours",
        split=split,
        images=ImageArrays(pixels),
        labels=labels,
        class_names=list(classes),
        templates=["a {c} picture.", "a photo of something {c}."],
        fingerprint=f"colours-{n}-{seed}-{split}-{len(classes)}",
    )


pytestmark = pytest.mark.usefixtures("one_thread")


def test_registry_lists_every_method():
    assert method_names() == ALL
    with pytest.raises(UnknownNameError, match=r"unknown method 'lorra'.*did you mean 'lora'"):
        methods.get("lorra")


def _peft_linear(weight: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float):
    from peft import LoraConfig, get_peft_model

    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(weight)
    cfg = LoraConfig(r=A.shape[0], lora_alpha=alpha, target_modules=["lin"], lora_dropout=0.0)
    model = get_peft_model(nn.Sequential(OrderedDict(lin=lin)), cfg)
    layer = model.base_model.model.lin
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(A)
        layer.lora_B["default"].weight.copy_(B)
    return model


@pytest.mark.parametrize("scale_mode", ["fixed", "alpha_over_r"])
def test_lora_maths_match_peft(scale_mode):
    torch.manual_seed(0)
    d, r = 8, 2
    opts = LoraOptions(rank=r, scale_mode=scale_mode, alpha=1.5)
    fused = torch.randn(3 * d, d)
    delta = LoraDelta(fused, {"q": (0, d), "v": (2 * d, 3 * d)}, opts)
    assert torch.equal(delta(fused), fused), "B = 0: starts at the base weight"
    with torch.no_grad():
        for role in ("q", "v"):
            delta.B[role].normal_()
    x = torch.randn(5, d)
    y = F.linear(x, delta(fused))
    alpha = opts.effective_scale * r  # peft's scaling is lora_alpha / r
    for role, rows in (("q", slice(0, d)), ("v", slice(2 * d, 3 * d))):
        ref = _peft_linear(fused[rows], delta.A[role], delta.B[role], alpha)
        assert torch.allclose(y[:, rows], ref(x), atol=1e-5)
    assert torch.equal(delta(fused)[d : 2 * d], fused[d : 2 * d]), "K rows untouched"
    assert opts.effective_scale == (0.2 if scale_mode == "fixed" else 1.5 / r)


def test_lora_on_open_clip_adds_scaled_update_to_q_and_v(tiny):
    model = AdaptedModel(clone(tiny))
    apply_method(model, "lora", {"rank": 3})
    deltas = lora_deltas(model)
    assert len(deltas) == 4  # 2 image + 2 text blocks
    attn = model.backbone.model.transformer.resblocks[0].attn
    delta = attn.parametrizations.in_proj_weight[0]
    base = attn.parametrizations.in_proj_weight.original.detach().clone()
    assert delta.A["q"].std().item() == pytest.approx(0.02, rel=0.3)
    with torch.no_grad():
        delta.B["q"].fill_(1.0)
    d = base.shape[1]
    expected = base[:d] + 0.2 * delta.B["q"] @ delta.A["q"]
    assert torch.allclose(attn.in_proj_weight[:d], expected, atol=1e-6)
    assert torch.equal(attn.in_proj_weight[d:], base[d:])


@pytest.mark.parametrize("method", ALL)
def test_a_few_steps_raise_training_accuracy(tiny, method):
    task = colour_task(48)
    before = accuracy(zero_shot_model(clone(tiny)), task, progress=False)
    cfg = TrainConfig(
        optimizer="adamw", lr=3e-2, weight_decay=0.0, epochs=6, batch_size=16, val_fraction=0.0
    )
    result = finetune(tiny, task, method, train=cfg, progress=False)
    after = accuracy(result.model, task, progress=False)
    assert after > before + 0.2, (before, after)
    assert result.history[-1]["train_accuracy"] > result.history[1]["train_accuracy"] - 1e-9


def test_vit_b_32_counts_are_exact():
    backbone = load_backbone("ViT-B-32")
    counts = {m: count_trainable(backbone.to("meta"), m) for m in ALL}
    assert counts == {
        "full": 151_277_313,
        "aclip": 30_670_848,
        "bitfit": 168_960,
        "lora": 245_760,
        "clip_adapter": 262_144,
        "linear_probe": 512 + 1,
    }
    assert count_trainable(backbone, "lora", {"rank": 8}) == 2 * 245_760


def test_bad_options_and_unsupported_backbones(tiny, monkeypatch):
    model = AdaptedModel(clone(tiny))
    with pytest.raises(ConfigError, match=r"method\.rank must be an integer >= 1, got 0"):
        apply_method(model, "lora", {"rank": 0})
    with pytest.raises(ConfigError, match=r"unknown key 'method.rnak'.*did you mean 'rank'"):
        apply_method(model, "lora", {"rnak": 2})
    with pytest.raises(ConfigError, match=r"method\.towers: 'vision' is not allowed"):
        apply_method(model, "lora", {"towers": "vision"})
    with pytest.raises(ConfigError, match=r"reduction=5 does not divide the embedding size 32"):
        apply_method(model, "clip_adapter", {"reduction": 5})
    with pytest.raises(ConfigError, match=r"method\.ratio must be a number in \[0, 1\]"):
        apply_method(model, "clip_adapter", {"ratio": 1.5})
    with pytest.raises(TrainingError, match="linear_probe.*class names"):
        apply_method(model, "linear_probe")
    apply_method(model, "bitfit")
    with pytest.raises(TrainingError, match="already fine-tuned with 'bitfit'"):
        apply_method(model, "lora")

    def no_sites():
        raise NotImplementedError

    other = AdaptedModel(clone(tiny))
    monkeypatch.setattr(other.backbone, "projection_sites", no_sites)
    for method in ("aclip", "lora"):
        with pytest.raises(
            ModelError,
            match=rf"method '{method}' does not support backbone "
            r"clipgap-tiny: it exposes no attention",
        ):
            apply_method(other, method)
