"""``export_checkpoint``: a clipgap fine-tuning checkpoint as open_clip, Hugging Face or peft files.

Formats (``DIR`` is the output folder, new or empty):

- ``open_clip``: the fine-tuned weights merged into a plain open_clip model (LoRA folded into
  ``in_proj_weight``; BitFit, A-CLIP and full fine-tuning tensors written in), as a
  ``local-dir:`` folder: ``open_clip_config.json`` + ``open_clip_model.safetensors``.
- ``hf``: the same merged model as a ``CLIPModel.save_pretrained`` folder with ``CLIPProcessor``
  files (tokenizer + image processor reproducing the model's preprocessing).
- ``peft``: LoRA only. ``DIR/base`` is the untouched base model as an ``hf`` folder and
  ``DIR/adapter`` the peft LoRA adapter; ``PeftModel.from_pretrained(CLIPModel.from_pretrained(
  DIR/base), DIR/adapter)`` gives the fine-tuned model.

The linear probe leaves the backbone untouched and adds a head on the normalised image
features: ``open_clip``/``hf`` write the base model plus ``linear_head.safetensors``
(``weight`` (C, d), ``bias`` (C,), class names in its metadata), logits
``normalise(image_embedding) @ weight.T + bias``. CLIP-Adapter's feature adapters have no
counterpart in these libraries: it cannot be exported (keep the clipgap checkpoint). A model
whose base is a Hugging Face ``CLIPModel`` exports to ``hf`` and ``peft`` only. Every folder
gets ``export.json``: what was exported from which checkpoint, and how to load it. The folder is
filled as a temporary sibling and renamed into place: an export that fails leaves nothing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors.torch import save_file

from clipgap.backbones import load_backbone
from clipgap.checkpoint import load_checkpoint, read_checkpoint
from clipgap.errors import ConfigError, UnknownNameError, suggest
from clipgap.export import FORMATS
from clipgap.export.hf_files import save_hf
from clipgap.export.open_clip_dir import save_open_clip_dir
from clipgap.export.peft_dir import save_peft_adapter
from clipgap.methods.lora import merge
from clipgap.model import AdaptedModel
from clipgap.paths import atomic_dir

log = logging.getLogger(__name__)

MANIFEST = "export.json"
HEAD_FILE = "linear_head.safetensors"
_MERGED = ("open_clip", "hf")
METHOD_FORMATS = {
    "full": _MERGED,
    "aclip": _MERGED,
    "bitfit": _MERGED,
    "lora": (*_MERGED, "peft"),
    "linear_probe": _MERGED,
    "clip_adapter": (),
}
_WHY = {
    "peft": "a peft adapter holds LoRA updates only",
    "clip_adapter": "its feature adapters sit outside CLIP and no library loads them; keep the "
    "clipgap checkpoint (clipgap evaluate, clipgap.checkpoint.load_checkpoint)",
}
LOAD_HINT = {
    "open_clip": 'open_clip.create_model_and_transforms("local-dir:{out}")',
    "hf": 'CLIPModel.from_pretrained("{out}"), CLIPProcessor.from_pretrained("{out}")',
    "peft": 'PeftModel.from_pretrained(CLIPModel.from_pretrained("{out}/base"), '
    '"{out}/adapter"), CLIPProcessor.from_pretrained("{out}/base")',
}
# transformers >= 5 defaults to a torchvision image processor whose antialiased resize differs
# (~1e-2 in pixel values) from the PIL resize of open_clip/clipgap; its PIL backend matches
PROCESSOR_NOTE = (
    'with transformers >= 5 pass backend="pil" to CLIPProcessor.from_pretrained for exactly '
    "the model's preprocessing (the default torchvision backend resizes slightly differently)"
)


def formats_for(method: str, backend: str | None = "open_clip") -> tuple[str, ...]:
    """The export formats a checkpoint of ``method`` on a ``backend`` base can take."""
    formats = METHOD_FORMATS.get(method, ())
    if backend == "hf":
        formats = tuple(f for f in formats if f != "open_clip")
    return formats


def check_format(path: Path, meta: dict, fmt: str) -> None:
    """ConfigError (one line naming the formats it can take) when ``fmt`` does not fit."""
    if fmt not in FORMATS:
        raise UnknownNameError(
            f"unknown export format {fmt!r}{suggest(fmt, FORMATS)}; choose from: "
            f"{', '.join(FORMATS)}"
        )
    method = meta["method"]
    backend = (meta.get("base_ref") or {}).get("backend")
    allowed = formats_for(method, backend)
    if fmt in allowed:
        return
    if not allowed:
        why = _WHY.get(method, "clipgap knows no export for it")
        raise ConfigError(
            f"checkpoint {path}: method {method!r} cannot be exported as {fmt!r} nor in any other "
            f"format ({why})"
        )
    if fmt == "open_clip" and backend == "hf":
        why = f"its base {meta['base_spec']} is a Hugging Face CLIPModel"
    else:
        why = _WHY.get(fmt, f"{fmt} cannot express it")
    raise ConfigError(
        f"checkpoint {path}: method {method!r} cannot be exported as {fmt!r} ({why}); "
        f"formats it can take: {', '.join(allowed)}"
    )


def _output_dir(out: str | Path) -> Path:
    """``out``, refused (one line) when it is a file or a folder that is not empty."""
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        what = "is a file" if not out.is_dir() else "is not empty"
        raise ConfigError(f"export output {out} {what}; choose a new or empty directory")
    return out


def save_linear_head(model: AdaptedModel, out: Path) -> list[str]:
    """The linear probe's head (and the class names it answers for) as safetensors."""
    if model.head is None:
        return []
    weight, bias = model.head.weight.detach().cpu(), model.head.bias
    bias = torch.zeros(len(weight)) if bias is None else bias.detach().cpu()
    tensors = {"weight": weight.contiguous(), "bias": bias.contiguous()}
    meta = {
        "class_names": json.dumps(model.head_classes),
        "logits": "normalise(image_embedding) @ weight.T + bias",
    }
    save_file(tensors, str(out / HEAD_FILE), metadata=meta)
    return [HEAD_FILE]


def _write(path: Path, meta: dict, fmt: str, out: Path, device: str, final: Path) -> list[str]:
    """Write the export into ``out``, the folder that is moved to ``final`` once complete."""
    ref = meta.get("base_ref") or {}
    base = load_backbone(ref.get("model", meta["base_spec"]), ref.get("pretrained"), device=device)
    if fmt == "peft":
        save_hf(base, out / "base")
        model = load_checkpoint(path, base, device=device)
        save_peft_adapter(model, out / "base", out / "adapter", base_name=str(final / "base"))
        return ["base/", "adapter/"]
    model = load_checkpoint(path, base, device=device)
    merge(model)
    if fmt == "open_clip":
        files = save_open_clip_dir(model.backbone, out)
    else:
        save_hf(model.backbone, out)
        files = sorted(p.name for p in out.iterdir())
    return files + save_linear_head(model, out)


def export_checkpoint(
    checkpoint: str | Path, fmt: str, out: str | Path, *, device: str = "cpu"
) -> dict:
    """Export ``checkpoint`` (from ``clipgap finetune``) as ``fmt`` into the folder ``out``.

    Returns the manifest also written to ``out/export.json``. ModelError for a missing or
    foreign checkpoint, ConfigError for a format the method cannot take (naming those it can)
    or a non-empty ``out``, UnknownNameError for an unknown format.
    """
    path = Path(checkpoint).expanduser()
    meta, _ = read_checkpoint(path)
    check_format(path, meta, fmt)
    out = _output_dir(out)
    with atomic_dir(out) as tmp:  # the whole export, or nothing: the same command can be rerun
        manifest = _export_into(tmp, path, meta, fmt, out, device)
    log.info("exported %s (%s) as %s to %s", path, meta["method"], fmt, out)
    return manifest


def _export_into(tmp: Path, path: Path, meta: dict, fmt: str, out: Path, device: str) -> dict:
    """Write the export of checkpoint ``path`` into the folder ``tmp`` that becomes ``out``."""
    files = _write(path, meta, fmt, tmp, device, out)
    manifest = {
        "format": fmt,
        "checkpoint": str(path.resolve()),
        "method": meta["method"],
        "method_options": meta["method_options"],
        "alpha": meta.get("alpha"),
        "base": meta["base_ref"],
        "class_names": meta["class_names"],
        "templates": meta["templates"],
        "files": files,
        "load": LOAD_HINT[fmt].format(out=out.resolve()),
    }
    if fmt != "open_clip":
        manifest["note"] = PROCESSOR_NOTE
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
