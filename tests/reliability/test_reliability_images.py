"""Hostile and odd images, and label files as editors save them. Each case is one row of
docs/reliability.md: a decompression bomb, the pixel-limit setting, the image zoo that is
converted to RGB, the zoo that is refused with a named problem (in ``tan data check`` and
in training with ``skip_bad_data``), and RAF-DB / FERPlus label files with byte-order
marks, CRLF, tabs, semicolons, blank lines and foreign encodings."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_reliability_inputs import first_line, rafdb_tree

from tanlib.data import build_manifest, check_dataset, load_images
from tanlib.data.decode import MAX_PIXELS_ENV, decode_rgb
from tanlib.data.rafdb import IMAGE_DIR, LABEL_FILE
from tanlib.errors import ConfigError, DataError

LABEL = str(LABEL_FILE)


def cli(args, capsys) -> tuple[int, str]:
    """Run ``tan``; exit code and stdout + stderr together (never a traceback)."""
    from tanlib.cli import main

    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return rc, captured.out + captured.err


# ---------------------------------------------------------------------- image builders
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, depth: int, color_type: int, rows: bytes | None = None) -> bytes:
    """A PNG written by hand: any size in the header (``rows=None``: no pixel data at all,
    which is how a bomb costs nothing to write), any bit depth."""
    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    body = _chunk(b"IDAT", zlib.compress(rows)) if rows is not None else b""
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + body + _chunk(b"IEND", b"")


def bomb(path: Path) -> Path:
    """The issue's file: a 20000 x 12000 PNG (240 megapixels) saved as .jpg; 60 bytes on disk."""
    path.write_bytes(png_bytes(20000, 12000, 8, 2))
    return path


def save(im: Image.Image, path: Path, fmt: str, **kw) -> Path:
    with open(path, "wb") as fh:
        im.save(fh, fmt, **kw)
    return path


def rgb16_png(path: Path, value: int, size: int = 40) -> Path:
    row = b"\x00" + struct.pack(">H", value) * 3 * size
    path.write_bytes(png_bytes(size, size, 16, 2, row * size))
    return path


# what each accepted odd image is, how it is written, and the RGB it must decode to (top-left pixel)
def _accepted_zoo(d: Path) -> dict[str, tuple[Path, tuple, int]]:
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:, :20] = (200, 0, 0, 0)  # transparent half: its stored red must not show
    rgba[:, 20:] = (0, 0, 200, 255)
    pal = Image.new("P", (40, 40), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal_t = Image.new("P", (40, 40), 0)
    pal_t.putpalette([90, 90, 90] * 256)
    return {  # name: (file, expected top-left RGB, tolerance)
        "CMYK JPEG": (save(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), d / "cmyk.jpg", "JPEG"), (255, 0, 0), 3),
        "16-bit grey PNG": (
            save(Image.fromarray(np.full((40, 40), 0x8000, np.uint16)), d / "g16.jpg", "PNG"),
            (128, 128, 128),
            0,
        ),
        "16-bit RGB PNG": (rgb16_png(d / "rgb16.png", 0xC0FF), (192, 192, 192), 0),
        "palette PNG": (save(pal, d / "pal.png", "PNG"), (10, 200, 30), 0),
        "palette PNG with a transparent colour": (
            save(pal_t, d / "palt.png", "PNG", transparency=0),
            (255, 255, 255),
            0,
        ),
        "RGBA PNG (transparent left half)": (
            save(Image.fromarray(rgba, "RGBA"), d / "rgba.png", "PNG"),
            (255, 255, 255),
            0,
        ),
        "grey + alpha PNG": (save(Image.new("LA", (40, 40), (50, 255)), d / "la.png", "PNG"), (50, 50, 50), 0),
        "1-bit PNG": (save(Image.new("1", (40, 40), 1), d / "bw.png", "PNG"), (255, 255, 255), 0),
        "grey JPEG": (save(Image.new("L", (40, 40), 77), d / "grey.jpg", "JPEG"), (77, 77, 77), 2),
        "PNG named .jpg": (save(Image.new("RGB", (40, 40), (7, 8, 9)), d / "png-named.jpg", "PNG"), (7, 8, 9), 0),
        "JPEG named .png": (
            save(Image.new("RGB", (40, 40), (30, 60, 90)), d / "jpeg-named.png", "JPEG"),
            (30, 60, 90),
            3,
        ),
    }


def _hostile(kind: str, path: Path) -> None:
    """Turn the JPEG at ``path`` into one hostile file; ``kind`` is the expected problem."""
    if kind == "empty_file":
        path.write_bytes(b"")
    elif kind == "truncated png":
        data = save(Image.new("RGB", (40, 40), (1, 2, 3)), path, "PNG").read_bytes()
        path.write_bytes(data[:70])
    elif kind == "truncated jpeg":
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "text":
        path.write_text("id,label\n1,happy\n")
    elif kind == "gif":
        save(Image.new("RGB", (40, 40), (1, 2, 3)), path, "GIF")
    elif kind == "eps":
        path.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 40 40\nshowpage\n")
    elif kind == "bomb":
        bomb(path)


# one per class (train_00002, 00005, ... hold classes 1..7), so every class keeps two images
HOSTILE = [
    ("empty_file", "empty_file", 2),
    ("truncated png", "truncated", 5),
    ("truncated jpeg", "truncated", 8),
    ("text", "not_image", 11),
    ("gif", "not_image", 14),
    ("eps", "not_image", 17),
    ("bomb", "too_large", 20),
]


# ---------------------------------------------------------------------- images
def test_decompression_bomb_is_a_named_problem(case, tmp_path, capsys):
    case(
        "D16",
        "bad input: hostile image",
        "RAF-DB tree whose train_00003_aligned.jpg is a 20000 x 12000 PNG (240 megapixels; header only, "
        "60 bytes); `tan data check`, build_manifest, then load_images as training would",
        "DataError, exit 3, `list_patition_label.txt:3: [too_large]` naming the file, its size and the limit "
        f"({MAX_PIXELS_ENV}); no traceback (PIL's DecompressionBombError never escapes); nothing decoded",
    )
    root = rafdb_tree(tmp_path / "r")
    img = bomb(root / IMAGE_DIR / "train_00003_aligned.jpg")
    rc, out = cli(["data", "check", "--dataset", "rafdb", "--root", root], capsys)
    assert rc == DataError.exit_code == 3
    shown = [line for line in out.splitlines() if f"{LABEL}:3: [too_large]" in line]
    assert shown and str(img) in shown[0] and MAX_PIXELS_ENV in shown[0] and "240000000" in shown[0], out
    with pytest.raises(DataError, match=r":3: \[too_large\]"):
        build_manifest("rafdb", root)
    with pytest.raises(DataError, match=r"\[too_large\]"):
        load_images(pd.DataFrame({"path": [str(img)], "label": [0]}), size=32)
    case.observed(f"exit {rc}; ...{LABEL}:3: [too_large] {img.name}{shown[0].split(img.name, 1)[1]}")


def test_pixel_limit_is_a_setting(case, tmp_path, capsys, monkeypatch):
    case(
        "D17",
        "bad input: hostile image",
        f"the pixel limit lowered with {MAX_PIXELS_ENV}=1000 on a tree of 40 x 40 images; then {MAX_PIXELS_ENV}=lots",
        "every image is a [too_large] problem naming the setting (exit 3); an invalid value is a ConfigError "
        "naming the variable (exit 2)",
    )
    root = rafdb_tree(tmp_path / "r")
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    report = check_dataset("rafdb", root)
    assert sum(p.kind == "too_large" for p in report.problems) == 28
    assert all("1,000" in p.message and MAX_PIXELS_ENV in p.message for p in report.problems if p.kind == "too_large")
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    rc, err = cli(["data", "check", "--dataset", "rafdb", "--root", root], capsys)
    assert rc == ConfigError.exit_code == 2 and MAX_PIXELS_ENV in err
    monkeypatch.delenv(MAX_PIXELS_ENV)
    assert check_dataset("rafdb", root).ok
    example = report.problems[0].message.split(".jpg ", 1)[1].split(" (a decompression", 1)[0]
    case.observed(f"1000: 28 x [too_large], each '... {example}'; 'lots': exit {rc}: {first_line(err)[:110]}")


def test_odd_images_are_converted_to_rgb_as_documented(case, tmp_path, capsys):
    zoo = _accepted_zoo(tmp_path)
    case(
        "D18",
        "odd input: image zoo",
        f"{len(zoo)} odd but valid images in a RAF-DB tree: " + ", ".join(zoo) + "; `tan data check`, then "
        "the decoded pixels",
        "no problem (exit 0); every image decodes to 8-bit RGB as data/README.md says: CMYK and palette "
        "converted, 16-bit scaled to its high byte, transparency composited onto white, format read from "
        "the content whatever the extension",
    )
    root = rafdb_tree(tmp_path / "r")
    targets = sorted((root / IMAGE_DIR).glob("train_*_aligned.jpg"))[: len(zoo)]
    for target, (src, _, _) in zip(targets, zoo.values()):
        target.write_bytes(src.read_bytes())
    rc, out = cli(["data", "check", "--dataset", "rafdb", "--root", root], capsys)
    assert rc == 0, out
    loaded = load_images(pd.DataFrame({"path": [str(t) for t in targets], "label": 0}), size=40)
    for k, (target, (name, (_, expected, tol))) in enumerate(zip(targets, zoo.items())):
        got = np.asarray(decode_rgb(target))[0, 0].astype(int)
        assert np.abs(got - expected).max() <= tol, (name, got.tolist(), expected)
        assert np.abs(loaded[k, :, 0, 0].numpy().astype(int) - expected).max() <= tol, name
    assert np.asarray(decode_rgb(targets[list(zoo).index("RGBA PNG (transparent left half)")]))[0, 30].tolist() == [
        0,
        0,
        200,
    ]
    case.observed(
        f"exit {rc}; all {len(zoo)} decoded to the expected RGB (e.g. 16-bit 0x8000 -> 128, "
        "transparent -> white, CMYK (0,255,255,0) -> (255,0,0))"
    )


def test_hostile_images_are_one_problem_list_and_skipped_in_training(case, tmp_path, capsys):
    case(
        "D19",
        "bad input: hostile image",
        "RAF-DB tree with 7 hostile files among 28 (zero bytes, a truncated PNG, a truncated JPEG, a text "
        "file, a GIF and an EPS file named .jpg, a decompression bomb); `tan data check`, then `tan train "
        "--set skip_bad_data=true`",
        "one list of 7 problems, each with line and kind (exit 3); training skips exactly those 7, lists "
        "them in skipped.csv and finishes on the 21 others (exit 0)",
    )
    root = rafdb_tree(tmp_path / "r")
    for how, _, k in HOSTILE:
        _hostile(how, root / IMAGE_DIR / f"train_{k:05d}_aligned.jpg")
    report = check_dataset("rafdb", root)
    found = sorted((p.line, p.kind) for p in report.problems)
    assert found == sorted((k, kind) for _, kind, k in HOSTILE), report.problems
    rc, shown = cli(["data", "check", "--dataset", "rafdb", "--root", root], capsys)
    assert rc == DataError.exit_code and "7 problem(s)" in shown
    out = tmp_path / "run"
    rc2, err2 = cli(
        [
            "train",
            "--method",
            "ce",
            "--preset",
            "smoke",
            "--dataset",
            "rafdb",
            "--root",
            root,
            "--out",
            out,
            "--set",
            "skip_bad_data=true",
            "--set",
            "epochs=1",
            "--set",
            "image_size=32",
            "--set",
            "num_threads=1",
            "--set",
            "progress=false",
        ],
        capsys,
    )
    assert rc2 == 0, err2
    skipped = pd.read_csv(out / "skipped.csv")
    assert sorted(zip(skipped["line"], skipped["kind"])) == sorted((k, kind) for _, kind, k in HOSTILE)
    manifest = pd.read_csv(out / "manifest.csv")
    assert len(manifest) == 21 and json.loads((out / "metrics.json").read_text())["last_epoch"] == 1
    case.observed(
        f"check exit {rc}: kinds {sorted({k for _, k in found})}; train exit {rc2}, "
        f"{len(skipped)} in skipped.csv, {len(manifest)} images used"
    )


# ---------------------------------------------------------------------- label files
def _rafdb_lines(root: Path) -> list[str]:
    return (root / LABEL_FILE).read_text().splitlines()


def test_rafdb_label_file_from_a_windows_editor(case, tmp_path, capsys):
    case(
        "D20",
        "odd input: label file",
        "RAF-DB list_patition_label.txt saved with a UTF-8 byte-order mark, CRLF line ends, a tab between "
        "name and label on some lines, trailing spaces, a blank line and no newline after the last line",
        "accepted: `tan data check` exit 0 and a manifest identical to the clean file's; line numbers in "
        "problems stay the file's own",
    )
    clean = rafdb_tree(tmp_path / "clean")
    lines = _rafdb_lines(clean)
    edited = [(line.replace(" ", "\t") if i % 3 == 0 else line + "  ") for i, line in enumerate(lines)]
    edited.insert(10, "   ")
    root = tmp_path / "edited"
    shutil.copytree(clean, root)
    (root / LABEL_FILE).write_bytes(b"\xef\xbb\xbf" + "\r\n".join(edited).encode())
    rc, out = cli(["data", "check", "--dataset", "rafdb", "--root", root], capsys)
    assert rc == 0, out
    a, b = build_manifest("rafdb", clean).frame, build_manifest("rafdb", root).frame
    assert a[["image", "label", "split"]].equals(b[["image", "label", "split"]])
    (root / LABEL_FILE).write_bytes(b"\xef\xbb\xbf" + "\r\n".join(edited + ["train_09999.jpg 9"]).encode())
    bad = check_dataset("rafdb", root).problems
    assert [(p.kind, p.line) for p in bad] == [("label_range", len(edited) + 1)]
    case.observed(f"exit {rc}; same {len(b)} rows as the clean file; an extra bad line is named as line {bad[0].line}")


def test_rafdb_label_file_in_other_encodings(case, tmp_path, capsys):
    case(
        "D21",
        "odd input: label file",
        "RAF-DB label file saved as UTF-16 with a byte-order mark (Notepad's 'Unicode'); then a UTF-8 file "
        "with one line holding a Latin-1 byte (0xe9)",
        "UTF-16 accepted (exit 0, same manifest); the foreign byte is an [encoding] problem naming the line "
        "and the byte (exit 3); no traceback",
    )
    root = rafdb_tree(tmp_path / "r")
    lines = _rafdb_lines(root)
    clean = build_manifest("rafdb", root).frame
    (root / LABEL_FILE).write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-16"))
    rc, out = cli(["data", "check", "--dataset", "rafdb", "--root", root], capsys)
    assert rc == 0, out
    assert build_manifest("rafdb", root).frame[["image", "label"]].equals(clean[["image", "label"]])
    (root / LABEL_FILE).write_bytes("\n".join(lines).encode() + b"\ntrain_0010\xe9.jpg 2\n")
    rc2, out = cli(["data", "check", "--dataset", "rafdb", "--root", root], capsys)
    assert rc2 == DataError.exit_code
    shown = [line for line in out.splitlines() if "[encoding]" in line]
    assert len(shown) == 1 and f"{LABEL}:{len(lines) + 1}: [encoding]" in shown[0] and "0xe9" in shown[0]
    case.observed(f"UTF-16 exit {rc}; Latin-1 line exit {rc2}: {shown[0].strip()[-120:]}")


def test_ferplus_votes_file_from_a_spreadsheet(case, tmp_path):
    from tanlib.data.ferplus import VOTE_COLUMNS, read_votes

    case(
        "D22",
        "odd input: label file",
        "FERPlus fer2013new.csv re-saved by a spreadsheet: UTF-8 byte-order mark, semicolons as delimiter, "
        "CRLF, spaces around names and counts, a blank line, no final newline; then a bad row after the "
        "blank line",
        "the same kept images, labels and splits as the clean file; the bad row's error names its real "
        "line (blank lines counted)",
    )
    rows = [("Training", f"fer{i:07d}.png", [0] * 3 + [10] + [0] * 6) for i in range(4)] + [
        ("PublicTest", "fer0000004.png", [10] + [0] * 9),
        ("PrivateTest", "fer0000005.png", [0, 8] + [0] * 8),
    ]
    header = ["Usage", "Image name"] + VOTE_COLUMNS
    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join([",".join(header)] + [f"{u},{n}," + ",".join(map(str, v)) for u, n, v in rows]) + "\n")
    body = [";".join(header)] + [f"{u} ; {n} ;" + ";".join(f" {x}" for x in v) for u, n, v in rows]
    body.insert(3, "")
    edited = tmp_path / "fer2013new.csv"
    edited.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(body).encode())
    a, b = read_votes(clean), read_votes(edited)
    assert a[["image", "label", "split", "row"]].equals(b[["image", "label", "split", "row"]])
    assert b["line"].tolist() == [2, 3, 5, 6, 7, 8]  # the blank line 4 is counted, not a row
    body[5] = body[5].replace(" 10", " ten")
    edited.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(body).encode())
    with pytest.raises(DataError, match=r"fer2013new.csv:6: expected Usage"):
        read_votes(edited)
    case.observed(f"{len(b)} kept rows equal to the clean file's; lines {b['line'].tolist()}; bad row named as line 6")
