"""Checkpoints: trainable tensors only, safetensors + JSON metadata, exact reload, refusals."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from clipgap.backbones import load_backbone
from clipgap.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from clipgap.errors import ModelError
from clipgap.training import TrainConfig, finetune, zero_shot_model
from tests.test_methods import ALL, colour_task

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pixels(tiny):
    task = colour_task(10, seed=9)
    return torch.stack([tiny.transform(task.images.load(i)) for i in range(len(task))])


def trained(tiny, method, **options):
    cfg = TrainConfig(
        optimizer="adamw", lr=1e-2, epochs=1, batch_size=8, val_fraction=0.0, max_steps=2
    )
    return finetune(
        tiny, colour_task(16), method, method_options=options or None, train=cfg, progress=False
    ).model


def logits(model, pixels, names, templates):
    with torch.no_grad():
        return model.logits(model.image_features(pixels), names, templates)


@pytest.mark.parametrize("method", ALL)
def test_save_load_reproduces_logits_exactly(tiny, pixels, tmp_path, method):
    task = colour_task(16)
    model = trained(tiny, method)
    path = save_checkpoint(model, tmp_path / "ckpt.safetensors")
    meta, tensors = read_checkpoint(path)
    assert set(tensors) == set(model.trainable_parameters())
    assert sum(t.numel() for t in tensors.values()) == model.n_trainable
    assert meta["method"] == method and meta["base_ref"]["model"] == "clipgap-tiny"
    assert meta["base_fingerprint"] == tiny.fingerprint()
    loaded = load_checkpoint(path)  # the base model is rebuilt from base_ref
    other = (["cat", "dog"], ["a photo of a {c}."])  # zero-shot-style path for unseen classes
    for names, templates in ((task.class_names, task.templates), other):
        expected = logits(model, pixels, names, templates)
        assert torch.equal(logits(loaded, pixels, names, templates), expected)
    assert loaded.method == method and loaded.head_classes == model.head_classes
    own = (task.class_names, task.templates)
    zs = zero_shot_model(load_backbone("clipgap-tiny"))
    assert not torch.equal(logits(loaded, pixels, *own), logits(zs, pixels, *own)), "trained"


def test_lora_options_survive_the_round_trip(tiny, tmp_path):
    model = trained(tiny, "lora", rank=2, towers="text", scale_mode="alpha_over_r", alpha=3.0)
    path = save_checkpoint(model, tmp_path / "lora.safetensors")
    loaded = load_checkpoint(path, load_backbone("clipgap-tiny"), method="lora")
    assert loaded.method_options == model.method_options
    assert loaded.n_trainable == 2 * 2 * 2 * (32 + 32)  # 2 text blocks x (Q, V) x r(in + out)


def test_safetensors_header_holds_json_metadata_and_no_pickle(tiny, tmp_path):
    path = save_checkpoint(trained(tiny, "bitfit"), tmp_path / "b.safetensors")
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["clipgap"])
    assert meta["format"] == "clipgap-finetune/1" and meta["method_options"] == {}
    assert b"\x80\x04" not in raw[:2]  # not a pickle stream


def test_refuses_another_base_model(tiny, tmp_path):
    path = save_checkpoint(trained(tiny, "lora"), tmp_path / "c.safetensors")
    other = load_backbone("clipgap-tiny", seed=1)
    with pytest.raises(
        ModelError,
        match=r"fine-tuned from base model clipgap-tiny \(fingerprint "
        r"[0-9a-f]+\), not from clipgap-tiny \(fingerprint",
    ):
        load_checkpoint(path, other)


def test_refuses_another_method(tiny, tmp_path):
    path = save_checkpoint(trained(tiny, "bitfit"), tmp_path / "d.safetensors")
    with pytest.raises(ModelError, match=r"holds method 'bitfit', not 'lora'"):
        load_checkpoint(path, method="lora")


def test_refuses_files_that_are_not_clipgap_safetensors(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x80\x04\x95 this is a pickle")
    with pytest.raises(ModelError, match=r"checkpoint .*model\.pt is not a safetensors file"):
        load_checkpoint(bad)
    with pytest.raises(ModelError, match=r"checkpoint .*missing\.safetensors does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(ModelError, match="has no clipgap metadata"):
        load_checkpoint(plain)


def test_refuses_tensors_that_do_not_fit(tiny, tmp_path):
    model = trained(tiny, "lora")
    path = save_checkpoint(model, tmp_path / "e.safetensors")
    meta, tensors = read_checkpoint(path)
    meta["method_options"]["rank"] = 2
    save_file(tensors, str(path), metadata={"clipgap": json.dumps(meta)})
    with pytest.raises(
        ModelError,
        match=r"tensor .*A\.q has shape \(4, 64\), the model expects "
        r"\(2, 64\)",
    ):
        load_checkpoint(path, load_backbone("clipgap-tiny"))


def test_cannot_save_a_model_without_a_method(tiny, tmp_path):
    with pytest.raises(ModelError, match="no fine-tuning method was applied"):
        save_checkpoint(zero_shot_model(load_backbone("clipgap-tiny")), tmp_path / "z.st")
