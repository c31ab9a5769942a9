"""Decode once: the pixel cache serves bit-identical model inputs, runs give the same records
with and without it, and its bad inputs (unwritable directory, changed files, a bad size cap, a
disk that fills) are handled as docs/bad-input.md says."""

from __future__ import annotations

import errno
import logging
import os

import numpy as np
import pytest
import torch
from torchvision import transforms as T

from clipgap import pixels
from clipgap.cli import main
from clipgap.data import DataOptions, load_task
from clipgap.errors import ConfigError
from clipgap.pixels import cache as cache_module
from clipgap.record import read_record
from tests.conftest import make_image_folder


@pytest.fixture
def folder(tmp_path):
    """A folder task whose images (40x48) the tiny model's transform resizes and crops."""
    root = tmp_path / "data"
    make_image_folder(root / "train", per_class=6, size=48)
    make_image_folder(root / "test", per_class=2, size=48, seed=1)
    # a non-square image too, so the centre crop cuts something
    from PIL import Image

    Image.new("RGB", (40, 56), (10, 200, 30)).save(root / "train" / "cat" / "tall.png")
    return root


def _task(root, split="train"):
    return load_task(f"folder:{root}", split, options=DataOptions())


def _entries():
    from clipgap.paths import cache_dir

    return sorted(p.name for p in cache_dir("pixels").glob("*.npy"))


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(cache_module, "_warned", set())
    monkeypatch.setattr(cache_module, "_failed", set())


def test_cached_inputs_are_bit_identical_to_the_transform(tiny, folder):
    task = _task(folder)
    entry = pixels.cached_pixels(task, tiny.transform)
    assert entry is not None and len(entry) == len(task) and len(_entries()) == 1
    expected = torch.stack([tiny.transform(task.images.load(i)) for i in range(len(task))])
    order = torch.randperm(len(task), generator=torch.Generator().manual_seed(0))
    assert torch.equal(entry[order], expected[order])
    assert entry.array.dtype == np.uint8 and entry.array.shape[1:] == (3, 32, 32)
    # a second use opens the same entry: nothing is rebuilt
    mtime = entry.path.stat().st_mtime_ns
    again = pixels.cached_pixels(task, tiny.transform)
    assert again.path == entry.path and again.path.stat().st_mtime_ns == mtime


def test_loader_dataset_reads_the_cache_in_worker_processes(tiny, folder):
    from clipgap.training.data import image_loader

    task = _task(folder)
    assert isinstance(pixels.task_images(task, tiny.transform), pixels.CachedImages)
    loader = image_loader(task, tiny.transform, batch_size=5, num_workers=1)
    x = torch.cat([b for b, _ in loader])
    y = torch.cat([lab for _, lab in loader])
    expected = torch.stack([tiny.transform(task.images.load(i)) for i in range(len(task))])
    assert torch.equal(x, expected) and y.tolist() == task.labels.tolist()


def _finetune(folder, out, capsys):
    code = main(
        ["finetune", "--model", "clipgap-tiny", "--dataset", f"folder:{folder}"]
        + ["--method", "full", "--out", str(out), "--no-progress", "--tracking", "none"]
        + ["train.epochs=2", "train.lr=1e-3", "train.batch_size=8", "train.cache_embeddings=false"]
    )
    assert code == 0, capsys.readouterr().err
    return read_record(out)


def test_records_are_identical_with_and_without_the_cache(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(pixels.ENABLED_ENV, "off")
    without = _finetune(folder, tmp_path / "off", capsys)
    assert _entries() == []
    monkeypatch.setenv(pixels.ENABLED_ENV, "on")
    with_cache = _finetune(folder, tmp_path / "on", capsys)
    assert len(_entries()) >= 2  # train and test splits
    assert with_cache.comparable() == without.comparable()
    assert with_cache.finetuned.id == without.finetuned.id


def test_changed_files_are_detected_and_rebuilt(tiny, folder, caplog):
    task = _task(folder)
    first = pixels.cached_pixels(task, tiny.transform)
    changed = folder / "train" / "cat" / "tall.png"
    from PIL import Image

    Image.new("RGB", (40, 56), (250, 0, 0)).save(changed)
    os.utime(changed, ns=(1, 1))  # a different mtime even on a coarse clock
    index = task.images.paths.index(str(changed)) if hasattr(task.images, "paths") else None
    with caplog.at_level(logging.WARNING, logger="clipgap.pixels"):
        second = pixels.cached_pixels(task, tiny.transform)
    assert second.path == first.path
    assert "changed; rebuilding" in caplog.text and str(first.path) in caplog.text
    expected = torch.stack([tiny.transform(task.images.load(i)) for i in range(len(task))])
    assert torch.equal(second[list(range(len(task)))], expected)
    assert index is None or expected[index, 0].mean() > expected[index, 1].mean()


def test_unwritable_directory_falls_back_with_one_warning(
    tiny, folder, tmp_path, monkeypatch, caplog
):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("CLIPGAP_CACHE", str(blocker / "cache"))
    task = _task(folder)
    with caplog.at_level(logging.WARNING, logger="clipgap.pixels"):
        assert pixels.cached_pixels(task, tiny.transform) is None
        assert pixels.cached_pixels(_task(folder, "test"), tiny.transform) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "is not writable" in lines[0] and "without it" in lines[0]
    assert isinstance(pixels.task_images(task, tiny.transform), pixels.TaskImages)


def test_disk_full_while_writing_discards_the_entry(tiny, folder, monkeypatch, caplog):
    from clipgap.training import accuracy, zero_shot_model

    def full(fh, rows):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "_write_rows", full)
    task = _task(folder, "test")
    model = zero_shot_model(tiny)
    with caplog.at_level(logging.WARNING, logger="clipgap.pixels"):
        assert pixels.cached_pixels(task, tiny.transform) is None
        model.requires_grad_(True)  # through the tower: the run goes on uncached
        uncached = accuracy(model, task, progress=False)
        model.requires_grad_(False)
    assert [r.getMessage() for r in caplog.records] == [
        next(r.getMessage() for r in caplog.records)
    ]
    assert "disk full while writing the pixel cache" in caplog.text
    from clipgap.paths import cache_dir

    assert list(cache_dir("pixels").glob("*.npy*")) == []  # no entry, no temporary file
    monkeypatch.setenv(pixels.ENABLED_ENV, "off")
    model.requires_grad_(True)
    assert accuracy(model, task, progress=False) == uncached
    model.requires_grad_(False)


@pytest.mark.parametrize("value", ["0", "lots", "-5G", "0M", ""])
def test_size_cap_must_be_a_size(value, monkeypatch, tiny, folder):
    monkeypatch.setenv(pixels.SIZE_ENV, value)
    if value == "":
        assert pixels.size_cap() == pixels.parse_size("20G")  # empty: the default
        return
    with pytest.raises(ConfigError) as err:
        pixels.cached_pixels(_task(folder), tiny.transform)
    message = str(err.value)
    assert message.startswith(f"environment variable CLIPGAP_PIXEL_CACHE_SIZE={value!r}")
    assert "expected a size above 0" in message and "\n" not in message


def test_sizes_parse():
    assert pixels.parse_size("500M") == 500 * 2**20
    assert pixels.parse_size("1.5G") == int(1.5 * 2**30)
    assert pixels.parse_size("2GiB") == 2 * 2**30
    assert pixels.parse_size("4096") == 4096


def test_entries_over_the_cap_are_evicted_least_recently_used(tiny, folder, monkeypatch):
    train, test = _task(folder), _task(folder, "test")
    one = len(train) * 32 * 32 * 3
    monkeypatch.setenv(pixels.SIZE_ENV, str(one + len(test) * 32 * 32 * 3 - 1))
    a = pixels.cached_pixels(train, tiny.transform)
    b = pixels.cached_pixels(test, tiny.transform)  # both do not fit: the older goes
    assert a is not None and b is not None
    assert _entries() == [b.path.name]
    monkeypatch.setenv(pixels.SIZE_ENV, str(one - 1))  # too big for the cap on its own
    assert pixels.cached_pixels(train, tiny.transform) is None


def test_off_and_non_deterministic_transforms_are_not_cached(tiny, folder, monkeypatch):
    task = _task(folder)
    random = T.Compose([T.RandomResizedCrop(32), T.ToTensor()])
    assert pixels.recipe(random) is None
    assert pixels.recipe(T.Compose([T.Resize(32), T.ToTensor(), T.ColorJitter(0.1)])) is None
    assert pixels.cached_pixels(task, random) is None
    monkeypatch.setenv(pixels.ENABLED_ENV, "off")
    assert pixels.cached_pixels(task, tiny.transform) is None and _entries() == []
    monkeypatch.setenv(pixels.ENABLED_ENV, "maybe")
    with pytest.raises(ConfigError, match=r"CLIPGAP_PIXEL_CACHE='maybe': expected on or off"):
        pixels.cached_pixels(task, tiny.transform)


def test_pixels_moved_to_a_device_give_the_same_inputs(tiny, folder):
    entry = pixels.cached_pixels(_task(folder), tiny.transform)
    index = torch.tensor([3, 0, 5, 5])
    expected = entry[index]
    moved = pixels.cached_pixels(_task(folder), tiny.transform).on(torch.device("cpu"))
    assert moved.tensor is not None and moved.tensor.dtype == torch.uint8
    assert torch.equal(moved[index], expected)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (pixels.SIZE_ENV, "0", "expected a size above 0"),
        ("CLIPGAP_PREPARED_MB", "lots", "expected MiB, a number >= 0"),
        ("CLIPGAP_TEXT_CHUNK", "-1", "expected an integer >= 0"),
    ],
)
def test_bad_settings_stop_the_command_in_one_line(
    name, value, expected, folder, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(name, value)
    code = main(
        ["finetune", "--model", "clipgap-tiny", "--dataset", f"folder:{folder}"]
        + ["--method", "full", "--out", str(tmp_path / "run"), "--no-progress"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"error: environment variable {name}={value!r}: {expected}")


@pytest.mark.parametrize("pixel_cache_mb", [0.0, 1024.0])  # streamed / held as a whole
def test_training_batches_are_the_same_with_and_without_the_cache(
    pixel_cache_mb, tiny, folder, monkeypatch
):
    from clipgap.model import AdaptedModel
    from clipgap.training.data import SplitData

    def batches(cache: str):
        monkeypatch.setenv(pixels.ENABLED_ENV, cache)
        split = SplitData(
            AdaptedModel(tiny), _task(folder), embedded=False, pixel_cache_mb=pixel_cache_mb
        )
        generator = torch.Generator().manual_seed(3)
        got = list(split.batches(AdaptedModel(tiny), 4, generator))
        return split, torch.cat([x for x, _ in got]), torch.cat([y for _, y in got])

    cached, x_on, y_on = batches("on")
    plain, x_off, y_off = batches("off")
    assert cached.streams_cache is (pixel_cache_mb == 0) and not plain.streams_cache
    assert isinstance(cached.x, pixels.CachedPixels) is (pixel_cache_mb > 0)
    assert torch.equal(x_on, x_off) and torch.equal(y_on, y_off)
    assert cached.resident_mb == 0 and (plain.resident_mb > 0) is (pixel_cache_mb > 0)
