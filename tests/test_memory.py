"""Bounded memory: the class-prompt pass through a trainable text tower is checkpointed in chunks
(same gradients, saved activations independent of the number of classes), and the prepared-split
budget counts what is really resident."""

from __future__ import annotations

import pytest
import torch

from clipgap.embeddings import TEXT_CHUNK_ENV, class_text_features, text_chunk_prompts
from clipgap.errors import ConfigError
from clipgap.model import clone

TEMPLATES = ["a photo of a {c}.", "a drawing of a {c}."]


def _names(n: int) -> list[str]:
    return [f"class number {i}" for i in range(n)]


def _grads(backbone, names, monkeypatch, chunk: str):
    monkeypatch.setenv(TEXT_CHUNK_ENV, chunk)
    backbone.zero_grad(set_to_none=True)
    text = class_text_features(backbone, names, TEMPLATES, grad=True)
    weights = torch.linspace(-1.0, 1.0, text.numel()).reshape(text.shape)
    (text * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in backbone.named_parameters() if p.grad is not None}
    return text.detach(), grads


def test_checkpointed_prompt_pass_has_the_same_gradients(tiny, monkeypatch):
    backbone = clone(tiny).requires_grad_(True)
    names = _names(7)
    text_one, whole = _grads(backbone, names, monkeypatch, "0")
    text_chunked, chunked = _grads(backbone, names, monkeypatch, "4")  # 2 classes a chunk
    torch.testing.assert_close(text_chunked, text_one)
    assert set(chunked) == set(whole) and any(".transformer." in n for n in whole)
    for name in whole:
        torch.testing.assert_close(chunked[name], whole[name], msg=name)


def _saved_bytes(backbone, n_classes: int) -> int:
    """Bytes the autograd graph keeps for backward after one class-prompt pass."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        class_text_features(backbone, _names(n_classes), TEMPLATES, grad=True)
    return total


def test_kept_activations_grow_only_with_the_class_head(tiny, monkeypatch):
    backbone = clone(tiny).requires_grad_(True)
    monkeypatch.setenv(TEXT_CHUNK_ENV, "0")
    unbounded = _saved_bytes(backbone, 40) - _saved_bytes(backbone, 4)
    monkeypatch.setenv(TEXT_CHUNK_ENV, "4")
    bounded = _saved_bytes(backbone, 40) - _saved_bytes(backbone, 4)
    d = backbone.embed_dim
    # 36 more classes: without checkpointing every prompt's activations are kept; with it only
    # (C, d) tensors (chunk outputs, the normalised result) per extra class
    assert bounded <= 36 * 8 * d * 4  # a few float32 rows of d per class
    assert unbounded > 20 * bounded


def test_text_chunk_setting_is_checked(monkeypatch):
    monkeypatch.setenv(TEXT_CHUNK_ENV, "lots")
    with pytest.raises(ConfigError, match=r"CLIPGAP_TEXT_CHUNK='lots': expected an integer >= 0"):
        text_chunk_prompts()
    monkeypatch.delenv(TEXT_CHUNK_ENV)
    assert text_chunk_prompts() == 32


def test_finetune_returns_a_model_without_gradients_or_optimiser_state(tiny, image_folder):
    from clipgap.data import DataOptions, load_task
    from clipgap.training import TrainConfig, finetune

    task = load_task(f"folder:{image_folder}", "train", options=DataOptions())
    cfg = TrainConfig(lr=1e-3, batch_size=4, epochs=1, max_steps=2, val_fraction=0.0)
    result = finetune(tiny, task, "full", train=cfg, progress=False)
    params = list(result.model.trainable_parameters().values())
    assert result.steps == 2 and len(params) > 10
    assert all(p.grad is None for p in params)  # a clone for interpolation copies none
