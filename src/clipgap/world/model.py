"""The world CLIPs (``world``, ``world-tiny`` and their variants ``world:KEY=VALUE[,...]``):
open_clip models pretrained here, then cached.

A checkpoint lives in ``cache_dir("world")`` under a name keyed by a hash of the world config,
the model config and the pretraining config (its torch thread count included), next to a sha256
sidecar (written last). A checkpoint whose hash does not match (truncated, corrupt) is reported
and retrained, never used. A variant (:mod:`clipgap.world.dials`) is keyed by its configs, not
by how its name is spelled: a variant whose dials equal the defaults reuses the default weights.
Every world model is registered with :mod:`clipgap.backbones`: the registered names as named
models, their variants as the ``world:`` (``world-tiny:``) model scheme.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import open_clip
import safetensors.torch
import torch

from clipgap.backbones import named_models, schemes
from clipgap.backbones.open_clip_backbone import OpenClipBackbone, load_open_clip
from clipgap.data import digest
from clipgap.errors import ModelError
from clipgap.paths import atomic_write_bytes, atomic_write_text, cache_dir
from clipgap.registry import Registry
from clipgap.world.config import PretrainConfig, WorldConfig
from clipgap.world.dials import apply_dials
from clipgap.world.pretrain import PretrainLog, pretrain

log = logging.getLogger(__name__)

# Bump whenever pretraining itself changes the weights it writes, so older checkpoints are never
# reused under a new meaning. 2: a fixed thread count (version 1 timed steps to pick it, so the
# same key could hold different weights). The count moved into PretrainConfig (default 1) without
# a bump: the key hashes the same dict as before, so the default weights keep their key.
PRETRAIN_VERSION = 2

CONFIG_DIR = Path(__file__).parent


@dataclass(frozen=True)
class WorldModel:
    """A world CLIP: architecture ``CONFIG_DIR/<config_file>``, pretrained with ``pretrain``.

    ``name`` is what the model is called (a backbone's ``spec``); ``base`` is the registered
    model a variant turns dials of (None for a registered model itself): it names the cache file
    and enters the key in place of ``name``.
    """

    name: str
    config_file: str
    pretrain: PretrainConfig
    world: WorldConfig = field(default_factory=WorldConfig)
    base: str | None = None

    @property
    def config_path(self) -> Path:
        return CONFIG_DIR / self.config_file

    @property
    def family(self) -> str:
        """The registered model this one is (or is a variant of)."""
        return self.base or self.name

    def key(self) -> str:
        """Hash of everything that determines the pretrained weights on one machine."""
        arch = json.loads(self.config_path.read_text())
        return digest(
            PRETRAIN_VERSION,
            self.family,
            arch,
            self.world.as_dict(),
            asdict(self.pretrain),
            open_clip.__version__,
        )

    def variant(self, arg: str) -> WorldModel:
        """This model with the dials ``arg`` (``KEY=VALUE[,KEY=VALUE]``) turned."""
        name, world, pretrain = apply_dials(self.name, arg, self.world, self.pretrain)
        return replace(self, name=name, world=world, pretrain=pretrain, base=self.name)


world_models: Registry[WorldModel] = Registry("world model")
world_models.register("world")(WorldModel("world", "world.json", PretrainConfig()))
world_models.register("world-tiny")(
    WorldModel(
        "world-tiny",
        "world-tiny.json",
        PretrainConfig(steps=60, batch_size=32, warmup_steps=5),
    )
)


@dataclass
class Checkpoint:
    """A verified checkpoint file; ``trained`` says whether this call pretrained it."""

    path: Path
    key: str
    trained: bool
    info: dict


def checkpoint_path(model: WorldModel) -> Path:
    return cache_dir("world") / f"{model.family}-{model.key()}.safetensors"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verified(path: Path) -> bool:
    """True when ``path`` and its sidecar exist and the file's sha256 matches."""
    sidecar = path.with_name(path.name + ".sha256")
    if not path.is_file() or not sidecar.is_file():
        return False
    expected = (sidecar.read_text().split() or [""])[0]
    if _sha256(path) == expected:
        return True
    log.warning(
        "world checkpoint %s fails its sha256 check (corrupt or truncated); retraining", path
    )
    return False


def architecture(model: WorldModel) -> OpenClipBackbone:
    """The untrained (random-init) open_clip backbone of a world model."""
    return load_open_clip(str(model.config_path), None, spec=model.name)


def _train(model: WorldModel, path: Path, *, progress: bool) -> dict:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(model.pretrain.seed)
        backbone = architecture(model)
    record: PretrainLog = pretrain(
        backbone.model,
        open_clip.get_tokenizer(model.config_path.stem),
        model.world,
        model.pretrain,
        progress=progress,
        desc=f"pretrain {model.name}",
    )
    state = {k: v.detach().contiguous() for k, v in backbone.model.state_dict().items()}
    atomic_write_bytes(path, safetensors.torch.save(state))
    info = {
        "model": model.name,
        "key": model.key(),
        "world": model.world.as_dict(),
        "pretrain": asdict(model.pretrain),
        "first_loss": record.mean_loss(True),
        "last_loss": record.mean_loss(False),
        "seconds": record.seconds,
        "pairs": record.pairs,
        "versions": {"torch": torch.__version__, "open_clip": open_clip.__version__},
    }
    atomic_write_text(path.with_suffix(".json"), json.dumps(info, indent=2) + "\n")
    atomic_write_text(path.with_name(path.name + ".sha256"), f"{_sha256(path)}  {path.name}\n")
    return info


def world_model(name: str) -> WorldModel:
    """The world model called ``name``: a registered one or a variant ``BASE:KEY=VALUE[,...]``.

    UnknownNameError for another name, ConfigError for a malformed variant (naming the key)."""
    base, colon, arg = name.partition(":")
    if colon and base in world_models:
        return world_models.get(base).variant(arg)
    return world_models.get(name)


def is_world_model(name: str | None) -> bool:
    """Whether ``name`` names a world model (a registered one or a variant, valid or not)."""
    return isinstance(name, str) and name.partition(":")[0] in world_models


def _resolve(model: str | WorldModel) -> WorldModel:
    return model if isinstance(model, WorldModel) else world_model(model)


def ensure_checkpoint(
    model: str | WorldModel, *, force: bool = False, progress: bool = True
) -> Checkpoint:
    """The cached checkpoint of a world model (a name or spec), pretraining it when needed."""
    model = _resolve(model)
    path = checkpoint_path(model)
    if not force and _verified(path):
        log.info("using cached %s checkpoint %s", model.name, path)
        info_path = path.with_suffix(".json")
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        return Checkpoint(path, model.key(), False, info)
    info = _train(model, path, progress=progress)
    return Checkpoint(path, model.key(), True, info)


def load_world(
    model: str | WorldModel, *, device: str = "cpu", force: bool = False, progress: bool = True
) -> OpenClipBackbone:
    """A world CLIP with its pretrained weights (pretrained and cached on first use)."""
    model = _resolve(model)
    ckpt = ensure_checkpoint(model, force=force, progress=progress)
    backbone = architecture(model)
    try:
        backbone.model.load_state_dict(safetensors.torch.load_file(str(ckpt.path)))
    except (RuntimeError, OSError) as exc:
        msg = str(exc).splitlines()[0]
        raise ModelError(f"world checkpoint {ckpt.path} does not fit {model.name}: {msg}") from None
    backbone.base_ref = {
        "backend": "world",
        "model": model.name,
        "pretrained": None,
        "checkpoint_key": ckpt.key,
    }
    backbone.eval()
    return backbone.to(device)


def _own_weights(name: str, pretrained: str | None) -> None:
    if pretrained is not None:
        raise ModelError(
            f"model {name} carries its own weights (pretrained on the embedded world); "
            f"do not pass --pretrained {pretrained}"
        )


def _loader(name: str):
    def load(pretrained: str | None = None, device: str = "cpu") -> OpenClipBackbone:
        _own_weights(name, pretrained)
        return load_world(name, device=device)

    load.__doc__ = f"The embedded-world CLIP {name!r} (pretrained and cached on first use)."
    load.family = "world"  # the model family presets give settings for (backbones.FAMILIES)
    return load


def _variant_loader(name: str):
    def load(arg: str, *, pretrained: str | None, device: str, spec: str) -> OpenClipBackbone:
        _own_weights(spec, pretrained)
        return load_world(world_models.get(name).variant(arg), device=device)

    load.__doc__ = f"A variant {name}:KEY=VALUE[,KEY=VALUE] of {name!r} (see clipgap.world.dials)."
    return load


for _name in world_models.names():
    named_models.register(_name)(_loader(_name))
    schemes.register(_name)(_variant_loader(_name))
