"""FERPlus: the official majority rule on edge cases and on the real votes file; pixels."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tanlib.data import build_manifest, check_dataset
from tanlib.data.ferplus import FERPLUS_CLASSES, VOTE_COLUMNS, majority_labels, read_votes
from tanlib.errors import DataError

REAL_VOTES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ferplus" / "fer2013new.csv"
HEADER = "Usage,Image name," + ",".join(VOTE_COLUMNS)

# (usage, name, ten votes, expected label or None when dropped)
CASES = [
    ("Training", "fer0000000.png", [4, 0, 0, 1, 3, 2, 0, 0, 0, 0], None),  # singles removed: 4 <= 0.5 * 9
    ("Training", "fer0000001.png", [6, 0, 1, 1, 0, 0, 0, 0, 2, 0], 0),  # singles removed: 6 > 4
    ("Training", "fer0000002.png", [5, 5, 0, 0, 0, 0, 0, 0, 0, 0], None),  # exact 50 %: not kept
    ("PublicTest", "fer0000003.png", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], None),  # all singles -> s = 0
    ("PublicTest", "fer0000004.png", [0, 0, 0, 0, 0, 0, 0, 0, 8, 2], None),  # unknown wins
    ("PrivateTest", "fer0000005.png", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10], None),  # NF wins
    ("PrivateTest", "", [0, 10, 0, 0, 0, 0, 0, 0, 0, 0], None),  # empty name
    ("PrivateTest", "fer0000007.png", [0, 0, 0, 0, 0, 0, 0, 6, 1, 3], 7),  # contempt: 6 > 0.5 * 9
    ("Training", "fer0000008.png", [1, 1, 0, 0, 0, 0, 3, 0, 0, 0], 6),  # 3 > 0.5 * 3 after removal
]


def naive_rule(votes):
    """Reference: microsoft/FERPlus ferplus.py _process_data (majority) + argmax < 8."""
    v = [0 if x <= 1 else x for x in votes]
    s = sum(v)
    m = max(v)
    if m > 0.5 * s and v.index(m) < 8:
        return v.index(m)
    return None


def write_votes(path: Path, cases=CASES) -> Path:
    lines = [HEADER] + [f"{u},{n}," + ",".join(map(str, v)) for u, n, v, _ in cases]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_edge_cases(tmp_path):
    for _, name, votes, expected in CASES:
        assert (naive_rule(votes) if name else None) == expected
    vectorised = majority_labels(np.array([v for _, _, v, _ in CASES]))
    assert vectorised.tolist() == [-1 if naive_rule(v) is None else naive_rule(v) for _, _, v, _ in CASES]
    kept = read_votes(write_votes(tmp_path / "fer2013new.csv"))
    assert kept["image"].tolist() == ["fer0000001.png", "fer0000007.png", "fer0000008.png"]
    assert kept["label"].tolist() == [0, 7, 6]
    assert kept["split"].tolist() == ["train", "test", "train"]
    assert kept["line"].tolist() == [3, 9, 10]


def test_malformed_votes_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Usage,Image name,neutral\nTraining,a.png,3\n")
    with pytest.raises(DataError, match="header"):
        read_votes(bad)
    write_votes(bad, CASES[:2] + [("Training", "x.png", ["a", 0, 0, 0, 0, 0, 0, 0, 0, 0], None)])
    with pytest.raises(DataError, match=r"bad.csv:4:"):
        read_votes(bad)


@pytest.mark.skipif(not REAL_VOTES.is_file(), reason="../shared/data/ferplus/fer2013new.csv not present")
def test_real_votes_file():
    kept = read_votes(REAL_VOTES)
    raw = pd.read_csv(REAL_VOTES, keep_default_na=False)
    assert len(raw) == 35887
    names = raw["Image name"].str.strip()
    expected = [(i, naive_rule(list(r))) for i, r in enumerate(raw[VOTE_COLUMNS].itertuples(index=False))]
    expected = [(i, lab) for i, lab in expected if lab is not None and names[i] != ""]
    assert kept["row"].tolist() == [i for i, _ in expected]
    assert kept["label"].tolist() == [lab for _, lab in expected]
    table = kept.groupby(["split", "label"]).size().unstack(fill_value=0)
    table.columns = [FERPLUS_CLASSES[c] for c in table.columns]
    print("\nFER+ majority-rule kept counts:\n" + table.to_string())
    assert set(kept["split"]) == {"train", "val", "test"}
    assert (kept["image"] != "").all()


def _pixels_csv(path: Path, cases=CASES):
    rng = np.random.default_rng(0)
    rows = ["emotion,pixels,Usage"]
    for u, _, _, _ in cases:
        rows.append("0," + " ".join(map(str, rng.integers(0, 256, 2304))) + f",{u}")
    path.write_text("\n".join(rows) + "\n")


def test_pixels_from_csv_decoded_once(tmp_path):
    root = tmp_path / "ferplus"
    root.mkdir()
    write_votes(root / "fer2013new.csv")
    _pixels_csv(root / "fer2013.csv")
    m = build_manifest("ferplus", root, val_fraction=0, cache_dir=tmp_path / "cache", skip_problems=True)
    assert {p.kind for p in m.skipped} == {"empty_class"}  # tiny fixture: most classes have no image
    assert sorted(m.frame["image"]) == ["fer0000001.png", "fer0000007.png", "fer0000008.png"]
    p = Path(m.frame.loc[m.frame["image"] == "fer0000001.png", "path"].item())
    assert p.parent.name == "FER2013Train" and p.is_file()
    with Image.open(p) as im:
        assert im.size == (48, 48) and im.mode == "L"
    mtime = p.stat().st_mtime_ns
    build_manifest("ferplus", root, val_fraction=0, cache_dir=tmp_path / "cache", skip_problems=True)
    assert p.stat().st_mtime_ns == mtime  # not decoded again
    # protocol 'ran' folds PublicTest into train (no PublicTest row is kept in CASES: check splits only)
    ran = build_manifest(
        "ferplus", root, val_fraction=0, protocol="ran", cache_dir=tmp_path / "cache", skip_problems=True
    )
    assert set(ran.frame["split"]) == {"train", "test"}


def test_png_folder_layout(tmp_path):
    root = tmp_path / "ferplus"
    cases = [("Training", f"fer{i:07d}.png", [0] * 3 + [10] + [0] * 6, 3) for i in range(3)] + [
        ("PublicTest", "fer0000003.png", [10] + [0] * 9, 0),
        ("PrivateTest", "fer0000004.png", [10] + [0] * 9, 0),
    ]
    root.mkdir()
    write_votes(root / "fer2013new.csv", cases)
    folders = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
    for u, n, _, _ in cases:
        (root / folders[u]).mkdir(exist_ok=True)
        Image.fromarray(np.zeros((48, 48), np.uint8)).save(root / folders[u] / n)
    report = check_dataset("ferplus", root)
    # only sadness and neutral have images: every other class is reported empty in its split
    assert {p.kind for p in report.problems} == {"empty_class"}
    m = build_manifest("ferplus", root, skip_problems=True)
    assert m.frame.groupby("split").size().to_dict() == {"train": 3, "val": 1, "test": 1}
    write_votes(root / "fer2013new.csv", cases + [("Training", "fer0000001.png", [0] * 3 + [10] + [0] * 6, 3)])
    dup = [p for p in check_dataset("ferplus", root).problems if p.kind == "duplicate"]
    assert len(dup) == 1 and dup[0].line == 7 and "more than once" in dup[0].message
    write_votes(root / "fer2013new.csv", cases)
    (root / "FER2013Test" / "fer0000004.png").unlink()
    missing = [p for p in check_dataset("ferplus", root).problems if p.kind == "missing"]
    assert len(missing) == 1 and missing[0].line == 6


# ---------------------------------------------------------------------- files as spreadsheets save them
@pytest.mark.parametrize(
    "sep, bom, eol", [(",", True, "\r\n"), (";", True, "\r\n"), ("\t", False, "\n"), (";", False, "\r")]
)
def test_votes_file_as_spreadsheets_save_it(tmp_path, sep, bom, eol):
    clean = read_votes(write_votes(tmp_path / "clean.csv"))
    lines = [sep.join(f" {c} " if sep != "\t" else c for c in HEADER.split(","))]
    lines += [sep.join([u, f" {n}"] + [f"{v} " for v in votes]) for u, n, votes, _ in CASES]
    path = tmp_path / "fer2013new.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + eol.join(lines).encode())  # no final line end
    kept = read_votes(path)
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), clean.reset_index(drop=True))


def test_votes_file_errors_name_the_real_line(tmp_path):
    lines = [
        HEADER,
        "",
        f"Training,fer0000001.png,{','.join(['6'] + ['0'] * 9)}",
        "",
        "Training,fer0000002.png,x,0,0,0,0,0,0,0,0,0",
    ]
    path = tmp_path / "fer2013new.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"fer2013new.csv:5: expected Usage"):
        read_votes(path)
    path.write_text("Usage|Image name|" + "|".join(VOTE_COLUMNS) + "\n")
    with pytest.raises(DataError, match=r"fer2013new.csv:1: header is"):
        read_votes(path)
    path.write_bytes(b"Usage,Image name\n\xff\xfe\x00garbage\n")
    with pytest.raises(DataError, match=r"cannot read the FER\+ votes file: .*\[encoding\]"):
        read_votes(path)


def test_pixels_csv_from_a_spreadsheet_and_bad_pixel_text(tmp_path):
    root = tmp_path / "ferplus"
    root.mkdir()
    write_votes(root / "fer2013new.csv")
    rng = np.random.default_rng(0)
    rows = ["emotion;pixels;Usage"]
    for k, (u, _, _, _) in enumerate(CASES):
        pixels = " ".join(map(str, rng.integers(0, 256, 2304)))
        if k == 7:  # fer0000007.png (kept): a cell a spreadsheet mangled
            pixels = pixels.replace(" ", " x", 1)
        rows.append(f"0; {pixels} ;{u} ")
    (root / "fer2013.csv").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode())
    m = build_manifest("ferplus", root, val_fraction=0, cache_dir=tmp_path / "cache", skip_problems=True)
    assert sorted(m.frame["image"]) == ["fer0000001.png", "fer0000008.png"]
    bad = [p for p in m.skipped if p.kind == "parse"]
    assert [(Path(p.file).name, p.line) for p in bad] == [("fer2013.csv", 9)]
    assert "not a number" in bad[0].message
