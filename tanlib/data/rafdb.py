"""RAF-DB basic reader: ``EmoLabel/list_patition_label.txt`` + ``Image/aligned``.

The label file has no header; each line is ``<name> <label>`` such as
``train_00001.jpg 5`` with labels 1..7 = Surprise, Fear, Disgust, Happiness, Sadness,
Anger, Neutral (mapped to 0..6 here). The split comes from the name prefix (``train_``
or ``test_``) and the image of ``train_00001.jpg`` is ``Image/aligned/train_00001_aligned.jpg``.
SynthFER is written in this same layout, so it goes through this reader too.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .problems import Problem

RAFDB_CLASSES = ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"]
LABEL_FILE = Path("EmoLabel") / "list_patition_label.txt"
IMAGE_DIR = Path("Image") / "aligned"
# real RAF-DB basic counts per class (DESIGN section 4), train and test
RAFDB_TRAIN_COUNTS = [1290, 281, 717, 4772, 1982, 705, 2524]
RAFDB_TEST_COUNTS = [329, 74, 160, 1185, 478, 162, 680]


def image_path(root: Path, name: str) -> Path:
    """Where RAF-DB keeps the aligned image of label-file entry ``name``."""
    return root / IMAGE_DIR / f"{Path(name).stem}_aligned.jpg"


def parse_label_file(path: Path) -> tuple[pd.DataFrame, list[Problem]]:
    """Parse a RAF-DB label file into rows ``image, split, label (0..6), line``.

    Lines that do not parse, labels outside 1..7, duplicate names and names that are
    paths (``../x.jpg``) become problems, each with the file and 1-based line.
    """
    problems: list[Problem] = []
    rows: list[dict] = []
    seen: dict[str, int] = {}
    shown = str(path)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text:
                continue
            parts = text.split()
            if len(parts) != 2:
                problems.append(Problem("parse", shown, lineno,
                                        f"expected '<name>.jpg <label 1-7>', got {text!r}"))
                continue
            name, label_text = parts
            if "/" in name or "\\" in name:
                escapes = ".." in name.replace("\\", "/").split("/") or name.startswith("/")
                kind = "escapes_root" if escapes else "parse"
                what = "leaves the dataset root" if escapes else "is a path"
                problems.append(Problem(kind, shown, lineno,
                                        f"image name {name!r} {what}; expected a plain file name "
                                        f"such as train_00001.jpg"))
                continue
            split = name.split("_", 1)[0]
            if split not in ("train", "test") or "_" not in name:
                problems.append(Problem("parse", shown, lineno,
                                        f"image name {name!r} does not start with 'train_' or 'test_'"))
                continue
            try:
                label = int(label_text)
            except ValueError:
                problems.append(Problem("parse", shown, lineno,
                                        f"label {label_text!r} is not an integer (expected 1-7)"))
                continue
            if not 1 <= label <= 7:
                problems.append(Problem("label_range", shown, lineno,
                                        f"label {label} of {name} is out of range (expected 1-7)"))
                continue
            if name in seen:
                problems.append(Problem("duplicate", shown, lineno,
                                        f"{name} is listed again (first on line {seen[name]})"))
                continue
            seen[name] = lineno
            rows.append({"image": name, "split": split, "label": label - 1, "line": lineno})
    frame = pd.DataFrame(rows, columns=["image", "split", "label", "line"])
    return frame, problems


def read_rafdb(root: Path) -> tuple[pd.DataFrame, list[str], list[Problem]]:
    """Rows ``path, label, split, class_name, image, _file, _line`` of a RAF-DB tree."""
    label_file = root / LABEL_FILE
    if not label_file.is_file():
        return pd.DataFrame(), RAFDB_CLASSES, [Problem(
            "layout", str(label_file), None,
            f"label file missing; expected {LABEL_FILE} under {root} (RAF-DB basic layout)")]
    frame, problems = parse_label_file(label_file)
    frame["path"] = [str(image_path(root, n)) for n in frame["image"]]
    frame["class_name"] = [RAFDB_CLASSES[i] for i in frame["label"]]
    frame["_file"] = str(label_file)
    frame["_line"] = frame.pop("line")
    return frame, list(RAFDB_CLASSES), problems
