"""Fine-tuning checkpoints: only the trainable tensors (safetensors) plus JSON metadata.

The metadata names the method and its options, the base model (``backbone.base_ref``) and its
fingerprint before fine-tuning, and the class names / templates a linear head was trained on.
:func:`load_checkpoint` rebuilds the base model (or takes one), re-applies the method and loads
the tensors, so logits reproduce exactly. No pickle anywhere.

A checkpoint of an interpolated model (:func:`clipgap.interpolate.interpolate`) is an ordinary
checkpoint of the interpolated tensors and options, with ``alpha`` recorded in the metadata
(``null`` for a model that was not interpolated); loading it gives the interpolated model, which
says so (``model.alpha``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from clipgap.backbones import Backbone, load_backbone
from clipgap.errors import ClipgapError, ModelError
from clipgap.interpolate import model_alpha
from clipgap.methods import apply_method, options_dict
from clipgap.model import AdaptedModel, clone
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
        "alpha": model_alpha(model),
        "extra": extra or {},
    }
    tensors = {n: p.detach().cpu().contiguous() for n, p in model.trainable_parameters().items()}
    path = Path(path)
    atomic_write_bytes(path, save(tensors, metadata={META_KEY: json.dumps(meta)}))
    return path


def read_checkpoint(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(metadata, tensors) of a checkpoint; ModelError for a missing or foreign file."""
    return _read(Path(path), tensors=True)


def read_metadata(path: str | Path) -> dict:
    """The metadata of a checkpoint without reading its tensors (errors as
    :func:`read_checkpoint`)."""
    return _read(Path(path), tensors=False)[0]


def _read(path: Path, *, tensors: bool) -> tuple[dict, dict[str, torch.Tensor]]:
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get(META_KEY)
            keys = list(fh.keys()) if tensors else []
            data = {k: fh.get_tensor(k) for k in keys}
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
    alpha = meta.get("alpha")
    number = isinstance(alpha, (int, float)) and not isinstance(alpha, bool)
    if alpha is not None and not (number and 0.0 <= alpha <= 1.0):
        raise ModelError(f"checkpoint {path}: alpha {alpha!r} is not a number in [0, 1]")
    return meta, data


def load_base(path: str | Path, meta: dict | None = None, *, device: str = "cpu") -> Backbone:
    """The untouched base model checkpoint ``path`` was fine-tuned from, rebuilt from its
    ``base_ref``; ModelError naming that base model when it cannot be loaded here."""
    path = Path(path)
    if meta is None:
        meta = read_metadata(path)
    ref = meta.get("base_ref") or {}
    name, pretrained = ref.get("model", meta.get("base_spec")), ref.get("pretrained")
    needs = f"base model {name!r}" + (f" (pretrained {pretrained!r})" if pretrained else "")
    if not name:
        raise ModelError(f"checkpoint {path} does not record which base model it needs")
    try:
        return load_backbone(name, pretrained, device=device)
    except ClipgapError as exc:
        raise ModelError(f"checkpoint {path} needs its {needs}, not available: {exc}") from None


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
    :func:`load_base`); it is modified in place. ``method``: refuse a checkpoint of any other
    method. ModelError (one line) for a foreign file, another base model, another method, or
    tensors that do not fit. A checkpoint with ``alpha`` gives a model whose ``alpha`` is set.
    """
    path = Path(path)
    meta, tensors = read_checkpoint(path)
    if method is not None and meta["method"] != method:
        raise ModelError(f"checkpoint {path} holds method {meta['method']!r}, not {method!r}")
    if backbone is None:
        backbone = load_base(path, meta, device=device)
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
    if meta.get("alpha") is not None:
        model.alpha = float(meta["alpha"])
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


def load_with_base(
    path: str | Path, backbone: Backbone | None = None, *, device: str = "cpu"
) -> tuple[Backbone, AdaptedModel]:
    """(untouched base model, fine-tuned model) of checkpoint ``path``: what evaluation against
    zero-shot and interpolation need. ``backbone``: the base model (else :func:`load_base`);
    it is returned as given, the fine-tuned model gets a copy."""
    base = backbone if backbone is not None else load_base(path, device=device)
    return base, load_checkpoint(path, clone(base), device=device)
