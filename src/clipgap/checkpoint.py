"""Fine-tuning checkpoints: only the trainable tensors (safetensors) plus JSON metadata.

The metadata names the method and its options, the base model (``backbone.base_ref``) and its
fingerprint before fine-tuning, and the class names / templates a linear head was trained on.
:func:`load_checkpoint` rebuilds the base model (or takes one), re-applies the method and loads
the tensors, so logits reproduce exactly. No pickle anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from clipgap.backbones import Backbone, load_backbone
from clipgap.errors import ModelError
from clipgap.methods import apply_method, options_dict
from clipgap.model import AdaptedModel
from clipgap.paths import atomic_write_bytes

FORMAT = "clipgap-finetune/1"
META_KEY = "clipgap"


def save_checkpoint(model: AdaptedModel, path: str | Path, *, extra: dict | None = None) -> Path:
    """Write ``model``'s trainable tensors and metadata to ``path`` (atomically); returns it."""
    if model.method is None:
        raise ModelError("cannot save a checkpoint of a model no fine-tuning method was applied to")
    meta = {
        "format": FORMAT,
        "method": model.method,
        "method_options": options_dict(model.method_options),
        "base_ref": model.backbone.base_ref,
        "base_spec": model.backbone.spec,
        "base_fingerprint": model.base_fingerprint,
        "class_names": model.head_classes,
        "templates": model.templates,
        "extra": extra or {},
    }
    tensors = {n: p.detach().cpu().contiguous() for n, p in model.trainable_parameters().items()}
    path = Path(path)
    atomic_write_bytes(path, save(tensors, metadata={META_KEY: json.dumps(meta)}))
    return path


def read_checkpoint(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(metadata, tensors) of a checkpoint; ModelError for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get(META_KEY)
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises its own error types for foreign files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"checkpoint {path} is not a safetensors file ({first})") from None
    if raw is None:
        raise ModelError(f"checkpoint {path} has no clipgap metadata (not a clipgap checkpoint)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise ModelError(f"checkpoint {path}: its clipgap metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ModelError(f"checkpoint {path}: format {found!r}, expected {FORMAT!r}")
    return meta, tensors


def _check_base(path: Path, meta: dict, backbone: Backbone) -> None:
    have = backbone.fingerprint()
    if have != meta["base_fingerprint"]:
        raise ModelError(
            f"checkpoint {path} was fine-tuned from base model {meta['base_spec']} (fingerprint "
            f"{meta['base_fingerprint']}), not from {backbone.spec} (fingerprint {have})"
        )


def load_checkpoint(
    path: str | Path,
    backbone: Backbone | None = None,
    *,
    method: str | None = None,
    device: str = "cpu",
) -> AdaptedModel:
    """Rebuild the fine-tuned model of checkpoint ``path``.

    ``backbone``: the untouched base model (else rebuilt from the stored ``base_ref`` with
    :func:`clipgap.backbones.load_backbone`); it is modified in place. ``method``: refuse a
    checkpoint of any other method. ModelError (one line) for a foreign file, another base
    model, another method, or tensors that do not fit.
    """
    path = Path(path)
    meta, tensors = read_checkpoint(path)
    if method is not None and meta["method"] != method:
        raise ModelError(f"checkpoint {path} holds method {meta['method']!r}, not {method!r}")
    if backbone is None:
        ref = meta["base_ref"] or {}
        backbone = load_backbone(
            ref.get("model", meta["base_spec"]), ref.get("pretrained"), device=device
        )
    _check_base(path, meta, backbone)
    model = AdaptedModel(backbone)
    model.base_fingerprint = meta["base_fingerprint"]
    names = meta["class_names"] or ["class"]
    apply_method(
        model,
        meta["method"],
        meta["method_options"],
        class_names=names,
        templates=meta["templates"] or ["{c}"],
    )
    _load_tensors(path, model, tensors)
    model.head_classes = meta["class_names"]
    model.templates = meta["templates"]
    model.eval()
    return model


def _load_tensors(path: Path, model: AdaptedModel, tensors: dict[str, torch.Tensor]) -> None:
    params = model.trainable_parameters()
    missing, unexpected = sorted(set(params) - set(tensors)), sorted(set(tensors) - set(params))
    if missing or unexpected:
        raise ModelError(
            f"checkpoint {path} does not fit method {model.method!r} on {model.backbone.spec}: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    with torch.no_grad():
        for name, p in params.items():
            if tensors[name].shape != p.shape:
                raise ModelError(
                    f"checkpoint {path}: tensor {name} has shape {tuple(tensors[name].shape)}, "
                    f"the model expects {tuple(p.shape)}"
                )
            p.copy_(tensors[name].to(p.device, p.dtype))
