"""``hfds:`` tasks: small Hugging Face datasets built here (save_to_disk and parquet folders) with
PIL images, read back through ``load_task`` and checked pixel by pixel against what was saved."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clipgap.cli import build_parser, main
from clipgap.cli.common import data_options
from clipgap.data import DataOptions, load_task
from clipgap.errors import DataError

from .conftest import TINY_MODEL

hf = pytest.importorskip("datasets")

NAMES = ["red_fox", "cat", "dog"]


def pictures(n, seed):
    """``n`` RGB arrays of varied sizes whose dominant channel is the class ``i % 3``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        arr = rng.integers(0, 60, (8 + i % 3, 10 + i % 2, 3), dtype=np.uint8)
        arr[..., i % 3] += 150
        out.append(arr)
    return out


def table(n, seed, **extra):
    """Columns of a dataset: ``img`` (PIL), ``lab`` (class index), ``note``, and ``extra``."""
    arrays = pictures(n, seed)
    cols = {"note": [f"row {i}" for i in range(n)], "img": [Image.fromarray(a) for a in arrays],
            "lab": [i % 3 for i in range(n)], **extra}  # fmt: skip
    return cols, arrays


def dataset(cols, *, label=True):
    features = {"note": hf.Value("string"), "img": hf.Image()}
    if label:
        features["lab"] = hf.ClassLabel(names=NAMES)
    features.update({k: hf.Value("string") for k in cols if k not in features})
    return hf.Dataset.from_dict(cols, features=hf.Features(features))


def check(task, arrays, labels, classes):
    assert len(task) == len(arrays)
    assert task.labels.tolist() == list(labels)
    assert task.class_names == classes
    assert task.templates == ["a photo of a {c}."]
    for i, expected in enumerate(arrays):
        img = task.images.load(i)
        assert img.mode == "RGB" and np.array_equal(np.asarray(img), expected)


@pytest.fixture
def saved(tmp_path):
    """save_to_disk DatasetDict with train (9 rows) and test (4 rows)."""
    (train, a_train), (test, a_test) = table(9, 1), table(4, 2)
    root = tmp_path / "saved"
    hf.DatasetDict(train=dataset(train), test=dataset(test)).save_to_disk(str(root))
    return root, a_train, a_test


def test_save_to_disk_splits(saved):
    root, a_train, a_test = saved
    classes = ["red fox", "cat", "dog"]  # ClassLabel names, underscores shown as spaces
    check(load_task(f"hfds:{root}", "train"), a_train, [i % 3 for i in range(9)], classes)
    check(load_task(f"hfds:{root}", "test"), a_test, [i % 3 for i in range(4)], classes)
    a = load_task(f"hfds:{root}", "test")
    assert a.fingerprint == load_task(f"hfds:{root}", "test").fingerprint
    assert a.fingerprint != load_task(f"hfds:{root}", "train").fingerprint
    everything = load_task(f"hfds:{root}", "all")
    assert len(everything) == 13


def test_test_falls_back_to_validation(tmp_path):
    (train, _), (val, a_val) = table(6, 1), table(3, 5)
    root = tmp_path / "tv"
    hf.DatasetDict(train=dataset(train), validation=dataset(val)).save_to_disk(str(root))
    check(load_task(f"hfds:{root}", "test"), a_val, [0, 1, 2], ["red fox", "cat", "dog"])


def test_single_split_is_cut_80_20_stratified(tmp_path):
    cols, arrays = table(30, 3)
    root = tmp_path / "one"
    dataset(cols).save_to_disk(str(root))  # a single Dataset: one split
    train, test = load_task(f"hfds:{root}", "train"), load_task(f"hfds:{root}", "test")
    assert len(train) == 24 and len(test) == 6
    assert np.bincount(test.labels).tolist() == [2, 2, 2]  # 20 % of each class of 10
    seen = {np.asarray(t.images.load(i)).tobytes() for t in (train, test) for i in range(len(t))}
    assert seen == {a.tobytes() for a in arrays}  # disjoint and complete
    again = load_task(f"hfds:{root}", "test")
    assert again.labels.tolist() == test.labels.tolist()
    assert again.fingerprint == test.fingerprint


def test_missing_split_names_the_splits(tmp_path):
    (a, _), (b, _) = table(3, 1), table(3, 2)
    root = tmp_path / "odd"
    hf.DatasetDict(train=dataset(a), extra=dataset(b)).save_to_disk(str(root))
    with pytest.raises(DataError) as exc:
        load_task(f"hfds:{root}", "test")
    _one_line(exc, "no split 'test'", "validation", "splits: train, extra")


def test_parquet_folder_splits_by_file_name(tmp_path):
    (train, a_train), (test, a_test) = table(7, 1), table(5, 2)
    root = tmp_path / "pq"
    (root / "data").mkdir(parents=True)
    dataset(train).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    dataset(test).to_parquet(str(root / "data" / "test-00000-of-00001.parquet"))
    classes = ["red fox", "cat", "dog"]
    check(load_task(f"hfds:{root}", "train"), a_train, [i % 3 for i in range(7)], classes)
    check(load_task(f"hfds:{root}", "test"), a_test, [i % 3 for i in range(5)], classes)


def test_parquet_config_subfolder_and_split_folders(tmp_path):
    (train, a_train), (val, a_val) = table(4, 1), table(3, 2)
    for split, cols in (("train", train), ("validation", val)):
        (tmp_path / "pq" / "small" / split).mkdir(parents=True)
        dataset(cols).to_parquet(str(tmp_path / "pq" / "small" / split / "0000.parquet"))
    (tmp_path / "pq" / "large").mkdir()
    check(load_task(f"hfds:{tmp_path / 'pq'}:small", "train"), a_train, [0, 1, 2, 0],
          ["red fox", "cat", "dog"])  # fmt: skip
    check(load_task(f"hfds:{tmp_path / 'pq'}:small", "test"), a_val, [0, 1, 2],
          ["red fox", "cat", "dog"])  # fmt: skip
    with pytest.raises(DataError) as exc:
        load_task(f"hfds:{tmp_path / 'pq'}:tiny", "train")
    _one_line(exc, "unknown config 'tiny'", "configs (subfolders): large, small")


def test_named_columns_plain_labels_and_image_paths(tmp_path):
    arrays = pictures(6, 4)
    paths = []
    for i, arr in enumerate(arrays):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(arr).save(paths[-1])
    species = ["wolf", "ant", "wolf", "bee", "ant", "wolf"]
    cols = {"file": paths, "species": species, "n": [10, 2, 10, 2, 10, 2]}
    hf.DatasetDict(train=hf.Dataset.from_dict(cols)).save_to_disk(str(tmp_path / "plain"))
    spec = f"hfds:{tmp_path / 'plain'}"
    opts = DataOptions(image_column="file", label_column="species")
    task = load_task(spec, "all", options=opts)
    check(task, arrays, [2, 0, 2, 1, 0, 2], ["ant", "bee", "wolf"])  # sorted unique labels
    numbers = load_task(spec, "all", options=DataOptions(image_column="file", label_column="n"))
    assert numbers.class_names == ["2", "10"]  # integers sorted as numbers
    assert numbers.labels.tolist() == [1, 0, 1, 0, 1, 0]


def _one_line(exc_info, *needles):
    msg = str(exc_info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg


def test_bad_columns_list_the_columns(tmp_path):
    cols, _ = table(3, 1)
    no_image = {k: v for k, v in cols.items() if k != "img"}
    hf.DatasetDict(train=hf.Dataset.from_dict(no_image)).save_to_disk(str(tmp_path / "a"))
    with pytest.raises(DataError) as exc:
        load_task(f"hfds:{tmp_path / 'a'}", "train")
    _one_line(exc, "no image column", "columns: note (string), lab (int64)", "--image-column")
    hf.DatasetDict(train=dataset(cols, label=False).remove_columns("lab").add_column(
        "lab", cols["lab"])).save_to_disk(str(tmp_path / "b"))  # fmt: skip
    with pytest.raises(DataError) as exc:
        load_task(f"hfds:{tmp_path / 'b'}", "train")
    _one_line(exc, "no label column (no ClassLabel", "img (Image)", "--label-column")
    with pytest.raises(DataError) as exc:
        load_task(f"hfds:{tmp_path / 'b'}", "train", options=DataOptions(label_column="y"))
    _one_line(exc, "no column 'y' (--label-column)", "note (string), img (Image), lab (int64)")


def test_bad_sources(tmp_path, saved):
    root = saved[0]
    cases = [
        (f"hfds:{tmp_path}/nope", "does not exist"),
        ("hfds:someone/some-data", "pass --download"),
        (f"hfds:{root}@sketch", "has no domains"),
        (f"hfds:{root}:cfg", "unknown config 'cfg'"),
        ("hfds:", "needs a folder or hub id"),
    ]
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("x")
    cases.append((f"hfds:{tmp_path / 'junk'}", "neither a save_to_disk folder"))
    for spec, needle in cases:
        with pytest.raises(DataError) as exc:
            load_task(spec, "train")
        _one_line(exc, needle)


def test_hub_id_offline_fails_in_one_line():
    with pytest.raises(DataError) as exc:
        load_task("hfds:clipgap-tests/no-such-data:en", "test", options=DataOptions(download=True))
    _one_line(exc, "clipgap-tests/no-such-data")


def test_cli_column_options(saved, capsys):
    argv = "difficulty --model clipgap-tiny --dataset x --image-column img --label-column lab"
    args = build_parser().parse_args(argv.split())
    opts = data_options(args)
    assert (opts.image_column, opts.label_column) == ("img", "lab")
    code = main(["difficulty", "--model", "clipgap-tiny", "--dataset", f"hfds:{saved[0]}",
                 "--label-column", "lab", "--no-cache"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "zero_shot_accuracy" in out
    assert main(["difficulty", "--model", "clipgap-tiny", "--dataset", f"hfds:{saved[0]}",
                 "--label-column", "nope"]) == 2  # fmt: skip
    assert "no column 'nope'" in capsys.readouterr().err


def test_study_reads_named_columns(tmp_path):
    """``data.image_column`` / ``data.label_column`` of a study reach every hfds: task it reads;
    without them the same study fails each run with the loader's one-line column error."""
    from clipgap.study import load_study_config, run_study

    arrays = pictures(30, 5)
    paths = []
    for i, arr in enumerate(arrays):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(arr).save(paths[-1])
    cols = {"file": paths, "kind": [NAMES[i % 3] for i in range(30)]}
    hf.DatasetDict(train=hf.Dataset.from_dict(cols)).save_to_disk(str(tmp_path / "plain"))
    (tmp_path / "study.yaml").write_text(
        f"model: {TINY_MODEL}\nmethods: [linear_probe]\ntrain: {{epochs: 1}}\n"
        f"tasks: [{{name: 'hfds:{tmp_path / 'plain'}'}}]\n"
    )
    columns = ["data.image_column=file", "data.label_column=kind"]
    named = load_study_config(str(tmp_path / "study.yaml"), [f"out={tmp_path / 'a'}", *columns])
    (record,) = run_study(named, progress=False).records
    assert record.complete, record.error
    assert 0.0 <= record.finetuned.id <= 1.0 and record.difficulty.n_images > 0
    plain = load_study_config(str(tmp_path / "study.yaml"), [f"out={tmp_path / 'b'}"])
    assert named.identity() != plain.identity()
    assert "image_column" not in plain.identity()["data"]
    (failed,) = run_study(plain, progress=False).records
    assert not failed.complete and "\n" not in failed.error
    assert "no image column" in failed.error and "data.image_column" in failed.error, failed.error


def test_named_columns_enter_run_hashes_only_when_set(tmp_path):
    from clipgap.study import load_study_config
    from clipgap.study.plan import plan_runs

    (tmp_path / "s.yaml").write_text("tasks: [{name: 'world:shape'}, {name: 'world:light'}]\n")
    plain = plan_runs(load_study_config(str(tmp_path / "s.yaml")))
    named = plan_runs(load_study_config(str(tmp_path / "s.yaml"), ["data.label_column=kind"]))
    assert all("data" not in run.config() for run in plain)
    assert all(run.config()["data"] == {"label_column": "kind"} for run in named)
    assert not {run.run_id for run in plain} & {run.run_id for run in named}
