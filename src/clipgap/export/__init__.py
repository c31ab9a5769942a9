"""Fine-tuned models out of clipgap: open_clip, Hugging Face and peft files.

:func:`export_checkpoint` turns a ``clipgap finetune`` checkpoint into the formats the field
loads (see :mod:`clipgap.export.formats`); :mod:`clipgap.export.convert` maps open_clip CLIP
weights to and from Hugging Face ``CLIPModel`` ones; :mod:`clipgap.export.hf_files` writes
``save_pretrained`` folders with processor files.
"""

from __future__ import annotations

from clipgap.export.convert import (
    HF_ARGMAX_POOLING_EOS_ID,
    hf_state_to_open_clip,
    hf_to_open_clip,
    open_clip_state_to_hf,
    open_clip_to_hf,
)
from clipgap.export.formats import FORMATS, export_checkpoint, formats_for
from clipgap.export.hf_files import (
    clip_tokenizer,
    image_processor,
    processor_settings_from_transform,
    save_hf,
    save_open_clip_as_hf,
)

__all__ = [
    "FORMATS",
    "HF_ARGMAX_POOLING_EOS_ID",
    "clip_tokenizer",
    "export_checkpoint",
    "formats_for",
    "hf_state_to_open_clip",
    "hf_to_open_clip",
    "image_processor",
    "open_clip_state_to_hf",
    "open_clip_to_hf",
    "processor_settings_from_transform",
    "save_hf",
    "save_open_clip_as_hf",
]
