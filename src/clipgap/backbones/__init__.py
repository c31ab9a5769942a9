"""Backbone loading: ``load_backbone("ViT-B-32", "openai")``, ``"hf:DIR"``, ``"world"`` ...

Named models (like the embedded ``world`` CLIP) register a loader in :data:`named_models`;
``SCHEME:ARG`` specs go to the loader registered in :data:`schemes` (``hf:`` to the Hugging Face
backend, ``world:KEY=VALUE[,...]`` to a variant of the world CLIP, registered by
``clipgap.world.model``); every other name goes to open_clip.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from clipgap.backbones.base import Backbone, ProjectionSite, Tower
from clipgap.devices import device_name
from clipgap.registry import Registry

__all__ = [
    "Backbone",
    "ProjectionSite",
    "Tower",
    "FAMILIES",
    "load_backbone",
    "model_family",
    "named_models",
    "model_names",
    "schemes",
]

named_models: Registry[Callable[..., Backbone]] = Registry("model", plugins=["clipgap.world.model"])
# ``SCHEME:ARG`` model specs: each loader takes (arg, pretrained=, device=, spec=).
schemes: Registry[Callable[..., Backbone]] = Registry(
    "model scheme", plugins=["clipgap.world.model"]
)


@schemes.register("hf")
def _hf(arg: str, *, pretrained: str | None, device: str, spec: str) -> Backbone:
    from clipgap.backbones.hf_backbone import load_hf

    return load_hf(arg, pretrained=pretrained, device=device)


@schemes.register("local-dir")
def _local_dir(arg: str, *, pretrained: str | None, device: str, spec: str) -> Backbone:
    from clipgap.backbones.open_clip_backbone import load_open_clip

    return load_open_clip(spec, pretrained, device=device, spec=spec)


def _open_clip(model: str, pretrained: str | None, device: str) -> Backbone:
    from clipgap.backbones.open_clip_backbone import MODEL_CONFIG_DIR, load_open_clip

    shipped = MODEL_CONFIG_DIR / f"{model}.json"
    path = str(shipped) if shipped.is_file() else model
    return load_open_clip(path, pretrained, device=device, spec=model)


def load_backbone(
    model: str, pretrained: str | None = None, *, device: str = "cpu", seed: int = 0
) -> Backbone:
    """Load a backbone: a named model (``world``), a ``SCHEME:ARG`` spec (``hf:``,
    ``local-dir:``), else an open_clip name or model-config file. Random-init weights are drawn
    from ``seed`` (reproducible). ``device``: ``auto`` = CUDA when present (see
    :func:`clipgap.devices.device_name`)."""
    device = device_name(device, where="--device (or device: in a study config)")
    scheme, colon, arg = model.partition(":")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if model in named_models:
            backbone = named_models.get(model)(pretrained=pretrained, device=device)
        elif colon and scheme in schemes:
            backbone = schemes.get(scheme)(arg, pretrained=pretrained, device=device, spec=model)
        else:
            backbone = _open_clip(model, pretrained, device)
    backbone.eval()
    return backbone


FAMILIES = {
    "world": "the embedded world CLIPs (named models pretrained on the world)",
    "clip_vit": "open_clip / Hugging Face CLIP ViTs (a transformer image tower)",
    "clip_resnet": "open_clip CLIPs with a ResNet image tower",
    "other": "any other architecture (a timm tower, or one clipgap cannot read without loading)",
}
"""Model families, the unit a preset's settings are given for (:func:`model_family`)."""


def _architecture_family(cfg: dict | None) -> str:
    vision = (cfg or {}).get("vision_cfg") or {}
    if vision.get("timm_model_name"):
        return "other"
    layers = vision.get("layers")
    if isinstance(layers, int):
        return "clip_vit"
    return "clip_resnet" if isinstance(layers, (list, tuple)) else "other"


def _json(path) -> dict | None:
    import json
    from pathlib import Path

    try:
        return json.loads(Path(path).expanduser().read_text())
    except (OSError, ValueError):
        return None


def model_family(model: str) -> str:
    """The family of model spec ``model`` (a key of :data:`FAMILIES`), read without loading.

    Named models say their own (``family`` on their loader; the world CLIPs are ``world``, and
    so are their variants ``world:KEY=VALUE``);
    ``hf:`` CLIPs are ViTs; open_clip names, model-config JSONs and ``local-dir:`` folders are
    read from their architecture config (``vision_cfg.layers``: an int = ViT, a list = ResNet).
    """
    if model in named_models:
        return getattr(named_models.get(model), "family", "other")
    scheme, colon, arg = model.partition(":")
    if colon and scheme == "hf":
        return "clip_vit"
    if colon and scheme in named_models:  # a variant of a named model (world:KEY=VALUE)
        return getattr(named_models.get(scheme), "family", "other")
    if colon and scheme == "local-dir":
        return _architecture_family((_json(f"{arg}/open_clip_config.json") or {}).get("model_cfg"))
    from clipgap.backbones.open_clip_backbone import MODEL_CONFIG_DIR

    shipped = MODEL_CONFIG_DIR / f"{model}.json"
    if shipped.is_file() or model.endswith(".json"):
        return _architecture_family(_json(shipped if shipped.is_file() else model))
    import open_clip

    return _architecture_family(open_clip.get_model_config(model))


def model_names() -> list[str]:
    """clipgap's named models, shipped configs, then every open_clip architecture."""
    import open_clip

    from clipgap.backbones.open_clip_backbone import MODEL_CONFIG_DIR

    shipped = sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.json"))
    # world models register their JSON configs with open_clip too: list each name once
    return list(dict.fromkeys(named_models.names() + shipped + open_clip.list_models()))
