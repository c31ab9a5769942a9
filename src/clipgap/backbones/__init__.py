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
    "load_backbone",
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


def model_names() -> list[str]:
    """clipgap's named models, shipped configs, then every open_clip architecture."""
    import open_clip

    from clipgap.backbones.open_clip_backbone import MODEL_CONFIG_DIR

    shipped = sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.json"))
    # world models register their JSON configs with open_clip too: list each name once
    return list(dict.fromkeys(named_models.names() + shipped + open_clip.list_models()))
