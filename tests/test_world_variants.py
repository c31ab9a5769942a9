"""World variants as models (``world:KEY=VALUE``), class-count variants (``world:TASK/K``) and
the control panels a study measures a world task's forgetting on."""

from __future__ import annotations

import logging

import pytest

from clipgap.backbones import load_backbone
from clipgap.cli import main
from clipgap.data import load_task
from clipgap.errors import ConfigError, DataError, ModelError, UnknownNameError
from clipgap.study.config import load_study_config
from clipgap.world.config import ATTRIBUTES, PretrainConfig, WorldConfig
from clipgap.world.dials import DIALS
from clipgap.world.model import checkpoint_path, world_model, world_models
from clipgap.world.panels import control_panel, shared_controls
from clipgap.world.tasks import WORLD_TASKS, task_spec

# cheap to pretrain: the tiny architecture, two small steps
CHEAP = "world-tiny:pretrain.steps=2,pretrain.batch_size=8,pretrain.warmup_steps=0"


def test_variant_configs_follow_their_dials():
    base = world_models.get("world")
    v = world_model("world:mention_rates.texture=0.1,pretrain.threads=2")
    assert v.world.mention_rates == {**base.world.mention_rates, "texture": 0.1}
    assert v.pretrain == PretrainConfig(threads=2) and v.base == "world"
    assert v.name == "world:mention_rates.texture=0.1,pretrain.threads=2"
    assert checkpoint_path(v) != checkpoint_path(base)
    # one canonical name: dial order, value spelling
    same = world_model("world:pretrain.threads=2, mention_rates.texture=.10")
    assert same.name == v.name and same.key() == v.key()
    # keyed by config, not spelling: dials at their defaults are the default weights
    default = world_model("world:mention_rates.texture=0.25,pretrain.threads=1")
    assert checkpoint_path(default) == checkpoint_path(base)
    assert world_model("world:style_mix.sketch=0.5").world.style_mix == {
        "photo": 0.9,
        "cartoon": 0.1,
        "sketch": 0.5,
    }
    assert world_model("world:seed=3").world == WorldConfig(seed=3)


def test_default_world_key_is_unchanged():
    """Run records name the default world's weights: its cache key must not move."""
    assert checkpoint_path(world_models.get("world")).name == "world-668bdff1d46c7acb.safetensors"


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("world:mention_rates.textures=0.1", UnknownNameError, "did you mean 'mention_rates.texture'"),
        ("world:threads=2", UnknownNameError, "did you mean 'pretrain.threads'"),
        ("world:mention_rates.texture=1.5", ConfigError, "mention_rates.texture=1.5: expected a value in"),
        ("world:mention_rates.texture=high", ConfigError, "mention_rates.texture='high': expected a number"),
        ("world:pretrain.steps=2.5", ConfigError, "pretrain.steps='2.5': expected an integer"),
        ("world:mention_rates.light=0.5", ConfigError, "'light' is the hidden attribute"),
        ("world:image_size=64", ConfigError, "image_size is not a dial"),
        ("world:noise", ConfigError, "'noise' is not KEY=VALUE"),
        ("world:noise=0.1,noise=0.2", ConfigError, "dial noise is given twice"),
        ("world:noise=nan", ConfigError, "expected a finite number"),
    ],
)  # fmt: skip
def test_bad_variants_name_the_key(spec, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")) as info:
        world_model(spec)
    assert str(info.value).startswith(f"model {spec!r}: ") and "\n" not in str(info.value)


def test_every_dial_parses():
    for key, dial in DIALS.items():
        value = "1" if dial.kind is int or "rates" in key else "0.3"
        value = {"pretrain.steps": "40", "mosaic_cell": "4", "pretrain.batch_size": "8"}.get(
            key, value
        )
        model = world_model(f"world:{key}={value}")
        assert model.name == f"world:{key}={dial.kind(value)!r}"


def test_variant_loads_everywhere_and_is_cached_by_config(capsys):
    backbone = load_backbone(CHEAP)  # pretrains the cheap variant into this test's cache
    name = "world-tiny:pretrain.steps=2,pretrain.batch_size=8,pretrain.warmup_steps=0"
    assert backbone.spec == name and backbone.base_ref["model"] == name
    again = load_backbone(name.replace("steps=2,", "steps=2, "))  # same variant, other spelling
    assert again.fingerprint() == backbone.fingerprint()
    assert load_backbone("world-tiny").fingerprint() != backbone.fingerprint()
    with pytest.raises(ModelError, match="carries its own weights"):
        load_backbone(CHEAP, "openai")
    assert main(["world", "pretrain", "--model", CHEAP]) == 0
    assert f"reused cached {name}" in capsys.readouterr().out
    assert main(["world", "pretrain", "--model", "world:mention_rates.light=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mention_rates.light" in err


def test_list_models_says_how_to_name_a_variant(capsys):
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "world:KEY=VALUE[,KEY=VALUE]" in out and "mention_rates." in out


# ---- class-count variants


def test_single_attribute_variant_keeps_the_first_values():
    spec = task_spec("color/3")
    assert spec.class_names == ATTRIBUTES["color"][:3] and spec.attributes == ("color",)
    task = load_task("world:color/3")
    assert task.name == "world:color/3" and sorted(set(task.labels.tolist())) == [0, 1, 2]
    assert task.templates == list(task_spec("color").templates)
    sketch = load_task("world:shape/2@sketch")
    assert sketch.class_names == ["circle", "square"] and sketch.domain == "sketch"


@pytest.mark.parametrize(("task", "k"), [("color_shape", 24), ("count_color", 12)])
def test_compound_variant_needs_both_attributes(task, k):
    spec = task_spec(f"{task}/{k}")
    assert len(spec.class_names) == len(set(spec.values)) == k
    for j, attribute in enumerate(spec.attributes):
        uses = [combo[j] for combo in spec.values]
        # every value of either attribute in >= 2 classes: neither alone tells classes apart
        assert {uses.count(v) for v in range(len(ATTRIBUTES[attribute]))} == {
            k // len(ATTRIBUTES[attribute])
        }
        assert k // len(ATTRIBUTES[attribute]) >= 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("world:color/x", "world:color/x: the class count after '/' must be a whole number, got 'x'"),
        ("world:color/1", "world:color/1: a task needs at least 2 classes"),
        ("world:color/7", "world:color/7: color has 6 values; choose a class count in 2..6"),
        ("world:color_shape/13", "world:color_shape/13: color_shape takes 12, 18, 24, 30, 36 classes"),
    ],
)  # fmt: skip
def test_bad_class_counts_are_one_line(spec, message):
    with pytest.raises(DataError) as info:
        load_task(spec)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


# ---- control panels


@pytest.mark.parametrize("task", WORLD_TASKS)
def test_panels_share_no_attribute_and_span_the_tiers(task):
    panel = control_panel(f"world:{task}")
    assert len(panel) == len(set(panel)) == 3
    mine = set(task_spec(task).attributes)
    for control in panel:
        assert set(task_spec(control.removeprefix("world:")).attributes).isdisjoint(mine)
    assert "world:light" not in panel
    assert control_panel(f"world:{task}") == panel  # fixed
    assert control_panel(f"world:{task}@sketch") == panel


def test_panel_examples_and_non_world_tasks():
    assert control_panel("world:color_shape") == ["world:count", "world:texture", "world:position"]
    assert control_panel("world:count_color") == ["world:texture", "world:size", "world:shape"]
    assert control_panel("world:color/3") == control_panel("world:color")
    assert control_panel("folder:/data/pets") is None
    assert shared_controls("world:color_shape", ["world:color", "world:count", "folder:x"]) == {
        "world:color": ["color"]
    }


STUDY = """
model: world-tiny
tasks:
  - name: world:color_shape
    controls: [world:color, world:count]
  - name: world:shape
  - name: folder:{root}
methods: [bitfit]
"""


def test_study_controls_default_to_the_panel_and_warn_on_shared(tmp_path, caplog):
    path = tmp_path / "study.yaml"
    path.write_text(STUDY.format(root=tmp_path))
    with caplog.at_level(logging.WARNING, logger="clipgap.world.panels"):
        cfg = load_study_config(str(path))
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "world:color" in warned[0] and "label attribute color" in warned[0]
    shaped, shape, folder = cfg.tasks
    assert cfg.controls_for(shaped) == ["world:color", "world:count"]  # given: kept
    assert cfg.controls_for(shape) == control_panel("world:shape")
    assert cfg.controls_for(folder) == ["world:color_shape", "world:shape"]  # every other task


def test_checkpoint_of_a_variant_exports_whatever_threads_it_was_trained_with(tmp_path):
    """A model name means one set of weights: fine-tuning under --threads 2 and exporting without
    it rebuild the same base, from the model name the checkpoint records."""
    argv = ["--threads", "2", "finetune", "--model", CHEAP, "--dataset", "world:color/2",
            "--method", "bitfit", "--out", str(tmp_path / "ft"), "--no-progress",
            "train.max_steps=1"]  # fmt: skip
    assert main(argv) == 0
    ckpt = tmp_path / "ft" / "checkpoint.safetensors"
    assert main(["export", "--checkpoint", str(ckpt), "--format", "open_clip",
                 "--out", str(tmp_path / "oc"), "--no-progress"]) == 0  # fmt: skip
    exported = load_backbone(f"local-dir:{tmp_path / 'oc'}")
    assert exported.embed_dim == load_backbone(CHEAP).embed_dim
