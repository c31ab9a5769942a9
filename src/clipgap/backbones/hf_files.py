"""The files of a Hugging Face CLIP model: where they live (a ``save_pretrained`` directory or a
hub id, :class:`Source`), its tokenizer and its image preprocessing.

Tokenizer: the directory's own (``AutoTokenizer``: CLIPTokenizer/CLIPTokenizerFast) when it has
tokenizer files; otherwise open_clip's CLIP BPE tokenizer with the model's context length
(``max_position_embeddings``): the vocabulary of every OpenAI-vocabulary CLIP (49,408 tokens).
Both end each row with EOT where the model pools. HF pads with EOT where open_clip pads with 0;
the causal mask keeps tokens after EOT from reaching the pooled EOT state, so embeddings agree.
Preprocessing: the directory's CLIPImageProcessor settings as a torchvision transform
(:class:`ProcessorSettings`); CLIP defaults at the model's image size when it has none.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision import transforms as T

from clipgap.errors import ModelError

log = logging.getLogger(__name__)

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
OPEN_CLIP_VOCAB_SIZE = 49408
# PIL resample codes (as CLIPImageProcessor stores them) -> torchvision interpolation
RESAMPLE = {
    0: T.InterpolationMode.NEAREST,
    1: T.InterpolationMode.LANCZOS,
    2: T.InterpolationMode.BILINEAR,
    3: T.InterpolationMode.BICUBIC,
    4: T.InterpolationMode.BOX,
    5: T.InterpolationMode.HAMMING,
}
_TOKENIZER_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"))


class ToRGB:
    """PIL image -> RGB (a class, not a lambda: picklable, and its repr keys embedding caches)."""

    def __call__(self, image):
        return image.convert("RGB") if getattr(image, "mode", "RGB") != "RGB" else image

    def __repr__(self) -> str:
        return "ToRGB()"


@dataclass(frozen=True)
class ProcessorSettings:
    """CLIPImageProcessor settings. ``resize``: shortest edge (int) or exact ``(h, w)``; ``crop``:
    centre crop ``(h, w)``; either ``None`` to skip; ``resample``: PIL code (3 = bicubic)."""

    resize: int | tuple[int, int] | None
    crop: tuple[int, int] | None
    mean: tuple[float, ...] | None = OPENAI_MEAN
    std: tuple[float, ...] | None = OPENAI_STD
    resample: int = 3
    source: str = "image processor"

    def __post_init__(self) -> None:
        sizes = [self.resize] if isinstance(self.resize, int) else list(self.resize or [])
        if any(int(s) <= 0 for s in sizes + list(self.crop or [])):
            raise ModelError(
                f"{self.source}: sizes must be positive (resize {self.resize}, crop {self.crop})"
            )
        if (self.mean is None) != (self.std is None) or (
            self.mean is not None and (len(self.mean) != 3 or len(self.std) != 3)
        ):
            raise ModelError(f"{self.source}: image_mean/image_std must be 3 numbers each")
        if self.std is not None and min(self.std) <= 0:
            raise ModelError(f"{self.source}: image_std must be > 0, got {list(self.std)}")
        if self.resample not in RESAMPLE:
            raise ModelError(
                f"{self.source}: resample {self.resample} not a PIL code {list(RESAMPLE)}"
            )

    @classmethod
    def from_dict(cls, d: dict, source: str) -> ProcessorSettings:
        """Parse ``preprocessor_config.json`` (every size format CLIPImageProcessor writes)."""
        factor = float(d.get("rescale_factor", 1 / 255))
        if not d.get("do_rescale", True) or abs(factor * 255 - 1) > 1e-6:
            raise ModelError(f"{source}: only do_rescale with rescale_factor 1/255 is supported")
        size, crop = d.get("size", 224), d.get("crop_size", 224)
        if isinstance(size, dict) and "shortest_edge" in size:
            size = size["shortest_edge"]
        norm = d.get("do_normalize", True)
        return cls(
            resize=(size if isinstance(size, int) else _hw(size, "size", source))
            if d.get("do_resize", True)
            else None,
            crop=_hw(crop, "crop_size", source) if d.get("do_center_crop", True) else None,
            mean=tuple(d.get("image_mean", OPENAI_MEAN)) if norm else None,
            std=tuple(d.get("image_std", OPENAI_STD)) if norm else None,
            resample=int(d.get("resample", 3)),
            source=source,
        )

    def to_transform(self) -> T.Compose:
        """PIL image -> float tensor (3, H, W): resize, centre crop, RGB, [0, 1], normalise."""
        steps: list = [ToRGB()]
        if self.resize is not None:
            steps.append(T.Resize(self.resize, interpolation=RESAMPLE[self.resample]))
        if self.crop is not None:
            steps.append(T.CenterCrop(self.crop))
        steps.append(T.ToTensor())
        if self.mean is not None:
            steps.append(T.Normalize(mean=self.mean, std=self.std))
        return T.Compose(steps)


def _hw(value, key: str, source: str) -> tuple[int, int]:
    """``(height, width)`` from an int, a ``[h, w]`` list or a ``{"height", "width"}`` dict."""
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, dict) and {"height", "width"} <= set(value):
        return (int(value["height"]), int(value["width"]))
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (int(value[0]), int(value[1]))
    raise ModelError(
        f"{source}: cannot read {key} {value!r} (expected int, [h, w] or height/width)"
    )


@dataclass(frozen=True)
class Source:
    """Where an HF model lives: a local directory, or a hub id (files fetched on demand)."""

    name: str
    local: Path | None

    def file(self, filename: str, *, required: bool = False) -> Path | None:
        """Path of ``filename`` in the model, or ``None`` when the model has no such file.

        For a hub id that is neither cached nor reachable, a ``required`` file raises
        huggingface_hub's LocalEntryNotFoundError; an optional one counts as absent.
        """
        if self.local is not None:
            path = self.local / filename
            return path if path.is_file() else None
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        try:
            return Path(hf_hub_download(self.name, filename))
        except LocalEntryNotFoundError:
            if required:
                raise
            return None
        except EntryNotFoundError:
            return None

    def read_config(self) -> dict:
        """config.json, checked to be a CLIP model (ModelError otherwise)."""
        path = self.file("config.json", required=True)
        if path is None:
            found = sorted(p.name for p in self.local.iterdir())[:8] if self.local else []
            raise ModelError(
                f"hf model {self.name}: no config.json (expected a CLIPModel saved with "
                f"save_pretrained); found {found or 'nothing'}"
            )
        try:
            cfg = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(
                f"hf model {self.name}: config.json is not valid JSON: {exc}"
            ) from None
        if not isinstance(cfg, dict) or cfg.get("model_type") != "clip":
            found = cfg.get("model_type") if isinstance(cfg, dict) else type(cfg).__name__
            raise ModelError(
                f"hf model {self.name}: config.json has model_type {found!r}, expected 'clip'"
            )
        return cfg


def resolve_source(id_or_dir: str) -> Source:
    """An existing directory, else a hub id (``org/name``); paths that do not exist fail here."""
    path = Path(id_or_dir).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(
                f"hf model {id_or_dir}: is a file, expected a save_pretrained directory"
            )
        return Source(id_or_dir, path.resolve())
    if not id_or_dir or id_or_dir.startswith((".", "/", "~")) or id_or_dir.count("/") > 1:
        raise ModelError(f"hf model directory {id_or_dir} does not exist")
    return Source(id_or_dir, None)


class HFTokenize:
    """A transformers tokenizer padded/truncated to the model's context length -> ids (N, L)."""

    def __init__(self, tokenizer, context_length: int) -> None:
        self._tok, self.context_length = tokenizer, context_length

    def __call__(self, texts: list[str]) -> torch.Tensor:
        enc = self._tok(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=self.context_length,
            return_tensors="pt",
        )
        return enc["input_ids"]


def load_tokenizer(source: Source, text_cfg: dict) -> Callable[[list[str]], torch.Tensor]:
    """The model's own tokenizer, or open_clip's when it has none (see the module docstring)."""
    ctx = int(text_cfg.get("max_position_embeddings", 77))
    if any(all(source.file(f) for f in group) for group in _TOKENIZER_FILES):
        from transformers import AutoTokenizer

        return HFTokenize(AutoTokenizer.from_pretrained(str(source.local or source.name)), ctx)
    vocab = int(text_cfg.get("vocab_size", OPEN_CLIP_VOCAB_SIZE))
    eos = text_cfg.get("eos_token_id", OPEN_CLIP_VOCAB_SIZE - 1)
    if vocab != OPEN_CLIP_VOCAB_SIZE or eos not in (2, OPEN_CLIP_VOCAB_SIZE - 1):
        raise ModelError(
            f"hf model {source.name}: no tokenizer files, and vocab_size {vocab} / eos_token_id "
            f"{eos} do not fit open_clip's CLIP tokenizer (49408 / 49407)"
        )
    log.info("hf model %s has no tokenizer files; using open_clip's CLIP tokenizer", source.name)
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=ctx)


def load_processor(source: Source, vision_cfg: dict) -> ProcessorSettings:
    path = source.file("preprocessor_config.json")
    if path is None:
        size = int(vision_cfg.get("image_size", 224))
        log.warning(
            "hf model %s: no preprocessor_config.json; CLIP defaults at %d px", source.name, size
        )
        return ProcessorSettings(resize=size, crop=(size, size), source=source.name)
    try:
        return ProcessorSettings.from_dict(json.loads(path.read_text()), str(path))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: not valid JSON: {exc}") from None
