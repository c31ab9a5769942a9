"""What a fine-tuning run returns (:func:`clipgap.training.finetune`)."""

from __future__ import annotations

from dataclasses import dataclass

from clipgap.model import AdaptedModel
from clipgap.training.config import TrainConfig


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns.

    ``history``: one dict per epoch (0 = the starting model) with ``train_loss``,
    ``train_accuracy`` (None for epoch 0), ``val_accuracy`` (None without validation),
    ``steps`` and ``seconds``. ``model`` holds the weights of ``best_epoch``: the trained epoch
    (>= 1) with the best validation accuracy, earliest on ties (the last epoch without
    validation; with ``TrainConfig.select_start`` epoch 0 competes too). ``val_accuracy`` is
    that epoch's, ``val_accuracy_start`` the starting model's (epoch 0, for information).
    ``train_images`` / ``val_images``: images trained on (after ``shots``) and validated on.
    ``peak_memory_mb``: CUDA peak allocated on GPU, the process's peak resident set size on CPU.
    ``device``, ``precision`` (fp32 / bf16, ``auto`` resolved) and ``processes`` (DDP ranks):
    where it trained, summed up by :attr:`placement`.
    """

    model: AdaptedModel
    history: list[dict]
    best_epoch: int
    val_accuracy: float | None
    trainable_params: int
    seconds: float
    peak_memory_mb: float
    method: str
    method_options: dict
    config: TrainConfig
    steps: int = 0
    val_accuracy_start: float | None = None
    train_images: int = 0
    val_images: int = 0
    device: str = ""
    precision: str = ""
    processes: int = 1

    @property
    def placement(self) -> str:
        """``"cuda:0, bf16"``, ``"cuda:0, bf16, 4 processes"``, ``"cpu, fp32"``."""
        parts = [self.device, self.precision]
        if self.processes > 1:
            parts.append(f"{self.processes} processes")
        return ", ".join(p for p in parts if p)
