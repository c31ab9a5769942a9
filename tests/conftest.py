"""Test fixtures: offline, CPU-only, an isolated cache, tiny models and synthetic images."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (
        host in ("localhost", "::1") or host.startswith("127.") or self.family == socket.AF_UNIX
    ):
        return _real_connect(self, address)
    raise OSError(f"network access blocked in tests (tried to connect to {address!r})")


@pytest.fixture(autouse=True)
def _offline_and_isolated(monkeypatch, tmp_path_factory):
    """Every test: no sockets beyond loopback, and a private clipgap cache directory."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setenv("CLIPGAP_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield


TINY_MODEL = "clipgap-tiny"


@pytest.fixture
def one_thread():
    """One torch thread: the tiny models run faster so, and timings stay stable under load."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny(tiny_model_name):
    """The tiny random-init open_clip backbone (shared within a test module; do not modify)."""
    from clipgap.backbones import load_backbone

    return load_backbone(tiny_model_name)


@pytest.fixture(scope="session")
def tiny_model_name() -> str:
    return TINY_MODEL


def make_image_folder(root, classes=("cat", "dog", "red_fox"), per_class=4, size=32, seed=0):
    """ROOT/CLASS/i.png with a class-dependent colour, so classes are separable."""
    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.zeros((size, size, 3), np.uint8)
            base[..., k % 3] = 200
            noise = rng.integers(0, 50, (size, size, 3), dtype=np.uint8)
            Image.fromarray(base + noise).save(d / f"{i}.png")
    return root


@pytest.fixture
def image_folder(tmp_path):
    """A folder task: ROOT/{train,test}/CLASS/*.png."""
    root = tmp_path / "imgs"
    make_image_folder(root / "train", per_class=6, seed=1)
    make_image_folder(root / "test", per_class=4, seed=2)
    return root
