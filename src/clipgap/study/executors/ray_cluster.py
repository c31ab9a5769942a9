"""The Ray executor: each run is a Ray task with the resources it asks for.

A task runs :meth:`clipgap.study.attempt.StudyJob.attempt` in a Ray worker: it claims the run's
lock in the shared output directory, runs it and writes the record there itself, exactly as the
local executor does. A task whose worker dies (killed, out of memory, node lost) is retried up
to ``ray.max_retries`` times; the retry finds the dead worker's lock and recovers it. Every node
needs clipgap installed and the output directory (and data) at the same path.

Ray is an optional extra: ``pip install 'clipgap[ray]'``.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Sequence

from clipgap.errors import ConfigError, environment_error
from clipgap.study.attempt import Attempt, PendingRun, StudyJob
from clipgap.study.executors import EXECUTORS, Done
from clipgap.study.spec import RunSpec

log = logging.getLogger(__name__)

# Environment a worker needs to see what the driver sees (caches, offline switches).
FORWARDED_ENV = ("CLIPGAP_", "HF_", "TRANSFORMERS_")


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "executor ray needs Ray, which is not installed: pip install 'clipgap[ray]'"
        ) from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def resolve_address(ray, address: str) -> tuple[str, int] | None:
    """(host, port) that ``address`` names (``auto``: the cluster this machine runs or last
    started, as Ray finds it), or None where it cannot tell."""
    if address.startswith("ray://"):
        return _host_port(address[len("ray://") :])
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address
        except ImportError:  # another Ray layout: ray.init finds it (and fails) itself
            return None
        try:
            found = canonicalize_bootstrap_address("auto")
        except ConnectionError:
            raise ConfigError(
                "ray.address 'auto': no running Ray cluster found on this machine; start one "
                "with `ray start --head`, or give its HOST:PORT"
            ) from None
        return None if found is None else _host_port(found)
    return _host_port(address)


def check_reachable(address: str, target: tuple[str, int] | None, timeout: float) -> None:
    """A one-line ConfigError unless ``target`` accepts a TCP connection within ``timeout`` s
    (ray.init itself would wait for an unreachable cluster without end)."""
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise ConfigError(
            f"ray.address {address!r}: cannot reach {target[0]}:{target[1]} within "
            f"{timeout:g} s ({reason}); is the Ray head running (`ray start --head`)?"
        ) from None


def largest_node(nodes: list[dict], key: str) -> float:
    return max((n.get("Resources", {}).get(key, 0.0) for n in nodes if n.get("Alive")), default=0)


def check_fits(nodes: list[dict], *, gpus: float, cpus: float, where: str) -> None:
    """One run's ``gpus`` and ``cpus`` must fit on one alive node (a task never spans nodes)."""
    for key, want, name in (("GPU", gpus, "gpus_per_run"), ("CPU", cpus, "cpus_per_run")):
        have = largest_node(nodes, key)
        if want > have:
            total = sum(n.get("Resources", {}).get(key, 0.0) for n in nodes if n.get("Alive"))
            raise ConfigError(
                f"resources.{name}={want:g}, but the largest node of {where} has {have:g} "
                f"{key}(s) ({total:g} in all); lower resources.{name} or add nodes that have them"
            )


def _attempt_in_worker(job: StudyJob, pending: PendingRun, env: dict) -> Attempt:
    """The Ray task: the same attempt as the local executor's, in a Ray worker process."""
    os.environ.update(env)
    return job.attempt(pending)


@EXECUTORS.register("ray")
class RayExecutor:
    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.ray = import_ray()
        self._connected = False
        self.gpus = self.cpus = 0.0

    def _connect(self) -> str:
        ray, opts = self.ray, self.cfg.ray
        if ray.is_initialized():  # the caller's own connection: used, left open
            return "the connected Ray cluster"
        quiet = {"log_to_driver": False, "include_dashboard": False}
        if opts.address is None:
            ray.init(num_cpus=opts.num_cpus, num_gpus=opts.num_gpus, **quiet)
            self._connected = True
            return "the local Ray instance"
        check_reachable(opts.address, resolve_address(ray, opts.address), opts.connect_timeout_s)
        try:
            ray.init(address=opts.address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"ray.address {opts.address!r}: cannot connect ({first})") from None
        self._connected = True
        return f"the Ray cluster at {opts.address}"

    def prepare(self, runs: Sequence[RunSpec]) -> None:
        """Connect, and refuse a run's resources that no node of the cluster has."""
        where = self._connect()
        nodes = self.ray.nodes()
        cuda = largest_node(nodes, "GPU") > 0
        self.gpus = self.cfg.resources.gpus_for(self.cfg.device, cuda_available=cuda)
        self.cpus = float(self.cfg.resources.cpus_per_run or 1)
        check_fits(nodes, gpus=self.gpus, cpus=self.cpus, where=where)
        log.info("executor ray: %s, %g GPU and %g CPU per run", where, self.gpus, self.cpus)

    def run(self, job: StudyJob, pending: Sequence[PendingRun], on_done: Done) -> None:
        ray = self.ray
        task = ray.remote(_attempt_in_worker).options(
            num_cpus=self.cpus,
            num_gpus=self.gpus if self.gpus < 1 else math.ceil(self.gpus),
            max_retries=self.cfg.ray.max_retries,
            retry_exceptions=False,
        )
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}
        refs = {task.remote(job, p, env): p for p in pending}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                run = refs.pop(ref)
                try:
                    attempt = ray.get(ref)
                except ray.exceptions.RayError as exc:  # its worker died, retries spent
                    cause = getattr(exc, "cause", None) or exc
                    if environment_error(cause) is not None:  # the machine's, not the run's:
                        raise cause from None  # stop, as the local executor does
                    log.error("run %s: Ray task failed: %s", run.name, type(cause).__name__)
                    attempt = job.record_crash(run, cause)
                if attempt.recovered:  # logged in the worker; said here too
                    log.warning(
                        "run %s recovered from a dead worker (%s)", run.name, attempt.recovered
                    )
                on_done(attempt)

    def close(self) -> None:
        if self._connected:
            self.ray.shutdown()
            self._connected = False
