"""The local executor: runs one after another in this process (models and tasks stay loaded).

Several local workers may share one output directory (one per GPU, a SLURM array with
``--shard``): run locks keep each run to one worker.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from clipgap.errors import ConfigError
from clipgap.study.attempt import PendingRun, StudyJob
from clipgap.study.executors import EXECUTORS, Done
from clipgap.study.spec import RunSpec


@EXECUTORS.register("local")
class LocalExecutor:
    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def prepare(self, runs: Sequence[RunSpec]) -> None:
        """Refuse ``resources.gpus_per_run`` above the GPUs this process sees."""
        gpus = self.cfg.resources.gpus_per_run
        if not gpus:
            return
        import torch

        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if math.ceil(gpus) > have:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            seen = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
            raise ConfigError(
                f"resources.gpus_per_run={gpus:g}, but this process sees {have} GPU(s){seen}; "
                f"lower resources.gpus_per_run, or run on a machine or Ray cluster that has them"
            )

    def run(self, job: StudyJob, pending: Sequence[PendingRun], on_done: Done) -> None:
        for run in pending:
            on_done(job.attempt(run))

    def close(self) -> None:
        pass
