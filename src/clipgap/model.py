"""The model a fine-tuning method produces: a backbone plus optional adapters and a linear head.

Every method (see :mod:`clipgap.methods`) works on an :class:`AdaptedModel`: it freezes and
unfreezes backbone parameters, parametrises weights (LoRA), or adds feature adapters or a head.
The forward path is the same for all of them, so the trainer and the evaluation never branch on
the method.

Image path: ``raw = backbone.encode_image(x)``, ``f = normalise(raw)``, then, with an image
adapter, ``f = normalise(image_adapter(f))``. Text path: the zero-shot class text embedding
(:func:`clipgap.embeddings.class_text_features`, already normalised), then likewise through the
text adapter. Logits: the head when it was trained on the scored class names (all of them, or a
subset: then only those rows of the head), otherwise ``logit_scale.exp() * cos(image, class
text)``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from clipgap import embeddings
from clipgap.backbones import Backbone


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` scaled to unit L2 norm (float32)."""
    x = x.float()
    return x / x.norm(dim=-1, keepdim=True)


def clone(model: Backbone | AdaptedModel):
    """A deep copy whose weights are independent of the original (helpers such as the
    tokenizer are shared, see :class:`clipgap.backbones.base.Shared`)."""
    return copy.deepcopy(model)


class AdaptedModel(nn.Module):
    """A :class:`Backbone` with optional ``image_adapter``, ``text_adapter`` and ``head``.

    ``method`` / ``method_options`` / ``head_classes`` / ``templates`` are set by
    :func:`clipgap.methods.apply_method` and stored in checkpoints. ``base_fingerprint`` is the
    backbone's fingerprint *before* the method touched it (what a checkpoint is checked against).
    """

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone = backbone
        self.image_adapter: nn.Module | None = None
        self.text_adapter: nn.Module | None = None
        self.head: nn.Linear | None = None
        self.head_classes: list[str] | None = None
        self.templates: list[str] | None = None
        self.method: str | None = None
        self.method_options: object | None = None
        self.base_fingerprint: str | None = None

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    # ---- features -------------------------------------------------------------------------
    def project_image(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw image embeddings (N, d) -> normalised features after the image adapter."""
        f = normalise(raw)
        if self.image_adapter is not None:
            f = normalise(self.image_adapter(f))
        return f

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed images (N, 3, H, W) -> normalised image features (N, d)."""
        return self.project_image(self.backbone.encode_image(images.to(self.device)))

    def project_text(self, text: torch.Tensor) -> torch.Tensor:
        """Normalised class text embeddings (C, d) -> normalised features after the adapter."""
        if self.text_adapter is None:
            return text
        return normalise(self.text_adapter(text))

    def class_text_features(
        self, class_names: list[str], templates: list[str], *, grad: bool = False
    ) -> torch.Tensor:
        """Class text features (C, d), unit norm, after the text adapter.

        ``grad=True`` keeps the graph (text-side parameters being trained).
        """
        base = embeddings.class_text_features(self.backbone, class_names, templates, grad=grad)
        with torch.set_grad_enabled(grad):
            return self.project_text(base)

    # ---- logits ---------------------------------------------------------------------------
    def head_rows(self, class_names: list[str]) -> list[int] | None:
        """Rows of the linear head for ``class_names`` (in that order), or None.

        None without a head or when a name is not one of the head's classes; otherwise the
        head's row of each name, so a task over a subset of the head's classes (ImageNet-R/A
        under an ImageNet probe) is scored by the probe, not by the zero-shot head.
        """
        if self.head is None or self.head_classes is None:
            return None
        index = {name: i for i, name in enumerate(self.head_classes)}
        if not all(name in index for name in class_names):
            return None
        return [index[name] for name in class_names]

    def uses_head(self, class_names: list[str]) -> bool:
        """True when the linear head answers for these class names (all, or a subset)."""
        return self.head_rows(class_names) is not None

    def scaled_cosine(self, image_feats: torch.Tensor, text_feats: torch.Tensor) -> torch.Tensor:
        """``logit_scale.exp() * image_feats @ text_feats.T`` (both already unit norm)."""
        return self.backbone.logit_scale.exp().float() * image_feats @ text_feats.T

    def logits(
        self, image_feats: torch.Tensor, class_names: list[str], templates: list[str]
    ) -> torch.Tensor:
        """Logits (N, C) of normalised image features over ``class_names``.

        The head when it was trained on these classes (restricted to their rows, in this order,
        when they are a subset of its classes); otherwise the zero-shot-style scaled cosine
        against the class prompts (each task is scored with its own prompts).
        """
        rows = self.head_rows(class_names)
        if rows is not None:
            if rows == list(range(len(self.head_classes))):
                return self.head(image_feats)
            index = torch.as_tensor(rows, device=self.head.weight.device)
            bias = None if self.head.bias is None else self.head.bias[index]
            return F.linear(image_feats, self.head.weight[index], bias)
        text = self.class_text_features(class_names, templates, grad=torch.is_grad_enabled())
        return self.scaled_cosine(image_feats, text)

    # ---- what is trained ------------------------------------------------------------------
    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """Parameters with ``requires_grad`` (names relative to this model), in module order."""
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    @property
    def n_trainable(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.trainable_parameters().values())

    def _tower_frozen(self, tower: str) -> bool:
        return not any(p.requires_grad for p in self.backbone.tower_parameters(tower).values())

    @property
    def image_tower_frozen(self) -> bool:
        """No backbone image-tower parameter is trainable (image embeddings can be cached)."""
        return self._tower_frozen("image")

    @property
    def text_tower_frozen(self) -> bool:
        """No backbone text-tower parameter is trainable (class text can be encoded once)."""
        return self._tower_frozen("text")
