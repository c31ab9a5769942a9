"""Hugging Face files for a clipgap backbone: ``CLIPModel`` weights plus ``CLIPProcessor`` files.

The image processor reproduces the backbone's own eval preprocessing (Resize, CenterCrop,
Normalize read back from its torchvision transform); the tokenizer is the backbone's own
(open_clip's CLIP BPE vocabulary as a ``CLIPTokenizer``, or the HF model's tokenizer).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from torch import nn
from torchvision import transforms as T

from clipgap.backbones.hf_files import (
    OPEN_CLIP_VOCAB_SIZE,
    RESAMPLE,
    HFTokenize,
    ProcessorSettings,
)
from clipgap.errors import ModelError
from clipgap.export.convert import open_clip_to_hf

log = logging.getLogger(__name__)

_PIL_CODE = {mode: code for code, mode in RESAMPLE.items()}
# open_clip eval steps that CLIPImageProcessor always does (RGB conversion, to [0, 1] tensor)
_NEUTRAL_STEPS = {"MaybeConvertMode", "MaybeToTensor", "ToTensor", "function", "ToRGB"}


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Without transformers' progress bars and deprecation warnings (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def processor_settings_from_transform(transform) -> ProcessorSettings:
    """Read an eval preprocessing (Resize, CenterCrop, Normalize) as processor settings."""
    found: dict = {}
    for step in getattr(transform, "transforms", [transform]):
        name = type(step).__name__
        if isinstance(step, T.Resize):
            size = step.size
            size = size[0] if isinstance(size, (list, tuple)) and len(size) == 1 else size
            found["resize"] = size if isinstance(size, int) else tuple(size)
            found["resample"] = _PIL_CODE[step.interpolation]
        elif isinstance(step, T.CenterCrop):
            found["crop"] = tuple(int(s) for s in step.size)
        elif isinstance(step, T.Normalize):
            found["mean"], found["std"] = tuple(step.mean), tuple(step.std)
        elif name not in _NEUTRAL_STEPS:
            raise ModelError(f"preprocessing step {name} has no CLIPImageProcessor equivalent")
    if "resize" not in found or "mean" not in found:
        raise ModelError(f"preprocessing {transform!r} lacks a Resize or Normalize step")
    return ProcessorSettings(crop=found.pop("crop", None), source="open_clip transform", **found)


def image_processor(settings: ProcessorSettings):
    """A transformers ``CLIPImageProcessor`` with ``settings``."""
    from transformers import CLIPImageProcessor

    resize = settings.resize
    size = {"shortest_edge": resize} if isinstance(resize, int) else None
    if isinstance(resize, tuple):
        size = {"height": resize[0], "width": resize[1]}
    crop = settings.crop
    return CLIPImageProcessor(
        do_resize=resize is not None,
        size=size,
        resample=settings.resample,
        do_center_crop=crop is not None,
        crop_size={"height": crop[0], "width": crop[1]} if crop else None,
        do_normalize=settings.mean is not None,
        image_mean=list(settings.mean) if settings.mean else None,
        image_std=list(settings.std) if settings.std else None,
    )


def clip_tokenizer(oc_tokenizer, context_length: int):
    """open_clip's CLIP BPE vocabulary as a transformers ``CLIPTokenizer`` (None if not CLIP BPE).

    Same ids for ordinary text; open_clip additionally runs ftfy and HTML-unescaping (so
    ``"&amp;"`` differs), and pads with 0 where HF pads with EOT (harmless, see clipgap.backbones.hf_files).
    """
    from transformers import CLIPTokenizer

    encoder = getattr(oc_tokenizer, "encoder", None)
    if type(oc_tokenizer).__name__ != "SimpleTokenizer" or len(encoder) != OPEN_CLIP_VOCAB_SIZE:
        return None
    vocab = dict(encoder)
    vocab["<|startoftext|>"] = vocab.pop("<start_of_text>")
    vocab["<|endoftext|>"] = vocab.pop("<end_of_text>")
    merges = [pair for pair, _ in sorted(oc_tokenizer.bpe_ranks.items(), key=lambda kv: kv[1])]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=context_length)


def hf_tokenizer(backbone, context_length: int):
    """The backbone's tokenizer as a transformers tokenizer, or None when it has no such form."""
    tok = backbone._tokenizer.obj
    if isinstance(tok, HFTokenize):
        return tok._tok
    return clip_tokenizer(tok, context_length)


def hf_clip_model(backbone) -> nn.Module:
    """A transformers ``CLIPModel`` with the backbone's current weights.

    An HF backbone gives its own model (not a copy); an open_clip one is converted
    (:func:`clipgap.export.convert.open_clip_to_hf`, ModelError for what HF cannot express).
    """
    from transformers import CLIPModel

    model = getattr(backbone, "model", None)
    if model is not None and hasattr(model, "vision_model") and hasattr(model, "text_model"):
        return model
    if model is None or not hasattr(backbone, "transform") or not hasattr(model, "visual"):
        raise ModelError(f"{type(backbone).__name__} is not an open_clip backbone")
    config, state = open_clip_to_hf(model)
    hf = CLIPModel(config)
    hf.load_state_dict(state, strict=True)
    return hf.eval()


def save_hf(backbone, out_dir, *, tokenizer: bool = True) -> Path:
    """Write ``backbone`` as a ``save_pretrained`` HF CLIP directory with processor files.

    Files: config.json + model.safetensors, preprocessor_config.json (the backbone's own eval
    preprocessing) and, with ``tokenizer`` and a CLIP BPE tokenizer, the tokenizer files and
    processor_config.json written by ``CLIPProcessor.save_pretrained``, so
    ``CLIPProcessor.from_pretrained(DIR)`` loads them. Without tokenizer files,
    ``load_backbone("hf:DIR")`` falls back to open_clip's.
    """
    settings = processor_settings_from_transform(backbone.transform)
    model = hf_clip_model(backbone)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(out)
    images = image_processor(settings)
    tok = None
    if tokenizer:
        tok = hf_tokenizer(backbone, model.config.text_config.max_position_embeddings)
        if tok is None:
            log.warning("%s: tokenizer is not CLIP BPE; no tokenizer files written", out)
    if tok is not None:
        from transformers import CLIPProcessor

        CLIPProcessor(image_processor=images, tokenizer=tok).save_pretrained(out)
    images.save_pretrained(out)  # preprocessor_config.json, read by older transformers too
    log.info("wrote HF CLIP directory %s", out)
    return out


def save_open_clip_as_hf(backbone, out_dir, *, tokenizer: bool = True) -> Path:
    """Write open_clip ``backbone`` as an HF CLIP directory (see :func:`save_hf`); returns it."""
    model = getattr(backbone, "model", None)
    if model is None or not hasattr(backbone, "transform") or not hasattr(model, "visual"):
        raise ModelError(f"{type(backbone).__name__} is not an open_clip backbone")
    return save_hf(backbone, out_dir, tokenizer=tokenizer)
