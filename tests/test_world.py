"""The embedded world: generator, captions, tasks, pretraining and the checkpoint cache."""

from __future__ import annotations

import hashlib
import logging
import math

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
from clipgap.world.render import COLORS, coverage, object_field, render
from clipgap.world.scenes import sample_scenes
from clipgap.world.tasks import WORLD_TASKS, make_task, shift_styles, world_tasks
from clipgap.world.threads import ThreadTuner

SMALL = WorldConfig(train_size=24, test_size=12)
# A model cheap enough for unit tests: the tiny architecture, a few small steps.
TEST_MODEL = WorldModel(
    "world-test",
    "world-tiny.json",
    PretrainConfig(steps=3, batch_size=8, warmup_steps=0, threads=1),
    SMALL,
)


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
        for split, n in (("train", 24), ("test", 12)):
            t = make_task(task, style, split, world=SMALL)
            assert t.images.pixels.shape == (n, 32, 32, 3) and t.images.pixels.dtype == np.uint8
            assert t.domain == style and t.class_names == list(spec.class_names)
            assert sorted(set(t.labels.tolist())) == list(range(len(spec.class_names)))
            assert all("{c}" in tpl for tpl in t.templates)
            assert t.images.pixels.std() > 5  # not a blank image
    assert len(WORLD_TASKS) >= 6


def test_load_task_spec_and_errors():
    t = load_task("world:color@cartoon", "test")
    assert t.name == "world:color@cartoon" and t.domain == "cartoon" and len(t) == 500
    assert load_task("world:color").domain == MAIN_STYLE
    with pytest.raises(UnknownNameError, match=r"'shpe' \(did you mean 'shape'\?\).*color"):
        load_task("world:shpe")
    with pytest.raises(UnknownNameError, match="choose from: photo, cartoon, sketch, mosaic"):
        load_task("world:shape@oil")
    with pytest.raises(DataError, match="choose from: train, test"):
        load_task("world:shape", "val")
    with pytest.raises(DataError, match="tasks: shape, color, count"):
        load_task("world")
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
    cfg = PretrainConfig(steps=30, batch_size=16, lr=1e-3, warmup_steps=3, threads=1)
    held_out_before = _batch_loss(net, tokenizer, world)
    before = torch.get_num_threads()
    record = pretrain(net, tokenizer, world, cfg, progress=False)
    assert torch.get_num_threads() == before
    assert record.pairs == 30 * 16 and len(record.losses) == 30
    assert all(math.isfinite(x) for x in record.losses)
    assert record.mean_loss(False, 5) < record.mean_loss(True, 5) - 0.05
    assert _batch_loss(net, tokenizer, world) < held_out_before - 0.1


def test_thread_tuner_keeps_the_faster_thread_count():
    tuner = ThreadTuner(every=10, probe=2)
    tuner.most, tuner.tune = 4, True  # as on a 4-core machine

    def run(steps, seconds):
        used = []
        for _ in range(steps):
            used.append(tuner.threads())
            tuner.record(seconds[used[-1]])
        return used

    idle, busy = {4: 0.1, 1: 0.3}, {4: 1.0, 1: 0.35}
    # One thread for the setup step and three steady steps, then a trial of four: it wins.
    assert run(8, idle) == [1, 1, 1, 1, 4, 4, 4, 4]
    # Another job starts: the first slow step triggers a trial, one thread wins and stays.
    assert run(6, busy) == [4, 1, 1, 1, 1, 1]
    assert tuner.choice == 1
    assert ThreadTuner(3).threads() == 3


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
    assert main(["world", "pretrain", "--model", "world-huge"]) == 2
    assert "unknown world model 'world-huge'" in capsys.readouterr().err


def test_cli_sample_and_tasks(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["world", "sample", "--task", "count", "--style", "all", "--out", str(out)]) == 0
    with Image.open(out) as img:
        assert img.size == (56 + 3 * 98, 14 + 4 * 4 * 98)
    assert main(["world", "tasks"]) == 0
    text = capsys.readouterr().out
    assert "world:position" in text and "three shapes" in text
    assert main(["world", "sample", "--task", "nope", "--out", str(out)]) == 2
    assert "unknown world task 'nope'" in capsys.readouterr().err
