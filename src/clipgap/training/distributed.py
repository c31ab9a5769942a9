"""One run on several processes (``torchrun --nproc_per_node N -m clipgap finetune ...``).

torchrun starts N copies of the command with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set;
:func:`environment` reads them. Every process trains a DistributedDataParallel copy of the
model on its part of every batch: the global batch (``train.batch_size``) and the learning
rate stay as configured, all processes draw the same shuffle (same seed), rank r takes the
r-th of N equal slices of each global batch (:meth:`Dist.shard`), and the loss is the mean
over the *global* batch, so an update equals the one-process update on that batch. Rank 0
alone validates, keeps the best epoch, evaluates and writes; the other ranks stop once
training ends. Methods that train on cached image embeddings (frozen image tower) need no
DDP: rank 0 trains alone and the others stop at once.

The process group (NCCL on CUDA, Gloo on CPU) waits for every rank up to
``CLIPGAP_DDP_TIMEOUT`` seconds (default 7200: rank 0 measures zero-shot accuracy and
difficulty before training while the others wait).
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Sampler

from clipgap.errors import ConfigError

log = logging.getLogger(__name__)

# Label of a padding sample: a rank whose slice of a (last, short) batch is empty trains on
# one sample that counts for nothing, so every rank takes part in every gradient reduction.
IGNORE = -100
TIMEOUT_ENV = "CLIPGAP_DDP_TIMEOUT"
DEFAULT_TIMEOUT_S = 7200


@dataclass(frozen=True)
class Dist:
    """This process's place in a launch: ``rank`` of ``world_size`` processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, idx: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """(this rank's slice of a global batch ``idx``, whether it is padding).

        Slices are contiguous and as equal as possible (:func:`torch.tensor_split`); an empty
        slice becomes the batch's first index, flagged as padding (label :data:`IGNORE`).
        """
        part = torch.tensor_split(idx, self.world_size)[self.rank]
        if len(part) == 0:
            return idx[:1], True
        return part, False


SINGLE = Dist()


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ConfigError(f"environment variable {name}={raw!r}: expected an integer >= {minimum}")
    return value


def environment() -> Dist:
    """This process's :class:`Dist` from torchrun's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``
    (one process when unset). Raises ConfigError for values that do not fit together."""
    world = _env_int("WORLD_SIZE", 1, 1)
    rank = _env_int("RANK", 0, 0)
    local = _env_int("LOCAL_RANK", rank, 0)
    if rank >= world:
        raise ConfigError(f"environment variable RANK={rank} must be below WORLD_SIZE={world}")
    return Dist(rank=rank, world_size=world, local_rank=local)


def is_main_process() -> bool:
    """True except on ranks > 0 of a multi-process launch (they must not evaluate or write)."""
    return environment().is_main


def check_batch(batch_size: int, dist: Dist) -> None:
    """The global batch must split into equal per-rank batches (one-line ConfigError)."""
    if batch_size % dist.world_size:
        raise ConfigError(
            f"train.batch_size={batch_size} does not split over {dist.world_size} processes "
            f"(WORLD_SIZE): use a multiple of {dist.world_size} (it is the global batch; each "
            "process takes batch_size / WORLD_SIZE)"
        )


def participation(model, method: str, cfg, dist: Dist) -> Dist | None:
    """How this process takes part: ``dist`` (DDP), :data:`SINGLE` (rank 0 training alone a
    method on cached embeddings) or None (a rank with nothing to do)."""
    if not dist.active:
        return dist
    if model.image_tower_frozen and cfg.cache_embeddings:
        if dist.is_main:
            log.warning(
                "%s trains on cached image embeddings (frozen image tower): no DDP, rank 0 "
                "trains alone and the other %d processes stop",
                method,
                dist.world_size - 1,
            )
            return SINGLE
        log.info("rank %d: %s trains on rank 0 alone; this process stops", dist.rank, method)
        return None
    check_batch(cfg.batch_size, dist)
    return dist


def setup(dist: Dist, device: torch.device) -> None:
    """Join the process group of this launch (once per process; NCCL on CUDA, else Gloo)."""
    import torch.distributed as td

    if not dist.active or td.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = _env_int(TIMEOUT_ENV, DEFAULT_TIMEOUT_S, 1)
    backend = "nccl" if device.type == "cuda" else "gloo"
    log.info("rank %d of %d: joining the %s process group", dist.rank, dist.world_size, backend)
    td.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
    atexit.register(_teardown)


def _teardown() -> None:
    import torch.distributed as td

    if td.is_initialized():
        td.destroy_process_group()


def wrap(module: torch.nn.Module, dist: Dist, device: torch.device) -> torch.nn.Module:
    """``module`` under DistributedDataParallel when several processes train, else itself.

    ``static_graph``: the same parameters take part in every step, so DDP learns once which
    trainable parameters (if any) the loss does not reach, instead of searching every step.
    """
    if not dist.active:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, static_graph=True)


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over every process (in place; returned)."""
    import torch.distributed as td

    td.all_reduce(values, op=td.ReduceOp.SUM)
    return values


class ShardedBatches(Sampler):
    """This rank's slice of every batch of ``batches`` (a batch sampler over the full split).

    A padding sample is yielded as ``~index`` (negative), which :class:`Padded` reads with
    label :data:`IGNORE`.
    """

    def __init__(self, batches, dist: Dist) -> None:
        self.batches, self.dist = batches, dist

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            part, pad = self.dist.shard(torch.as_tensor(batch, dtype=torch.long))
            yield [~i for i in part.tolist()] if pad else part.tolist()


class Padded(Dataset):
    """``dataset`` whose negative index ``~i`` is item ``i`` with label :data:`IGNORE`."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        if index < 0:
            x, _ = self.dataset[~index]
            return x, IGNORE
        return self.dataset[index]
