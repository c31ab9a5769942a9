"""What training reads: validation held out of the full train split, then k shots per class."""

from __future__ import annotations

import numpy as np
import pytest

from clipgap.data import ImageArrays, Task
from clipgap.errors import ConfigError
from clipgap.training import (
    TrainConfig,
    check_shots,
    finetune,
    sample_shots,
    split_validation,
    training_splits,
)
from tests.test_methods import colour_task

pytestmark = pytest.mark.usefixtures("one_thread")


def uneven_task(counts: dict[str, int]) -> Task:
    """A task with ``counts[name]`` images of each class (labels interleaved, then the rest)."""
    labels = np.concatenate([np.full(n, k) for k, n in enumerate(counts.values())])
    labels = labels[np.random.default_rng(1).permutation(len(labels))]
    pixels = np.zeros((len(labels), 8, 8, 3), np.uint8)
    pixels[..., 0] = np.arange(len(labels))[:, None, None] % 256  # images tell apart by index
    return Task("uneven", "train", ImageArrays(pixels), labels, list(counts), ["{c}"], "uneven-1")


def walk_oracle(labels: np.ndarray, shots: int, seed: int) -> list[int]:
    """Independent statement of the rule: walk one seeded permutation, keep while a class has
    fewer than ``shots``."""
    taken: dict[int, int] = {}
    keep = []
    for i in np.random.default_rng(seed).permutation(len(labels)):
        if taken.get(labels[i], 0) < shots:
            taken[labels[i]] = taken.get(labels[i], 0) + 1
            keep.append(int(i))
    return sorted(keep)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_sample_shots_keeps_k_per_class_as_the_walk_does(seed):
    task = uneven_task({"a": 9, "b": 5, "c": 12})
    shot = sample_shots(task, 4, seed=seed)
    assert np.bincount(shot.labels).tolist() == [4, 4, 4]
    assert shot.images.indices.tolist() == walk_oracle(task.labels, 4, seed)
    assert np.array_equal(shot.labels, task.labels[shot.images.indices])
    again = sample_shots(task, 4, seed=seed)
    assert again.fingerprint == shot.fingerprint and shot.split == "train-4shot"


def test_sample_shots_seeds_differ_and_nest():
    task = uneven_task({"a": 20, "b": 20})
    by_seed = {s: set(sample_shots(task, 3, seed=s).images.indices.tolist()) for s in range(4)}
    assert len({frozenset(v) for v in by_seed.values()}) > 1
    small = set(sample_shots(task, 2, seed=5).images.indices.tolist())
    large = set(sample_shots(task, 8, seed=5).images.indices.tolist())
    assert small < large
    assert len(sample_shots(task, 20, seed=5)) == 40  # every image


def test_too_many_shots_names_the_smallest_class():
    task = uneven_task({"a": 9, "b": 5, "c": 12})
    with pytest.raises(
        ConfigError,
        match=r"^train\.shots=6 is more than class 'b' of task uneven \(train\) has: 5 images$",
    ):
        sample_shots(task, 6, seed=0)
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ConfigError, match=r"train\.shots must be an integer >= 1"):
            sample_shots(task, bad, seed=0)


def test_check_shots_looks_at_the_training_portion():
    """100 images, 10 held out for validation (seed 0): the check counts what is left."""
    task = uneven_task({"a": 50, "b": 30, "c": 20})
    fit, _ = split_validation(task, 0.1, seed=0)
    left = np.bincount(fit.labels, minlength=3)
    check_shots(task, int(left.min()))
    check_shots(task, None)  # all images
    check_shots(task, 20, val_fraction=0.0)  # no validation: all 20 of class c are left
    name = task.class_names[int(np.argmin(left))]
    with pytest.raises(
        ConfigError,
        match=rf"class '{name}' of task uneven \(train-fit\) has: {left.min()} images after "
        r"validation is held out$",
    ):
        check_shots(task, int(left.min()) + 1)
    with pytest.raises(ConfigError, match=r"train\.shots must be an integer >= 1"):
        check_shots(task, 0)


def test_validation_comes_from_the_full_split_and_never_overlaps_training():
    task = uneven_task({"a": 40, "b": 40, "c": 40})
    cfg = TrainConfig(shots=2, seed=3)
    fit, val = training_splits(task, cfg)
    full_fit, full_val = split_validation(task, 0.1, seed=0)
    # validation does not depend on shots: 10 % of all 120 images, larger than the training set
    assert val.fingerprint == full_val.fingerprint and len(val) == 12 > len(fit) == 6
    original = full_fit.images.indices[fit.images.indices]  # shots index into the fit portion
    assert not set(original.tolist()) & set(val.images.indices.tolist())
    assert np.array_equal(task.labels[original], fit.labels)
    assert np.bincount(fit.labels).tolist() == [2, 2, 2]
    other_seed, _ = training_splits(task, TrainConfig(shots=2, seed=4))
    assert other_seed.fingerprint != fit.fingerprint


def test_finetune_trains_on_the_shots(tiny):
    task = colour_task(60)
    cfg = TrainConfig(optimizer="adamw", lr=1e-2, epochs=2, batch_size=4, shots=5, seed=2)
    result = finetune(tiny, task, "clip_adapter", train=cfg, progress=False)
    assert (result.train_images, result.val_images) == (15, 6)
    assert all(h["steps"] == 4 for h in result.history[1:])  # 15 images / batch 4
    with pytest.raises(ConfigError, match=r"train\.shots=19 is more than class"):
        finetune(tiny, task, "clip_adapter", train=TrainConfig(shots=19), progress=False)
