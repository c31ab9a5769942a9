"""Hugging Face ``CLIPModel`` backbones: ``load_backbone("hf:DIR")`` or ``"hf:org/model"``.

A directory is one written by ``save_pretrained`` (config.json with ``model_type: clip`` plus the
weights), optionally with ``preprocessor_config.json`` and tokenizer files. A hub id works only
where the hub, or a cached copy under ``HF_HUB_OFFLINE=1``, is reachable. How the tokenizer and
the preprocessing are chosen: :mod:`clipgap.backbones.hf_files`.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from clipgap.backbones.base import Backbone, ProjectionSite, Shared, Tower
from clipgap.backbones.hf_files import Source, load_processor, load_tokenizer, resolve_source
from clipgap.errors import ConfigError, ModelError

log = logging.getLogger(__name__)


class HFClipBackbone(Backbone):
    """A transformers ``CLIPModel`` behind the :class:`Backbone` interface.

    ``encode_*`` return projected, unnormalised features (like open_clip's). Projection sites are
    the whole ``q_proj``/``k_proj``/``v_proj`` weights of every encoder layer; block biases are
    the 8 bias tensors of every encoder layer (q/k/v/out_proj, layer_norm1/2, fc1/fc2). open_clip
    fuses q/k/v biases into one ``in_proj_bias``, so it lists 6 tensors per block: the bias
    *tensor* counts differ, their element counts (what BitFit trains) are equal.
    """

    def __init__(self, model: nn.Module, transform, tokenizer, *, spec: str, base_ref: dict):
        super().__init__()
        needed = ("vision_model", "text_model", "visual_projection", "text_projection")
        if not all(hasattr(model, n) for n in needed):
            raise ModelError(f"{spec}: not a transformers CLIPModel (got {type(model).__name__})")
        self.model = model
        self.transform = transform
        self._tokenizer = Shared(tokenizer)
        self.spec = spec
        self.base_ref = base_ref
        self.embed_dim = int(model.text_projection.out_features)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        pooled = self.model.vision_model(pixel_values=images).pooler_output
        return self.model.visual_projection(pooled)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        pooled = self.model.text_model(input_ids=tokens).pooler_output
        return self.model.text_projection(pooled)

    def tower_parameters(self, tower: Tower) -> dict[str, nn.Parameter]:
        prefixes = {
            "image": ("model.vision_model.", "model.visual_projection."),
            "text": ("model.text_model.", "model.text_projection."),
        }
        if tower not in prefixes:
            raise ConfigError(f"unknown tower {tower!r}; choose from: image, text")
        return {n: p for n, p in self.named_parameters() if n.startswith(prefixes[tower])}

    def _blocks(self):
        for tower, encoder in (
            ("image", self.model.vision_model.encoder),
            ("text", self.model.text_model.encoder),
        ):
            for i, layer in enumerate(encoder.layers):
                yield tower, i, layer

    def projection_sites(self) -> list[ProjectionSite]:
        sites = []
        for tower, i, layer in self._blocks():
            for role in ("q", "k", "v"):
                proj = getattr(layer.self_attn, f"{role}_proj")
                rows = slice(0, proj.weight.shape[0])
                sites.append(ProjectionSite(proj, "weight", rows, role, tower, i))
        return sites

    def block_biases(self) -> dict[str, nn.Parameter]:
        return {
            f"{tower}.{i}.{name}": p
            for tower, i, layer in self._blocks()
            for name, p in layer.named_parameters()
            if name.endswith("bias")
        }


def _load_model(source: Source) -> nn.Module:
    from transformers import CLIPModel

    try:
        model, info = CLIPModel.from_pretrained(
            str(source.local or source.name), output_loading_info=True
        )
    except (OSError, ValueError, RuntimeError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load hf model {source.name}: {msg}") from None
    missing = list(info.get("missing_keys") or [])
    if missing:
        raise ModelError(
            f"hf model {source.name}: weights lack {len(missing)} parameters "
            f"(e.g. {', '.join(sorted(missing)[:3])}); refusing random init"
        )
    return model.float()


def _hub_error(source: Source, exc: Exception) -> ModelError:
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    if isinstance(exc, LocalEntryNotFoundError):
        return ModelError(
            f"hf model {source.name}: not in the local cache and the hub is unreachable "
            "(HF_HUB_OFFLINE=1 or no network); pass a save_pretrained directory instead"
        )
    if isinstance(exc, RepositoryNotFoundError):
        return ModelError(f"hf model {source.name}: no such repository on the hub")
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelError(f"hf model {source.name}: {msg}")


def load_hf(
    id_or_dir: str, pretrained: str | None = None, *, device: str = "cpu"
) -> HFClipBackbone:
    """Load an HF CLIP model (a ``save_pretrained`` directory or a hub id) as a backbone.

    ``pretrained`` must be ``None``: HF models carry their weights. ``base_ref["model"]`` is
    ``"hf:<absolute directory or hub id>"``, so ``load_backbone(base_ref["model"])`` reloads it
    from any working directory.
    """
    if pretrained is not None:
        raise ModelError(
            f"hf:{id_or_dir} carries its own weights; do not pass pretrained={pretrained!r}"
        )
    source = resolve_source(id_or_dir)
    try:
        cfg = source.read_config()
        tokenizer = load_tokenizer(source, cfg.get("text_config") or {})
        settings = load_processor(source, cfg.get("vision_config") or {})
    except ModelError:
        raise
    except (OSError, ValueError) as exc:  # huggingface_hub: offline, not found, bad repo id
        raise _hub_error(source, exc) from None
    model = _load_model(source).to(device)
    base_ref = {"backend": "hf", "model": f"hf:{source.local or source.name}", "pretrained": None}
    return HFClipBackbone(
        model, settings.to_transform(), tokenizer, spec=f"hf:{id_or_dir}", base_ref=base_ref
    )
