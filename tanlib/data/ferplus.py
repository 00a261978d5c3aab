"""FERPlus reader: FER+ votes (``fer2013new.csv``) with FER2013 pixels.

The label rule is Microsoft's official majority rule (microsoft/FERPlus): every vote
count <= 1 is set to 0; s is the sum of all ten vote columns; a row is kept only if its
largest count is > 0.5 * s and that column is one of the 8 emotions (not ``unknown``,
not ``NF``). Rows with an empty image name are dropped. Usage Training / PublicTest /
PrivateTest -> train / val / test; protocol ``ran`` trains on Training + PublicTest.

Pixels come either from Kaggle's ``fer2013.csv`` (``emotion, pixels, Usage``; 2,304
values per row, same row order as the votes file), decoded once to PNGs in a cache
folder, or from the ``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/`` PNG folders.

Both CSV files are read as spreadsheets and editors save them (``textfiles``): a
byte-order mark, CRLF line ends, blank lines, a last line without a newline, commas,
semicolons or tabs as the delimiter, and spaces around names and values. Line numbers in
problems are the file's own, blank lines counted.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import ConfigError, DataError
from .problems import Problem
from .textfiles import csv_delimiter, label_file_lines

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


def _read_csv_lines(path: Path, expected: list[str], what: str) -> tuple[pd.DataFrame, np.ndarray]:
    """A CSV label file as saved by any editor (see the module docstring): the frame with
    stripped names and text cells, and the file line of each data row. DataError names
    the file and line of an encoding problem or a header that is not ``expected``."""
    lines, problems = label_file_lines(path)
    if problems:
        raise DataError(f"cannot read the {what}: {problems[0]}")
    if not lines:
        raise DataError(f"{path}: the {what} is empty; expected the header {','.join(expected)}")
    header_line, header = lines[0]
    sep = csv_delimiter(header, expected)
    if sep is None:
        found = [c.strip() for c in header.split(max((",", ";", "\t"), key=header.count))]
        raise DataError(f"{path}:{header_line}: header is {found}, expected {expected}")
    try:
        frame = pd.read_csv(
            io.StringIO("\n".join(text for _, text in lines)),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the {what} ({exc})") from None
    frame.columns = [str(c).strip().strip('"').strip() for c in frame.columns]
    for column in frame.columns:
        frame[column] = frame[column].str.strip()
    return frame, np.array([n for n, _ in lines[1 : 1 + len(frame)]], dtype=np.int64)


def _load_votes(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    return _read_csv_lines(path, ["Usage", "Image name"] + VOTE_COLUMNS, "FER+ votes file")


def read_votes(path: str | Path, rule: str = "majority") -> pd.DataFrame:
    """Kept images of a FER+ votes file: columns ``image, split, label, usage, row, line``.

    ``row`` is the 0-based data-row index (the row of the same image in fer2013.csv) and
    ``line`` the 1-based line in the votes file. Raises DataError naming the file and line
    of the first malformed row.
    """
    if rule != "majority":
        raise ConfigError(f"FER+ label rule {rule!r} is not supported (expected 'majority')")
    path = Path(path)
    frame, file_lines = _load_votes(path)
    votes = frame[VOTE_COLUMNS].apply(pd.to_numeric, errors="coerce")
    bad = votes.isna().any(axis=1) | ~frame["Usage"].isin(list(USAGE_TO_SPLIT))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{path}:{file_lines[i]}: expected Usage in {list(USAGE_TO_SPLIT)} and ten integer "
            f"vote counts, got {frame.iloc[i].tolist()}"
        )
    labels = majority_labels(votes.to_numpy())
    names = frame["Image name"]
    keep = (labels >= 0) & (names != "").to_numpy()
    rows = np.flatnonzero(keep)
    return pd.DataFrame(
        {
            "image": names.to_numpy()[rows],
            "split": frame["Usage"].map(USAGE_TO_SPLIT).to_numpy()[rows],
            "label": labels[rows].astype(int),
            "usage": frame["Usage"].to_numpy()[rows],
            "row": rows,
            "line": file_lines[rows],
        }
    )


def decode_pixels_csv(
    pixels_csv: Path, kept: pd.DataFrame, n_vote_rows: int, out_dir: Path
) -> tuple[list[Problem], set[int]]:
    """Write the kept rows of fer2013.csv as 48x48 PNGs under ``out_dir/<FER2013Train|...>/``.

    Only missing PNGs are written, so this runs once per cache folder. Returns the
    problems (file and line of fer2013.csv) and the data rows they concern.
    """
    targets = [out_dir / USAGE_TO_FOLDER[u] / n for u, n in zip(kept["usage"], kept["image"])]
    if all(t.is_file() for t in targets):
        return [], set()
    pixels, file_lines = _read_csv_lines(pixels_csv, ["emotion", "pixels", "Usage"], "FER2013 pixels file")
    if len(pixels) != n_vote_rows:
        raise DataError(
            f"{pixels_csv}: has {len(pixels)} data rows but {VOTES_FILE} has {n_vote_rows}; "
            f"they must be the same rows in the same order"
        )
    problems, bad_rows = [], set()
    for target, row, usage in zip(targets, kept["row"], kept["usage"]):
        line = int(file_lines[row])
        if pixels["Usage"].iat[row] != usage:
            problems.append(
                Problem(
                    "parse",
                    str(pixels_csv),
                    line,
                    f"Usage {pixels['Usage'].iat[row]!r} differs from {usage!r} in "
                    f"{VOTES_FILE}; the two files are not row-aligned",
                )
            )
            bad_rows.add(int(row))
            continue
        try:
            values = np.array(pixels["pixels"].iat[row].split(), dtype=np.float64)
        except ValueError:
            values = None
        if values is None:
            found = "text that is not a number"
        elif values.size != 48 * 48:
            found = f"{values.size} value(s)"
        elif not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= 255):
            found = "values outside 0-255"
        else:
            found = None
        if found is not None:
            problems.append(
                Problem(
                    "parse",
                    str(pixels_csv),
                    line,
                    f"expected 2304 pixel values in 0-255 separated by spaces, got {found}",
                )
            )
            bad_rows.add(int(row))
            continue
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(values.reshape(48, 48).astype(np.uint8), mode="L").save(target)
    return problems, bad_rows


def read_ferplus(
    root: Path, protocol: str = "default", cache_dir: Path | None = None
) -> tuple[pd.DataFrame, list[str], list[Problem]]:
    """Rows ``path, label, split, class_name, image, _file, _line`` of a FERPlus root."""
    if protocol not in ("default", "ran"):
        raise ConfigError(f"FERPlus protocol {protocol!r} is unknown (expected 'default' or 'ran')")
    votes_path = root / VOTES_FILE
    if not votes_path.is_file():
        return (
            pd.DataFrame(),
            list(FERPLUS_CLASSES),
            [Problem("layout", str(votes_path), None, f"votes file missing; expected {VOTES_FILE} in {root}")],
        )
    kept = read_votes(votes_path)
    problems: list[Problem] = []
    if (root / USAGE_TO_FOLDER["Training"]).is_dir():
        image_root = root
    elif (root / PIXELS_FILE).is_file():
        image_root = Path(cache_dir) if cache_dir else root / "fer2013_png"
        n_rows = len(label_file_lines(votes_path)[0]) - 1  # data rows: blank lines are not rows
        problems, bad_rows = decode_pixels_csv(root / PIXELS_FILE, kept, n_rows, image_root)
        kept = kept[~kept["row"].isin(bad_rows)]
    else:
        return (
            pd.DataFrame(),
            list(FERPLUS_CLASSES),
            [
                Problem(
                    "layout",
                    str(root),
                    None,
                    f"no pixels: expected {PIXELS_FILE} or the folders {', '.join(USAGE_TO_FOLDER.values())} in {root}",
                )
            ],
        )
    frame = pd.DataFrame(
        {
            "path": [str(image_root / USAGE_TO_FOLDER[u] / n) for u, n in zip(kept["usage"], kept["image"])],
            "label": kept["label"].to_numpy(),
            "split": kept["split"].to_numpy(),
            "class_name": [FERPLUS_CLASSES[i] for i in kept["label"]],
            "image": kept["image"].to_numpy(),
            "_file": str(votes_path),
            "_line": kept["line"].to_numpy(),
        }
    )
    if protocol == "ran":
        frame.loc[frame["split"] == "val", "split"] = "train"
    return frame, list(FERPLUS_CLASSES), problems
