"""What every run of a study shares: the base model, loaded tasks, and zero-shot numbers.

Zero-shot accuracy and difficulty of every task spec are computed once per study and kept in
``STUDY_DIR/zero_shot.json`` (written atomically), so a resumed study does not recompute them.
"""

from __future__ import annotations

import json
import logging
from functools import cached_property
from pathlib import Path

import numpy as np

from clipgap.backbones import Backbone, load_backbone
from clipgap.data import DataOptions, Task, load_task
from clipgap.paths import atomic_write_text
from clipgap.study.config import StudyConfig

log = logging.getLogger(__name__)


class StudyContext:
    def __init__(self, cfg: StudyConfig, out_dir: Path, *, progress: bool = True) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.options = DataOptions(data_root=cfg.data.data_root, download=cfg.data.download)
        self._tasks: dict[tuple[str, str], Task] = {}
        self._zs_path = self.out_dir / "zero_shot.json"
        self._zs: dict[str, dict] = self._read_zero_shot()

    @cached_property
    def backbone(self) -> Backbone:
        return load_backbone(self.cfg.model, self.cfg.pretrained, device=self.cfg.device)

    @cached_property
    def base_fingerprint(self) -> str:
        return self.backbone.fingerprint()

    def task(self, spec: str, split: str) -> Task:
        """A task split, loaded once; test splits are capped at ``eval.max_test_images``."""
        key = (spec, split)
        if key not in self._tasks:
            task = load_task(spec, split, options=self.options)
            cap = self.cfg.eval.max_test_images
            if split == "test" and cap is not None and len(task) > cap:
                keep = np.sort(np.random.default_rng(0).permutation(len(task))[:cap])
                task = task.subset(keep, split="test")
            self._tasks[key] = task
        return self._tasks[key]

    def _read_zero_shot(self) -> dict:
        if self._zs_path.is_file():
            try:
                return json.loads(self._zs_path.read_text())
            except json.JSONDecodeError:
                log.warning("ignoring unreadable %s; recomputing zero-shot numbers", self._zs_path)
        return {}

    def zero_shot(self, spec: str) -> dict:
        """``{"accuracy": float, "difficulty": dict}`` of the original model on ``spec``'s test split."""
        key = f"{self.cfg.model}|{self.cfg.pretrained}|{spec}|cap={self.cfg.eval.max_test_images}"
        entry = self._zs.get(key)
        if entry is None or entry.get("fingerprint") != self.base_fingerprint:
            from clipgap.difficulty import measure_difficulty

            task = self.task(spec, "test")
            diff = measure_difficulty(
                self.backbone, task, batch_size=self.cfg.eval.batch_size, progress=self.progress
            )
            entry = {
                "fingerprint": self.base_fingerprint,
                "accuracy": diff["zero_shot_accuracy"],
                "difficulty": diff,
            }
            self._zs[key] = entry
            atomic_write_text(self._zs_path, json.dumps(self._zs, indent=1, sort_keys=True))
        return entry
