"""The backbone interface every CLIP implementation provides.

Methods and the trainer only talk to this interface, so an open_clip model and a Hugging Face
``CLIPModel`` are fine-tuned by the same code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

Tower = Literal["image", "text"]


@dataclass(frozen=True)
class ProjectionSite:
    """Rows ``rows`` of weight ``param_name`` of ``module`` project attention inputs to Q, K or V."""

    module: nn.Module
    param_name: str
    rows: slice
    role: Literal["q", "k", "v"]
    tower: Tower
    block: int

    @property
    def in_features(self) -> int:
        return getattr(self.module, self.param_name).shape[1]

    @property
    def out_features(self) -> int:
        return self.rows.stop - self.rows.start


class Shared:
    """An immutable helper (a tokenizer) that deep copies of a backbone share, not duplicate.

    Fine-tuning deep-copies the backbone for every run; copying a BPE vocabulary each time
    would cost more than the tiny models' training steps.
    """

    def __init__(self, obj) -> None:
        self.obj = obj

    def __call__(self, *args, **kwargs):
        return self.obj(*args, **kwargs)

    def __deepcopy__(self, memo) -> Shared:
        return self


class Backbone(nn.Module):
    """A CLIP model behind one interface.

    Subclasses set ``spec`` (how it was named), ``embed_dim``, ``transform`` (PIL -> tensor) and
    implement the abstract methods. ``base_ref`` is the JSON-able description checkpoints store.
    """

    spec: str
    embed_dim: int
    transform: Callable
    base_ref: dict

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Token ids (N, context length) from the backbone's tokenizer, ``self._tokenizer``."""
        return self._tokenizer(texts)

    @property
    def logit_scale(self) -> torch.Tensor:
        """The *log* of the logit scale of ``self.model``; logits use ``logit_scale.exp()``."""
        return self.model.logit_scale

    def tower_parameters(self, tower: Tower) -> dict[str, nn.Parameter]:
        """Named parameters of one tower (names relative to this backbone)."""
        raise NotImplementedError

    def projection_sites(self) -> list[ProjectionSite]:
        """Every Q, K and V input projection in every residual block of both towers."""
        raise NotImplementedError

    def block_biases(self) -> dict[str, nn.Parameter]:
        """Every bias inside the residual blocks of both towers (attention, LayerNorms, MLP)."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A hash of the architecture and the current weights (keys caches and checkpoints)."""
        h = hashlib.sha256(self.spec.encode())
        for name, tensor in sorted(self.state_dict().items()):
            h.update(name.encode())
            t = tensor.detach().cpu().contiguous()
            h.update(str(tuple(t.shape)).encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return h.hexdigest()[:16]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
