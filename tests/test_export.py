"""Export round trips: fine-tune the tiny model for two steps, export the checkpoint, reload it
with open_clip / transformers / peft alone and require clipgap's fine-tuned logits (to ~1e-5),
through each library's own preprocessing and tokenizer."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import numpy as np
import open_clip
import pytest
import torch
import transformers
from PIL import Image
from safetensors.torch import load_file, save_file

from clipgap.backbones import load_backbone
from clipgap.checkpoint import save_checkpoint
from clipgap.cli import main
from clipgap.errors import ClipgapError, ConfigError, ModelError, UnknownNameError
from clipgap.export import export_checkpoint, formats_for, save_open_clip_as_hf
from clipgap.training import TrainConfig, finetune, zero_shot_model
from tests.test_methods import COLOURS, colour_task

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = TrainConfig(optimizer="adamw", lr=2e-2, epochs=1, batch_size=8, val_fraction=0.0, max_steps=2)
TEMPLATE = "a photo of a {c}"
PROMPTS = [TEMPLATE.format(c=c) for c in COLOURS]
MERGED = ["full", "aclip", "bitfit", "lora", "linear_probe"]
TOL = {"atol": 2e-5, "rtol": 1e-5}
# transformers >= 5 defaults to a torchvision image processor; its PIL one is open_clip's resize
PIL_BACKEND = {"backend": "pil"} if int(transformers.__version__.split(".")[0]) >= 5 else {}


@pytest.fixture(scope="module")
def images():
    """Colour images plus non-square ones, so each library's resize and crop are exercised."""
    task = colour_task(6, seed=3)
    rng = np.random.default_rng(4)
    odd = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in
           ((37, 45), (64, 33))]  # fmt: skip
    return [task.images.load(i) for i in range(len(task))] + odd


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    """``trained(method, base=None, **options)`` -> (checkpoint path, fine-tuned model), memoised."""
    memo = {}

    def get(method, base=None, **options):
        key = (method, id(base), tuple(sorted(options.items())))
        if key not in memo:
            result = finetune(base or tiny, colour_task(16), method,
                              method_options=options or None, train=CFG, progress=False)  # fmt: skip
            folder = tmp_path_factory.mktemp(method)
            memo[key] = (save_checkpoint(result.model, folder / "ckpt.safetensors"), result.model)
        return memo[key]

    return get


def clipgap_logits(model, images):
    """The fine-tuned model's logits over COLOURS with one template (the head if it has one)."""
    pixels = torch.stack([model.backbone.transform(img) for img in images])
    with torch.no_grad():
        return model.logits(model.image_features(pixels), COLOURS, [TEMPLATE])


def norm(x):
    return x / x.norm(dim=-1, keepdim=True)


def head_logits(out_dir, image_embeds):
    head = load_file(str(out_dir / "linear_head.safetensors"))
    return norm(image_embeds.float()) @ head["weight"].T + head["bias"]


def check_changed(model, images, ref):
    """The reference is really fine-tuned: far (>> the tolerance) from the zero-shot logits."""
    base = zero_shot_model(load_backbone(model.backbone.base_ref["model"]))
    assert (clipgap_logits(base, images) - ref).abs().max() > 1e-3


@pytest.mark.parametrize("method", MERGED)
def test_open_clip_round_trip(trained, images, tmp_path, method):
    path, model = trained(method)
    ref = clipgap_logits(model, images)
    check_changed(model, images, ref)
    manifest = export_checkpoint(path, "open_clip", tmp_path / "oc")
    net, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{tmp_path / 'oc'}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{tmp_path / 'oc'}")
    net.eval()
    with torch.no_grad():
        img = net.encode_image(torch.stack([preprocess(i) for i in images]))
        if method == "linear_probe":
            got = head_logits(tmp_path / "oc", img)
        else:
            got = net.logit_scale.exp() * norm(img) @ norm(net.encode_text(tokenizer(PROMPTS))).T
    torch.testing.assert_close(got, ref, **TOL)
    assert manifest["format"] == "open_clip" and manifest["method"] == method
    saved = json.loads((tmp_path / "oc" / "export.json").read_text())
    assert saved["files"][:2] == ["open_clip_config.json", "open_clip_model.safetensors"]
    assert ("linear_head.safetensors" in saved["files"]) == (method == "linear_probe")


def test_open_clip_weights_load_by_name_and_in_clipgap(trained, images, tmp_path, tiny):
    path, model = trained("bitfit")
    export_checkpoint(path, "open_clip", tmp_path / "oc")
    weights = str(tmp_path / "oc" / "open_clip_model.safetensors")
    net, _, _ = open_clip.create_model_and_transforms("clipgap-tiny", pretrained=weights)
    local = load_backbone(f"local-dir:{tmp_path / 'oc'}")
    pixels = torch.stack([tiny.transform(i) for i in images])
    with torch.no_grad():
        ref = model.backbone.encode_image(pixels)
        torch.testing.assert_close(net.eval().encode_image(pixels), ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(local.encode_image(pixels), ref, atol=1e-5, rtol=1e-5)


def test_model_config_sources(tiny, tmp_path):
    from clipgap.backbones.open_clip_backbone import MODEL_CONFIG_DIR
    from clipgap.export.open_clip_dir import model_config, save_open_clip_dir
    from clipgap.world.model import world_models

    def named(ref, model=tiny.model):  # what model_config reads of a backbone
        return SimpleNamespace(base_ref=ref, spec=ref["model"], model=model)

    shipped = json.loads((MODEL_CONFIG_DIR / "clipgap-tiny.json").read_text())
    assert model_config(tiny) == shipped
    world = named({"backend": "world", "model": "world-tiny"})
    assert model_config(world) == json.loads(world_models.get("world-tiny").config_path.read_text())
    assert model_config(named({"model": str(MODEL_CONFIG_DIR / "clipgap-tiny.json")})) == shipped
    save_open_clip_dir(tiny, tmp_path / "oc")
    assert model_config(load_backbone(f"local-dir:{tmp_path / 'oc'}")) == shipped
    quick = open_clip.create_model("clipgap-tiny", force_quick_gelu=True)
    assert model_config(named({"model": "clipgap-tiny"}, quick)) == {**shipped, "quick_gelu": True}


def hf_forward(model_dir, images, adapter=None):
    from transformers import CLIPModel, CLIPProcessor

    net = CLIPModel.from_pretrained(str(model_dir))
    if adapter is not None:
        from peft import PeftModel

        with warnings.catch_warnings():  # transformers' own deprecation notice, inside peft
            warnings.simplefilter("ignore", FutureWarning)
            net = PeftModel.from_pretrained(net, str(adapter))
    processor = CLIPProcessor.from_pretrained(str(model_dir), **PIL_BACKEND)
    inputs = processor(text=PROMPTS, images=images, return_tensors="pt", padding=True)
    with torch.no_grad():
        return net.eval()(**inputs)


@pytest.mark.parametrize("method", MERGED)
def test_hf_round_trip(trained, images, tmp_path, method):
    path, model = trained(method)
    ref = clipgap_logits(model, images)
    export_checkpoint(path, "hf", tmp_path / "hf")
    out = hf_forward(tmp_path / "hf", images)
    got = head_logits(tmp_path / "hf", out.image_embeds) if method == "linear_probe" else None
    torch.testing.assert_close(out.logits_per_image if got is None else got, ref, **TOL)
    files = {p.name for p in (tmp_path / "hf").iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= files
    assert {"tokenizer.json", "processor_config.json", "export.json"} <= files


def test_hf_processor_reproduces_the_preprocessing(trained, images, tmp_path, tiny):
    from transformers import CLIPProcessor

    export_checkpoint(trained("bitfit")[0], "hf", tmp_path / "hf")
    processor = CLIPProcessor.from_pretrained(str(tmp_path / "hf"), **PIL_BACKEND)
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    expected = torch.stack([tiny.transform(img) for img in images])
    torch.testing.assert_close(pixels, expected, atol=1e-6, rtol=0)
    tokens = processor(text=PROMPTS, return_tensors="pt", padding="max_length", max_length=16)
    ids, ref = tokens["input_ids"], tiny.tokenize(PROMPTS)
    eot = ref.argmax(-1)
    for row in range(len(PROMPTS)):  # same ids up to EOT (HF pads with EOT, open_clip with 0)
        assert torch.equal(ids[row, : eot[row] + 1], ref[row, : eot[row] + 1])


@pytest.mark.parametrize(
    "options",
    [{}, {"towers": "text", "rank": 2, "scale_mode": "alpha_over_r", "alpha": 3.0}],
    ids=["default", "text-r2-alpha3"],
)
def test_peft_round_trip(trained, images, tmp_path, options):
    path, model = trained("lora", **options)
    ref = clipgap_logits(model, images)
    check_changed(model, images, ref)
    export_checkpoint(path, "peft", tmp_path / "p")
    out = hf_forward(tmp_path / "p" / "base", images, adapter=tmp_path / "p" / "adapter")
    torch.testing.assert_close(out.logits_per_image, ref, **TOL)
    cfg = json.loads((tmp_path / "p" / "adapter" / "adapter_config.json").read_text())
    rank, scale = options.get("rank", 4), options.get("alpha", 0.8) / options.get("rank", 4)
    assert cfg["r"] == rank and cfg["lora_alpha"] == pytest.approx(scale * rank)
    if options:
        assert cfg["target_modules"].startswith("(text_model)")
    base = hf_forward(tmp_path / "p" / "base", images)  # the base alone: zero-shot, not tuned
    assert (base.logits_per_image - ref).abs().max() > 1e-3


def test_interpolated_checkpoint_exports_its_own_logits(trained, images, tmp_path, tiny):
    from clipgap.interpolate import interpolate

    _, model = trained("lora")
    half = interpolate(model, tiny, 0.5)
    path = save_checkpoint(half, tmp_path / "half.safetensors")
    ref = clipgap_logits(half, images)
    assert (clipgap_logits(model, images) - ref).abs().max() > 1e-3  # not the alpha-1 model
    manifest = export_checkpoint(path, "peft", tmp_path / "p")
    out = hf_forward(tmp_path / "p" / "base", images, adapter=tmp_path / "p" / "adapter")
    torch.testing.assert_close(out.logits_per_image, ref, **TOL)
    assert manifest["alpha"] == 0.5


def test_hf_base_checkpoint_exports_to_hf_and_peft(tiny, trained, images, tmp_path):
    base = load_backbone(f"hf:{save_open_clip_as_hf(tiny, tmp_path / 'hfbase')}")
    path, model = trained("lora", base=base)
    ref = clipgap_logits(model, images)
    export_checkpoint(path, "hf", tmp_path / "hf")
    torch.testing.assert_close(hf_forward(tmp_path / "hf", images).logits_per_image, ref, **TOL)
    export_checkpoint(path, "peft", tmp_path / "p")
    out = hf_forward(tmp_path / "p" / "base", images, adapter=tmp_path / "p" / "adapter")
    torch.testing.assert_close(out.logits_per_image, ref, **TOL)
    assert formats_for("lora", "hf") == ("hf", "peft")
    with pytest.raises(ConfigError) as exc:
        export_checkpoint(path, "open_clip", tmp_path / "oc")
    _one_line(exc, "Hugging Face CLIPModel", "formats it can take: hf, peft")


def _one_line(exc_info, *needles):
    msg = str(exc_info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg


@pytest.mark.parametrize("fmt", ["open_clip", "hf", "peft"])
def test_clip_adapter_refused(trained, tmp_path, fmt):
    path, _ = trained("clip_adapter")
    with pytest.raises(ConfigError) as exc:
        export_checkpoint(path, fmt, tmp_path / "out")
    _one_line(exc, str(path), f"'clip_adapter' cannot be exported as {fmt!r} nor in any other")
    _one_line(exc, "keep the clipgap checkpoint")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("method", ["bitfit", "linear_probe"])
def test_peft_refused_for_non_lora(trained, tmp_path, method):
    path, _ = trained(method)
    with pytest.raises(ConfigError) as exc:
        export_checkpoint(path, "peft", tmp_path / "out")
    _one_line(exc, f"{method!r} cannot be exported as 'peft'", "formats it can take: open_clip, hf")


def test_bad_inputs(trained, tmp_path):
    with pytest.raises(ModelError) as exc:
        export_checkpoint(tmp_path / "missing.safetensors", "hf", tmp_path / "a")
    _one_line(exc, "missing.safetensors", "does not exist")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ModelError) as exc:
        export_checkpoint(foreign, "hf", tmp_path / "b")
    _one_line(exc, "no clipgap metadata")
    path, _ = trained("bitfit")
    with pytest.raises(UnknownNameError) as exc:
        export_checkpoint(path, "onnx", tmp_path / "c")
    _one_line(exc, "unknown export format 'onnx'", "open_clip, hf, peft")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep me")
    with pytest.raises(ConfigError) as exc:
        export_checkpoint(path, "open_clip", tmp_path / "full")
    _one_line(exc, "is not empty")
    assert (tmp_path / "full" / "x.txt").read_text() == "keep me"


def test_cli_export(trained, tmp_path, capsys):
    path, _ = trained("lora")
    assert main(["export", "--checkpoint", str(path), "--format", "peft", "--out",
                 str(tmp_path / "p")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "exported lora checkpoint" in out and "PeftModel.from_pretrained" in out
    assert (tmp_path / "p" / "adapter" / "adapter_config.json").is_file()
    clip_adapter, _ = trained("clip_adapter")
    code = main(["export", "--checkpoint", str(clip_adapter), "--format", "hf", "--out",
                 str(tmp_path / "h")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert issubclass(ConfigError, ClipgapError)
