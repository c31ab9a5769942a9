"""An open_clip ``local-dir:`` folder: ``open_clip_config.json`` + ``open_clip_model.safetensors``.

``open_clip.create_model_and_transforms("local-dir:DIR")`` (and clipgap's ``local-dir:DIR``
backbone) loads the folder with its preprocessing; the weights file alone also loads as
``create_model_and_transforms(NAME, pretrained="DIR/open_clip_model.safetensors")`` wherever
open_clip knows the architecture ``NAME``.
"""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
from safetensors.torch import save_file

from clipgap.backbones.open_clip_backbone import MODEL_CONFIG_DIR
from clipgap.errors import ModelError
from clipgap.export.convert import act_name

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read the {what} {path}: {exc}") from None


def model_config(backbone) -> dict:
    """The open_clip model config (``embed_dim``, ``vision_cfg``, ``text_cfg`` ...) of a backbone.

    Found from how the backbone was named (``backbone.base_ref``): a world model's JSON, a
    ``local-dir:`` folder's config, a config ``.json`` path, a config shipped with clipgap, or
    open_clip's registry. The activation (QuickGELU or GELU) is read from the model itself.
    """
    ref = backbone.base_ref or {}
    name = str(ref.get("model") or backbone.spec)
    if ref.get("backend") == "world":
        from clipgap.world.model import world_model

        cfg = _read_json(world_model(name).config_path, "world model config")
    elif name.startswith("local-dir:"):
        path = Path(name.removeprefix("local-dir:")).expanduser() / CONFIG_FILE
        cfg = _read_json(path, "open_clip config").get("model_cfg")
    elif name.endswith(".json"):
        cfg = _read_json(Path(name).expanduser(), "model config")
    elif (MODEL_CONFIG_DIR / f"{name}.json").is_file():
        cfg = _read_json(MODEL_CONFIG_DIR / f"{name}.json", "model config")
    else:
        cfg = open_clip.get_model_config(name)
    if not isinstance(cfg, dict) or "vision_cfg" not in cfg:
        raise ModelError(f"base model {name}: cannot find its open_clip model config")
    cfg = json.loads(json.dumps(cfg))  # a private copy
    model = backbone.model
    try:
        acts = {
            act_name("image", model.visual.transformer.resblocks),
            act_name("text", model.transformer.resblocks),
        }
    except (ModelError, AttributeError):
        return cfg  # not plain CLIP blocks: keep the config's own activation setting
    if acts == {"quick_gelu"}:
        cfg["quick_gelu"] = True
    elif acts == {"gelu"}:
        cfg.pop("quick_gelu", None)
    return cfg


def preprocess_config(backbone) -> dict:
    """open_clip's preprocessing config of the backbone's model (size, mean, std ...)."""
    cfg = getattr(backbone.model.visual, "preprocess_cfg", None)
    if not isinstance(cfg, dict):
        raise ModelError(f"{backbone.spec}: the open_clip model carries no preprocess_cfg")
    return json.loads(json.dumps(cfg))


def save_open_clip_dir(backbone, out_dir) -> list[str]:
    """Write an open_clip backbone's current weights as a ``local-dir:`` folder; file names."""
    if not hasattr(getattr(backbone, "model", None), "visual"):
        raise ModelError(f"{backbone.spec} is not an open_clip model")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": model_config(backbone), "preprocess_cfg": preprocess_config(backbone)}
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    state = {k: v.detach().cpu().contiguous() for k, v in backbone.model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    return [CONFIG_FILE, WEIGHTS_FILE]
