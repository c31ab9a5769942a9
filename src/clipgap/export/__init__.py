"""Fine-tuned models out of clipgap: open_clip, Hugging Face and peft files.

:func:`export_checkpoint` turns a ``clipgap finetune`` checkpoint into the formats the field
loads (see :mod:`clipgap.export.formats`); :mod:`clipgap.export.convert` maps open_clip CLIP
weights to and from Hugging Face ``CLIPModel`` ones; :mod:`clipgap.export.hf_files` writes
``save_pretrained`` folders with processor files.

Importing this package is cheap (the command line reads :data:`FORMATS` at start-up); the
functions load their modules, and torch / transformers, on first use.
"""

from __future__ import annotations

import importlib

FORMATS = ("open_clip", "hf", "peft")

_WHERE = {
    "HF_ARGMAX_POOLING_EOS_ID": "convert",
    "hf_state_to_open_clip": "convert",
    "hf_to_open_clip": "convert",
    "open_clip_state_to_hf": "convert",
    "open_clip_to_hf": "convert",
    "export_checkpoint": "formats",
    "formats_for": "formats",
    "clip_tokenizer": "hf_files",
    "image_processor": "hf_files",
    "processor_settings_from_transform": "hf_files",
    "save_hf": "hf_files",
    "save_open_clip_as_hf": "hf_files",
}

__all__ = ["FORMATS", *sorted(_WHERE)]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
