"""The one training loop every fine-tuning method shares.

``finetune(backbone, train_task, "lora", train=TrainConfig(lr=1e-4))`` applies the method to a
copy of the backbone, holds out a validation split of the train task (10 %, at most 5,000
images, seed 0), optionally keeps ``shots`` images per class of the rest (see
:mod:`clipgap.training.data`), trains with cross-entropy over the zero-shot-style logits against
the task's class prompts, evaluates the starting model (epoch 0, for information) and every
epoch on validation only, and returns the model of the best validation epoch among the trained
epochs (>= 1), as the authors' code does. Methods differ only in what
:func:`clipgap.methods.apply_method` made trainable or added.

Speed: with a frozen image tower (``clip_adapter``, ``linear_probe``, text-only LoRA) training
runs on cached image embeddings instead of the encoder; class text features are recomputed each
step only when text-tower parameters are trainable, then in activation-checkpointed chunks of
classes (:func:`clipgap.embeddings.class_text_features`), so memory does not grow with the
number of classes times the text tower's activations. Images are read from the pixel cache
(:mod:`clipgap.pixels`) when it serves them. Once training ends, the model keeps no gradients
and the optimiser state is freed. On CUDA, training runs in bf16 autocast by
default (``train.precision``). Under ``torchrun`` the run trains with DistributedDataParallel
over the processes (:mod:`clipgap.training.distributed`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from clipgap.backbones import Backbone
from clipgap.data import Task
from clipgap.errors import ConfigError, DataError, TrainingError
from clipgap.methods import ResolvedMethod, apply_method, options_dict
from clipgap.model import AdaptedModel, clone
from clipgap.training import device as dev
from clipgap.training import distributed as ddp
from clipgap.training.callbacks import TrainCallback
from clipgap.training.config import TrainConfig, optimizers
from clipgap.training.data import SplitData, training_splits
from clipgap.training.evaluate import split_accuracy
from clipgap.training.forward import ClassText, Forward
from clipgap.training.result import FinetuneResult

log = logging.getLogger(__name__)

__all__ = ["FinetuneResult", "TrainCallback", "finetune", "training_splits"]


def _prepare(model_or_backbone, copy_model: bool, device: torch.device) -> AdaptedModel:
    if isinstance(model_or_backbone, Backbone):
        model = AdaptedModel(clone(model_or_backbone) if copy_model else model_or_backbone)
    elif isinstance(model_or_backbone, AdaptedModel):
        model = clone(model_or_backbone) if copy_model else model_or_backbone
    else:
        raise TrainingError(
            f"finetune needs a Backbone or AdaptedModel, not {type(model_or_backbone).__name__}"
        )
    return model.to(device)


def _split_data(model: AdaptedModel, task: Task, cfg: TrainConfig, progress: bool) -> SplitData:
    return SplitData(
        model,
        task,
        embedded=model.image_tower_frozen and cfg.cache_embeddings,
        pixel_cache_mb=cfg.pixel_cache_mb,
        batch_size=cfg.eval_batch_size,
        num_workers=cfg.num_workers,
        pin_memory=cfg.pin_memory,
        progress=progress,
    )


class _Loop:
    """Epochs of optimiser steps over ``fit``, validation after each, best epoch kept.

    ``precision``: resolved (fp32 / bf16). ``dist``: this process's place when several train
    together (each step is then this rank's slice of the global batch).
    """

    def __init__(
        self,
        model,
        method,
        fit: SplitData,
        val: SplitData | None,
        cfg,
        progress,
        cbs,
        *,
        precision: str = "fp32",
        dist: ddp.Dist = ddp.SINGLE,
    ):
        self.model, self.method, self.fit, self.val = model, method, fit, val
        self.cfg, self.progress, self.callbacks = cfg, progress, tuple(cbs)
        self.precision, self.dist = precision, dist
        self.text = ClassText(model, fit.task)
        params = list(model.trainable_parameters().values())
        self.optimizer = optimizers.get(cfg.optimizer)(params, cfg)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.device = model.device
        self.forward = ddp.wrap(Forward(model, self.text, fit.embedded), self.dist, self.device)
        self.steps = 0

    def release(self) -> None:
        """Free the gradients and optimiser state once training is over: the returned model
        holds its weights only (a clone of it, for interpolation, copies no gradients)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.optimizer.state.clear()

    def _out_of_steps(self) -> bool:
        return self.cfg.max_steps is not None and self.steps >= self.cfg.max_steps

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float, int, int]:
        """(loss to minimise, mean loss over the global batch, correct, images in it).

        Several processes: each minimises its slice's summed loss times world size / global
        batch size, so DDP's gradient average is the gradient of the global batch's mean loss.
        """
        logits = logits.float()
        if not self.dist.active:  # one device-to-host copy per step for both numbers
            loss = F.cross_entropy(logits, y)
            hits = (logits.argmax(dim=-1) == y).sum()
            value, correct = torch.stack([loss.detach(), hits.float()]).tolist()
            return loss, value, int(correct), len(y)
        total = F.cross_entropy(logits, y, ignore_index=ddp.IGNORE, reduction="sum")
        valid = y != ddp.IGNORE
        correct = ((logits.argmax(dim=-1) == y) & valid).sum()
        stats = torch.stack([total.detach(), correct, valid.sum()]).double()
        loss_sum, correct, n = ddp.all_reduce_sum(stats).tolist()
        return total * (self.dist.world_size / n), loss_sum / n, int(correct), int(n)

    def _step(self, x, y, epoch: int) -> tuple[float, int, int]:
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        with dev.autocast(self.precision, self.device):
            logits = self.forward(x)
        loss, value, correct, n = self._loss(logits, y)
        if not math.isfinite(value):
            raise TrainingError(
                f"non-finite loss ({value}) at epoch {epoch}, step {self.steps + 1} of "
                f"method {self.method!r} on {self.fit.task.name}; training stopped: lower "
                f"train.lr (now {self.cfg.lr:g})"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.steps += 1
        for callback in self.callbacks:
            callback.on_step(self.steps, loss=value, lr=lr)
        return value, correct, n

    def _epoch(self, epoch: int) -> dict:
        self.model.train()
        loss_sum, correct, seen, steps = 0.0, 0, 0, 0
        batches = self.fit.batches(self.model, self.cfg.batch_size, self.generator, self.dist)
        desc = f"{self.method} epoch {epoch}/{self.cfg.epochs}"
        bar = tqdm(batches, desc=desc, unit="step", disable=not self.progress, leave=False)
        for x, y in bar:
            if self._out_of_steps():
                break
            loss, ok, n = self._step(x, y, epoch)
            loss_sum, correct, seen, steps = loss_sum + loss, correct + ok, seen + n, steps + 1
            bar.set_postfix(loss=f"{loss_sum / steps:.4f}", acc=f"{correct / seen:.3f}")
        bar.close()
        if self.device.type == "cuda":  # the epoch's seconds include its last step
            torch.cuda.synchronize(self.device)
        self.model.eval()
        return {
            "train_loss": loss_sum / steps if steps else None,
            "train_accuracy": correct / seen if seen else None,
            "steps": steps,
        }

    def _validate(self) -> float | None:
        return None if self.val is None else split_accuracy(self.model, self.val)

    def _tell(self, record: dict) -> None:
        for callback in self.callbacks:
            callback.on_epoch(record["epoch"], dict(record))

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.model.trainable_parameters().items()}

    def _improves(self, acc: float | None, best_epoch: int | None, best_acc) -> bool:
        """Whether an epoch with validation accuracy ``acc`` replaces the best so far: always
        without validation (the last epoch is kept), else when strictly better (earliest on
        ties) or when no epoch is kept yet."""
        return acc is None or best_epoch is None or acc > best_acc

    def run(self) -> tuple[list[dict], int, float | None]:
        """(history, best epoch, its validation accuracy); the model ends at the best epoch.

        The starting model is validated (history[0]) but competes only with ``select_start``.
        """
        t0 = time.perf_counter()
        empty = {"train_loss": None, "train_accuracy": None, "steps": 0}
        history = [{"epoch": 0, **empty, "val_accuracy": self._validate(), "seconds": 0.0}]
        self._tell(history[-1])
        best_epoch, best_acc, best_state = None, None, None
        if self.cfg.select_start:
            best_epoch, best_acc = 0, history[0]["val_accuracy"]
            best_state = self._snapshot() if self.val is not None else None
        for epoch in range(1, self.cfg.epochs + 1):
            t = time.perf_counter()
            stats = self._epoch(epoch)
            acc = self._validate()
            history.append(
                {"epoch": epoch, **stats, "val_accuracy": acc, "seconds": time.perf_counter() - t}
            )
            log.info("%s epoch %d: %s", self.method, epoch, _fmt(history[-1]))
            self._tell(history[-1])
            if self._improves(acc, best_epoch, best_acc):
                best_epoch, best_acc = epoch, acc
                best_state = self._snapshot() if acc is not None else None
            if self._out_of_steps():
                break
        if best_state is not None and best_epoch != history[-1]["epoch"]:
            with torch.no_grad():
                for name, p in self.model.trainable_parameters().items():
                    p.copy_(best_state[name])
        log.info(
            "%s: best epoch %d (val %s; start %s) in %.1fs",
            self.method,
            best_epoch,
            best_acc,
            history[0]["val_accuracy"],
            time.perf_counter() - t0,
        )
        return history, best_epoch, best_acc


def _fmt(record: dict) -> str:
    return ", ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in record.items()
        if k != "epoch"
    )


def _checked(train: TrainConfig | None, train_task: Task) -> TrainConfig:
    cfg = TrainConfig() if train is None else train
    if not isinstance(cfg, TrainConfig):
        raise ConfigError(f"train must be a TrainConfig, not {type(cfg).__name__}")
    if train_task.n_classes < 2:
        raise DataError(
            f"task {train_task.name} has {train_task.n_classes} class "
            f"({', '.join(train_task.class_names)}); fine-tuning needs at least 2"
        )
    return cfg


def finetune(
    model_or_backbone: Backbone | AdaptedModel,
    train_task: Task,
    method: str | ResolvedMethod,
    *,
    method_options=None,
    train: TrainConfig | None = None,
    progress: bool = True,
    copy: bool = True,
    callbacks: Sequence[TrainCallback] = (),
) -> FinetuneResult | None:
    """Fine-tune with ``method`` on ``train_task``; returns the best-validation-epoch model.

    ``method``: a :class:`~clipgap.methods.ResolvedMethod` (a run spec's; it carries its
    options), or a name with ``method_options``, resolved once by
    :func:`clipgap.methods.apply_method`.

    ``copy=True`` leaves the given backbone/model untouched (the method is applied to a deep
    copy); ``copy=False`` modifies it in place (saves memory when the caller already copied).
    Under ``torchrun`` (WORLD_SIZE > 1) every rank trains its slice of each batch and rank 0
    returns the result; the other ranks return None (see :mod:`clipgap.training.distributed`).
    ``callbacks``: observers (:class:`TrainCallback`, e.g. a :class:`clipgap.tracking.Tracker`)
    told each step's loss and learning rate and each epoch's history entry (on rank 0 only
    under torchrun); they never change what is trained. Raises DataError for a task with fewer
    than two classes, TrainingError on a non-finite loss, ConfigError / UnknownNameError for
    bad options, too many shots or an unknown method.
    """
    cfg = _checked(train, train_task)
    start = time.perf_counter()
    fit_task, val_task = training_splits(train_task, cfg)
    dist = ddp.environment()
    device = dev.resolve_device(cfg.device, model_or_backbone)
    precision = dev.resolve_precision(cfg.requested_precision, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = _prepare(model_or_backbone, copy, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        opts = apply_method(
            model,
            method,
            method_options,
            class_names=train_task.class_names,
            templates=train_task.templates,
        )
    method = model.method  # the name, whether a name or a resolved method was given
    if model.n_trainable == 0:
        raise TrainingError(f"method {method!r} left nothing trainable on {model.backbone.spec}")
    model.eval()
    dist = ddp.participation(model, method, cfg, dist)
    if dist is None:
        return None
    ddp.setup(dist, device)
    progress = progress and dist.is_main
    fit = _split_data(model, fit_task, cfg, progress)
    val_task = val_task if dist.is_main else None  # rank 0 alone validates
    val = _split_data(model, val_task, cfg, progress) if val_task is not None else None
    callbacks = callbacks if dist.is_main else ()
    loop = _Loop(model, method, fit, val, cfg, progress, callbacks, precision=precision, dist=dist)
    with dev.fast_math(device, precision):
        history, best_epoch, best_acc = loop.run()
    loop.release()
    if not dist.is_main:
        return None
    return FinetuneResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        val_accuracy=best_acc,
        trainable_params=model.n_trainable,
        seconds=time.perf_counter() - start,
        peak_memory_mb=dev.peak_memory_mb(device),
        method=method,
        method_options=options_dict(opts),
        config=cfg,
        steps=loop.steps,
        val_accuracy_start=history[0]["val_accuracy"],
        train_images=len(fit_task),
        val_images=0 if val_task is None else len(val_task),
        device=str(device),
        precision=precision,
        processes=dist.world_size,
    )
