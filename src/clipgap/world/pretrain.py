"""Contrastive pretraining of a world CLIP on freshly rendered, captioned scenes.

The model is an open_clip ``CLIP`` built from a JSON config; the loss is open_clip's
``ClipLoss``. Every step draws a new batch from a seed derived from (world seed, pretraining
seed, step), so a run is reproducible and never sees the same scene twice. Pretraining runs with
the torch thread count its config names (``PretrainConfig.threads``, see
:mod:`clipgap.world.threads`): on one machine the same config always gives byte-identical
weights, whatever else the machine is doing.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import open_clip
import torch
from open_clip.loss import ClipLoss
from tqdm.auto import tqdm

from clipgap.devices import torch_threads
from clipgap.errors import TrainingError
from clipgap.world.captions import make_captions
from clipgap.world.config import PretrainConfig, WorldConfig
from clipgap.world.render import render
from clipgap.world.scenes import sample_scenes

log = logging.getLogger(__name__)

MEAN = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)


def to_model_input(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (N, S, S, 3) -> normalised float (N, 3, S, S): open_clip's eval transform at size S."""
    x = torch.tensor(pixels).permute(0, 3, 1, 2).float() / 255.0
    return (x - MEAN) / STD


class CaptionTokenizer:
    """open_clip's tokenizer, memoised per word (exact for clean, lower-case, spaced captions)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.context_length = tokenizer.context_length
        self._words: dict[str, list[int]] = {}

    def _ids(self, word: str) -> list[int]:
        ids = self._words.get(word)
        if ids is None:
            ids = self._words[word] = self.tokenizer.encode(word)
        return ids

    def __call__(self, texts: list[str]) -> torch.Tensor:
        ctx = self.context_length
        out = torch.zeros(len(texts), ctx, dtype=torch.long)
        sot, eot = self.tokenizer.sot_token_id, self.tokenizer.eot_token_id
        for i, text in enumerate(texts):
            ids = [sot] + [t for w in text.split() for t in self._ids(w)] + [eot]
            if len(ids) > ctx:
                ids = ids[:ctx]
                ids[-1] = eot
            out[i, : len(ids)] = torch.tensor(ids)
        return out


def pretrain_batch(
    world: WorldConfig, seed: int, step: int, batch_size: int
) -> tuple[np.ndarray, list[str]]:
    """Pixels (B, S, S, 3) and captions of one pretraining batch."""
    rng = np.random.default_rng([world.seed, seed, step, 0x5EED])
    scenes = sample_scenes(rng, batch_size, world.image_size)
    names = list(world.style_mix)
    weights = np.asarray([world.style_mix[s] for s in names], dtype=np.float64)
    picks = rng.choice(len(names), size=batch_size, p=weights / weights.sum())
    pixels = np.empty((batch_size, world.image_size, world.image_size, 3), np.uint8)
    for k, style in enumerate(names):
        idx = np.flatnonzero(picks == k)
        if len(idx):
            pixels[idx] = render(scenes.take(idx), style, rng, world)
    return pixels, make_captions(scenes, rng, world)


@dataclass
class PretrainLog:
    """Losses per step (``ClipLoss``, ln(B) = chance for a batch of B), wall time, pairs seen."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    pairs: int = 0

    def mean_loss(self, first: bool, k: int = 20) -> float:
        part = self.losses[:k] if first else self.losses[-k:]
        return float(np.mean(part)) if part else math.nan


def _optimizer(net: torch.nn.Module, cfg: PretrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        exclude = p.ndim < 2 or "ln" in name or "bias" in name or "logit_scale" in name
        (no_decay if exclude else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)


def _lr_factor(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * progress))


def _train_step(net, batch, tokens, loss_fn, opt, sched) -> float:
    pixels, captions = batch
    image_f, text_f, scale = net(to_model_input(pixels), tokens(captions))[:3]
    loss = loss_fn(image_f, text_f, scale)
    if not torch.isfinite(loss):
        raise TrainingError("non-finite contrastive loss")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    with torch.no_grad():
        net.logit_scale.clamp_(0, math.log(100))
    return float(loss.detach())


def pretrain(
    net: torch.nn.Module,
    tokenizer,
    world: WorldConfig,
    cfg: PretrainConfig,
    *,
    progress: bool = True,
    desc: str = "pretrain world CLIP",
) -> PretrainLog:
    """Train ``net`` (an open_clip CLIP) in place with ``ClipLoss``; returns the loss log."""
    tokens = CaptionTokenizer(tokenizer)
    loss_fn = ClipLoss()
    record = PretrainLog()
    start = time.perf_counter()
    with torch_threads(cfg.threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        opt = _optimizer(net, cfg)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg))
        net.train()
        bar = tqdm(range(cfg.steps), desc=desc, unit="step", disable=not progress or None)
        for step in bar:
            batch = pretrain_batch(world, cfg.seed, step, cfg.batch_size)
            try:
                record.losses.append(_train_step(net, batch, tokens, loss_fn, opt, sched))
            except TrainingError as exc:
                raise TrainingError(f"{desc}: {exc} at step {step}") from None
            record.pairs += cfg.batch_size
            if step % 10 == 0:
                bar.set_postfix(loss=f"{record.mean_loss(False, 10):.3f}")
        net.eval()
    record.seconds = time.perf_counter() - start
    log.info(
        "%s: %d steps, loss %.3f -> %.3f in %.1fs",
        desc,
        cfg.steps,
        record.mean_loss(True),
        record.mean_loss(False),
        record.seconds,
    )
    return record
