"""open_clip models: by name + pretrained tag, local checkpoint, ``local-dir:`` or JSON config."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import open_clip
import torch
from torch import nn

from clipgap.backbones.base import Backbone, ProjectionSite, Shared, Tower
from clipgap.errors import ModelError, UnknownNameError, suggest

log = logging.getLogger(__name__)

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
DOWNLOAD_TIMEOUT_S = 30


class OpenClipBackbone(Backbone):
    def __init__(self, model: nn.Module, transform, tokenizer, *, spec: str, base_ref: dict):
        super().__init__()
        if not hasattr(model, "visual") or not hasattr(model, "transformer"):
            raise ModelError(
                f"{spec}: only open_clip CLIP models with built-in towers are supported "
                f"(got {type(model).__name__})"
            )
        self.model = model
        self.transform = transform
        self._tokenizer = Shared(tokenizer)
        self.spec = spec
        self.base_ref = base_ref
        self.embed_dim = int(model.text_projection.shape[1])

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(images)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(tokens)

    def tower_parameters(self, tower: Tower) -> dict[str, nn.Parameter]:
        out = {}
        for name, p in self.named_parameters():
            local = name.removeprefix("model.")
            is_image = local.startswith("visual.")
            if local.startswith(("logit_scale", "logit_bias")):
                continue
            if (tower == "image") == is_image:
                out[name] = p
        return out

    def _blocks(self):
        for tower, trunk in (
            ("image", self.model.visual.transformer),
            ("text", self.model.transformer),
        ):
            for i, block in enumerate(trunk.resblocks):
                yield tower, i, block

    def projection_sites(self) -> list[ProjectionSite]:
        sites = []
        for tower, i, block in self._blocks():
            attn = block.attn
            if not hasattr(attn, "in_proj_weight") or attn.in_proj_weight is None:
                raise ModelError(
                    f"{self.spec}: block {i} of the {tower} tower has no fused in_proj"
                )
            d = attn.in_proj_weight.shape[1]
            for k, role in enumerate(("q", "k", "v")):
                sites.append(
                    ProjectionSite(
                        attn, "in_proj_weight", slice(k * d, (k + 1) * d), role, tower, i
                    )
                )
        return sites

    def block_biases(self) -> dict[str, nn.Parameter]:
        out = {}
        for tower, i, block in self._blocks():
            for name, p in block.named_parameters():
                if name.endswith("bias") or name.endswith(".bias"):
                    out[f"{tower}.{i}.{name}"] = p
        return out


def _resolve_name(name: str) -> str:
    known = open_clip.list_models()
    if name in known:
        return name
    raise UnknownNameError(
        f"unknown open_clip model {name!r}{suggest(name, known)}; `clipgap list models` shows all "
        f"{len(known)} (or give a model-config .json, local-dir:DIR, or hf:MODEL)"
    )


def load_open_clip(
    model: str, pretrained: str | None = None, *, device: str = "cpu", spec: str | None = None
) -> OpenClipBackbone:
    """Build an open_clip backbone.

    ``model`` is an open_clip name (``ViT-B-32``), ``local-dir:DIR`` (open_clip_config.json +
    weights), or a path to a model-config JSON (architecture only). ``pretrained`` is a tag
    (needs the network), a local checkpoint file, or ``None`` for random init.
    """
    spec = spec or model
    base_ref = {"backend": "open_clip", "model": spec, "pretrained": pretrained}
    if model.startswith("local-dir:"):
        path = Path(model.removeprefix("local-dir:")).expanduser()
        cfg = path / "open_clip_config.json"
        if not cfg.is_file():
            raise ModelError(
                f"local-dir {path}: missing {cfg.name} (expected open_clip_config.json + weights)"
            )
        if pretrained:
            raise ModelError(
                f"local-dir {path} carries its own weights; do not pass --pretrained {pretrained}"
            )
        name = model
    elif model.endswith(".json"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise ModelError(f"model config {path} does not exist")
        try:
            cfg = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelError(f"model config {path} is not valid JSON: {exc}") from None
        for key in ("embed_dim", "vision_cfg", "text_cfg"):
            if key not in cfg:
                raise ModelError(f"model config {path} lacks key {key!r}")
        open_clip.add_model_config(path)
        name = path.stem
    else:
        name = _resolve_name(model)
    if pretrained and not model.startswith("local-dir:"):
        base_ref["pretrained"] = _check_pretrained(name, pretrained)
    try:
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        root = logging.getLogger()
        level = root.level
        if not pretrained:  # random init is intended; silence open_clip's warning about it
            root.setLevel(logging.ERROR)
        try:
            net, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, device=device
            )
        finally:
            socket.setdefaulttimeout(old)
            root.setLevel(level)
    except (RuntimeError, ValueError, FileNotFoundError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if pretrained and "download" in msg.lower():
            raise ModelError(
                f"could not download pretrained weights {pretrained!r} for {model} (no network?); "
                f"pass a local checkpoint file with --pretrained PATH"
            ) from None
        raise ModelError(f"cannot load open_clip model {model}: {msg}") from None
    tokenizer = open_clip.get_tokenizer(name)
    return OpenClipBackbone(
        net, preprocess, tokenizer, spec=_spec(spec, pretrained), base_ref=base_ref
    )


def _check_pretrained(name: str, pretrained: str) -> str:
    if Path(pretrained).expanduser().is_file():
        path = Path(pretrained).expanduser().resolve()
        if path.suffix not in (".safetensors", ".pt", ".pth", ".bin", ".ckpt"):
            raise ModelError(
                f"checkpoint {path}: unknown file type (expected .safetensors, .pt or .bin)"
            )
        return str(path)
    tags = open_clip.list_pretrained_tags_by_model(name)
    if pretrained in tags:
        return pretrained
    if "/" in pretrained or pretrained.endswith((".pt", ".pth", ".safetensors", ".bin")):
        raise ModelError(f"checkpoint file {pretrained} does not exist")
    raise UnknownNameError(
        f"unknown pretrained tag {pretrained!r} for {name}{suggest(pretrained, tags)}; "
        f"choose from: {', '.join(tags) or 'none (pass a checkpoint file)'}"
    )


def _spec(model: str, pretrained: str | None) -> str:
    return f"{model}@{pretrained}" if pretrained else model
