"""The embedded world: generator, captions, tasks, pretraining and the checkpoint cache."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace

import numpy as np
import open_clip
import pytest
import torch
from open_clip.loss import ClipLoss
from PIL import Image
from scipy import ndimage

from clipgap.backbones import load_backbone
from clipgap.cli import main
from clipgap.data import load_task
from clipgap.errors import ConfigError, DataError, ModelError, UnknownNameError
from clipgap.record import PAPER_METHODS
from clipgap.world.captions import make_captions
from clipgap.world.config import (
    ATTRIBUTES,
    HIDDEN_ATTRIBUTE,
    MAIN_STYLE,
    STYLES,
    PretrainConfig,
    WorldConfig,
)
from clipgap.world.model import (
    PRETRAIN_VERSION,
    WorldModel,
    architecture,
    checkpoint_path,
    ensure_checkpoint,
    load_world,
)
from clipgap.world.pretrain import (
    CaptionTokenizer,
    pretrain,
    pretrain_batch,
    to_model_input,
)
from clipgap.world.render import COLORS, LIGHTS, coverage, object_field, render
from clipgap.world.scenes import sample_scenes
from clipgap.world.tasks import (
    LIGHT_WORDS,
    STUDY_TASKS,
    WORLD_TASKS,
    balanced_pairs,
    make_task,
    shift_styles,
    world_tasks,
)
from clipgap.world.threads import DEFAULT_THREADS

SMALL = WorldConfig(train_size=36, test_size=18)  # every class of every task in each split
# A model cheap enough for unit tests: the tiny architecture, a few small steps.
TEST_MODEL = WorldModel(
    "world-test",
    "world-tiny.json",
    PretrainConfig(steps=3, batch_size=8, warmup_steps=0),
    SMALL,
)
COMPOUND = [t for t in WORLD_TASKS if len(world_tasks.get(t).attributes) == 2]


def _scenes(n=64, seed=0, **fixed):
    rng = np.random.default_rng(seed)
    return sample_scenes(rng, n, 32, {k: np.full(n, v) for k, v in fixed.items()})


@pytest.mark.parametrize("style", STYLES)
def test_same_seed_same_pixels_and_captions(style):
    a, b, c = (_scenes(seed=s) for s in (0, 0, 1))
    img = [render(sc, style, np.random.default_rng(s), SMALL) for sc, s in ((a, 0), (b, 0), (c, 1))]
    assert img[0].dtype == np.uint8 and img[0].shape == (64, 32, 32, 3)
    assert np.array_equal(img[0], img[1])
    assert not np.array_equal(img[0], img[2])
    caps = [make_captions(sc, np.random.default_rng(s), SMALL) for sc, s in ((a, 5), (b, 5))]
    assert caps[0] == caps[1]
    assert make_captions(c, np.random.default_rng(5), SMALL) != caps[0]


def test_task_splits_are_deterministic_balanced_and_distinct():
    first = make_task("shape", "photo", "train")
    again = make_task("shape", "photo", "train")
    assert len(first) == 1000 and first.fingerprint == again.fingerprint
    counts = np.bincount(first.labels, minlength=6)
    assert counts.max() - counts.min() <= 1
    test = make_task("shape", "photo", "test")
    sketch = make_task("shape", "sketch", "test")
    assert len(test) == 500 and len({first.fingerprint, test.fingerprint, sketch.fingerprint}) == 3
    assert not np.array_equal(first.images.pixels[:10], test.images.pixels[:10])
    assert np.array_equal(np.asarray(first.images.load(3)), first.images.pixels[3])


@pytest.mark.parametrize("task", WORLD_TASKS)
def test_every_task_renders_in_every_style(task):
    spec = world_tasks.get(task)
    for style in STYLES:
        for split, n in (("train", 36), ("test", 18)):
            t = make_task(task, style, split, world=SMALL)
            assert t.images.pixels.shape == (n, 32, 32, 3) and t.images.pixels.dtype == np.uint8
            assert t.domain == style and t.class_names == list(spec.class_names)
            assert sorted(set(t.labels.tolist())) == list(range(len(spec.class_names)))
            assert all("{c}" in tpl for tpl in t.templates)
            assert t.images.pixels.std() > 5  # not a blank image
    assert len(WORLD_TASKS) >= 10


def test_load_task_spec_and_errors():
    t = load_task("world:color@cartoon", "test")
    assert t.name == "world:color@cartoon" and t.domain == "cartoon" and len(t) == 500
    assert load_task("world:color").domain == MAIN_STYLE
    with pytest.raises(
        UnknownNameError, match=r"'shpe' \(did you mean 'shape'.*choose from: color"
    ):
        load_task("world:shpe")
    with pytest.raises(UnknownNameError, match="choose from: photo, cartoon, sketch, mosaic"):
        load_task("world:shape@oil")
    with pytest.raises(DataError, match="choose from: train, test"):
        load_task("world:shape", "val")
    with pytest.raises(DataError, match="tasks: shape, color, count"):
        load_task("world")
    both = load_task("world:color_shape@sketch", "train")
    assert both.name == "world:color_shape@sketch" and both.domain == "sketch" and len(both) == 1000
    assert both.meta["attributes"] == ["color", "shape"] and "red circle" in both.class_names
    with pytest.raises(UnknownNameError, match="did you mean 'color_shape'"):
        load_task("world:colour_shape")
    assert len(shift_styles("shape")) >= 2 and MAIN_STYLE not in shift_styles("shape")
    with pytest.raises(UnknownNameError):
        shift_styles("nope")


def test_pixels_show_their_labels():
    """Each attribute is visible: counts, halves, sizes, colours, light and texture."""
    for count in range(3):
        sc = _scenes(count=count, n=64)
        mask = coverage(sc, object_field(sc)) > 0.5
        assert all(ndimage.label(m, np.ones((3, 3)))[1] == count + 1 for m in mask)
    for pos, (profile_axis, first_half) in enumerate(
        [(1, True), (1, False), (2, True), (2, False)]
    ):
        sc = _scenes(position=pos, n=32)
        mask = coverage(sc, object_field(sc))  # (n, y, x); summing y gives the x profile
        profile = mask.sum(axis=profile_axis)
        centre = (profile * (np.arange(32) + 0.5)).sum(1) / profile.sum(1)
        assert ((centre < 16) == first_half).all()
    areas = [coverage(s, object_field(s)).sum() for s in (_scenes(size=0), _scenes(size=1))]
    assert areas[1] > 2 * areas[0]
    for k, rgb in enumerate(COLORS.values()):
        sc = _scenes(color=k, light=0, count=0, size=1, n=8)
        img = render(sc, "cartoon", np.random.default_rng(0), SMALL)
        x, y = sc.centers[:, 0].astype(int).T
        centre = img[np.arange(8), y, x] / 255.0
        assert np.abs(centre - np.asarray(rgb)).max() < 0.02
    light = [render(_scenes(light=k), "photo", np.random.default_rng(0), SMALL) for k in range(3)]
    means = [im.mean() for im in light]
    assert means[0] > means[1] > means[2]
    flat = [
        render(_scenes(texture=k, size=0), "cartoon", np.random.default_rng(0), SMALL)
        for k in range(4)
    ]
    spread = [float(np.median(im.reshape(64, -1).std(axis=1))) for im in flat]
    assert spread[0] < min(spread[1:])


def test_captions_follow_rates_and_never_name_the_hidden_attribute():
    sc = _scenes(n=400)
    cfg = WorldConfig(mention_rates={"shape": 1.0, "color": 0.0, "texture": 0.5})
    caps = make_captions(sc, np.random.default_rng(0), cfg)
    words = [set(c.rstrip(".").split()) for c in caps]
    shapes = {w for s in ATTRIBUTES["shape"] for w in (s, s + "s", "crosses")}
    assert all(w & shapes for w in words)
    assert not any(w & set(ATTRIBUTES["color"]) for w in words)
    assert 0.4 < np.mean(["background" in c for c in caps]) < 0.6
    hidden = set(ATTRIBUTES[HIDDEN_ATTRIBUTE]) | {"daytime", "light"}
    default = make_captions(sc, np.random.default_rng(1), WorldConfig())
    assert not any(set(c.rstrip(".").split()) & hidden for c in default)


def test_config_validation_names_the_key():
    with pytest.raises(ConfigError, match="mention_rates.light"):
        WorldConfig(mention_rates={"light": 0.5})
    with pytest.raises(ConfigError, match=r"mention_rates.shape=1.5: expected a value in \[0, 1\]"):
        WorldConfig(mention_rates={"shape": 1.5})
    with pytest.raises(ConfigError, match="style_mix.oil"):
        WorldConfig(style_mix={"oil": 1.0})
    with pytest.raises(ConfigError, match="warmup_steps"):
        PretrainConfig(steps=5, warmup_steps=5)


def test_fast_paths_match_open_clip():
    """Pretraining's tokenizer and image tensors equal what open_clip's own code produces."""
    backbone = architecture(TEST_MODEL)
    pixels, captions = pretrain_batch(SMALL, 0, 0, 200)
    assert pixels.shape == (200, 32, 32, 3) and len(set(captions)) > 50
    fast = CaptionTokenizer(open_clip.get_tokenizer("world-tiny"))
    assert torch.equal(fast(captions), backbone.tokenize(captions))
    task = make_task("count", split="test", world=SMALL)
    via_transform = torch.stack([backbone.transform(task.images.load(i)) for i in range(4)])
    assert torch.allclose(to_model_input(task.images.pixels[:4]), via_transform, atol=1e-5)


def _batch_loss(net, tokenizer, world, step=10_000, n=32):
    pixels, captions = pretrain_batch(world, 0, step, n)
    with torch.no_grad():
        image, text, scale = net(to_model_input(pixels), CaptionTokenizer(tokenizer)(captions))[:3]
    return float(ClipLoss()(image, text, scale))


def test_short_pretraining_lowers_the_contrastive_loss():
    torch.manual_seed(0)
    net = architecture(TEST_MODEL).model
    tokenizer = open_clip.get_tokenizer("world-tiny")
    world = WorldConfig(mention_rates={"color": 1.0}, style_mix={"photo": 1.0})
    cfg = PretrainConfig(steps=30, batch_size=16, lr=1e-3, warmup_steps=3)
    held_out_before = _batch_loss(net, tokenizer, world)
    before = torch.get_num_threads()
    record = pretrain(net, tokenizer, world, cfg, progress=False)
    assert torch.get_num_threads() == before
    assert record.pairs == 30 * 16 and len(record.losses) == 30
    assert all(math.isfinite(x) for x in record.losses)
    assert record.mean_loss(False, 5) < record.mean_loss(True, 5) - 0.05
    assert _batch_loss(net, tokenizer, world) < held_out_before - 0.1


def test_checkpoint_cache_reuse_and_corruption(caplog):
    first = ensure_checkpoint(TEST_MODEL, progress=False)
    assert first.trained and first.path == checkpoint_path(TEST_MODEL)
    sidecar = first.path.with_name(first.path.name + ".sha256")
    assert sidecar.read_text().split()[0] == hashlib.sha256(first.path.read_bytes()).hexdigest()
    again = ensure_checkpoint(TEST_MODEL, progress=False)
    assert not again.trained and again.info["last_loss"] == first.info["last_loss"]
    good = first.path.read_bytes()
    first.path.write_bytes(good[: len(good) // 2])  # truncated
    with caplog.at_level(logging.WARNING, logger="clipgap.world.model"):
        healed = ensure_checkpoint(TEST_MODEL, progress=False)
    assert healed.trained and "fails its sha256 check" in caplog.text
    assert first.path.read_bytes() == good  # retrained deterministically
    backbone = load_world(TEST_MODEL)
    assert backbone.spec == "world-test" and backbone.base_ref["model"] == "world-test"
    longer = WorldModel(
        "world-test", "world-tiny.json", PretrainConfig(steps=4, warmup_steps=0), SMALL
    )
    assert checkpoint_path(longer) != first.path  # the key covers the pretraining config


def test_named_world_models(capsys):
    with pytest.raises(ModelError, match="carries its own weights"):
        load_backbone("world", "openai")
    backbone = load_backbone("world-tiny")  # pretrains world-tiny into this test's cache
    assert backbone.spec == "world-tiny" and backbone.base_ref["pretrained"] is None
    assert not ensure_checkpoint("world-tiny").trained
    again = load_backbone("world-tiny")  # from the cache: same weights
    assert again.fingerprint() == backbone.fingerprint()
    assert main(["world", "pretrain", "--model", "world-tiny"]) == 0
    assert "reused cached world-tiny" in capsys.readouterr().out
    # a command's --threads never changes which weights a model name means
    assert main(["--threads", "2", "world", "pretrain", "--model", "world-tiny"]) == 0
    assert main(["world", "pretrain", "--model", "world-tiny:pretrain.threads=1"]) == 0
    out = capsys.readouterr().out
    assert "reused cached world-tiny:" in out and out.count("reused cached world-tiny") == 2
    assert main(["world", "pretrain", "--model", "world-huge"]) == 2
    assert "unknown world model 'world-huge'" in capsys.readouterr().err


def test_cli_sample_and_tasks(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["world", "sample", "--task", "count", "--style", "all", "--out", str(out)]) == 0
    with Image.open(out) as img:
        assert img.size == (56 + 3 * 98, 14 + 4 * 4 * 98)
    assert main(["world", "tasks"]) == 0
    text = capsys.readouterr().out
    assert "world:position" in text and "three shapes" in text and "red circle" in text
    assert all(f"world:{task} " in text for task in WORLD_TASKS)
    assert main(["world", "sample", "--task", "nope", "--out", str(out)]) == 2
    assert "unknown world task 'nope'" in capsys.readouterr().err


SINGULAR = {"shapes": "shape", "crosses": "cross"} | {
    f"{w}s": w for w in ATTRIBUTES["shape"] if w != "cross"
}


def _word(attribute: str, value: int) -> str:
    word = ATTRIBUTES[attribute][value]
    return LIGHT_WORDS[word] if attribute == "light" else word


@pytest.mark.parametrize("task", WORLD_TASKS)
def test_class_names_name_their_values(task):
    """Each class name holds the word of its value of every attribute, and no other value's."""
    spec = world_tasks.get(task)
    assert len(set(spec.class_names)) == len(spec.class_names) >= 2
    for name, combo in zip(spec.class_names, spec.values, strict=True):
        words = {SINGULAR.get(w, w) for w in name.split()}
        for attribute, value in zip(spec.attributes, combo, strict=True):
            named = {_word(attribute, v) for v in range(len(ATTRIBUTES[attribute]))} & words
            assert named == {_word(attribute, value)}, (task, name)


def test_balanced_pairs_use_every_value_equally_often():
    for na, nb, n in ((6, 6, 12), (6, 4, 12), (6, 3, 12), (3, 6, 18), (4, 4, 8)):
        pairs = balanced_pairs(na, nb, n)
        assert len(set(pairs)) == n
        first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
        assert sorted(first) == list(range(na)) and set(first.values()) == {n // na}
        assert sorted(second) == list(range(nb)) and set(second.values()) == {n // nb}
    with pytest.raises(ValueError, match="not distinct"):
        balanced_pairs(2, 2, 5)


@pytest.mark.parametrize("task", COMPOUND)
def test_compound_tasks_need_both_attributes(task):
    """No single attribute tells a compound task's classes apart: each value of either attribute
    is shared by at least two classes, and every value is used."""
    spec = world_tasks.get(task)
    for j, attribute in enumerate(spec.attributes):
        counts = Counter(combo[j] for combo in spec.values)
        assert len(counts) == len(ATTRIBUTES[attribute]) and min(counts.values()) >= 2
    assert 8 <= len(spec.class_names) <= 18  # modest, so evaluation stays cheap


@pytest.mark.parametrize("task", WORLD_TASKS)
def test_splits_are_class_balanced_and_deterministic(task, monkeypatch):
    import clipgap.world.tasks as tasks_module

    world = WorldConfig(train_size=61, test_size=37)
    n_classes = len(world_tasks.get(task).class_names)
    first = {}
    for split, n in (("train", 61), ("test", 37)):
        t = make_task(task, "mosaic", split, world=world)
        counts = np.bincount(t.labels, minlength=n_classes)
        assert len(counts) == n_classes and counts.sum() == n
        assert counts.max() - counts.min() <= 1
        first[split] = t
    monkeypatch.setattr(tasks_module, "_MEMO", type(tasks_module._MEMO)())  # render afresh
    again = make_task(task, "mosaic", "test", world=world)
    assert again.images.pixels is not first["test"].images.pixels
    assert np.array_equal(again.images.pixels, first["test"].images.pixels)
    assert np.array_equal(again.labels, first["test"].labels)
    assert again.fingerprint == first["test"].fingerprint != first["train"].fingerprint
    other = make_task(task, "mosaic", "test", world=replace(world, seed=1))
    assert not np.array_equal(other.images.pixels, again.images.pixels)


def _cartoon_fill(pixels: np.ndarray) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """Cartoon objects are flat ``COLORS[c] * LIGHTS[l]``: per image, the (colour, light) whose
    exact fill covers most pixels, that pixel count, and the fill mask (n, S, S)."""
    keys = [(c, lt) for c in COLORS for lt in LIGHTS]
    ref = np.asarray([np.floor(np.multiply(COLORS[c], LIGHTS[lt]) * 255 + 0.5) for c, lt in keys])
    close = np.abs(pixels[..., None, :].astype(np.int16) - ref).max(-1) <= 1  # (n, S, S, K)
    hits = close.sum(axis=(1, 2))
    best = hits.argmax(1)
    mask = np.take_along_axis(close, best[:, None, None, None], axis=3)[..., 0]
    return [keys[k] for k in best], hits.max(1), mask


@pytest.mark.parametrize(
    "task", [t for t in WORLD_TASKS if {"color", "light"} & set(world_tasks.get(t).attributes)]
)
def test_cartoon_pixels_show_the_class_colour_and_light(task):
    spec = world_tasks.get(task)
    t = make_task(task, "cartoon", "test", world=WorldConfig(test_size=72))
    found, hits, _ = _cartoon_fill(t.images.pixels)
    assert (hits > 0).mean() > 0.9
    for (color, light), label, seen in zip(found, t.labels, hits > 0, strict=True):
        words = spec.class_names[label].split()
        if seen and "color" in spec.attributes:
            assert color in words
        if seen and "light" in spec.attributes:
            assert LIGHT_WORDS[light] in words


def test_cartoon_pixels_show_size_and_count():
    t = make_task("size_color", "cartoon", "test", world=WorldConfig(test_size=96))
    _, hits, _ = _cartoon_fill(t.images.pixels)
    large = np.array(["large" in t.class_names[y] for y in t.labels])
    assert hits[large].mean() > 1.5 * hits[~large].mean()
    t = make_task("count_color", "cartoon", "test", world=WorldConfig(test_size=90))
    _, _, mask = _cartoon_fill(t.images.pixels)
    blobs = np.array([ndimage.label(m, np.ones((3, 3)))[1] for m in mask])
    said = np.array(
        [["one", "two", "three"].index(t.class_names[y].split()[0]) + 1 for y in t.labels]
    )
    assert (blobs <= said).all() and (blobs == said).mean() > 0.8


SPIN = "import numpy as np\nprint('busy', flush=True)\na = np.random.rand(300, 300)\nwhile True:\n    a = np.tanh(a @ a)\n"


def test_pretraining_is_byte_identical_beside_a_busy_process():
    """The same config pretrains to the same bytes on one machine, whatever else it runs."""
    model = WorldModel(
        "world-repro", "world-tiny.json", PretrainConfig(steps=12, batch_size=16, warmup_steps=2)
    )
    assert model.pretrain.threads == DEFAULT_THREADS == 1
    quiet = ensure_checkpoint(model, progress=False)
    spin = subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True)
    try:
        assert spin.stdout.readline().strip() == "busy"
        busy = ensure_checkpoint(model, force=True, progress=False)
        assert spin.poll() is None  # the CPU-bound process ran throughout
    finally:
        spin.kill()
        spin.wait()
    assert quiet.trained and busy.trained and busy.info["pretrain"]["threads"] == 1
    assert busy.path.read_bytes() == quiet.path.read_bytes() != b""


def test_thread_count_is_part_of_the_config_and_keys_the_checkpoint(monkeypatch):
    default = checkpoint_path(TEST_MODEL)
    monkeypatch.setenv("CLIPGAP_THREADS", "2")  # the old environment variable means nothing now
    assert checkpoint_path(TEST_MODEL) == default and TEST_MODEL.pretrain.threads == 1
    two = replace(TEST_MODEL, pretrain=replace(TEST_MODEL.pretrain, threads=2))
    assert checkpoint_path(two) != default  # weights pretrained with 2 threads are cached apart
    monkeypatch.setattr("clipgap.world.model.PRETRAIN_VERSION", PRETRAIN_VERSION - 1)
    assert checkpoint_path(TEST_MODEL) != default  # an older pretraining is never reused
    with pytest.raises(ConfigError, match="pretrain threads=0"):
        PretrainConfig(threads=0)


def test_cli_threads_flag_sets_torch_threads_only(monkeypatch, capsys):
    monkeypatch.delenv("CLIPGAP_THREADS", raising=False)
    seen = []
    monkeypatch.setattr(
        "clipgap.cli.world.run_tasks",
        lambda args: seen.append((torch.get_num_threads(), os.environ.get("CLIPGAP_THREADS"))),
    )
    before = torch.get_num_threads()
    assert main(["--threads", "3", "world", "tasks"]) == 0
    assert seen == [(3, None)]
    assert torch.get_num_threads() == before
    assert main(["--threads", "0", "world", "tasks"]) == 2
    assert "--threads=0: expected a whole number of threads >= 1" in capsys.readouterr().err


def test_world_configs_hold_the_default_study():
    from pathlib import Path

    from clipgap.study.config import load_study_config

    default = load_study_config(None)
    assert [t.name for t in default.tasks] == [f"world:{t}" for t in STUDY_TASKS]
    # issue 21: >= 16 tasks, >= 2 seeds, every test image for ID, controls capped on their own
    assert len(default.tasks) >= 16 and len(default.seeds) >= 2
    assert default.eval.max_test_images is None and default.eval.max_control_images == 200
    assert default.eval.alphas == (0.0, 0.5, 1.0)
    assert list(default.methods) == list(PAPER_METHODS)
    assert all(t.dg == [f"{t.name}@sketch"] and t.controls is None for t in default.tasks)
    # the tasks the search re-deriving the world `tuned` preset uses are kept out
    labels = {frozenset(t.name.split(":")[1].split("/")[0].split("_")) for t in default.tasks}
    assert not labels & {frozenset({"count", "color"}), frozenset({"color", "texture"})}
    configs = Path(__file__).resolve().parents[1] / "configs"
    for name, seeds in (("world.yaml", [0, 1]), ("world-seeds.yaml", [0, 1, 2])):
        cfg = load_study_config(str(configs / name))
        assert (cfg.model, cfg.tasks, cfg.methods, cfg.eval) == (
            default.model,
            default.tasks,
            default.methods,
            default.eval,
        )
        assert cfg.seeds == seeds
