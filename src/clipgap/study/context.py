"""What runs share: the base model, loaded tasks, and the original model's numbers.

Zero-shot test accuracy of every task spec, and the difficulty of every trained task, are
computed once and, for a study, kept in ``STUDY_DIR/zero_shot.json`` (written atomically under a
lock its workers share), so a resumed study does not recompute them. Entries are keyed by what
they were measured on (model, spec, split, test cap, validation hold-out) and checked against
the base model's fingerprint.
"""

from __future__ import annotations

import json
import logging
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clipgap.backbones import Backbone, load_backbone
from clipgap.data import DataOptions, Task, load_task
from clipgap.errors import ConfigError
from clipgap.record import Difficulty

if TYPE_CHECKING:
    from clipgap.study.spec import DifficultySpec
    from clipgap.training.config import Holdout
    from clipgap.training.data import SplitData

log = logging.getLogger(__name__)

# Prepared splits (pixels, embeddings) one context keeps in memory for its runs, in MiB;
# the environment variable overrides it (0: keep none).
PREPARED_BUDGET_MB = 2048.0
PREPARED_BUDGET_ENV = "CLIPGAP_PREPARED_MB"


def prepared_budget_mb() -> float:
    """``$CLIPGAP_PREPARED_MB`` when set (a number >= 0), else ``PREPARED_BUDGET_MB``."""
    raw = os.environ.get(PREPARED_BUDGET_ENV, "").strip()
    if not raw:
        return PREPARED_BUDGET_MB
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ConfigError(
            f"environment variable {PREPARED_BUDGET_ENV}={raw!r}: expected MiB, a number >= 0"
        )
    return value


def check_settings() -> None:
    """Raise ConfigError for a bad memory or pixel-cache setting in the environment before any
    run starts: ``CLIPGAP_PREPARED_MB``, ``CLIPGAP_PIXEL_CACHE(_SIZE)``, ``CLIPGAP_TEXT_CHUNK``."""
    from clipgap import pixels
    from clipgap.embeddings import text_chunk_prompts

    prepared_budget_mb()
    if pixels.enabled():
        pixels.size_cap()
    text_chunk_prompts()


# The test split as a control task scores it (capped at ``eval.max_control_images`` when set).
CONTROL = "control"


class RunContext:
    """The base model ``model``/``pretrained`` on ``device``, tasks loaded through ``options``
    (test splits capped at ``max_test_images``), and a cache of the original model's numbers
    (``cache_path``: a JSON file, or None to keep them in memory only).

    ``keep_base=False`` lets a single run fine-tune the base model in place (saves a copy).
    """

    def __init__(
        self,
        *,
        model: str,
        pretrained: str | None,
        device: str,
        options: DataOptions,
        batch_size: int = 256,
        max_test_images: int | None = None,
        max_control_images: int | None = None,
        cache_path: Path | None = None,
        progress: bool = True,
        keep_base: bool = True,
    ) -> None:
        self.model, self.pretrained, self.device = model, pretrained, device
        self.options = options
        self.batch_size, self.max_test_images = batch_size, max_test_images
        self.max_control_images = max_control_images
        self.progress, self.keep_base = progress, keep_base
        self.tracking: tuple[str, ...] = ()  # trackers each run writes to (clipgap.tracking)
        self._tasks: dict[tuple[str, str], Task] = {}
        self._prepared: dict[tuple[str, str, bool], SplitData] = {}
        self._prepared_mb = 0.0
        self._cache_path = None if cache_path is None else Path(cache_path)
        self._cache: dict[str, dict] = self._read_cache()
        check_settings()

    def with_tracking(self, kinds) -> RunContext:
        """This context, its runs tracked by ``kinds`` (e.g. ``("tensorboard",)``)."""
        self.tracking = tuple(kinds or ())
        return self

    @classmethod
    def for_study(
        cls, cfg, out_dir: Path, *, progress: bool = False, model: str | None = None
    ) -> RunContext:
        """The context of a study's ``model`` (None: its first) and data, cache in
        ``out_dir/zero_shot.json`` (keyed by model)."""
        return cls(
            model=model or cfg.model_names[0],
            pretrained=cfg.pretrained,
            device=cfg.device,
            options=DataOptions(
                data_root=cfg.data.data_root,
                download=cfg.data.download,
                image_column=cfg.data.image_column,
                label_column=cfg.data.label_column,
            ),
            batch_size=cfg.eval.batch_size,
            max_test_images=cfg.eval.max_test_images,
            max_control_images=cfg.eval.max_control_images,
            cache_path=Path(out_dir) / "zero_shot.json",
            progress=progress,
        ).with_tracking(cfg.tracking)

    @cached_property
    def backbone(self) -> Backbone:
        """The original model, frozen from the start: torch picks other attention kernels
        once no parameter requires grad, so a measurement must not depend on whether a
        zero-shot evaluation (which freezes it) ran before it."""
        backbone = load_backbone(self.model, self.pretrained, device=self.device)
        backbone.requires_grad_(False)
        backbone.eval()
        return backbone

    @cached_property
    def base_fingerprint(self) -> str:
        return self.backbone.fingerprint()

    def task(self, spec: str, split: str) -> Task:
        """A task split, loaded once; test splits are capped at ``max_test_images``, and the
        split ``control`` is the test split as a control task scores it (capped at
        ``max_control_images`` when set)."""
        key = (spec, split)
        if key not in self._tasks:
            if split == CONTROL and self.max_control_images is None:
                split = "test"
            cap = self.max_control_images if split == CONTROL else self.max_test_images
            task = load_task(spec, "test" if split == CONTROL else split, options=self.options)
            if split in ("test", CONTROL) and cap is not None and len(task) > cap:
                keep = np.sort(np.random.default_rng(0).permutation(len(task))[:cap])
                task = task.subset(keep, split="test")
            self._tasks[key] = task
        return self._tasks[key]

    def difficulty_task(self, spec: str, where: DifficultySpec) -> Task:
        """The images difficulty is measured on: the test split, or the training portion that
        ``where.holdout`` leaves."""
        if where.holdout is None:
            return self.task(spec, "test")
        from clipgap.training import split_validation

        fit, _ = split_validation(
            self.task(spec, "train"),
            where.holdout.val_fraction,
            max_images=where.holdout.val_max,
            seed=where.holdout.val_seed,
        )
        return fit

    def prepared(self, spec: str, split: str, *, embedded: bool) -> SplitData:
        """``spec``'s ``split`` ready for scoring any model of this base: raw image embeddings
        of the original model (``embedded``, for a frozen image tower) or preprocessed pixels.

        Kept for the context's next runs while the memory all kept splits really hold stays
        under :func:`prepared_budget_mb` (every run scores the same test splits: decoding and
        transforming them again cost the default study about as much as its forward passes);
        past it each call prepares the split anew (pixels up to ``SplitData``'s own cap,
        streamed beyond). A split served by the pixel cache is memory-mapped: it holds no
        memory of its own and is always kept.
        """
        from clipgap.model import AdaptedModel
        from clipgap.training.data import SplitData

        split = self.test_split(split) if split in ("test", CONTROL) else split
        key = (spec, split, embedded)
        if key in self._prepared:
            return self._prepared[key]
        data = SplitData(
            AdaptedModel(self.backbone),
            self.task(spec, split),
            embedded=embedded,
            batch_size=self.batch_size,
            on_host=True,  # kept across runs: never holds accelerator memory runs need
        )
        mb = data.resident_mb
        if data.x is not None and self._prepared_mb + mb <= prepared_budget_mb():
            self._prepared[key], self._prepared_mb = data, self._prepared_mb + mb
        return data

    # ---- the original model's numbers, cached --------------------------------------------
    def _read_cache(self) -> dict:
        if self._cache_path is not None and self._cache_path.is_file():
            try:
                return json.loads(self._cache_path.read_text())
            except json.JSONDecodeError:
                log.warning(
                    "ignoring unreadable %s; recomputing zero-shot numbers", self._cache_path
                )
        return {}

    def _cached(self, key: str, compute):
        key = f"{key}|{self.model}|{self.pretrained}"
        columns = (self.options.image_column, self.options.label_column)
        if any(columns):  # hfds: columns named by the study read other data
            key += "|columns={},{}".format(*columns)
        entry = self._cache.get(key)
        if entry is None or entry.get("fingerprint") != self.base_fingerprint:
            if self._cache_path is None:
                entry = {"fingerprint": self.base_fingerprint, "value": compute()}
            else:  # shared by a study's workers: computed once, merged under the file's lock
                from clipgap.study.shared import shared_json_entry

                entry = shared_json_entry(self._cache_path, key, self.base_fingerprint, compute)
            self._cache[key] = entry
        return entry["value"]

    def zero_shot_accuracy(self, spec: str, split: str = "test") -> float:
        """Top-1 of the original model on ``spec``'s (capped) test split, or on it as a control
        task scores it (``split="control"``)."""
        from clipgap.training import accuracy, zero_shot_model

        split = self.test_split(split)

        def compute() -> float:
            model = zero_shot_model(self.backbone)
            task = self.task(spec, split)
            return float(accuracy(model, task, batch_size=self.batch_size, progress=False))

        if split == CONTROL:
            return self._cached(f"accuracy|{spec}|test|cap={self.max_control_images}", compute)
        return self._cached(f"accuracy|{spec}|test|cap={self.max_test_images}", compute)

    def test_split(self, split: str) -> str:
        """``control`` when control tasks have a cap of their own, else ``test``."""
        return CONTROL if split == CONTROL and self.max_control_images is not None else "test"

    def zero_shot_val_accuracy(self, spec: str, train: Holdout) -> float | None:
        """Top-1 of the original model on the validation split that a run with hold-out
        ``train`` takes from ``spec``'s train split (None when it holds out none): the
        validation accuracy of the interpolation at alpha = 0, shared by every method."""
        from clipgap.training import accuracy, split_validation, zero_shot_model

        if not train.val_fraction:
            return None

        def compute() -> float:
            _, val = split_validation(
                self.task(spec, "train"),
                train.val_fraction,
                max_images=train.val_max,
                seed=train.val_seed,
            )
            model = zero_shot_model(self.backbone)
            return float(accuracy(model, val, batch_size=self.batch_size, progress=False))

        place = f"fraction={train.val_fraction},max={train.val_max},seed={train.val_seed}"
        return self._cached(f"accuracy|{spec}|val|{place}", compute)

    def difficulty(self, spec: str, where: DifficultySpec) -> Difficulty:
        """The original model's difficulty measures of ``spec`` on ``where``."""
        from clipgap.config import identity
        from clipgap.difficulty import measure_difficulty

        def compute() -> dict:
            task = self.difficulty_task(spec, where)
            return measure_difficulty(
                self.backbone, task, batch_size=self.batch_size, progress=self.progress
            )

        cap = self.max_test_images if where.split == "test" else None
        entries = identity(where)  # the cache key names what the run config names
        place = ",".join(f"{k}={entries[k]}" for k in sorted(entries))
        measures = self._cached(f"difficulty|{spec}|{place}|cap={cap}", compute)
        return Difficulty.from_measures(measures, split=where.split)
