"""The Hugging Face CLIP backend against open_clip: convert the tiny model, reload it as ``hf:DIR``
and require the same embeddings, logits, preprocessing, tokens and PEFT hook sizes."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from clipgap.backbones import load_backbone
from clipgap.backbones.hf_backbone import HFClipBackbone
from clipgap.backbones.hf_files import ProcessorSettings
from clipgap.embeddings import class_text_features, zero_shot_logits
from clipgap.errors import ModelError
from clipgap.export import (
    HF_ARGMAX_POOLING_EOS_ID,
    hf_to_open_clip,
    open_clip_to_hf,
    processor_settings_from_transform,
    save_open_clip_as_hf,
)

PROMPTS = [
    "a photo of a cat",
    "a photo of a red fox texture",
    'a photo of a "stop" traffic sign',
    'a photo of the number: "7"',
    "a centered satellite photo of annual crop land",
    "It's   a  VERY long prompt about a dog, a cat and a fox, longer than the context!",
]


@pytest.fixture(scope="module")
def oc(tiny_model_name):
    torch.set_num_threads(2)
    return load_backbone(tiny_model_name, seed=3)


@pytest.fixture(scope="module")
def hf_dir(oc, tmp_path_factory):
    return save_open_clip_as_hf(oc, tmp_path_factory.mktemp("hf") / "tiny")


@pytest.fixture(scope="module")
def hf(hf_dir):
    return load_backbone(f"hf:{hf_dir}")


def _images(n=5, seed=0):
    """Non-square RGB and greyscale PIL images, so resize and centre crop both matter."""
    rng = np.random.default_rng(seed)
    sizes = [(45, 37), (32, 32), (70, 40), (33, 64), (50, 50)]
    out = []
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        img = Image.fromarray(arr)
        out.append(img.convert("L") if i == 3 else img)
    return out


def test_loads_as_hf_backbone(hf, hf_dir):
    assert isinstance(hf, HFClipBackbone)
    assert hf.spec == f"hf:{hf_dir}"
    ref = {"backend": "hf", "model": f"hf:{hf_dir.resolve()}", "pretrained": None}
    assert hf.base_ref == ref
    assert hf.embed_dim == 32
    assert not hf.training
    files = {p.name for p in hf_dir.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= files
    assert "tokenizer.json" in files


def test_same_image_embeddings_and_logit_scale(oc, hf):
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = oc.encode_image(x), hf.encode_image(x)
    assert a.shape == b.shape == (6, 32)
    assert a.abs().max() > 0.1  # not trivially zero
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    assert hf.logit_scale.shape == oc.logit_scale.shape == ()
    assert hf.logit_scale.item() == oc.logit_scale.item()


def test_same_preprocessing(oc, hf):
    for img in _images():
        a, b = oc.transform(img), hf.transform(img)
        assert a.shape == b.shape == (3, 32, 32)
        torch.testing.assert_close(b, a, atol=1e-6, rtol=0)


def test_tokenizer_files_give_open_clip_ids_up_to_eot(oc, hf):
    a, b = oc.tokenize(PROMPTS), hf.tokenize(PROMPTS)
    assert a.shape == b.shape == (len(PROMPTS), 16)
    eot = 49407
    for row_a, row_b in zip(a, b, strict=True):
        end = int((row_a == eot).nonzero()[0])
        assert torch.equal(row_a[: end + 1], row_b[: end + 1])
        assert (row_a[end + 1 :] == 0).all() and (row_b[end + 1 :] == eot).all()
    assert a[-1, -1] == eot  # the long prompt is truncated and still ends with EOT


def test_same_text_embeddings(oc, hf):
    with torch.no_grad():
        a, b = oc.encode_text(oc.tokenize(PROMPTS)), hf.encode_text(hf.tokenize(PROMPTS))
    assert a.abs().max() > 0.1
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


def test_fallback_tokenizer_without_tokenizer_files(oc, hf_dir, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(hf_dir, bare)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (bare / name).unlink()
    hf = load_backbone(f"hf:{bare}")
    tokens = hf.tokenize(PROMPTS)
    assert torch.equal(tokens, oc.tokenize(PROMPTS))  # open_clip's tokenizer, 16 tokens
    with torch.no_grad():
        torch.testing.assert_close(
            hf.encode_text(tokens), oc.encode_text(tokens), atol=1e-5, rtol=0
        )


def test_same_zero_shot_logits_on_synthetic_images(oc, hf):
    classes, templates = ["cat", "dog", "red fox"], ["a photo of a {c}", "a {c} texture"]
    logits = []
    for bb in (oc, hf):
        pixels = torch.stack([bb.transform(img) for img in _images()])
        with torch.no_grad():
            text = class_text_features(bb, classes, templates)
            logits.append(zero_shot_logits(bb.encode_image(pixels), text, bb.logit_scale))
    assert logits[0].shape == (5, 3)
    assert logits[0].std() > 0.01
    torch.testing.assert_close(logits[1], logits[0], atol=1e-4, rtol=1e-5)
    assert torch.equal(logits[1].argmax(1), logits[0].argmax(1))


def _sites(bb):
    return [
        (s.tower, s.block, s.role, s.out_features, s.in_features) for s in bb.projection_sites()
    ]


def test_projection_sites_match_open_clip(oc, hf):
    assert _sites(hf) == _sites(oc)
    assert len(_sites(hf)) == 2 * 2 * 3  # 2 towers x 2 blocks x q/k/v
    aclip = sum(o * i for *_, o, i in _sites(hf))
    assert aclip == sum(p.numel() for n, p in oc.named_parameters() if "in_proj_weight" in n)
    lora_r4 = sum(4 * (o + i) for _, _, role, o, i in _sites(hf) if role in "qv")
    assert lora_r4 == sum(4 * (o + i) for _, _, role, o, i in _sites(oc) if role in "qv")
    for site in hf.projection_sites():
        assert site.param_name == "weight" and site.rows == slice(0, site.out_features)
        assert (
            site.module.weight
            is getattr(hf.model.get_submodule(_layer_path(site)), f"{site.role}_proj").weight
        )


def _layer_path(site):
    tower = "vision_model" if site.tower == "image" else "text_model"
    return f"{tower}.encoder.layers.{site.block}.self_attn"


def test_projection_sites_are_live(hf):
    hf = copy.deepcopy(hf)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = hf.encode_image(x)
        site = next(s for s in hf.projection_sites() if s.tower == "image" and s.role == "v")
        getattr(site.module, site.param_name)[site.rows].mul_(2.0)
        assert (hf.encode_image(x) - before).abs().max() > 1e-3


def test_block_biases_same_parameter_count(oc, hf):
    hb, ob = hf.block_biases(), oc.block_biases()
    assert sum(p.numel() for p in hb.values()) == sum(p.numel() for p in ob.values()) == 2112
    # HF keeps q/k/v biases apart (8 tensors per block), open_clip fuses them (6 per block)
    assert len(hb) == 8 * 4 and len(ob) == 6 * 4
    assert "image.0.self_attn.q_proj.bias" in hb and "text.1.mlp.fc2.bias" in hb
    assert not any("pre_layrnorm" in n or "post_layernorm" in n or "final_layer" in n for n in hb)
    assert all(n.endswith("bias") for n in hb)


def test_tower_parameters_and_totals(oc, hf):
    for tower in ("image", "text"):
        h, o = hf.tower_parameters(tower), oc.tower_parameters(tower)
        assert sum(p.numel() for p in h.values()) == sum(p.numel() for p in o.values())
    image, text = hf.tower_parameters("image"), hf.tower_parameters("text")
    assert not set(image) & set(text)
    rest = {n for n, _ in hf.named_parameters()} - set(image) - set(text)
    assert rest == {"model.logit_scale"}
    assert sum(p.numel() for p in hf.parameters()) == sum(p.numel() for p in oc.parameters())


def test_round_trip_back_to_open_clip(oc, hf, tiny_model_name):
    state = hf_to_open_clip(hf.model)
    ref = oc.model.state_dict()
    assert set(state) == set(ref) - {"attn_mask"}
    for key, value in ref.items():
        if key != "attn_mask":
            assert torch.equal(state[key], value), key
    fresh = load_backbone(tiny_model_name, seed=99)
    fresh.model.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh.encode_image(x), oc.encode_image(x), atol=0, rtol=0)


def test_config_pools_like_open_clip(oc):
    config, state = open_clip_to_hf(oc.model)
    assert config.text_config.eos_token_id == HF_ARGMAX_POOLING_EOS_ID
    assert config.text_config.hidden_act == config.vision_config.hidden_act == "gelu"
    assert config.text_config.max_position_embeddings == 16
    assert state["visual_projection.weight"].shape == (32, 64)
    assert torch.equal(state["text_projection.weight"], oc.model.text_projection.T)


def _encode_both(oc_model, config, state, x, tokens):
    from transformers import CLIPModel

    model = CLIPModel(config).eval()
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        ref = (oc_model.encode_image(x), oc_model.encode_text(tokens))
        img = model.visual_projection(model.vision_model(pixel_values=x).pooler_output)
        txt = model.text_projection(model.text_model(input_ids=tokens).pooler_output)
    return ref, (img, txt)


def test_quick_gelu_model_converts_and_activation_matters(oc, tiny_model_name):
    qg = open_clip.create_model(tiny_model_name, force_quick_gelu=True).eval()
    qg.load_state_dict(oc.model.state_dict())  # same weights, QuickGELU activation
    config, state = open_clip_to_hf(qg)
    assert config.vision_config.hidden_act == config.text_config.hidden_act == "quick_gelu"
    x, tokens = torch.randn(3, 3, 32, 32), oc.tokenize(PROMPTS[:3])
    ref, got = _encode_both(qg, config, state, x, tokens)
    for r, g in zip(ref, got, strict=True):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)
    config.vision_config.hidden_act = "gelu"  # the wrong activation must show
    ref, got = _encode_both(qg, config, state, x, tokens)
    assert (ref[0] - got[0]).abs().max() > 1e-4


def test_processor_settings_formats():
    old = ProcessorSettings.from_dict({"size": 40, "crop_size": 36}, "p.json")
    assert old.resize == 40 and old.crop == (36, 36)
    exact = ProcessorSettings.from_dict(
        {"size": {"height": 30, "width": 20}, "crop_size": {"height": 16, "width": 12}}, "p.json"
    )
    assert exact.resize == (30, 20)
    out = exact.to_transform()(Image.new("RGB", (50, 50), (255, 0, 0)))
    assert out.shape == (3, 16, 12)
    torch.testing.assert_close(
        out[:, 0, 0],
        torch.tensor(
            [(1 - 0.48145466) / 0.26862954, -0.4578275 / 0.26130258, -0.40821073 / 0.27577711]
        ),
    )
    raw = ProcessorSettings.from_dict({"size": 8, "crop_size": 8, "do_normalize": False}, "p")
    assert raw.to_transform()(Image.new("RGB", (8, 8), (255, 255, 255))).min() == 1.0


@pytest.mark.parametrize(
    ("cfg", "needle"),
    [
        ({"size": 8, "crop_size": 8, "image_std": [0.2, 0.0, 0.2]}, "image_std must be > 0"),
        ({"size": 8, "crop_size": {"h": 8}}, "cannot read crop_size"),
        ({"size": 8, "crop_size": 8, "rescale_factor": 1.0}, "rescale_factor 1/255"),
        ({"size": 8, "crop_size": 8, "resample": 9}, "resample 9"),
        ({"size": -1, "crop_size": 8}, "sizes must be positive"),
    ],
)
def test_bad_processor_settings(cfg, needle):
    with pytest.raises(ModelError, match=needle):
        ProcessorSettings.from_dict(cfg, "dir/preprocessor_config.json")


def test_open_clip_transform_reads_back(oc):
    settings = processor_settings_from_transform(oc.transform)
    assert settings.resize == 32 and settings.crop == (32, 32) and settings.resample == 3


def _one_line(exc_info, *needles):
    msg = str(exc_info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg


def test_error_pretrained_given(hf_dir):
    with pytest.raises(ModelError) as exc:
        load_backbone(f"hf:{hf_dir}", "openai")
    _one_line(exc, str(hf_dir), "carries its own weights", "'openai'")


def test_error_directory_without_config(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelError) as exc:
        load_backbone(f"hf:{tmp_path}")
    _one_line(exc, str(tmp_path), "no config.json", "weights.bin")


def test_error_not_a_clip_model(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError) as exc:
        load_backbone(f"hf:{tmp_path}")
    _one_line(exc, str(tmp_path), "model_type 'bert'", "expected 'clip'")


def test_error_bad_config_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError) as exc:
        load_backbone(f"hf:{tmp_path}")
    _one_line(exc, str(tmp_path), "not valid JSON")


def test_error_missing_directory_and_file(tmp_path, hf_dir):
    with pytest.raises(ModelError) as exc:
        load_backbone(f"hf:{tmp_path}/nope")
    _one_line(exc, "does not exist")
    with pytest.raises(ModelError) as exc:
        load_backbone(f"hf:{hf_dir / 'config.json'}")
    _one_line(exc, "is a file")


def test_error_weights_missing_or_incomplete(hf_dir, tmp_path):
    only_cfg = tmp_path / "cfg"
    only_cfg.mkdir()
    shutil.copy(hf_dir / "config.json", only_cfg / "config.json")
    with pytest.raises(ModelError) as exc:
        load_backbone(f"hf:{only_cfg}")
    _one_line(exc, str(only_cfg))
    partial = tmp_path / "partial"
    shutil.copytree(hf_dir, partial)
    weights = load_file(str(partial / "model.safetensors"))
    del weights["text_projection.weight"]
    save_file(weights, str(partial / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelError) as exc:
        load_backbone(f"hf:{partial}")
    _one_line(exc, "text_projection.weight", "refusing random init")


def test_error_hub_id_offline():
    with pytest.raises(ModelError) as exc:
        load_backbone("hf:clipgap-tests/no-such-clip")
    _one_line(exc, "clipgap-tests/no-such-clip", "HF_HUB_OFFLINE")


def test_error_unconvertible_open_clip_models(oc):
    with_bias = copy.deepcopy(oc.model)
    with_bias.logit_bias = nn.Parameter(torch.zeros(()))
    with pytest.raises(ModelError, match="logit_bias"):
        open_clip_to_hf(with_bias)
    last_pool = copy.deepcopy(oc.model)
    last_pool.text_pool_type = "last"
    with pytest.raises(ModelError, match="text pool_type 'last'"):
        open_clip_to_hf(last_pool)
    with pytest.raises(ModelError, match="not an open_clip backbone"):
        save_open_clip_as_hf(object(), "unused")


@pytest.mark.slow
def test_vit_b_32_real_size_conversion(tmp_path):
    """Random-init open_clip ViT-B-32 -> HF: the spec's parameter counts and equal embeddings."""
    oc = load_backbone("ViT-B-32", seed=0)
    hf = load_backbone(f"hf:{save_open_clip_as_hf(oc, tmp_path / 'b32')}")
    assert sum(p.numel() for p in hf.parameters()) == 151_277_313
    assert sum(o * i for *_, o, i in _sites(hf)) == 30_670_848  # A-CLIP
    assert sum(p.numel() for p in hf.block_biases().values()) == 168_960  # BitFit
    assert sum(4 * (o + i) for _, _, r, o, i in _sites(hf) if r in "qv") == 245_760  # LoRA r=4
    pixels = torch.stack([oc.transform(img) for img in _images(2)])
    torch.testing.assert_close(torch.stack([hf.transform(i) for i in _images(2)]), pixels)
    with torch.no_grad():
        for a, b in (
            (oc.encode_image(pixels), hf.encode_image(pixels)),
            (oc.encode_text(oc.tokenize(PROMPTS)), hf.encode_text(hf.tokenize(PROMPTS))),
        ):
            torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
