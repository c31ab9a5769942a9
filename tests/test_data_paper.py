"""The paper's tasks load from small files written in each dataset's real on-disk format."""

from __future__ import annotations

import csv
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipgap.data import DataOptions, load_task
from clipgap.data.catalog import PAPER_TASKS, imagenet_classnames, imagenet_wnids
from clipgap.errors import DataError

RNG = np.random.default_rng(0)


def _opts(root, **kw) -> DataOptions:
    return DataOptions(data_root=str(root), **kw)


def _pixels(n: int, size: int = 8) -> np.ndarray:
    return RNG.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _png_bytes(value: int = 0, size: int = 4) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _write(path, data: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data or _png_bytes())


def _rgb(task, i: int) -> np.ndarray:
    return np.asarray(task.images.load(i))


# --- CIFAR-100: torchvision's pickles --------------------------------------------------------

CIFAR_NAMES = ["apple", "aquarium_fish"] + [f"class_{i}" for i in range(2, 100)]


def write_cifar100(root, n_train=6, n_test=4):
    base = root / "cifar-100-python"
    base.mkdir(parents=True)
    made = {}
    for split, n in (("train", n_train), ("test", n_test)):
        pix = _pixels(n, 32)
        labels = [int(x) for x in RNG.integers(0, 100, n)]
        entry = {
            "filenames": [f"{i}.png" for i in range(n)],
            "fine_labels": labels,
            "coarse_labels": [x // 5 for x in labels],
            "data": pix.transpose(0, 3, 1, 2).reshape(n, 3072),  # row = R plane, G plane, B plane
        }
        (base / split).write_bytes(pickle.dumps(entry))
        made[split] = (pix, labels)
    (base / "meta").write_bytes(pickle.dumps({"fine_label_names": CIFAR_NAMES}))
    return made


def test_cifar100_reads_torchvision_pickles(tmp_path):
    made = write_cifar100(tmp_path)
    task = load_task("cifar100", "test", options=_opts(tmp_path))
    pix, labels = made["test"]
    assert task.labels.tolist() == labels
    assert task.n_classes == 100 and task.class_names[1] == "aquarium fish"
    assert task.templates == ["a photo of a {c}"]
    np.testing.assert_array_equal(_rgb(task, 2), pix[2])
    train = load_task(f"cifar100:{tmp_path}", "train")  # KIND:DIR names the root directly
    assert len(train) == 6 and train.fingerprint != task.fingerprint


def test_cifar100_missing_partial_and_corrupt(tmp_path):
    with pytest.raises(DataError, match=r"missing .*cifar-100-python/train .*--download"):
        load_task("cifar100", "train", options=_opts(tmp_path))
    write_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "test").unlink()
    with pytest.raises(DataError) as err:
        load_task("cifar100", "test", options=_opts(tmp_path))
    assert f"missing {tmp_path}/cifar-100-python/test " in str(err.value)
    assert "\n" not in str(err.value)
    (tmp_path / "cifar-100-python" / "train").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read .*train as a CIFAR pickle"):
        load_task("cifar100", "train", options=_opts(tmp_path))


def test_download_only_when_asked(tmp_path, monkeypatch):
    from clipgap.data import torchvision_tasks

    calls = []

    def fake_cifar(root, train, download):
        calls.append((root, train, download))
        write_cifar100(tmp_path)

    def offline(**kw):
        raise OSError("network is unreachable\nmore detail")

    fakes = {"CIFAR100": fake_cifar, "MNIST": offline}
    monkeypatch.setattr(torchvision_tasks, "torchvision_class", fakes.__getitem__)
    with pytest.raises(DataError, match="missing"):
        load_task("cifar100", "test", options=_opts(tmp_path))
    assert calls == []
    task = load_task("cifar100", "test", options=_opts(tmp_path, download=True))
    assert calls == [(str(tmp_path), False, True)] and len(task) == 4
    load_task("cifar100", "test", options=_opts(tmp_path, download=True))
    assert len(calls) == 1  # files present: no second download
    with pytest.raises(DataError, match=r"mnist: download into .* failed \(OSError: network is "):
        load_task("mnist", "train", options=_opts(tmp_path, download=True))


def test_download_arguments_match_torchvision():
    import inspect

    from clipgap.data.torchvision_tasks import _TV_DOWNLOAD, torchvision_class

    for name, (cls_name, kwargs) in _TV_DOWNLOAD.items():
        assert PAPER_TASKS[name].torchvision_download
        params = inspect.signature(torchvision_class(cls_name)).parameters
        for split in PAPER_TASKS[name].splits:
            assert set(kwargs(Path("/r"), split)) | {"download"} <= set(params), name
    assert {n for n, t in PAPER_TASKS.items() if t.torchvision_download} == set(_TV_DOWNLOAD)


# --- MNIST: idx ubyte files under MNIST/raw ---------------------------------------------------


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root, n=5):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    gray = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n) % 10
    for stem in ("train", "t10k"):
        (raw / f"{stem}-images-idx3-ubyte").write_bytes(_idx(gray))
        (raw / f"{stem}-labels-idx1-ubyte").write_bytes(_idx(labels))
    return gray, labels


def test_mnist_reads_idx_files(tmp_path):
    gray, labels = write_mnist(tmp_path)
    task = load_task("mnist", "test", options=_opts(tmp_path))
    assert task.labels.tolist() == labels.tolist()
    assert task.class_names == [str(d) for d in range(10)]
    assert task.templates == ['a photo of the number: "{c}"']
    img = _rgb(task, 3)
    assert img.shape == (28, 28, 3) and (img == gray[3][..., None]).all()


def test_mnist_partial_and_bad_header(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="missing .*MNIST/raw/t10k-labels-idx1-ubyte"):
        load_task("mnist", "test", options=_opts(tmp_path))
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\0\0\x0d\x03abcd")
    with pytest.raises(DataError, match="not an unsigned-byte IDX file"):
        load_task("mnist", "train", options=_opts(tmp_path))


# --- STL10 and SVHN: binary and .mat arrays ---------------------------------------------------


def test_stl10_and_svhn_arrays(tmp_path):
    from scipy.io import savemat

    base = tmp_path / "stl10_binary"
    base.mkdir()
    pix = _pixels(3, 96)
    for split in ("train", "test"):
        (base / f"{split}_X.bin").write_bytes(pix.transpose(0, 3, 2, 1).tobytes())  # column-major
        (base / f"{split}_y.bin").write_bytes(bytes([1, 10, 3]))  # 1-based
    (base / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    stl = load_task("stl10", "test", options=_opts(tmp_path))
    assert stl.labels.tolist() == [0, 9, 2] and stl.class_names[9] == "c9"
    np.testing.assert_array_equal(_rgb(stl, 1), pix[1])

    svhn_pix = _pixels(4, 32)
    (tmp_path / "svhn").mkdir()
    mat = {"X": svhn_pix.transpose(1, 2, 3, 0), "y": np.array([[10], [1], [5], [10]])}
    savemat(tmp_path / "svhn" / "train_32x32.mat", mat)
    svhn = load_task("svhn", "train", options=_opts(tmp_path))
    assert svhn.labels.tolist() == [0, 1, 5, 0]  # SVHN's 10 means digit 0
    np.testing.assert_array_equal(_rgb(svhn, 2), svhn_pix[2])
    with pytest.raises(DataError, match="missing .*svhn/test_32x32.mat"):
        load_task("svhn", "test", options=_opts(tmp_path))


# --- EuroSAT and DTD: folder layouts ----------------------------------------------------------

EUROSAT = ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
           "PermanentCrop", "Residential", "River", "SeaLake"]  # fmt: skip


def test_eurosat_folder_split_and_openai_names(tmp_path):
    base = tmp_path / "eurosat" / "2750"
    for cls in EUROSAT:
        for i in range(10):
            _write(base / cls / f"{cls}_{i + 1}.jpg")
    train = load_task("eurosat", "train", options=_opts(tmp_path))
    test = load_task("eurosat", "test", options=_opts(tmp_path))
    assert train.class_names[0] == "annual crop land" and train.class_names[9] == "lake or sea"
    assert train.templates == ["a centered satellite photo of a {c}"]
    assert np.bincount(train.labels).tolist() == [9] * 10  # 90% of each class, as the authors
    assert np.bincount(test.labels).tolist() == [1] * 10
    train_files, test_files = set(train.images.paths), set(test.images.paths)
    assert not train_files & test_files and len(train_files | test_files) == 100
    again = load_task("eurosat", "test", options=_opts(tmp_path))
    assert list(again.images.paths) == list(test.images.paths)  # deterministic
    for f in (base / "River").iterdir():
        f.unlink()
    (base / "River").rmdir()
    with pytest.raises(DataError, match=r"missing class folder .*2750/River"):
        load_task("eurosat", "test", options=_opts(tmp_path))


def test_dtd_partition_files(tmp_path):
    base = tmp_path / "dtd" / "dtd"
    for cls in ("banded", "bubbly", "zigzagged"):
        for i in range(2):
            _write(base / "images" / cls / f"{cls}_{i}.jpg")
    (base / "labels").mkdir()
    (base / "labels" / "train1.txt").write_text("zigzagged/zigzagged_0.jpg\nbanded/banded_0.jpg\n")
    (base / "labels" / "test1.txt").write_text("bubbly/bubbly_1.jpg\nbubbly/bubbly_9.jpg\n")
    (base / "labels" / "val1.txt").write_text("lined/lined_0.jpg\n")
    train = load_task("dtd", "train", options=_opts(tmp_path))
    assert train.labels.tolist() == [2, 0] and train.class_names == [
        "banded",
        "bubbly",
        "zigzagged",
    ]
    assert train.templates == ["a photo of a {c} texture"]
    with pytest.raises(DataError, match=r"missing image file .*bubbly_9.jpg \(listed in .*test1"):
        load_task("dtd", "test", options=_opts(tmp_path))
    with pytest.raises(DataError, match="val1.txt line 1: class 'lined' has no folder"):
        load_task("dtd", "val", options=_opts(tmp_path))


# --- GTSRB, SUN397, Stanford Cars -------------------------------------------------------------


def test_gtsrb_train_folders_and_test_csv(tmp_path):
    base = tmp_path / "gtsrb"
    for cls in (0, 14, 42):
        _write(base / "GTSRB" / "Training" / f"{cls:05d}" / f"00000_0000{cls % 3}.ppm")
        (base / "GTSRB" / "Training" / f"{cls:05d}" / f"GT-{cls:05d}.csv").write_text("x")
    train = load_task("gtsrb", "train", options=_opts(tmp_path))
    assert train.labels.tolist() == [0, 14, 42] and train.class_names[14] == "stop"
    assert train.templates == ['a photo of a "{c}" traffic sign']
    images = base / "GTSRB" / "Final_Test" / "Images"
    for name in ("00000.ppm", "00001.ppm"):
        _write(images / name)
    with open(base / "GT-final_test.csv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["Filename", "Width", "Height", "ClassId"])
        w.writerows([["00000.ppm", 4, 4, 7], ["00001.ppm", 4, 4, 33]])
    test = load_task("gtsrb", "test", options=_opts(tmp_path))
    assert test.labels.tolist() == [7, 33] and len(test.class_names) == 43


def test_sun397_partition(tmp_path):
    base = tmp_path / "SUN397"
    base.mkdir()
    (base / "ClassName.txt").write_text("/a/abbey\n/a/apartment_building/outdoor\n/b/bakery/shop\n")
    for rel in (
        "a/abbey/sun_1.jpg",
        "a/apartment_building/outdoor/sun_2.jpg",
        "b/bakery/shop/sun_3.jpg",
    ):
        _write(base / rel)
    (base / "Testing_01.txt").write_text("/b/bakery/shop/sun_3.jpg\n/a/abbey/sun_1.jpg\n")
    test = load_task("sun397", "test", options=_opts(tmp_path))
    assert test.labels.tolist() == [2, 0]
    assert test.class_names == ["abbey", "apartment building outdoor", "bakery shop"]
    with pytest.raises(DataError, match=r"missing .*SUN397/Training_01.txt \(or .*Partitions"):
        load_task("sun397", "train", options=_opts(tmp_path))


def test_stanford_cars_mat_files(tmp_path):
    from scipy.io import savemat

    base = tmp_path / "stanford_cars"
    (base / "devkit").mkdir(parents=True)
    names = np.array(["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi R8 Coupe 2012"],
                     dtype=object)  # fmt: skip
    savemat(base / "devkit" / "cars_meta.mat", {"class_names": names.reshape(1, -1)})
    rows = np.array([("00001.jpg", 3), ("00002.jpg", 1)], dtype=[("fname", "O"), ("class", "O")])
    savemat(base / "devkit" / "cars_train_annos.mat", {"annotations": rows.reshape(1, -1)})
    for f in ("00001.jpg", "00002.jpg"):
        _write(base / "cars_train" / f)
    task = load_task("cars", "train", options=_opts(tmp_path))
    assert task.labels.tolist() == [2, 0] and task.class_names[2] == "Audi R8 Coupe 2012"
    with pytest.raises(DataError, match="missing .*cars_test_annos_withlabels.mat.*Kaggle"):
        load_task("cars", "test", options=_opts(tmp_path, download=True))


# --- RESISC45 and fMoW ------------------------------------------------------------------------


def test_resisc45_split_lists(tmp_path):
    base = tmp_path / "resisc45"
    for f in ("airplane_001.jpg", "sea_ice_002.jpg", "wetland_700.jpg"):
        _write(base / "NWPU-RESISC45" / f.rsplit("_", 1)[0] / f)
    (base / "resisc45-train.txt").write_text("sea_ice_002.jpg\nwetland_700.jpg\nairplane_001.jpg\n")
    (base / "resisc45-test.txt").write_text("spaceport_001.jpg\n")
    task = load_task("resisc45", "train", options=_opts(tmp_path))
    assert task.labels.tolist() == [35, 44, 0] and task.class_names[35] == "sea ice"
    assert task.templates == ["satellite imagery of {c}"]
    with pytest.raises(DataError, match="resisc45-test.txt line 1: 'spaceport_001.jpg'"):
        load_task("resisc45", "test", options=_opts(tmp_path))
    with pytest.raises(DataError, match="missing .*resisc45/resisc45-val.txt.*torchgeo"):
        load_task("resisc45", "val", options=_opts(tmp_path))


FMOW_ROWS = [  # split, category, timestamp -> WILDS split
    ("train", "airport", "2010-05-01T10:00:00Z"),  # train
    ("train", "zoo", "2014-05-01T10:00:00Z"),  # unused (train-tagged but in the OOD-val years)
    ("test", "park", "2012-12-31T23:59:59Z"),  # id test
    ("test", "dam", "2016-01-01T00:00:00Z"),  # ood test
    ("val", "barn", "2015-03-01T00:00:00Z"),  # ood val
    ("seq", "barn", "2017-03-01T00:00:00Z"),  # sequestered: never used
    ("test", "tower", "2017-06-01T00:00:00.5Z"),  # ood test
]


def test_fmow_wilds_splits(tmp_path):
    base = tmp_path / "fmow_v1.1"
    with open(_mkdir(base) / "rgb_metadata.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["split", "img_filename", "category", "country_code", "timestamp"])
        w.writerows([(s, f"x{i}.jpg", c, "USA", t) for i, (s, c, t) in enumerate(FMOW_ROWS)])
    for i in (0, 2, 3, 4, 6):
        _write(base / "images" / f"rgb_img_{i}.png")
    opts = _opts(tmp_path)
    train = load_task("fmow", "train", options=opts)
    assert train.labels.tolist() == [0] and train.images.paths[0].endswith("rgb_img_0.png")
    idt = load_task("fmow", "test", options=opts)
    assert idt.class_names[idt.labels[0]] == "park" and idt.domain is None
    ood = load_task("fmow@ood", "test", options=opts)
    assert ood.split == "ood_test" and ood.domain == "ood"
    assert [ood.class_names[y] for y in ood.labels] == ["dam", "tower"]
    assert load_task("fmow", "ood_val", options=opts).labels.tolist() == [6]  # barn
    assert ood.templates == ["a satellite image of a {c}"]
    with pytest.raises(DataError, match="fmow@ood has splits test and val"):
        load_task("fmow@ood", "train", options=opts)
    with pytest.raises(DataError, match="no domain 'west'"):
        load_task("fmow@west", "test", options=opts)


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- ImageNet and its shifted sets ------------------------------------------------------------


def _class_tree(root, folders, per=1):
    blob = _png_bytes(7)
    for name in folders:
        for i in range(per):
            _write(root / name / f"img_{i}.JPEG", blob)


@pytest.mark.parametrize(
    ("kind", "first_name", "first_parent"),
    [("imagenet-r", "goldfish", 1), ("imagenet-a", "stingray", 6)],
)
def test_imagenet_200_class_subsets(tmp_path, kind, first_name, first_parent):
    wnids = imagenet_wnids(kind[-1])
    _class_tree(tmp_path / kind, wnids)
    task = load_task(kind, "test", options=_opts(tmp_path))
    assert task.n_classes == 200 and task.labels.tolist() == list(range(200))
    assert task.class_names[0] == first_name
    parent = task.meta["parent_class_indices"]
    assert parent[0] == first_parent and len(set(parent)) == 200
    all_names, all_wnids = imagenet_classnames(), imagenet_wnids()
    assert all(task.class_names[k] == all_names[p] for k, p in enumerate(parent))
    assert all(all_wnids[p] == w for p, w in zip(parent, wnids, strict=True))
    assert task.images.paths[5].split("/")[-2] == wnids[5]
    (tmp_path / kind / "n99999999").mkdir()
    with pytest.raises(DataError, match="n99999999 that are not among its 200 classes"):
        load_task(kind, "test", options=_opts(tmp_path))
    (tmp_path / kind / "n99999999").rmdir()
    for f in (tmp_path / kind / wnids[7]).iterdir():
        f.unlink()
    (tmp_path / kind / wnids[7]).rmdir()
    with pytest.raises(DataError, match=f"missing class folder .*{wnids[7]} \\(partial"):
        load_task(kind, "test", options=_opts(tmp_path))


def test_imagenet_val_and_v2_label_order(tmp_path):
    wnids = imagenet_wnids()
    _class_tree(tmp_path / "imagenet" / "val", wnids)
    task = load_task("imagenet", "test", options=_opts(tmp_path))
    assert task.labels.tolist() == list(range(1000)) and task.class_names[0] == "tench"
    assert task.images.paths[999].split("/")[-2] == wnids[999]
    _class_tree(tmp_path / "imagenetv2-matched-frequency-format-val", [str(i) for i in range(1000)])
    v2 = load_task("imagenet-v2", "test", options=_opts(tmp_path))
    folder_of = [int(p.split("/")[-2]) for p in v2.images.paths]
    assert v2.labels.tolist() == folder_of == list(range(1000))  # numeric, not "10" < "2"
    with pytest.raises(DataError, match="missing .*imagenet/train"):
        load_task("imagenet", "train", options=_opts(tmp_path))
    with pytest.raises(DataError, match="imagenet-v2 has no split 'train'"):
        load_task("imagenet-v2", "train", options=_opts(tmp_path))


def test_imagenet_flat_val_and_sketch_alias(tmp_path):
    _write(tmp_path / "imagenet" / "val" / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(DataError, match="holds images directly; sort them into one folder"):
        load_task("imagenet", "test", options=_opts(tmp_path))
    _class_tree(tmp_path / "sketch", imagenet_wnids()[:3])
    with pytest.raises(DataError, match=r"imagenet-sketch: missing class folder .*sketch/n0"):
        load_task("imagenet-sketch", "test", options=_opts(tmp_path))


def test_catalog_covers_the_paper_tasks():
    paper = {"cifar100", "dtd", "eurosat", "gtsrb", "mnist", "stl10", "sun397", "svhn", "cars",
             "resisc45", "fmow", "imagenet", "imagenet-v2", "imagenet-sketch", "imagenet-r",
             "imagenet-a"}  # fmt: skip
    assert set(PAPER_TASKS) == paper
    assert (
        PAPER_TASKS["eurosat"].torchvision_download and not PAPER_TASKS["fmow"].torchvision_download
    )
    assert PAPER_TASKS["gtsrb"].templates == ('a photo of a "{c}" traffic sign',)
    assert all(len(t.templates) == 1 and t.source for t in PAPER_TASKS.values())
