"""The training forward: images (or cached image embeddings) -> logits over the task's classes."""

from __future__ import annotations

import torch
from torch import nn

from clipgap.data import Task
from clipgap.embeddings import class_text_features
from clipgap.model import AdaptedModel


class ClassText:
    """Logits for the loss. Class text is re-encoded each step only when the text tower trains
    (in activation-checkpointed chunks of classes: see
    :func:`clipgap.embeddings.class_text_features`); otherwise it is encoded once and only the
    (possibly trainable) text adapter runs per step."""

    def __init__(self, model: AdaptedModel, task: Task) -> None:
        self.model, self.names, self.templates = model, task.class_names, task.templates
        self.live = not model.text_tower_frozen
        self.base = None
        if not self.live and not model.uses_head(self.names):
            self.base = class_text_features(model.backbone, self.names, self.templates)

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        model = self.model
        if model.uses_head(self.names):
            return model.head(feats)
        if self.live:
            text = model.class_text_features(self.names, self.templates, grad=True)
        else:
            text = model.project_text(self.base)
        return model.scaled_cosine(feats, text)


class Forward(nn.Module):
    """Images (or cached embeddings) -> logits: the training forward as one module, the thing
    DistributedDataParallel wraps when several processes train."""

    def __init__(self, model: AdaptedModel, text: ClassText, embedded: bool) -> None:
        super().__init__()
        self.model, self.text, self.embedded = model, text, embedded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model
        feats = model.project_image(x) if self.embedded else model.image_features(x)
        return self.text.logits(feats)
