"""Interpolation between the zero-shot and the fine-tuned model (WiSE-FT), for every method.

Exactness at the ends: ``alpha = 1`` reproduces the fine-tuned logits bit for bit for every
method; ``alpha = 0`` reproduces the zero-shot logits bit for bit for full, A-CLIP, BitFit and
LoRA (the tensors are the base model's, the forward pass is the same). For the linear probe and
CLIP-Adapter the model at ``alpha = 0`` holds the zero-shot head / identity adapters exactly (the
tensor tests below check this bit for bit), but its forward pass takes other float operations
than the zero-shot model's: ``x @ (s T)^T + 0`` instead of ``(s x) @ T^T``, and a second
normalisation of an already unit-norm feature. Their logits agree to a few float32 ulps of the
largest logit, which is the tolerance used (``ULPS``).

Logits are compared on frozen copies of the models (``logits``): PyTorch's ``matmul`` picks
another kernel (it folds batch dimensions) when a weight ``requires_grad``, even under
``no_grad``, so a trainable and a frozen copy of the same weights differ in the last bit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from clipgap.alphas import parse_alphas
from clipgap.backbones import load_backbone
from clipgap.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from clipgap.cli import main
from clipgap.data import load_task
from clipgap.embeddings import class_text_features
from clipgap.errors import ConfigError, ModelError
from clipgap.export import save_open_clip_as_hf
from clipgap.interpolate import accuracy_along_alphas, interpolate, model_alpha
from clipgap.methods import apply_method, method_names
from clipgap.methods.lora import lora_deltas, merge
from clipgap.model import AdaptedModel, clone, normalise
from clipgap.training import TrainConfig, accuracy, finetune, zero_shot_model
from clipgap.training.data import load_pixels
from tests.conftest import TINY_MODEL
from tests.test_methods import colour_task

pytestmark = pytest.mark.usefixtures("one_thread")

METHODS = method_names()
SAME_FORWARD = {"full", "aclip", "bitfit", "lora"}  # alpha = 0 bitwise equal to zero-shot
ULPS = 4
GRID = [round(0.05 * i, 2) for i in range(21)]
UNSEEN = (["cat", "dog"], ["a photo of a {c}."])  # zero-shot-style path of every method


@pytest.fixture(scope="module")
def pixels(tiny):
    task = colour_task(10, seed=9)
    return torch.stack([tiny.transform(task.images.load(i)) for i in range(len(task))])


@pytest.fixture(scope="module")
def trained(tiny):
    """method -> a model fine-tuned from ``tiny`` with a high lr (3 AdamW steps), built once."""
    models = {}

    def get(method):
        if method not in models:
            cfg = TrainConfig(
                optimizer="adamw", lr=5e-2, epochs=1, batch_size=8, val_fraction=0.0, max_steps=3
            )
            result = finetune(tiny, colour_task(16), method, train=cfg, progress=False)
            models[method] = result.model
        return models[method]

    return get


def logits(model, pixels, names=None, templates=None):
    """Logits of a frozen copy of ``model`` (same kernels for every model, see above)."""
    task = colour_task(16)
    names, templates = names or task.class_names, templates or task.templates
    model = clone(model).requires_grad_(False)
    with torch.no_grad():
        return model.logits(model.image_features(pixels), names, templates)


def merged_backbone(model) -> dict[str, torch.Tensor]:
    m = clone(model)
    merge(m)  # LoRA folded into plain weights; other methods unchanged
    return {k: v.detach() for k, v in m.backbone.named_parameters()}


def test_merging_a_copy_leaves_the_lora_model_working(trained, pixels):
    ft = trained("lora")
    before = logits(ft, pixels)
    merged = clone(ft)
    merge(merged)
    assert not lora_deltas(merged) and lora_deltas(ft)
    assert torch.equal(logits(ft, pixels), before)
    torch.testing.assert_close(logits(merged, pixels), before, atol=1e-5, rtol=0)


# ---- exactness at the ends ----------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_alpha_one_is_finetuned_and_alpha_zero_is_zero_shot(tiny, trained, pixels, method):
    ft = trained(method)
    before = tiny.fingerprint()
    ft_state = {k: v.clone() for k, v in ft.state_dict().items()}
    zs = zero_shot_model(clone(tiny))
    for names, templates in ((None, None), UNSEEN):
        want_ft = logits(ft, pixels, names, templates)
        want_zs = logits(zs, pixels, names, templates)
        if names is None:
            assert (want_ft - want_zs).abs().max() > 0.1, "fine-tuning must change the logits"
        one = logits(interpolate(ft, tiny, 1.0), pixels, names, templates)
        assert torch.equal(one, want_ft)
        zero = logits(interpolate(ft, tiny, 0.0), pixels, names, templates)
        if method in SAME_FORWARD:
            assert torch.equal(zero, want_zs)
        else:
            tol = ULPS * torch.finfo(torch.float32).eps * float(want_zs.abs().max())
            torch.testing.assert_close(zero, want_zs, rtol=0.0, atol=tol)
            assert torch.equal(zero.argmax(-1), want_zs.argmax(-1))
    assert tiny.fingerprint() == before, "the base model must stay untouched"
    assert all(torch.equal(ft_state[k], v) for k, v in ft.state_dict().items())


@pytest.fixture(scope="module")
def hf_tiny(tiny, tmp_path_factory):
    """The tiny CLIP's weights as a Hugging Face ``CLIPModel`` (separate q/k/v projections)."""
    path = save_open_clip_as_hf(tiny, tmp_path_factory.mktemp("hf") / "tiny")
    return load_backbone(f"hf:{path}")


@pytest.mark.parametrize("method", METHODS)
def test_ends_are_exact_on_the_hugging_face_backbone(hf_tiny, pixels, method):
    cfg = TrainConfig(
        optimizer="adamw", lr=5e-2, epochs=1, batch_size=8, val_fraction=0.0, max_steps=2
    )
    ft = finetune(hf_tiny, colour_task(16), method, train=cfg, progress=False).model
    zs = logits(zero_shot_model(clone(hf_tiny)), pixels)
    assert torch.equal(logits(interpolate(ft, hf_tiny, 1.0), pixels), logits(ft, pixels))
    zero = logits(interpolate(ft, hf_tiny, 0.0), pixels)
    if method in SAME_FORWARD:
        assert torch.equal(zero, zs)
    else:
        tol = ULPS * torch.finfo(torch.float32).eps * float(zs.abs().max())
        torch.testing.assert_close(zero, zs, rtol=0.0, atol=tol)
    merged = merged_backbone(interpolate(ft, hf_tiny, 0.0))
    assert all(torch.equal(merged[k], v) for k, v in hf_tiny.named_parameters())


@pytest.mark.parametrize("method", METHODS)
def test_alpha_zero_tensors_are_the_zero_shot_ones(tiny, trained, method):
    ft = trained(method)
    model = interpolate(ft, tiny, 0.0)
    base = dict(tiny.named_parameters())
    merged = merged_backbone(model)
    assert all(torch.equal(merged[k], base[k]) for k in base), "backbone back at the base model"
    if method == "linear_probe":  # oracle: CLIP's zero-shot classifier, logit scale times text
        text = class_text_features(tiny, model.head_classes, model.templates)
        assert torch.equal(model.head.weight, tiny.logit_scale.detach().exp() * text)
        assert torch.equal(model.head.bias, torch.zeros_like(model.head.bias))
        assert not torch.equal(ft.head.weight, model.head.weight)
    if method == "clip_adapter":
        f = normalise(torch.randn(5, tiny.embed_dim))
        for adapter in (model.image_adapter, model.text_adapter):
            assert adapter.ratio == 0.0 and torch.equal(adapter(f), f)  # the identity map


def test_probe_initialised_at_zeros_still_starts_from_the_zero_shot_head(tiny):
    task = colour_task(16)
    model = AdaptedModel(clone(tiny))
    apply_method(model, "linear_probe", {"init": "zeros"}, class_names=task.class_names,
                 templates=task.templates)  # fmt: skip
    text = class_text_features(tiny, task.class_names, task.templates)
    zero_shot = tiny.logit_scale.detach().exp() * text
    assert torch.equal(interpolate(model, tiny, 0.0).head.weight, zero_shot)
    assert torch.equal(interpolate(model, tiny, 1.0).head.weight, torch.zeros_like(zero_shot))
    half = interpolate(model, tiny, 0.5).head.weight
    torch.testing.assert_close(half, 0.5 * zero_shot, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_intermediate_alpha_is_the_convex_combination(tiny, trained, pixels, method):
    a = 0.3
    ft = trained(method)
    model = interpolate(ft, tiny, a)
    assert model_alpha(model) == a and model_alpha(ft) is None
    theta0 = {k: v.double() for k, v in tiny.named_parameters()}
    theta1 = {k: v.double() for k, v in merged_backbone(ft).items()}
    got = merged_backbone(model)
    for k in theta0:  # full / A-CLIP / BitFit tensors, LoRA's merged W_0 + a * scale * B A
        want = (1 - a) * theta0[k] + a * theta1[k]
        torch.testing.assert_close(got[k].double(), want, rtol=0.0, atol=1e-6)
    changed = [k for k in theta0 if not torch.equal(theta0[k], theta1[k])]
    assert bool(changed) == (method in SAME_FORWARD)
    if method == "linear_probe":
        zero = interpolate(ft, tiny, 0.0).head
        for name in ("weight", "bias"):
            want = (1 - a) * getattr(zero, name).double() + a * getattr(ft.head, name).double()
            torch.testing.assert_close(getattr(model.head, name).double(), want, atol=1e-5, rtol=0)
    if method == "clip_adapter":
        assert model.method_options.ratio == pytest.approx(0.2 * a)
        raw = tiny.encode_image(pixels).detach()
        f = normalise(raw)
        r = 0.2 * a
        with torch.no_grad():
            want = normalise(r * ft.image_adapter.net(f) + (1 - r) * f)
            torch.testing.assert_close(model.project_image(raw), want, atol=1e-6, rtol=0)
    # interpolating an interpolated model composes: 0.5 of the model at 0.5 is the model at 0.25
    twice = interpolate(interpolate(ft, tiny, 0.5), tiny, 0.5)
    assert model_alpha(twice) == 0.25
    torch.testing.assert_close(
        logits(twice, pixels), logits(interpolate(ft, tiny, 0.25), pixels), atol=1e-5, rtol=0
    )


# ---- checkpoints ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_interpolated_checkpoint_round_trip(tiny, trained, pixels, tmp_path, method):
    ft = trained(method)
    plain = save_checkpoint(ft, tmp_path / "ft.safetensors")
    assert read_checkpoint(plain)[0]["alpha"] is None
    assert model_alpha(load_checkpoint(plain)) is None
    model = interpolate(ft, tiny, 0.5)
    path = save_checkpoint(model, tmp_path / "half.safetensors")
    meta, _ = read_checkpoint(path)
    assert meta["alpha"] == 0.5 and meta["method"] == method
    assert meta["base_fingerprint"] == tiny.fingerprint()
    loaded = load_checkpoint(path)  # base rebuilt from the checkpoint
    assert model_alpha(loaded) == 0.5
    for names, templates in ((None, None), UNSEEN):
        want = logits(model, pixels, names, templates)
        assert torch.equal(logits(loaded, pixels, names, templates), want)
    assert not torch.equal(logits(loaded, pixels), logits(ft, pixels))


# ---- accuracy along alpha ------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_accuracy_along_alphas_matches_accuracy_of_each_model(tiny, trained, method):
    ft = trained(method)
    task = colour_task(24, seed=3, split="test")
    alphas = [0.0, 0.5, 1.0]
    got = accuracy_along_alphas(ft, tiny, {"c": task}, alphas)
    assert list(got) == ["c"] and list(got["c"]) == alphas
    want = {a: accuracy(interpolate(ft, tiny, a), task, progress=False) for a in alphas}
    assert got["c"] == want
    assert got["c"][0.0] == accuracy(zero_shot_model(clone(tiny)), task, progress=False)
    assert got["c"][1.0] == accuracy(ft, task, progress=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """world-tiny, pretrained once for this module in its own cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIPGAP_CACHE", str(tmp_path_factory.mktemp("world-cache")))
        return load_backbone("world-tiny")


# (lr, AdamW steps) per method: enough to move world:light well away from zero-shot
WORLD_TRAINING = {
    "full": (1e-3, 20),
    "aclip": (1e-3, 30),
    "bitfit": (1e-2, 30),
    "lora": (1e-2, 30),
    "clip_adapter": (3e-2, 20),
    "linear_probe": (2e-2, 30),
}


@pytest.mark.parametrize("method", METHODS)
def test_accuracy_is_smooth_along_a_fine_alpha_grid(world, method):
    """Adjacent alphas 0.05 apart: no jump in accuracy (at most half the whole change and 0.2)
    nor in logits (at most a quarter of the whole change; 0.05 for a model linear in alpha)."""
    train, test = load_task("world:light", "train"), load_task("world:light", "test")
    test = test.subset(np.arange(0, len(test), 2), split="test-half")  # 250 images
    lr, steps = WORLD_TRAINING[method]
    cfg = TrainConfig(
        optimizer="adamw", lr=lr, epochs=1, batch_size=32, val_fraction=0.0, max_steps=steps
    )
    ft = finetune(world, train, method, train=cfg, progress=False).model
    acc = accuracy_along_alphas(ft, world, [test], GRID)[test.name]
    curve = np.array([acc[a] for a in GRID])
    assert curve[0] == accuracy(zero_shot_model(clone(world)), test, progress=False)
    assert curve[-1] == accuracy(ft, test, progress=False)
    gap = abs(curve[-1] - curve[0])
    assert gap >= 0.3, f"fine-tuning should move accuracy: {curve[0]:.3f} -> {curve[-1]:.3f}"
    steps = np.abs(np.diff(curve))
    assert steps.max() <= min(0.2, gap / 2), np.round(curve, 3).tolist()
    px = load_pixels(test.subset(np.arange(0, len(test), 10), split="few"), world.transform)
    grid = [logits(interpolate(ft, world, a), px, test.class_names, test.templates) for a in GRID]
    whole = (grid[-1] - grid[0]).abs().max()
    jumps = torch.stack([(b - a).abs().max() for a, b in zip(grid, grid[1:], strict=False)])
    assert jumps.max() <= 0.25 * whole


# ---- bad input -----------------------------------------------------------------------------
def test_api_refuses_bad_alphas_and_other_base_models(tiny, trained):
    ft = trained("bitfit")
    for bad, message in ((1.5, "1.5 is outside"), (-0.1, "outside"), ("0.5", "got '0.5'"),
                         (float("nan"), "nan is outside"), (True, "got True")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            interpolate(ft, tiny, bad)
    assert model_alpha(interpolate(ft, tiny, np.float32(0.5))) == 0.5
    with pytest.raises(ConfigError, match="alphas: expected a non-empty list"):
        accuracy_along_alphas(ft, tiny, [colour_task(6)], [])
    other = load_backbone(TINY_MODEL, seed=1)
    with pytest.raises(ModelError, match="not from clipgap-tiny"):
        interpolate(ft, other, 0.5)
    with pytest.raises(ModelError, match="fine-tuned model"):
        interpolate(zero_shot_model(clone(tiny)), tiny, 0.5)
    assert parse_alphas("1, 0.25,0,0.5") == (0.0, 0.25, 0.5, 1.0)  # one rule: sorted
    for text, message in (("0,x", "'x' is not a number"), ("0,2", "2.0 is outside"),
                          ("0,,1", "empty entry"), ("inf", "inf is outside"),
                          ("0,0.5,0.5", "listed more than once in '0,0.5,0.5'")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            parse_alphas(text)


# ---- command line --------------------------------------------------------------------------
def _finetune_cli(tmp_path, model: str, folder) -> str:
    out = tmp_path / "ft"
    argv = ["finetune", "--model", model, "--dataset", f"folder:{folder}", "--method",
            "linear_probe", "--out", str(out), "--no-progress", "train.max_steps=3",
            "train.optimizer=adamw", "train.lr=0.05", "train.val_fraction=0"]  # fmt: skip
    assert main(argv) == 0
    return str(out / "checkpoint.safetensors")


def test_cli_sweep_interpolate_and_evaluate_the_saved_point(tmp_path, image_folder, capsys):
    ckpt = _finetune_cli(tmp_path, TINY_MODEL, image_folder)
    capsys.readouterr()
    data = f"folder:{image_folder}"
    sweep_json = tmp_path / "sweep.json"
    argv = ["evaluate", "--checkpoint", ckpt, "--dataset", data, "--alphas", "0,0.5,1",
            "--json", str(sweep_json)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "(linear_probe on clipgap-tiny)" in out
    assert "alpha=0  alpha=0.5  alpha=1" in out
    result = json.loads(sweep_json.read_text())
    assert result["alphas"] == [0.0, 0.5, 1.0] and result["checkpoint_alpha"] is None
    acc = {r["alpha"]: r["accuracy"] for r in result["results"]}
    task = load_task(data, "test")
    ft = load_checkpoint(ckpt)
    base = load_backbone(TINY_MODEL)
    for a in (0.0, 0.5, 1.0):  # the numbers a user sees are the API's, model by model
        assert acc[a] == accuracy(interpolate(ft, base, a), task, progress=False)
    assert main(["interpolate", "--checkpoint", ckpt, "--alpha", "0.5", "--out",
                 str(tmp_path / "half")]) == 0  # fmt: skip
    assert "at alpha=0.5" in capsys.readouterr().out
    half = str(tmp_path / "half" / "checkpoint.safetensors")
    assert read_checkpoint(half)[0]["extra"]["interpolated_from"] == ckpt
    half_json = tmp_path / "half.json"
    argv = ["evaluate", "--checkpoint", half, "--dataset", data, "--json", str(half_json)]
    assert main(argv) == 0
    assert "interpolated at alpha=0.5" in capsys.readouterr().out
    result = json.loads(half_json.read_text())
    assert result["checkpoint_alpha"] == 0.5
    assert result["results"][0]["finetuned"] == acc[0.5]


def _missing_base(tmp_path, folder):
    config = tmp_path / "cfg" / "mine.json"
    config.parent.mkdir()
    config.write_text(_tiny_config().read_text())
    ckpt = _finetune_cli(tmp_path, str(config), folder)
    config.unlink()
    return ["--checkpoint", ckpt, "--alphas", "0,1"], f"needs its base model '{config}'"


def _tiny_config():
    from clipgap.backbones.open_clip_backbone import MODEL_CONFIG_DIR

    return MODEL_CONFIG_DIR / f"{TINY_MODEL}.json"


BAD = {
    "alpha_above_one": (["--alphas", "0,1.5"], "--alphas: 1.5 is outside [0, 1]"),
    "alpha_not_a_number": (["--alphas", "0,half"], "--alphas: 'half' is not a number"),
    "alpha_nan": (["--alphas", "nan"], "--alphas: nan is outside [0, 1]"),
    "base_not_available": (_missing_base, "needs its base model"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_cli_bad_inputs_are_one_line(case, tmp_path, image_folder, capsys):
    argv, expected = BAD[case]
    if callable(argv):
        argv, expected = argv(tmp_path, image_folder)
    else:
        argv = ["--checkpoint", str(tmp_path / "never-read.safetensors"), *argv]
    capsys.readouterr()
    rc = main(["evaluate", *argv, "--dataset", f"folder:{image_folder}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("error: ") and expected in err[0], err


def test_cli_interpolate_refuses_two_alphas(tmp_path, capsys):
    argv = ["interpolate", "--checkpoint", str(tmp_path / "c.safetensors"), "--alpha", "0.2,0.4",
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 2
    assert "--alpha: expected one number in [0, 1], got '0.2,0.4'" in capsys.readouterr().err
