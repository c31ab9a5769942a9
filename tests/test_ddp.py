"""One run on several processes (DDP over Gloo on CPU), and where a run executes.

The DDP test forks two processes (the fork start method: children reuse the loaded modules,
where spawn would import open_clip again in each) that train with DistributedDataParallel, and
compares their weights with a one-process run on the same global batches.
"""

from __future__ import annotations

import multiprocessing
import socket
from dataclasses import asdict

import numpy as np
import pytest
import torch

from clipgap.cli import main
from clipgap.config import identity
from clipgap.data import ImageArrays, Task
from clipgap.errors import ConfigError
from clipgap.methods import resolve_method
from clipgap.study import resolve_run
from clipgap.training import TrainConfig, finetune
from clipgap.training import device as dev
from clipgap.training import distributed as ddp
from clipgap.training.data import TensorBatches, image_loader
from clipgap.training.forward import Forward
from tests.test_methods import colour_task

pytestmark = pytest.mark.usefixtures("one_thread")

SGD = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "device": "cpu"}
# (method, images, settings): uneven last batch 2/1 with validation on rank 0; a last batch of
# one image (rank 1 trains a padding sample) read from the images, not a cache; a method on
# cached embeddings (rank 0 alone).
CASES = [
    ("full", 14, {"batch_size": 4, "epochs": 2, "val_fraction": 0.2}),
    (
        "lora",
        13,
        {"batch_size": 6, "epochs": 1, "val_fraction": 0.0, "pixel_cache_mb": 0.0, "lr": 0.5},
    ),
    ("linear_probe", 12, {"batch_size": 4, "epochs": 2, "val_fraction": 0.0}),
]


def _train_all(backbone, sizes: list) -> dict:
    """{method: ((weights, history, placement) or None where this rank got no result, the
    forward's batch sizes)}. Weights as numpy arrays: torch tensors would cross the queue as
    shared memory of a process that has exited."""
    out = {}
    for method, n, settings in CASES:
        sizes.clear()
        cfg = TrainConfig(**{**SGD, **settings})
        result = finetune(backbone, colour_task(n), method, train=cfg, progress=False)
        got = None
        if result is not None:
            params = result.model.trainable_parameters().items()
            weights = {k: v.detach().numpy().copy() for k, v in params}
            got = (weights, result.history, result.placement)
        out[method] = (got, list(sizes))
    return out


def _rank(rank: int, world: int, port: int, backbone, sizes: list, queue) -> None:
    import os

    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        GLOO_SOCKET_IFNAME="lo",
    )
    torch.set_num_threads(1)
    try:
        queue.put((rank, _train_all(backbone, sizes)))
    except BaseException as exc:  # the parent reports it
        queue.put((rank, repr(exc)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def forward_sizes(monkeypatch):
    """Batch sizes the training forward sees, in order (forked ranks inherit the spy)."""
    sizes: list[int] = []
    original = Forward.forward

    def spy(self, x):
        sizes.append(len(x))
        return original(self, x)

    monkeypatch.setattr(Forward, "forward", spy)
    return sizes


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
def test_ddp_on_two_processes_equals_one_process(tiny, forward_sizes):
    single = _train_all(tiny, forward_sizes)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    port = _free_port()
    procs = [
        ctx.Process(target=_rank, args=(r, 2, port, tiny, forward_sizes, queue)) for r in (0, 1)
    ]
    for p in procs:
        p.start()
    got = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert all(isinstance(v, dict) for v in got.values()), got
    for method, n, settings in CASES:
        (weights, history, placement), sizes = single[method]
        (d_weights, d_history, d_placement), rank0_sizes = got[0][method]
        rank1_result, rank1_sizes = got[1][method]
        assert rank1_result is None  # only rank 0 returns (and so evaluates and writes)
        initial = {k: v.detach().numpy() for k, v in _initial(tiny, method).items()}
        moved = max(float(np.abs(weights[k] - initial[k]).max()) for k in weights)
        assert moved > 1e-3, f"{method}: training did not move the weights ({moved:.1e})"
        diff = max(float(np.abs(weights[k] - d_weights[k]).max()) for k in weights)
        assert diff <= 1e-5, f"{method}: DDP weights differ from one process by {diff:.2e}"
        for a, b in zip(history[1:], d_history[1:], strict=True):
            assert a["steps"] == b["steps"] and a["val_accuracy"] == b["val_accuracy"]
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert history[0]["val_accuracy"] == d_history[0]["val_accuracy"]
        assert placement == "cpu, fp32"
        if method == "linear_probe":  # cached embeddings: rank 0 trains alone
            assert d_placement == "cpu, fp32" and rank0_sizes == sizes and rank1_sizes == []
        else:
            assert d_placement == "cpu, fp32, 2 processes"
            # each rank took half of every global batch (rank 1 a padding sample of a batch of 1)
            fit = n - round(settings["val_fraction"] * n)
            bs = settings["batch_size"]
            batches = [min(bs, fit - s) for s in range(0, fit, bs)] * settings["epochs"]
            assert sizes == batches
            assert rank0_sizes == [(b + 1) // 2 for b in batches]
            assert rank1_sizes == [max(1, b // 2) for b in batches]


def _initial(backbone, method: str) -> dict:
    """The method's trainable tensors before training (same seed as finetune uses)."""
    from clipgap.methods import apply_method
    from clipgap.model import AdaptedModel, clone

    model = AdaptedModel(clone(backbone))
    task = colour_task(4)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        apply_method(model, method, None, class_names=task.class_names, templates=task.templates)
    return model.trainable_parameters()


def _index_task(n: int) -> Task:
    """A task whose labels are the image indices (batches show the order they were drawn in)."""
    pixels = np.zeros((n, 4, 4, 3), np.uint8)
    return Task("idx", "train", ImageArrays(pixels), np.arange(n), [f"c{i}" for i in range(n)],
                ["{c}"], f"idx-{n}")  # fmt: skip


@pytest.mark.parametrize(("n", "batch"), [(11, 4), (13, 6), (8, 4)])
def test_ranks_split_every_global_batch_of_one_process(n, batch):
    """The two ranks' slices of each batch join into the global batch one process draws with
    the same seed: torch's own shuffled DataLoader for images read from files, a seeded
    permutation for cached tensors."""
    task = _index_task(n)
    loader = torch.utils.data.DataLoader(
        list(zip(range(n), range(n), strict=True)),
        batch_size=batch,
        shuffle=True,
        generator=torch.Generator().manual_seed(7),
    )
    streamed = [y.tolist() for _, y in loader]
    cached = [c.tolist() for c in torch.randperm(n, generator=torch.Generator().manual_seed(7))
              .split(batch)]  # fmt: skip
    x, labels = torch.arange(n, dtype=torch.float32)[:, None], torch.arange(n)
    for kind, expected in (("stream", streamed), ("cache", cached)):
        parts = []
        for rank in (0, 1):
            dist = ddp.Dist(rank=rank, world_size=2, local_rank=rank)
            gen = torch.Generator().manual_seed(7)
            if kind == "stream":
                batches = image_loader(task, np.array, batch_size=batch, generator=gen, dist=dist)
            else:
                batches = TensorBatches(x, labels, batch, gen, dist)
            parts.append([y.tolist() for _, y in batches])
        joined = [[v for v in a + b if v != ddp.IGNORE] for a, b in zip(*parts, strict=True)]
        assert joined == expected, kind
        assert all(len(a) >= len(b) >= 1 for a, b in zip(*parts, strict=True))


def test_batch_must_split_over_the_processes():
    with pytest.raises(ConfigError, match=r"^train\.batch_size=10 does not split over 4 processes"):
        ddp.check_batch(10, ddp.Dist(rank=0, world_size=4))
    ddp.check_batch(12, ddp.Dist(rank=0, world_size=4))


def test_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert ddp.environment() == ddp.SINGLE and ddp.is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert ddp.environment() == ddp.Dist(rank=3, world_size=4, local_rank=1)
    assert not ddp.is_main_process()
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="RANK=4 must be below WORLD_SIZE=4"):
        ddp.environment()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE='two': expected an integer >= 1"):
        ddp.environment()


# ---- where a run executes ------------------------------------------------------------------
def test_device_names(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dev.device_name("auto") == "cpu" and dev.device_name(None) == "cpu"
    with pytest.raises(ConfigError, match=r"^--device: unknown device 'gpu'; expected auto"):
        dev.device_name("gpu", where="--device")
    with pytest.raises(ConfigError, match=r"^train\.device='cuda' but CUDA is not available"):
        dev.device_name("cuda", where="train.device")
    with pytest.raises(ConfigError, match=r"^train\.device: unknown device 'gpu'"):
        TrainConfig(device="gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.device_name("auto") == "cuda"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert dev.device_name("auto") == dev.device_name("cuda") == "cuda:1"
    assert dev.device_name("cpu") == "cpu"
    with pytest.raises(ConfigError, match="names one GPU, but torchrun started 2 processes"):
        dev.device_name("cuda:0", where="--device")


def test_cli_unknown_device_is_one_line(image_folder, tmp_path, capsys):
    argv = ["finetune", "--model", "clipgap-tiny", "--dataset", f"folder:{image_folder}"]
    code = main([*argv, "--method", "bitfit", "--device", "gpu", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [  # checked while parsing (clipgap.cli.common)
        "error: --device: unknown device 'gpu'; choose from cpu, cuda, cuda:N, mps, auto "
        "(see clipgap finetune --help)"
    ]


def test_precision_settings():
    assert TrainConfig().requested_precision == "auto"
    assert TrainConfig(bf16=True).requested_precision == "bf16"  # the old spelling
    with pytest.raises(ConfigError, match=r"^train\.precision must be one of auto, fp32, bf16"):
        TrainConfig(precision="fp16")
    with pytest.raises(ConfigError, match=r"^train\.bf16=true .* contradicts train\.precision"):
        TrainConfig(bf16=True, precision="fp32")
    with pytest.raises(ConfigError, match=r"^train\.pin_memory must be true, false or auto"):
        TrainConfig(pin_memory="yes")
    with pytest.raises(ConfigError, match=r"^train\.num_workers must be an integer >= 0"):
        TrainConfig(num_workers="many")
    assert TrainConfig(num_workers="auto").num_workers == "auto"
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert dev.resolve_precision("auto", cpu) == "fp32"
    assert dev.resolve_precision("auto", cuda) == "bf16"
    assert dev.resolve_precision("fp32", cuda) == "fp32"


# The resolved training config as hashed before precision / pin_memory existed (the device is
# where a run executes: never hashed).
KEYS_BEFORE = {
    "optimizer", "lr", "momentum", "weight_decay", "epochs", "batch_size", "val_fraction",
    "val_max", "val_seed", "seed", "bf16", "num_workers", "max_steps",
    "eval_batch_size", "pixel_cache_mb", "cache_embeddings", "shots", "select_start",
}  # fmt: skip
# Run ids of these runs computed before precision / pin_memory / device auto existed.
RUN_IDS_BEFORE = {"lora": "2e57d1c24ae4596a", "full": "0a8d9f0926c98b02"}


# The settings these runs were resolved with (the world ``tuned`` preset of the time), in full,
# so that later presets do not move the pinned ids.
SETTINGS_BEFORE = {
    "lora": {
        "optimizer": "adamw",
        "lr": 0.03,
        "weight_decay": 0.0001,
        "batch_size": 64,
        "epochs": 3,
    },
    "full": {
        "optimizer": "adamw",
        "lr": 0.0003,
        "weight_decay": 0.0001,
        "batch_size": 64,
        "epochs": 3,
    },
}


def _run_id(method: str, **settings) -> str:
    world = asdict(TrainConfig(**SETTINGS_BEFORE[method]))
    world.pop("device")
    return resolve_run("world:shape", resolve_method(method), model="clipgap-tiny",
                       pretrained=None, device="cpu", preset="tuned",
                       train={**world, "seed": 3, **settings}).run_id  # fmt: skip


def test_run_hash_keeps_defaults_and_counts_forced_precision():
    assert set(identity(TrainConfig())) == KEYS_BEFORE
    assert set(identity(TrainConfig(device="cuda:1"))) == KEYS_BEFORE
    assert identity(TrainConfig(precision="bf16"))["precision"] == "bf16"
    assert identity(TrainConfig(pin_memory=False))["pin_memory"] is False
    for method, run_id in RUN_IDS_BEFORE.items():
        assert _run_id(method) == run_id
    assert _run_id("lora", precision="bf16") != RUN_IDS_BEFORE["lora"]
    assert _run_id("lora", precision="fp32") != RUN_IDS_BEFORE["lora"]


def test_loader_options(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert dev.loader_options("auto", "auto", cpu) == {"num_workers": 0, "pin_memory": False}
    assert dev.loader_options(3, True, cpu) == {"num_workers": 3, "pin_memory": False}
    monkeypatch.setattr("clipgap.devices._usable_cpus", lambda: 6)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert dev.loader_options(None, None, cuda) == {"num_workers": 3, "pin_memory": True}
    monkeypatch.setattr("clipgap.devices._usable_cpus", lambda: 64)
    assert dev.loader_options("auto", False, cuda) == {"num_workers": 8, "pin_memory": False}


def test_cpu_run_records_fp32_and_bf16_when_asked(tiny):
    task = colour_task(16)
    kw = {**SGD, "batch_size": 8, "epochs": 1, "val_fraction": 0.0, "max_steps": 1}
    auto = finetune(tiny, task, "bitfit", train=TrainConfig(**kw), progress=False)
    forced = TrainConfig(**kw, precision="bf16")
    forced = finetune(tiny, task, "bitfit", train=forced, progress=False)
    assert (auto.device, auto.precision, auto.processes) == ("cpu", "fp32", 1)
    assert forced.placement == "cpu, bf16"


@pytest.mark.gpu
def test_cuda_run_trains_in_bf16_from_a_gpu_cache(tiny):
    """On CUDA: device auto picks it, precision auto is bf16, the pixel cache sits on the GPU."""
    from clipgap.model import AdaptedModel, clone
    from clipgap.training.data import SplitData

    task = colour_task(16)
    kw = {**SGD, "device": "auto", "batch_size": 8, "epochs": 1, "val_fraction": 0.0}
    result = finetune(tiny, task, "lora", train=TrainConfig(**kw), progress=False)
    assert result.placement == "cuda:0, bf16"
    assert all(p.device.type == "cuda" for p in result.model.parameters())
    model = AdaptedModel(clone(tiny)).to("cuda")
    split = SplitData(model, task, embedded=False, num_workers="auto", pin_memory="auto")
    assert split.x.device.type == "cuda" and split.loader["pin_memory"] is True
