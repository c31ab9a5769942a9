"""How and where a study's runs execute: the executor, what one run asks for, the Ray connection
and the run locks. None of it changes what a run computes, so none of it enters the study's
identity or a run's hash (their fields in :class:`clipgap.study.config.StudyConfig` are marked
:data:`clipgap.config.NOT_HASHED`).

In a study YAML::

    executor: ray                     # local (default) | ray
    resources: {gpus_per_run: 1, cpus_per_run: 4}
    ray: {address: auto, max_retries: 2, connect_timeout_s: 10}
    locks: {heartbeat_s: 30, stale_after_s: 300}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clipgap.errors import ConfigError, UnknownNameError
from clipgap.registry import Registry

EXECUTORS: Registry[Callable] = Registry(
    "executor",
    plugins=[f"clipgap.study.executors.{m}" for m in ("local", "ray_cluster")],
)
"""Every executor by the name a study's ``executor`` key uses: the one list of them (the
``--executor`` choices and the config check read it); see :mod:`clipgap.study.executors`."""


def check_executor_name(name: str) -> None:
    """A one-line ConfigError naming ``executor`` for a name :data:`EXECUTORS` lacks."""
    try:
        EXECUTORS.get(name)
    except UnknownNameError as exc:
        raise ConfigError(f"executor: {exc}") from None


@dataclass
class ResourcesConfig:
    """What one run asks for.

    ``gpus_per_run``: GPUs one run trains on (None: 1 when the study's device is CUDA, else 0;
    a Ray task may ask for a fraction below 1 to share a GPU; above 1 a run trains with
    DistributedDataParallel). ``cpus_per_run``: CPU cores one run uses, and its torch threads
    (None: the local executor keeps torch's default, a Ray task gets 1 core). Records are
    identical across executors only for the same ``cpus_per_run``: float sums depend on threads.
    """

    gpus_per_run: float | None = None
    cpus_per_run: int | None = None

    def __post_init__(self) -> None:
        g = self.gpus_per_run
        if g is not None and (g < 0 or (g > 1 and g != int(g))):
            raise ConfigError(
                f"resources.gpus_per_run must be a fraction in [0, 1] or a whole number of "
                f"GPUs, got {g}"
            )
        if self.cpus_per_run is not None and self.cpus_per_run < 1:
            raise ConfigError(f"resources.cpus_per_run must be >= 1, got {self.cpus_per_run}")

    def gpus_for(self, device: str, *, cuda_available: bool) -> float:
        """GPUs a run asks for on ``device`` (``auto`` counts as CUDA where there is one)."""
        if self.gpus_per_run is not None:
            return self.gpus_per_run
        if device.startswith("cuda") or (device == "auto" and cuda_available):
            return 1.0
        return 0.0


@dataclass
class RayConfig:
    """The Ray connection. ``address``: None starts a local Ray instance (``num_cpus`` /
    ``num_gpus`` cap it; None = the machine's), ``auto`` joins the running cluster this machine
    belongs to, ``HOST:PORT`` or ``ray://HOST:PORT`` a given one; an address that does not
    answer within ``connect_timeout_s`` seconds is refused. A run whose worker dies (killed,
    node lost) is retried up to ``max_retries`` times."""

    address: str | None = None
    max_retries: int = 2
    connect_timeout_s: float = 10.0
    num_cpus: int | None = None
    num_gpus: int | None = None

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError(f"ray.max_retries must be >= 0, got {self.max_retries}")
        if not self.connect_timeout_s > 0:
            raise ConfigError(f"ray.connect_timeout_s must be > 0, got {self.connect_timeout_s}")
        for key in ("num_cpus", "num_gpus"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ConfigError(f"ray.{key} must be >= 0, got {value}")


@dataclass
class LockConfig:
    """Run locks (see :mod:`clipgap.study.locks`): the holder of a run refreshes its heartbeat
    every ``heartbeat_s`` seconds; a lock whose heartbeat is older than ``stale_after_s``, or
    whose holder's process is gone on this host, is stale and is recovered by the next worker."""

    heartbeat_s: float = 30.0
    stale_after_s: float = 300.0

    def __post_init__(self) -> None:
        if not self.heartbeat_s > 0:
            raise ConfigError(f"locks.heartbeat_s must be > 0, got {self.heartbeat_s}")
        if not self.stale_after_s >= 2 * self.heartbeat_s:
            raise ConfigError(
                f"locks.stale_after_s must be at least twice locks.heartbeat_s "
                f"({self.heartbeat_s}), got {self.stale_after_s}"
            )
