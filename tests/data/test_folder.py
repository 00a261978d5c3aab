"""Folder reader: root/<split>/<class>/* trees, inferred or given class names."""

import pytest
from datafix import tiny_image

from tanlib.data import build_manifest, check_dataset
from tanlib.errors import DataError


def make_tree(root, classes=("angry", "happy", "sad"), per=(4, 0, 1)):
    for split, n in zip(("train", "val", "test"), per):
        for c in classes:
            for i in range(n):
                tiny_image(root / split / c / f"{c}_{i}.png", seed=i, mode="L" if c == "sad" else "RGB")
    return root


def test_inferred_classes_and_val_carve(tmp_path):
    root = make_tree(tmp_path / "f")
    (root / "train" / "happy" / ".DS_Store").write_text("x")  # hidden files are ignored
    m = build_manifest("folder", root, val_fraction=0.25, seed=0)
    assert m.classes == ["angry", "happy", "sad"]
    assert m.frame.groupby("split").size().to_dict() == {"train": 9, "val": 3, "test": 3}
    assert (m.frame["class_name"] == [m.classes[i] for i in m.frame["label"]]).all()


def test_given_class_names_order_and_unknown_folder(tmp_path):
    root = make_tree(tmp_path / "f")
    m = build_manifest("folder", root, class_names=["sad", "happy", "angry"])
    assert m.frame.loc[m.frame["class_name"] == "sad", "label"].unique().tolist() == [0]
    report = check_dataset("folder", root, class_names=["sad", "happy"])
    kinds = [p.kind for p in report.problems]
    assert kinds.count("label_range") == 2  # train/angry and test/angry
    assert any("'angry' is not one of the given class names" in p.message for p in report.problems)


def test_non_image_and_broken_files(tmp_path):
    root = make_tree(tmp_path / "f")
    (root / "train" / "sad" / "notes.txt").write_text("hello")
    (root / "train" / "sad" / "fake.jpg").write_text("not a jpeg")
    report = check_dataset("folder", root)
    by_kind = {p.kind: p for p in report.problems}
    assert set(by_kind) == {"not_image"} and len(report.problems) == 2
    assert all(p.line is None for p in report.problems)
    with pytest.raises(DataError, match="notes.txt"):
        build_manifest("folder", root)
    assert len(build_manifest("folder", root, skip_problems=True).frame) == 15


def test_missing_train_and_empty_class(tmp_path):
    with pytest.raises(DataError, match="no 'train' folder"):
        build_manifest("folder", tmp_path)
    root = make_tree(tmp_path / "f")
    (root / "test" / "sad" / "sad_0.png").unlink()
    p = [p for p in check_dataset("folder", root).problems]
    assert [x.kind for x in p] == ["empty_class"] and "'sad'" in p[0].message and "'test'" in p[0].message
