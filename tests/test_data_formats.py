"""Generic dataset formats: CSV files, webdataset shards and DomainBed domain folders."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from clipgap.data import DataOptions, load_task
from clipgap.data.folder import split_indices
from clipgap.errors import DataError

from .conftest import make_image_folder


def _png(value: int, size: int = 4) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


# --- CSV --------------------------------------------------------------------------------------


def write_csv(root, text: str, images=("a.png", "b.png", "c.png", "sub/d.png")):
    for i, name in enumerate(images):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(_png(40 * i % 256))
    path = root / "tasks.csv"
    path.write_text(text)
    return path


def test_csv_names_ints_split_and_classnames_file(tmp_path):
    table = write_csv(
        tmp_path,
        "path,label,split\na.png,dog,train\nb.png,0,test\nc.png,cat,train\nsub/d.png,2,test\n",
    )
    (tmp_path / "classnames.txt").write_text("cat\ndog\nred fox\n")
    train = load_task(f"csv:{table}", "train")
    assert train.class_names == ["cat", "dog", "red fox"]
    assert train.labels.tolist() == [1, 0]
    test = load_task(f"csv:{table}", "test")
    assert test.labels.tolist() == [0, 2]
    assert np.asarray(test.images.load(1))[0, 0].tolist() == [120, 120, 120]  # sub/d.png
    assert len(load_task(f"csv:{table}", "all")) == 4
    with pytest.raises(DataError, match="no rows with split 'val'; splits: test, train"):
        load_task(f"csv:{table}", "val")


def test_csv_classes_column_and_sorted_labels(tmp_path):
    table = write_csv(tmp_path, "path,label,classes\na.png,zebra,zebra\nb.png,1,ant\nc.png,ant,\n")
    task = load_task(f"csv:{table}", "all")
    assert task.class_names == ["zebra", "ant"] and task.labels.tolist() == [0, 1, 1]
    table.write_text("path,label\na.png,zebra\nb.png,ant\nc.png,ant\nsub/d.png,moth\n")
    task = load_task(f"csv:{table}", "all")
    assert task.class_names == ["ant", "moth", "zebra"] and task.labels.tolist() == [2, 0, 0, 1]


def test_csv_without_split_column_is_a_stratified_cut(tmp_path):
    names = [f"img{i}.png" for i in range(10)]
    rows = "".join(f"{n},{'cat' if i < 5 else 'dog'}\n" for i, n in enumerate(names))
    table = write_csv(tmp_path, "path,label\n" + rows, images=names)
    train, test = load_task(f"csv:{table}", "train"), load_task(f"csv:{table}", "test")
    assert np.bincount(test.labels).tolist() == [1, 1]  # 20% of each class
    assert np.bincount(train.labels).tolist() == [4, 4]
    assert not set(train.images.paths) & set(test.images.paths)


@pytest.mark.parametrize(
    ("cell", "line"), [("../outside.png", 3), ("sub/../../x.png", 3), ("/etc/passwd", 3)]
)
def test_csv_refuses_paths_leaving_its_folder(tmp_path, cell, line):
    data = tmp_path / "data"
    data.mkdir()
    table = write_csv(data, f"path,label\na.png,cat\n{cell},dog\n")
    with pytest.raises(
        DataError, match=f"tasks.csv line {line}: path '.*' leaves the CSV's folder"
    ):
        load_task(f"csv:{table}", "all")


def test_csv_absolute_path_inside_its_folder_is_fine(tmp_path):
    table = write_csv(tmp_path, f"path,label\n{tmp_path / 'a.png'},cat\nb.png,dog\n")
    assert load_task(f"csv:{table}", "all").images.paths[0] == str(tmp_path / "a.png")


def test_csv_bad_inputs_name_the_problem(tmp_path):
    table = write_csv(tmp_path, "file,labels\na.png,cat\n")
    with pytest.raises(DataError, match="missing column\\(s\\) path, label"):
        load_task(f"csv:{table}", "all")
    table.write_text("path,label\na.png,cat\nb.png,dog\n")
    (tmp_path / "classnames.txt").write_text("cat\nbird\n")
    with pytest.raises(
        DataError, match="line 3: label 'dog' is not one of the 2 classes in .*classnames"
    ):
        load_task(f"csv:{table}", "all")
    (tmp_path / "classnames.txt").unlink()
    table.write_text("path,label\na.png,0\nb.png,1\n")
    with pytest.raises(DataError, match="labels are integers but there is no class list"):
        load_task(f"csv:{table}", "all")
    table.write_text("path,label\na.png,cat\nmissing.png,dog\n")
    with pytest.raises(DataError, match="line 3: image .*missing.png does not exist"):
        load_task(f"csv:{table}", "all")
    table.write_text("path,label\n")
    with pytest.raises(DataError, match="header but no rows"):
        load_task(f"csv:{table}", "all")
    with pytest.raises(DataError, match="CSV file .*nope.csv does not exist"):
        load_task(f"csv:{tmp_path / 'nope.csv'}", "all")


def test_csv_domains(tmp_path):
    table = write_csv(
        tmp_path,
        "path,label,domain,split\na.png,cat,photo,train\nb.png,dog,photo,train\n"
        "c.png,cat,sketch,test\nsub/d.png,dog,art,test\n",
    )
    photo = load_task(f"csv:{table}@photo", "train")
    assert photo.domain == "photo" and photo.labels.tolist() == [0, 1]
    held_out = load_task(f"csv:{table}@sketch+art", "test")
    assert held_out.labels.tolist() == [0, 1] and held_out.class_names == ["cat", "dog"]
    with pytest.raises(DataError, match="no domain 'clipart'; domains: art, photo, sketch"):
        load_task(f"csv:{table}@clipart", "test")
    table.write_text("path,label\na.png,cat\n")
    with pytest.raises(DataError, match="no domain column"):
        load_task(f"csv:{table}@photo", "all")


# --- webdataset shards ------------------------------------------------------------------------


def write_shard(path, samples, *, skip_cls=()):
    """samples: list of (key, pixel value, label, ext)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for key, value, label, ext in samples:
            members = [(f"{key}.{ext}", _png(value)), (f"{key}.txt", b"caption")]
            if key not in skip_cls:
                members.append((f"{key}.cls", str(label).encode()))
            for name, blob in members:
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))


def write_wds(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "classnames.txt").write_text("cat\ndog\nbird\n")
    (root / "zeroshot_classification_templates.txt").write_text(
        "a photo of a {c}.\nart of a {c}.\n"
    )
    write_shard(root / "test" / "0.tar", [("s000", 10, 2, "png"), ("s001", 20, 0, "webp")])
    write_shard(root / "test" / "1.tar", [("s002", 30, 1, "jpg")])
    write_shard(root / "test" / "10.tar", [("s003", 40, 0, "png")])
    return root


def test_wds_split_folder_shards(tmp_path):
    root = write_wds(tmp_path / "wds")
    task = load_task(f"wds:{root}", "test")
    assert task.labels.tolist() == [2, 0, 1, 0]  # natural shard order: 0, 1, 10
    assert task.class_names == ["cat", "dog", "bird"]
    assert task.templates == ["a photo of a {c}.", "art of a {c}."]
    assert np.asarray(task.images.load(0))[0, 0].tolist() == [10, 10, 10]
    assert np.asarray(task.images.load(3))[0, 0].tolist() == [40, 40, 40]
    assert task.images.load(1).mode == "RGB"
    with pytest.raises(DataError, match="no shards for split 'train'"):
        load_task(f"wds:{root}", "train")


def test_wds_split_in_shard_names_and_default_templates(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    (root / "classnames.txt").write_text("cat\ndog\n")
    write_shard(root / "cifar_train_000.tar", [("a", 5, 1, "png")])
    write_shard(root / "cifar_test_000.tar", [("b", 6, 0, "png"), ("c", 7, 1, "png")])
    test = load_task(f"wds:{root}", "test")
    assert test.labels.tolist() == [0, 1] and test.templates == ["a photo of a {c}."]
    assert load_task(f"wds:{root}", "train").labels.tolist() == [1]


def test_wds_bad_shards(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "classnames.txt").write_text("cat\ndog\n")
    write_shard(root / "test" / "0.tar", [("a", 5, 1, "png"), ("b", 6, 0, "png")], skip_cls={"b"})
    with pytest.raises(DataError, match="sample 'b' in .*0.tar has an image but no .cls label"):
        load_task(f"wds:{root}", "test")
    write_shard(root / "test" / "0.tar", [("a", 5, 7, "png")])
    with pytest.raises(DataError, match="sample 'a' in .*0.tar has label 7 but .* lists 2 classes"):
        load_task(f"wds:{root}", "test")
    (root / "classnames.txt").unlink()
    with pytest.raises(DataError, match="has no classnames.txt"):
        load_task(f"wds:{root}", "test")


def test_wds_hf_id_without_hub_is_a_clear_error():
    with pytest.raises(DataError, match="not in the local Hugging Face cache; run with --download"):
        load_task("wds:hf:clipgap-test/does_not_exist", "test")
    opts = DataOptions(download=True)
    with pytest.raises(DataError, match="hub is unreachable or the id is wrong.*use wds:DIR"):
        load_task("wds:hf:clipgap-test/does_not_exist", "test", options=opts)


# --- DomainBed folders ------------------------------------------------------------------------


def test_domainbed_leave_one_domain_out(tmp_path):
    root = tmp_path / "pacs"
    for d, seed in (("photo", 1), ("art", 2), ("sketch", 3)):
        make_image_folder(root / d, per_class=5, seed=seed)
    train = load_task(f"folder:{root}@photo+art", "train")
    test = load_task(f"folder:{root}@photo+art", "test")
    assert np.bincount(train.labels).tolist() == [8, 8, 8]  # 80% of 10 per class
    assert np.bincount(test.labels).tolist() == [2, 2, 2]
    assert not set(train.images.paths) & set(test.images.paths)
    assert {p.split("/")[-3] for p in train.images.paths} == {"photo", "art"}
    held = load_task(f"folder:{root}@sketch", "all")
    assert len(held) == 15 and held.domain == "sketch"
    assert held.class_names == train.class_names == ["cat", "dog", "red fox"]
    assert train.meta["domains"] == ["photo", "art"]


def test_domainbed_mismatched_classes_and_unknown_domain(tmp_path):
    root = tmp_path / "vlcs"
    make_image_folder(root / "a", classes=("cat", "dog"), per_class=2)
    make_image_folder(root / "b", classes=("cat", "fox"), per_class=2)
    with pytest.raises(DataError, match="domain 'b' .* different classes .*lacks dog; adds fox"):
        load_task(f"folder:{root}@a+b", "train")
    with pytest.raises(DataError, match="no domain 'c'; domains: a, b"):
        load_task(f"folder:{root}@c", "test")
    with pytest.raises(DataError, match="split must be train, test or all"):
        load_task(f"folder:{root}@a", "val")


def test_split_indices_is_stratified_and_deterministic():
    labels = np.repeat([0, 1, 2], [10, 3, 1])
    test = split_indices(labels, "test", what="x")
    train = split_indices(labels, "train", what="x")
    assert np.bincount(labels[test], minlength=3).tolist() == [
        2,
        1,
        0,
    ]  # a singleton stays in train
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(14))
    assert split_indices(labels, "test", what="x").tolist() == test.tolist()
