"""RAF-DB basic reader: ``EmoLabel/list_patition_label.txt`` + ``Image/aligned``.

The label file has no header; each line is ``<name> <label>`` such as
``train_00001.jpg 5`` with labels 1..7 = Surprise, Fear, Disgust, Happiness, Sadness,
Anger, Neutral (mapped to 0..6 here). The split comes from the name prefix (``train_``
or ``test_``) and the image of ``train_00001.jpg`` is ``Image/aligned/train_00001_aligned.jpg``.
SynthFER is written in this same layout, so it goes through this reader too.

The label file is read as people save it (``textfiles.label_file_lines``): a byte-order
mark, CRLF or CR line ends, a last line without a newline, blank lines, and any run of
spaces or tabs between (and around) the two fields are all accepted.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .problems import Problem
from .textfiles import label_file_lines

RAFDB_CLASSES = ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"]
LABEL_FILE = Path("EmoLabel") / "list_patition_label.txt"
IMAGE_DIR = Path("Image") / "aligned"
# real RAF-DB basic counts per class (data/README.md), train and test
RAFDB_TRAIN_COUNTS = [1290, 281, 717, 4772, 1982, 705, 2524]
RAFDB_TEST_COUNTS = [329, 74, 160, 1185, 478, 162, 680]


def image_path(root: Path, name: str) -> Path:
    """Where RAF-DB keeps the aligned image of label-file entry ``name``."""
    return root / IMAGE_DIR / f"{Path(name).stem}_aligned.jpg"


def parse_label_file(path: Path) -> tuple[pd.DataFrame, list[Problem]]:
    """Parse a RAF-DB label file into rows ``image, split, label (0..6), line``.

    Lines that do not parse, labels outside 1..7, duplicate names and names that are
    paths (``../x.jpg``) become problems, each with the file and 1-based line; so does a
    line that is not UTF-8 (``encoding``). Fields may be separated by spaces or tabs.
    """
    rows: list[dict] = []
    seen: dict[str, int] = {}
    shown = str(path)
    lines, problems = label_file_lines(path)
    for lineno, raw in lines:
        text = raw.strip()
        parts = text.split()
        if len(parts) != 2:
            problems.append(Problem("parse", shown, lineno, f"expected '<name>.jpg <label 1-7>', got {text!r}"))
            continue
        name, label_text = parts
        if "/" in name or "\\" in name:
            escapes = ".." in name.replace("\\", "/").split("/") or name.startswith("/")
            kind = "escapes_root" if escapes else "parse"
            what = "leaves the dataset root" if escapes else "is a path"
            problems.append(
                Problem(
                    kind,
                    shown,
                    lineno,
                    f"image name {name!r} {what}; expected a plain file name such as train_00001.jpg",
                )
            )
            continue
        split = name.split("_", 1)[0]
        if split not in ("train", "test") or "_" not in name:
            problems.append(
                Problem("parse", shown, lineno, f"image name {name!r} does not start with 'train_' or 'test_'")
            )
            continue
        try:
            label = int(label_text)
        except ValueError:
            problems.append(Problem("parse", shown, lineno, f"label {label_text!r} is not an integer (expected 1-7)"))
            continue
        if not 1 <= label <= 7:
            problems.append(
                Problem("label_range", shown, lineno, f"label {label} of {name} is out of range (expected 1-7)")
            )
            continue
        if name in seen:
            problems.append(Problem("duplicate", shown, lineno, f"{name} is listed again (first on line {seen[name]})"))
            continue
        seen[name] = lineno
        rows.append({"image": name, "split": split, "label": label - 1, "line": lineno})
    frame = pd.DataFrame(rows, columns=["image", "split", "label", "line"])
    return frame, problems


def read_rafdb(root: Path) -> tuple[pd.DataFrame, list[str], list[Problem]]:
    """Rows ``path, label, split, class_name, image, _file, _line`` of a RAF-DB tree."""
    label_file = root / LABEL_FILE
    if not label_file.is_file():
        return (
            pd.DataFrame(),
            RAFDB_CLASSES,
            [
                Problem(
                    "layout",
                    str(label_file),
                    None,
                    f"label file missing; expected {LABEL_FILE} under {root} (RAF-DB basic layout)",
                )
            ],
        )
    frame, problems = parse_label_file(label_file)
    frame["path"] = [str(image_path(root, n)) for n in frame["image"]]
    frame["class_name"] = [RAFDB_CLASSES[i] for i in frame["label"]]
    frame["_file"] = str(label_file)
    frame["_line"] = frame.pop("line")
    return frame, list(RAFDB_CLASSES), problems


def apply_train_label_file(frame: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, list[Problem]]:
    """Train on the labels of ``path`` (noisy-label protocol of SCN and its successors).

    ``path`` is a label list in this reader's format with train lines only (for example
    a published list of RAF-DB with 10, 20 or 30 % of the training labels flipped). Its
    labels replace those of the training rows of ``frame``; the originals are kept as
    ``clean_label``, and ``noisy`` is True where the two differ, so the noisy-label
    detectors of the kit are measured on real data exactly as on SynthFER. Test rows keep
    their labels. Problems (named by file and line): a line that does not parse, a test
    line, an image the dataset lacks, and training images the list leaves out.
    """
    if not path.is_file():
        return frame, [
            Problem(
                "layout",
                str(path),
                None,
                "noisy training label list missing; expected a file of '<name>.jpg <label 1-7>' "
                "lines for the train images",
            )
        ]
    listed, problems = parse_label_file(path)
    known = set(frame.loc[frame["split"] == "train", "image"])
    for _, row in listed.iterrows():
        if row["split"] != "train":
            problems.append(
                Problem(
                    "parse",
                    str(path),
                    int(row["line"]),
                    f"{row['image']} is not a training image; the list holds train lines only",
                )
            )
        elif row["image"] not in known:
            problems.append(
                Problem(
                    "missing", str(path), int(row["line"]), f"{row['image']} is not a training image of the dataset"
                )
            )
    given = dict(zip(listed["image"], listed["label"]))
    absent = sorted(known - set(given))
    if absent:
        problems.append(
            Problem(
                "missing",
                str(path),
                None,
                f"{len(absent)} training image(s) of the dataset are not in the list, e.g. "
                f"{', '.join(absent[:3])}; the list must give every training label",
            )
        )
    out = frame.copy()
    out["clean_label"] = out["label"]
    train = out["split"] == "train"
    out.loc[train, "label"] = [given.get(n, c) for n, c in zip(out.loc[train, "image"], out.loc[train, "label"])]
    out["noisy"] = out["label"] != out["clean_label"]
    out["class_name"] = [RAFDB_CLASSES[i] for i in out["label"]]
    return out, problems
