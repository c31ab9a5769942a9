"""The paper's torchvision tasks, read from torchvision's on-disk layouts.

``cifar100 dtd eurosat gtsrb mnist stl10 sun397 svhn cars``: the files are the ones
``torchvision.datasets.X(root, download=True)`` writes (see ``catalog.PAPER_TASKS[...].needs``).
They are read here directly, without torchvision's checksum checks, so a copy made by other
means works too; torchvision is used to download when ``--download`` is given.

Split choices where the dataset has none: EuroSAT keeps 90% of each class for ``train`` and
10% for ``test`` exactly as the authors' code does (``pandas`` ``groupby(label).sample(
frac=0.9, random_state=1)``); SUN397 uses the official partition 01 (``Training_01.txt``,
``Testing_01.txt``); DTD uses partition 1 (``train``/``val``/``test``).

CIFAR-100 is stored as Python pickles, which torchvision also unpickles: like any pickle they
can run code, so point the data root only at files you trust.
"""

from __future__ import annotations

import csv
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np

from clipgap.config import digest
from clipgap.data import datasets
from clipgap.data.base import ImageArrays, ImageFiles
from clipgap.data.catalog import (
    Downloader,
    Loaded,
    Reader,
    eurosat_classnames,
    gtsrb_classnames,
    paper_builder,
    resolve,
)
from clipgap.data.folder import class_display_name, files_fingerprint, image_files
from clipgap.errors import DataError

_READERS: dict[str, Reader] = {}
DIGITS = [str(d) for d in range(10)]


def _reader(name: str) -> Callable[[Reader], Reader]:
    def deco(fn: Reader) -> Reader:
        _READERS[name] = fn
        return fn

    return deco


def source_digest(*paths: Path) -> str:
    """Hash of the files' paths, sizes and mtimes (cheap identity for big array files)."""
    return digest([(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths])


def _files(paths: list[str], labels: list[int], names: list[str], listed_in: str = "") -> Loaded:
    fp = files_fingerprint(paths, labels, names, listed_in=listed_in)
    return Loaded(ImageFiles(paths), np.asarray(labels, dtype=np.int64), names, fp)


def _arrays(pixels: np.ndarray, labels: np.ndarray, names: list[str], *src: Path) -> Loaded:
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.shape[0] != len(labels):
        raise DataError(f"{src[0]}: {pixels.shape[0]} images but {len(labels)} labels")
    return Loaded(
        ImageArrays(pixels), np.asarray(labels, dtype=np.int64), names, source_digest(*src)
    )


def _unpickle(path: Path, keys: tuple[str, ...]) -> dict:
    try:
        with open(path, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
    except Exception as exc:  # truncated or foreign files raise many types
        raise DataError(f"cannot read {path} as a CIFAR pickle: {type(exc).__name__}") from None
    gone = [k for k in keys if not isinstance(entry, dict) or k not in entry]
    if gone:
        raise DataError(f"{path} has no {', '.join(gone)} entry (not a CIFAR-100 file?)")
    return entry


@_reader("cifar100")
def _cifar100(root: Path, split: str) -> Loaded:
    base = root / "cifar-100-python"
    entry = _unpickle(base / split, ("data", "fine_labels"))
    meta = _unpickle(base / "meta", ("fine_label_names",))
    data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    names = [class_display_name(c) for c in meta["fine_label_names"]]
    return _arrays(data, np.asarray(entry["fine_labels"]), names, base / split, base / "meta")


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX array (the MNIST file format) with ``ndim`` dimensions."""
    raw = path.read_bytes()
    if len(raw) < 4 + 4 * ndim or raw[:2] != b"\0\0" or raw[2] != 0x08 or raw[3] != ndim:
        raise DataError(f"{path} is not an unsigned-byte IDX file with {ndim} dimensions")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says shape {shape} but holds {body.size} values")
    return body.reshape(shape)


@_reader("mnist")
def _mnist(root: Path, split: str) -> Loaded:
    stem = root / "MNIST" / "raw" / ("train" if split == "train" else "t10k")
    img, lab = Path(f"{stem}-images-idx3-ubyte"), Path(f"{stem}-labels-idx1-ubyte")
    gray = read_idx(img, 3)
    return _arrays(np.repeat(gray[..., None], 3, axis=-1), read_idx(lab, 1), DIGITS, img, lab)


@_reader("stl10")
def _stl10(root: Path, split: str) -> Loaded:
    base = root / "stl10_binary"
    x, y = base / f"{split}_X.bin", base / f"{split}_y.bin"
    flat = np.fromfile(x, dtype=np.uint8)
    if flat.size % (3 * 96 * 96):
        raise DataError(f"{x}: size {flat.size} is not a whole number of 3x96x96 images")
    pixels = flat.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)  # stored column-major
    names = (base / "class_names.txt").read_text().split()
    return _arrays(pixels, np.fromfile(y, dtype=np.uint8).astype(np.int64) - 1, names, x, y)


@_reader("svhn")
def _svhn(root: Path, split: str) -> Loaded:
    from scipy.io import loadmat

    path = root / "svhn" / f"{split}_32x32.mat"
    try:
        mat = loadmat(path)
        x, y = mat["X"], mat["y"]
    except Exception as exc:  # scipy raises ValueError/KeyError/OSError for bad files
        raise DataError(f"cannot read {path} as SVHN .mat (X, y): {type(exc).__name__}") from None
    labels = np.asarray(y, dtype=np.int64).reshape(-1) % 10  # SVHN stores digit 0 as 10
    return _arrays(np.transpose(x, (3, 0, 1, 2)), labels, DIGITS, path)


@_reader("dtd")
def _dtd(root: Path, split: str) -> Loaded:
    base = root / "dtd" / "dtd"
    classes = sorted(p.name for p in (base / "images").iterdir() if p.is_dir())
    index = {c: i for i, c in enumerate(classes)}
    listing = base / "labels" / f"{split}1.txt"
    paths, labels = [], []
    for n, line in enumerate(listing.read_text().split(), 1):
        cls = line.split("/")[0]
        if cls not in index:
            raise DataError(f"{listing} line {n}: class {cls!r} has no folder in {base / 'images'}")
        paths.append(str(base / "images" / line))
        labels.append(index[cls])
    return _files(paths, labels, classes, str(listing))


@_reader("eurosat")
def _eurosat(root: Path, split: str) -> Loaded:
    import pandas as pd

    base = root / "eurosat" / "2750"
    openai = eurosat_classnames()
    classes = sorted(openai)
    paths, labels = [], []
    for label, cls in enumerate(classes):
        if not (base / cls).is_dir():
            raise DataError(f"eurosat: missing class folder {base / cls}")
        files = image_files(base / cls)
        paths += files
        labels += [label] * len(files)
    frame = pd.DataFrame({"label": labels})
    train = np.zeros(len(labels), dtype=bool)
    train[frame.groupby("label").sample(frac=0.9, random_state=1).index.to_numpy()] = True
    keep = np.flatnonzero(train if split == "train" else ~train)
    names = [openai[c] for c in classes]
    return _files([paths[i] for i in keep], [labels[i] for i in keep], names)


@_reader("gtsrb")
def _gtsrb(root: Path, split: str) -> Loaded:
    base = root / "gtsrb"
    names = gtsrb_classnames()
    if split == "train":
        paths, labels = [], []
        for folder in sorted(p for p in (base / "GTSRB" / "Training").iterdir() if p.is_dir()):
            if not folder.name.isdigit() or int(folder.name) >= len(names):
                raise DataError(f"gtsrb: unexpected folder {folder} (expected 00000..00042)")
            files = image_files(folder)
            paths += files
            labels += [int(folder.name)] * len(files)
        return _files(paths, labels, names)
    table = base / "GT-final_test.csv"
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";", skipinitialspace=True))
    if not rows or not {"Filename", "ClassId"} <= set(rows[0]):
        raise DataError(f"{table} needs ';'-separated columns Filename and ClassId")
    images = base / "GTSRB" / "Final_Test" / "Images"
    paths = [str(images / r["Filename"]) for r in rows]
    return _files(paths, [int(r["ClassId"]) for r in rows], names, str(table))


@_reader("sun397")
def _sun397(root: Path, split: str) -> Loaded:
    base = root / "SUN397"
    keys = [
        ln.strip()[3:] for ln in (base / "ClassName.txt").read_text().splitlines() if ln.strip()
    ]
    index = {k: i for i, k in enumerate(keys)}
    part = "Training_01.txt" if split == "train" else "Testing_01.txt"
    listing = resolve(root, f"SUN397/{part}|SUN397/Partitions/{part}|{part}")
    assert listing is not None  # checked by catalog.require
    paths, labels = [], []
    for n, line in enumerate(listing.read_text().split(), 1):
        key = "/".join(line.split("/")[2:-1])
        if key not in index:
            raise DataError(f"{listing} line {n}: class {key!r} is not in {base / 'ClassName.txt'}")
        paths.append(str(base / line.lstrip("/")))
        labels.append(index[key])
    names = [k.replace("_", " ").replace("/", " ") for k in keys]
    return _files(paths, labels, names, str(listing))


@_reader("cars")
def _cars(root: Path, split: str) -> Loaded:
    from scipy.io import loadmat

    base = root / "stanford_cars"
    if split == "train":
        annos, images = base / "devkit" / "cars_train_annos.mat", base / "cars_train"
    else:
        annos, images = base / "cars_test_annos_withlabels.mat", base / "cars_test"
    try:
        rows = np.atleast_1d(loadmat(annos, squeeze_me=True)["annotations"])
        meta = np.atleast_1d(
            loadmat(base / "devkit" / "cars_meta.mat", squeeze_me=True)["class_names"]
        )
        paths = [str(images / str(r["fname"])) for r in rows]
        labels = [int(r["class"]) - 1 for r in rows]  # classes are 1-based in the .mat files
    except Exception as exc:  # scipy/numpy raise many types for malformed .mat files
        raise DataError(f"cannot read Stanford Cars annotations {annos}: {exc}") from None
    return _files(paths, labels, [str(c) for c in meta], str(annos))


# name -> (torchvision.datasets class, keyword arguments for (root, split))
_TV_DOWNLOAD: dict[str, tuple[str, Callable[[Path, str], dict]]] = {
    "cifar100": ("CIFAR100", lambda r, s: {"root": str(r), "train": s == "train"}),
    "dtd": ("DTD", lambda r, s: {"root": str(r), "split": s}),
    "eurosat": ("EuroSAT", lambda r, s: {"root": str(r)}),
    "gtsrb": ("GTSRB", lambda r, s: {"root": str(r), "split": s}),
    "mnist": ("MNIST", lambda r, s: {"root": str(r), "train": s == "train"}),
    "stl10": ("STL10", lambda r, s: {"root": str(r), "split": s}),
    "sun397": ("SUN397", lambda r, s: {"root": str(r)}),
    "svhn": ("SVHN", lambda r, s: {"root": str(r / "svhn"), "split": s}),
}


def torchvision_class(cls_name: str):
    """The ``torchvision.datasets`` class named ``cls_name`` (imported only to download)."""
    import torchvision.datasets as tvd

    return getattr(tvd, cls_name)


def _downloader(name: str) -> Downloader | None:
    if name not in _TV_DOWNLOAD:
        return None
    cls_name, kwargs = _TV_DOWNLOAD[name]

    def run(root: Path, split: str) -> None:
        torchvision_class(cls_name)(download=True, **kwargs(root, split))

    return run


for _name, _read in _READERS.items():
    datasets.register(_name)(paper_builder(_name, _read, download=_downloader(_name)))
