"""Checker: every problem kind with its file, line and message; CLI exit codes."""

from pathlib import Path

import pytest
from datafix import small_entries, tiny_image, write_rafdb

from tanlib.cli import main
from tanlib.data import build_manifest, check_dataset
from tanlib.data.rafdb import IMAGE_DIR, LABEL_FILE
from tanlib.errors import DataError


def _only(report, kind):
    found = [p for p in report.problems if p.kind == kind]
    assert len(found) == 1, report.problems
    return found[0]


def test_clean_tree_passes(rafdb_tree, capsys):
    report = check_dataset("rafdb", rafdb_tree)
    assert report.ok and report.problems == []
    assert report.counts.loc["test", "total"] == 7
    assert main(["data", "check", "--dataset", "rafdb", "--root", str(rafdb_tree)]) == 0
    out = capsys.readouterr().out
    assert "Happiness" in out and "no problems found" in out


@pytest.mark.parametrize(
    "kind, line, text, extra",
    [
        ("parse", 29, "expected '<name>.jpg <label 1-7>'", "train_09999.jpg"),
        ("parse", 29, "not an integer", "train_09999.jpg five"),
        ("parse", 29, "does not start with 'train_' or 'test_'", "val_00001.jpg 3"),
        ("label_range", 29, "out of range (expected 1-7)", "train_09999.jpg 8"),
        ("label_range", 29, "out of range (expected 1-7)", "train_09999.jpg 0"),
        ("duplicate", 29, "first on line 1", "train_00001.jpg 1"),
        ("escapes_root", 29, "leaves the dataset root", "../x.jpg 1"),
    ],
)
def test_label_file_problems(tmp_path, kind, line, text, extra):
    root = write_rafdb(tmp_path / "r", small_entries(), extra_lines=[extra])
    report = check_dataset("rafdb", root)
    p = _only(report, kind)
    assert p.file == str(root / LABEL_FILE) and p.line == line and text in p.message
    assert f":{line}: [{kind}]" in str(report)


def _break(root: Path, name: str, how: str):
    img = root / IMAGE_DIR / name
    if how == "missing":
        img.unlink()
    elif how == "empty_file":
        img.write_bytes(b"")
    elif how == "not_image":
        img.write_text("this is a text file, not a JPEG\n")
    elif how == "truncated":
        tiny_image(img, size=64)
        img.write_bytes(img.read_bytes()[:300])
    elif how == "too_large":  # the header of a 20000 x 12000 PNG: a decompression bomb named .jpg
        import struct
        import zlib

        ihdr = b"IHDR" + struct.pack(">IIBBBBB", 20000, 12000, 8, 2, 0, 0, 0)
        iend = b"\x00\x00\x00\x00IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
        head = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
        img.write_bytes(head + iend)


@pytest.mark.parametrize(
    "kind, text",
    [
        ("missing", "does not exist"),
        ("empty_file", "is empty (0 bytes)"),
        ("not_image", "is not an image file"),
        ("truncated", "truncated or corrupt"),
        ("too_large", "over the limit of"),
    ],
)
def test_image_problems(tmp_path, kind, text, capsys):
    root = write_rafdb(tmp_path / "r", small_entries())
    _break(root, "train_00002_aligned.jpg", kind)
    report = check_dataset("rafdb", root)
    p = _only(report, kind)
    assert p.line == 2 and p.file == str(root / LABEL_FILE) and text in p.message
    assert "train_00002_aligned.jpg" in p.message
    # build refuses with the full list; skip_problems leaves the image out and records it
    with pytest.raises(DataError, match=kind):
        build_manifest("rafdb", root)
    m = build_manifest("rafdb", root, skip_problems=True)
    assert "train_00002.jpg" not in set(m.frame["image"]) and m.skipped == report.problems
    assert main(["data", "check", "--dataset", "rafdb", "--root", str(root)]) == DataError.exit_code == 3
    captured = capsys.readouterr()
    assert f"[{kind}]" in captured.out and "1 problem(s)" in captured.err


def test_empty_class_and_layout(tmp_path):
    entries = [e for e in small_entries() if not (e[0].startswith("test_") and e[1] == 2)]
    report = check_dataset("rafdb", write_rafdb(tmp_path / "r", entries))
    p = _only(report, "empty_class")
    assert "'Fear'" in p.message and "'test'" in p.message
    report = check_dataset("rafdb", tmp_path)
    assert _only(report, "layout").file.endswith("list_patition_label.txt")
    with pytest.raises(DataError, match="label file missing"):
        build_manifest("rafdb", tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        build_manifest("rafdb", tmp_path / "nope")


def test_symlink_escaping_root_is_refused(tmp_path):
    root = write_rafdb(tmp_path / "r", small_entries())
    outside = tiny_image(tmp_path / "outside.jpg")
    img = root / IMAGE_DIR / "train_00003_aligned.jpg"
    img.unlink()
    img.symlink_to(outside)
    p = _only(check_dataset("rafdb", root), "escapes_root")
    assert p.line == 3 and "outside the dataset root" in p.message
    m = build_manifest("rafdb", root, skip_problems=True)
    assert all(Path(x).resolve().is_relative_to(root.resolve()) for x in m.frame["path"])


def test_manifest_cli(rafdb_tree, tmp_path, capsys):
    out = tmp_path / "m.csv"
    assert main(["data", "manifest", "--dataset", "rafdb", "--root", str(rafdb_tree), "--out", str(out)]) == 0
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert main(["data", "check", "--dataset", "rafdb", "--root", str(tmp_path / "none")]) == 3
    assert "does not exist" in capsys.readouterr().err
