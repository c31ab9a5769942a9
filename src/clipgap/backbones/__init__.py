"""Backbone loading: ``load_backbone("ViT-B-32", "openai")``, ``"hf:DIR"``, ``"world"`` ...

Named models (like the embedded ``world`` CLIP) register a loader in :data:`named_models`;
``hf:`` goes to the Hugging Face backend; every other name goes to open_clip.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch

from clipgap.backbones.base import Backbone, ProjectionSite, Tower
from clipgap.registry import Registry

__all__ = ["Backbone", "ProjectionSite", "Tower", "load_backbone", "named_models", "model_names"]

named_models: Registry[Callable[..., Backbone]] = Registry("model")

_NAMED_MODULES = ["clipgap.world.model"]


def _register_named() -> None:
    for mod in _NAMED_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def load_backbone(
    model: str, pretrained: str | None = None, *, device: str = "cpu", seed: int = 0
) -> Backbone:
    """Load a backbone by name. Random-init weights are drawn from ``seed`` (reproducible).

    ``device``: ``auto`` = CUDA when present (see :func:`clipgap.training.device.device_name`).
    """
    from clipgap.training.device import device_name

    device = device_name(device, where="--device (or device: in a study config)")
    _register_named()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if model in named_models:
            backbone = named_models.get(model)(pretrained=pretrained, device=device)
        elif model.startswith("hf:"):
            from clipgap.backbones.hf_backbone import load_hf

            backbone = load_hf(model.removeprefix("hf:"), pretrained=pretrained, device=device)
        else:
            from clipgap.backbones.open_clip_backbone import MODEL_CONFIG_DIR, load_open_clip

            shipped = MODEL_CONFIG_DIR / f"{model}.json"
            backbone = load_open_clip(
                str(shipped) if shipped.is_file() else model, pretrained, device=device, spec=model
            )
    backbone.eval()
    return backbone


def model_names() -> list[str]:
    """clipgap's named models, shipped configs, then every open_clip architecture."""
    import open_clip

    from clipgap.backbones.open_clip_backbone import MODEL_CONFIG_DIR

    _register_named()
    shipped = sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.json"))
    # world models register their JSON configs with open_clip too: list each name once
    return list(dict.fromkeys(named_models.names() + shipped + open_clip.list_models()))
