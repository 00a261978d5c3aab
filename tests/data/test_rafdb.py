"""RAF-DB reader: label parsing on the real class counts, manifests, val split, save/load."""

from pathlib import Path

import pandas as pd
import pytest
from datafix import write_rafdb

from tanlib.data import Manifest, build_manifest
from tanlib.data.rafdb import LABEL_FILE, RAFDB_CLASSES, RAFDB_TEST_COUNTS, RAFDB_TRAIN_COUNTS, parse_label_file


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


# ---------------------------------------------------------------------- label files as editors save them
def _clean_lines():
    return [f"{n} {lab}" for n, lab in (("train_00001.jpg", 5), ("train_00002.jpg", 1), ("test_00001.jpg", 7))]


@pytest.mark.parametrize(
    "how",
    [
        "utf8-bom-crlf",
        "cr-only",
        "tabs-and-spaces",
        "no-final-newline",
        "utf16-le",
        "utf16-be",
        "utf32",
        "joined-with-bom",
    ],
)
def test_label_file_as_editors_save_it(tmp_path, how):
    lines = _clean_lines()
    if how == "utf8-bom-crlf":
        data = b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode()
    elif how == "cr-only":
        data = ("\r".join(lines) + "\r").encode()
    elif how == "tabs-and-spaces":
        data = "\n".join(
            ["  " + lines[0].replace(" ", "\t") + "\t ", lines[1].replace(" ", "   ") + "  ", lines[2] + "\u00a0"]
        ).encode()
    elif how == "no-final-newline":
        data = "\n".join(lines).encode()
    elif how == "utf16-le":
        data = ("\r\n".join(lines) + "\r\n").encode("utf-16")  # Notepad's "Unicode": BOM + little endian
    elif how == "utf16-be":
        data = b"\xfe\xff" + "\n".join(lines).encode("utf-16-be")
    elif how == "utf32":
        data = ("\n".join(lines) + "\n").encode("utf-32")
    else:  # two files joined with cat, the second with its own BOM
        data = b"\xef\xbb\xbf" + "\n".join(lines[:2]).encode() + b"\n\xef\xbb\xbf" + lines[2].encode() + b"\n"
    path = tmp_path / "labels.txt"
    path.write_bytes(data)
    frame, problems = parse_label_file(path)
    assert problems == []
    assert frame["image"].tolist() == ["train_00001.jpg", "train_00002.jpg", "test_00001.jpg"]
    assert frame["label"].tolist() == [4, 0, 6] and frame["line"].tolist() == [1, 2, 3]


def test_blank_lines_keep_the_file_line_numbers(tmp_path):
    lines = _clean_lines()
    path = tmp_path / "labels.txt"
    path.write_bytes(("\r\n".join([lines[0], "", "  \t", lines[1], lines[2], "train_00009.jpg 0"])).encode())
    frame, problems = parse_label_file(path)
    assert frame["line"].tolist() == [1, 4, 5]
    assert [(p.kind, p.line) for p in problems] == [("label_range", 6)]


def test_undecodable_label_files_are_named_problems(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes(b"train_00001.jpg 5\ntrain_0000\xe9.jpg 1\ntest_00001.jpg 7\n")  # one Latin-1 byte
    frame, problems = parse_label_file(path)
    assert frame["line"].tolist() == [1, 3]
    assert [(p.kind, p.line) for p in problems] == [("encoding", 2)]
    assert "byte 0xe9 at column 11" in problems[0].message and "UTF-8" in problems[0].message
    path.write_bytes("train_00001.jpg 5\n".encode("utf-16-le"))  # UTF-16 without its byte-order mark
    frame, problems = parse_label_file(path)
    assert len(frame) == 0 and [(p.kind, p.line) for p in problems] == [("encoding", None)]
    assert "NUL bytes" in problems[0].message
    path.write_bytes(b"\xff\xfe" + b"t\x00\x00\xd8")  # a UTF-16 mark, then a lone surrogate
    frame, problems = parse_label_file(path)
    assert len(frame) == 0 and problems[0].kind == "encoding" and "UTF-16-LE" in problems[0].message


def test_noisy_train_label_list_trains_on_its_labels_and_keeps_the_clean_ones(rafdb_tree, tmp_path):
    """The noisy-label protocol: a flipped-label list in the label file's format (train
    lines only) gives the training labels; clean_label and noisy follow."""
    from tanlib.data import build_manifest
    from tanlib.errors import ConfigError, DataError

    entries = [
        line.split()
        for line in (rafdb_tree / "EmoLabel" / "list_patition_label.txt").read_text().split("\n")
        if line.startswith("train_")
    ]
    flipped = {entries[0][0]: 7 if entries[0][1] != "7" else 1, entries[4][0]: 2 if entries[4][1] != "2" else 3}
    listing = tmp_path / "list_patition_label_noisy10.txt"
    listing.write_text("".join(f"{n} {flipped.get(n, lab)}\n" for n, lab in entries))
    m = build_manifest("rafdb", rafdb_tree, val_fraction=0.0, train_label_file=listing)
    train, test = m.split("train"), m.split("test")
    assert sorted(train.loc[train["noisy"], "image"]) == sorted(flipped)
    for name, label in flipped.items():
        row = train[train["image"] == name].iloc[0]
        assert row["label"] == label - 1 and row["clean_label"] != row["label"]
    assert not test["noisy"].any() and (test["label"] == test["clean_label"]).all()
    # a test line, an unknown image and a missing training image are named problems
    bad = tmp_path / "bad.txt"
    bad.write_text("".join(f"{n} {lab}\n" for n, lab in entries[1:]) + "test_00001.jpg 1\ntrain_09999.jpg 2\n")
    with pytest.raises(DataError) as err:
        build_manifest("rafdb", rafdb_tree, train_label_file=bad)
    text = str(err.value)
    assert f"{bad}:{len(entries)}" in text and "test_00001.jpg is not a training image" in text
    assert "train_09999.jpg is not a training image of the dataset" in text and entries[0][0] in text
    with pytest.raises(DataError, match="noisy training label list missing"):
        build_manifest("rafdb", rafdb_tree, train_label_file=tmp_path / "nope.txt")
    with pytest.raises(ConfigError, match="is for dataset 'rafdb'"):
        build_manifest("synthfer", rafdb_tree, train_label_file=listing)
