"""FERPlus reader: FER+ votes (``fer2013new.csv``) with FER2013 pixels.

The label rule is Microsoft's official majority rule (microsoft/FERPlus): every vote
count <= 1 is set to 0; s is the sum of all ten vote columns; a row is kept only if its
largest count is > 0.5 * s and that column is one of the 8 emotions (not ``unknown``,
not ``NF``). Rows with an empty image name are dropped. Usage Training / PublicTest /
PrivateTest -> train / val / test; protocol ``ran`` trains on Training + PublicTest.

Pixels come either from Kaggle's ``fer2013.csv`` (``emotion, pixels, Usage``; 2,304
values per row, same row order as the votes file), decoded once to PNGs in a cache
folder, or from the ``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/`` PNG folders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import ConfigError, DataError
from .problems import Problem

FERPLUS_CLASSES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
VOTE_COLUMNS = FERPLUS_CLASSES + ["unknown", "NF"]
VOTES_FILE = "fer2013new.csv"
PIXELS_FILE = "fer2013.csv"
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
USAGE_TO_FOLDER = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """Official majority rule on an (N, 10) vote array: label 0..7, or -1 when dropped."""
    v = np.where(votes <= 1, 0, votes).astype(np.int64)
    s = v.sum(axis=1)
    winner = v.argmax(axis=1)
    keep = (v.max(axis=1) > 0.5 * s) & (winner < len(FERPLUS_CLASSES))
    return np.where(keep, winner, -1)


def _load_votes(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype={"Image name": str}, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the FER+ votes file ({exc})") from None
    expected = ["Usage", "Image name"] + VOTE_COLUMNS
    if list(frame.columns) != expected:
        raise DataError(f"{path}:1: header is {list(frame.columns)}, expected {expected}")
    return frame


def read_votes(path: str | Path, rule: str = "majority") -> pd.DataFrame:
    """Kept images of a FER+ votes file: columns ``image, split, label, usage, row, line``.

    ``row`` is the 0-based data-row index (the row of the same image in fer2013.csv) and
    ``line`` the 1-based line in the votes file. Raises DataError naming the file and line
    of the first malformed row.
    """
    if rule != "majority":
        raise ConfigError(f"FER+ label rule {rule!r} is not supported (expected 'majority')")
    path = Path(path)
    frame = _load_votes(path)
    votes = frame[VOTE_COLUMNS].apply(pd.to_numeric, errors="coerce")
    bad = votes.isna().any(axis=1) | ~frame["Usage"].isin(list(USAGE_TO_SPLIT))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}:{i + 2}: expected Usage in {list(USAGE_TO_SPLIT)} and ten integer "
                        f"vote counts, got {frame.iloc[i].tolist()}")
    labels = majority_labels(votes.to_numpy())
    names = frame["Image name"].str.strip()
    keep = (labels >= 0) & (names != "").to_numpy()
    rows = np.flatnonzero(keep)
    return pd.DataFrame({
        "image": names.to_numpy()[rows],
        "split": frame["Usage"].map(USAGE_TO_SPLIT).to_numpy()[rows],
        "label": labels[rows].astype(int),
        "usage": frame["Usage"].to_numpy()[rows],
        "row": rows,
        "line": rows + 2,
    })


def decode_pixels_csv(pixels_csv: Path, kept: pd.DataFrame, n_vote_rows: int, out_dir: Path
                      ) -> list[Problem]:
    """Write the kept rows of fer2013.csv as 48x48 PNGs under ``out_dir/<FER2013Train|...>/``.

    Only missing PNGs are written, so this runs once per cache folder.
    """
    targets = [out_dir / USAGE_TO_FOLDER[u] / n for u, n in zip(kept["usage"], kept["image"])]
    if all(t.is_file() for t in targets):
        return []
    try:
        pixels = pd.read_csv(pixels_csv, dtype={"pixels": str, "Usage": str})
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{pixels_csv}: cannot read FER2013 pixels ({exc})") from None
    if not {"pixels", "Usage"} <= set(pixels.columns):
        raise DataError(f"{pixels_csv}:1: expected columns emotion,pixels,Usage, got {list(pixels.columns)}")
    if len(pixels) != n_vote_rows:
        raise DataError(f"{pixels_csv}: has {len(pixels)} data rows but {VOTES_FILE} has {n_vote_rows}; "
                        f"they must be the same rows in the same order")
    problems = []
    for target, row, usage in zip(targets, kept["row"], kept["usage"]):
        line = int(row) + 2
        if pixels["Usage"].iat[row] != usage:
            problems.append(Problem("parse", str(pixels_csv), line,
                                    f"Usage {pixels['Usage'].iat[row]!r} differs from {usage!r} in "
                                    f"{VOTES_FILE}; the two files are not row-aligned"))
            continue
        values = np.array(pixels["pixels"].iat[row].split(), dtype=np.float64)
        if values.size != 48 * 48 or values.min(initial=0) < 0 or values.max(initial=0) > 255:
            problems.append(Problem("parse", str(pixels_csv), line,
                                    f"expected 2304 pixel values in 0-255, got {values.size}"))
            continue
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(values.reshape(48, 48).astype(np.uint8), mode="L").save(target)
    return problems


def read_ferplus(root: Path, protocol: str = "default", cache_dir: Path | None = None
                 ) -> tuple[pd.DataFrame, list[str], list[Problem]]:
    """Rows ``path, label, split, class_name, image, _file, _line`` of a FERPlus root."""
    if protocol not in ("default", "ran"):
        raise ConfigError(f"FERPlus protocol {protocol!r} is unknown (expected 'default' or 'ran')")
    votes_path = root / VOTES_FILE
    if not votes_path.is_file():
        return pd.DataFrame(), list(FERPLUS_CLASSES), [Problem(
            "layout", str(votes_path), None, f"votes file missing; expected {VOTES_FILE} in {root}")]
    kept = read_votes(votes_path)
    problems: list[Problem] = []
    if (root / USAGE_TO_FOLDER["Training"]).is_dir():
        image_root = root
    elif (root / PIXELS_FILE).is_file():
        image_root = Path(cache_dir) if cache_dir else root / "fer2013_png"
        n_rows = sum(1 for _ in open(votes_path, encoding="utf-8")) - 1
        problems = decode_pixels_csv(root / PIXELS_FILE, kept, n_rows, image_root)
    else:
        return pd.DataFrame(), list(FERPLUS_CLASSES), [Problem(
            "layout", str(root), None,
            f"no pixels: expected {PIXELS_FILE} or the folders {', '.join(USAGE_TO_FOLDER.values())} in {root}")]
    bad_lines = {p.line for p in problems}
    kept = kept[~kept["row"].add(2).isin(bad_lines)]
    frame = pd.DataFrame({
        "path": [str(image_root / USAGE_TO_FOLDER[u] / n) for u, n in zip(kept["usage"], kept["image"])],
        "label": kept["label"].to_numpy(),
        "split": kept["split"].to_numpy(),
        "class_name": [FERPLUS_CLASSES[i] for i in kept["label"]],
        "image": kept["image"].to_numpy(),
        "_file": str(votes_path),
        "_line": kept["line"].to_numpy(),
    })
    if protocol == "ran":
        frame.loc[frame["split"] == "val", "split"] = "train"
    return frame, list(FERPLUS_CLASSES), problems
