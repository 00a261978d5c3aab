"""RAF-DB reader: label parsing on the real class counts, manifests, val split, save/load."""

from pathlib import Path

import pandas as pd

from tanlib.data import Manifest, build_manifest
from tanlib.data.rafdb import (LABEL_FILE, RAFDB_CLASSES, RAFDB_TEST_COUNTS, RAFDB_TRAIN_COUNTS,
                               parse_label_file)

from datafix import write_rafdb


def test_label_file_with_real_counts(tmp_path):
    entries = []
    for split, counts in (("train", RAFDB_TRAIN_COUNTS), ("test", RAFDB_TEST_COUNTS)):
        k = 0
        for label, n in enumerate(counts, start=1):
            for _ in range(n):
                k += 1
                entries.append((f"{split}_{k:05d}.jpg", label))
    root = write_rafdb(tmp_path, entries, images=False)
    frame, problems = parse_label_file(root / LABEL_FILE)
    assert problems == []
    got = frame.groupby(["split", "label"]).size()
    assert [got["train", i] for i in range(7)] == RAFDB_TRAIN_COUNTS
    assert [got["test", i] for i in range(7)] == RAFDB_TEST_COUNTS
    assert (frame["split"] == "train").sum() == 12271 and (frame["split"] == "test").sum() == 3068
    # naive reference: label = int(second field) - 1, line = position in file
    first = frame.iloc[0]
    assert (first["image"], first["label"], first["line"]) == ("train_00001.jpg", 0, 1)


def test_manifest_of_a_small_tree(rafdb_tree):
    m = build_manifest("rafdb", rafdb_tree, val_fraction=0.34, seed=0)
    assert m.classes == RAFDB_CLASSES
    assert {"path", "label", "split", "class_name", "image"} <= set(m.frame.columns)
    f = m.frame
    assert len(f) == 28 and set(f["split"]) == {"train", "val", "test"}
    assert (f.groupby("split").size()[["train", "val", "test"]].tolist()) == [14, 7, 7]
    for _, row in f.iterrows():
        p = Path(row["path"])
        assert p.is_absolute() and p.is_file()
        assert p.name == row["image"].replace(".jpg", "_aligned.jpg")
        assert row["class_name"] == RAFDB_CLASSES[row["label"]]
        assert p.resolve().is_relative_to(Path(m.root))
    # train_00001..00003 are label 1 (Surprise) -> 0
    assert f.loc[f["image"] == "train_00002.jpg", "label"].item() == 0
    assert f.loc[f["image"] == "test_00007.jpg", "label"].item() == 6


def test_val_split_is_stratified_and_seeded(rafdb_tree):
    a = build_manifest("rafdb", rafdb_tree, val_fraction=0.34, seed=0).frame
    b = build_manifest("rafdb", rafdb_tree, val_fraction=0.34, seed=0).frame
    c = build_manifest("rafdb", rafdb_tree, val_fraction=0.34, seed=1).frame
    pd.testing.assert_frame_equal(a, b)
    assert set(a.loc[a.split == "val", "image"]) != set(c.loc[c.split == "val", "image"])
    per_class = a[a.split == "val"].groupby("label").size()
    assert per_class.tolist() == [1] * 7  # round(0.34 * 3) = 1 of each class
    none = build_manifest("rafdb", rafdb_tree, val_fraction=0).frame
    assert set(none["split"]) == {"train", "test"}


def test_save_and_load_round_trip(rafdb_tree, tmp_path):
    m = build_manifest("rafdb", rafdb_tree)
    path = m.save(tmp_path / "out" / "manifest.csv")
    assert path.with_suffix(".json").is_file()
    back = Manifest.load(path)
    pd.testing.assert_frame_equal(back.frame, m.frame, check_dtype=False)
    assert (back.classes, back.dataset, back.root, back.subgroups) == (m.classes, m.dataset, m.root, m.subgroups)
    assert back.split("train")["label"].tolist() == m.split("train")["label"].tolist()
