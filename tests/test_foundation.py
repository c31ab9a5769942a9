"""Foundation: registry, cache dir, folder tasks, open_clip loading, zero-shot head, cache."""

from __future__ import annotations

import json

import numpy as np
import open_clip
import pytest
import torch
from safetensors.torch import save_file

from clipgap.backbones import load_backbone
from clipgap.cli import main
from clipgap.data import load_task, parse_spec
from clipgap.embeddings import class_text_features, encode_images
from clipgap.errors import DataError, ModelError, UnknownNameError
from clipgap.paths import cache_dir
from clipgap.registry import Registry

from .conftest import TINY_MODEL, make_image_folder


def test_registry_rejects_duplicates_and_lists_valid_names():
    reg = Registry("widget")
    reg.register("alpha")(1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("alpha")(2)
    with pytest.raises(UnknownNameError, match="did you mean 'alpha'.*choose from: alpha"):
        reg.get("alpah")


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("CLIPGAP_CACHE", str(tmp_path / "a"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("CLIPGAP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir("emb") == tmp_path / "x" / "clipgap" / "emb"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "clipgap"


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("folder:/data/x", ("folder", "/data/x", None)),
        ("world:shape@sketch", ("world", "shape", "sketch")),
        ("cifar100", ("cifar100", "", None)),
        ("folder:/a@b/c", ("folder", "/a@b/c", None)),
    ],
)
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


def test_folder_task_labels_and_names(image_folder):
    task = load_task(f"folder:{image_folder}", "train")
    assert task.class_names == ["cat", "dog", "red fox"]
    assert np.bincount(task.labels).tolist() == [6, 6, 6]
    assert task.images.load(0).size == (32, 32)
    other = load_task(f"folder:{image_folder}", "test")
    assert other.fingerprint != task.fingerprint


def test_folder_bad_inputs(tmp_path, image_folder):
    with pytest.raises(DataError, match="does not exist"):
        load_task(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="no 'val' split folder"):
        load_task(f"folder:{image_folder}", "val")
    (image_folder / "test" / "empty").mkdir()
    with pytest.raises(DataError, match="empty has no images"):
        load_task(f"folder:{image_folder}", "test")
    (tmp_path / "flat" / "test").mkdir(parents=True)
    with pytest.raises(DataError, match="no class subfolders"):
        load_task(f"folder:{tmp_path / 'flat'}", "test")


def test_unreadable_image_names_the_file(image_folder):
    bad = image_folder / "test" / "cat" / "broken.png"
    bad.write_bytes(b"not a png")
    task = load_task(f"folder:{image_folder}", "test")
    backbone = load_backbone(TINY_MODEL)
    with pytest.raises(DataError, match="broken.png"):
        encode_images(backbone, task, progress=False)


def test_zero_shot_head_matches_open_clip():
    backbone = load_backbone(TINY_MODEL)
    names, templates = ["cat", "dog", "car"], ["a photo of a {c}.", "a drawing of a {c}."]
    ours = class_text_features(backbone, names, templates)
    tok = open_clip.get_tokenizer("ViT-B-32", context_length=16)
    ref = open_clip.build_zero_shot_classifier(
        backbone.model, tok, names, [t.replace("{c}", "{}") for t in templates]
    )
    torch.testing.assert_close(ours, ref.T, atol=1e-6, rtol=0)


def test_embedding_cache_hit(image_folder, monkeypatch):
    backbone = load_backbone(TINY_MODEL)
    task = load_task(f"folder:{image_folder}", "test")
    first = encode_images(backbone, task, progress=False)
    calls = []
    monkeypatch.setattr(backbone, "encode_image", lambda x: calls.append(1) or 1 / 0)
    second = encode_images(backbone, task, progress=False)
    assert calls == []
    torch.testing.assert_close(first, second)
    assert first.shape == (12, 32)


def test_random_init_is_reproducible():
    a, b = load_backbone(TINY_MODEL, seed=3), load_backbone(TINY_MODEL, seed=3)
    assert a.fingerprint() == b.fingerprint()
    assert load_backbone(TINY_MODEL, seed=4).fingerprint() != a.fingerprint()


def _local_dir(tmp_path):
    backbone = load_backbone(TINY_MODEL, seed=7)
    d = tmp_path / "tiny-local"
    d.mkdir()
    from clipgap.backbones.open_clip_backbone import MODEL_CONFIG_DIR

    cfg = json.loads((MODEL_CONFIG_DIR / f"{TINY_MODEL}.json").read_text())
    (d / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    state = {k: v.contiguous() for k, v in backbone.model.state_dict().items()}
    save_file(state, str(d / "open_clip_model.safetensors"))
    return d, backbone


def test_local_dir_and_checkpoint_file_load_same_weights(tmp_path):
    d, original = _local_dir(tmp_path)
    loaded = load_backbone(f"local-dir:{d}")
    from_file = load_backbone(TINY_MODEL, str(d / "open_clip_model.safetensors"))
    x = torch.randn(2, 3, 32, 32)
    for other in (loaded, from_file):
        torch.testing.assert_close(other.encode_image(x), original.encode_image(x))


def test_model_bad_inputs(tmp_path):
    with pytest.raises(UnknownNameError, match="ViT-B-32"):
        load_backbone("ViT-B-23")
    with pytest.raises(UnknownNameError, match="unknown pretrained tag 'opnai'.*openai"):
        load_backbone("ViT-B-32", "opnai")
    with pytest.raises(ModelError, match="missing open_clip_config.json"):
        load_backbone(f"local-dir:{tmp_path}")
    with pytest.raises(ModelError, match="does not exist"):
        load_backbone(str(tmp_path / "missing.json"))
    with pytest.raises(ModelError, match="checkpoint file .* does not exist"):
        load_backbone(TINY_MODEL, str(tmp_path / "missing.pt"))


def test_pretrained_tag_without_network_fails_clearly():
    with pytest.raises(ModelError, match="could not download pretrained weights 'openai'"):
        load_backbone("RN50", "openai")


def test_difficulty_cli_writes_json(tmp_path, capsys):
    d, backbone = _local_dir(tmp_path)
    root = tmp_path / "imgs"
    make_image_folder(root / "test", per_class=5)
    out = tmp_path / "diff.json"
    rc = main(
        [
            "difficulty",
            "--model",
            f"local-dir:{d}",
            "--dataset",
            f"folder:{root}",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    data = json.loads(out.read_text())
    task = load_task(f"folder:{root}", "test")
    img = encode_images(backbone, task, progress=False)
    img = img / img.norm(dim=-1, keepdim=True)
    txt = class_text_features(backbone, task.class_names, task.templates)
    cos = (img @ txt.T).numpy()
    assert data["n_images"] == 15 and data["n_classes"] == 3
    assert data["acs"] == pytest.approx(cos[np.arange(15), task.labels].mean(), abs=1e-5)
    assert data["zero_shot_accuracy"] == pytest.approx((cos.argmax(1) == task.labels).mean())
    assert "silhouette_modality" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--dataset", "folder:/definitely/missing"], "does not exist"),
        (["--dataset", "nosuchkind:x"], "unknown dataset 'nosuchkind'"),
        (["--model", "ViT-B-23"], "did you mean"),
    ],
)
def test_difficulty_cli_bad_input_is_one_line(args, message, capsys, image_folder):
    base = {"--model": TINY_MODEL, "--dataset": f"folder:{image_folder}"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["difficulty"] + [x for kv in base.items() for x in kv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


@pytest.mark.slow
def test_vit_b32_smoke(image_folder):
    backbone = load_backbone("ViT-B-32")
    task = load_task(f"folder:{image_folder}", "test")
    emb = encode_images(backbone, task, progress=False)
    assert emb.shape == (12, 512) and torch.isfinite(emb).all()
