"""Folder reader: ``root/<split>/<class_name>/*.jpg|png`` (ImageFolder style).

Split folders are ``train`` (required), ``val`` and ``test``. Class names are given or
inferred as the sorted union of class folders; label = index in that list. Non-image
files inside class folders are reported (hidden files such as ``.DS_Store`` are ignored).
The extension only selects which files are images; their content decides the format (a
PNG named ``.jpg`` is read as PNG, see ``decode.decode_rgb``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .problems import Problem

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".webp"}


def read_folder(root: Path, class_names: list[str] | None = None) -> tuple[pd.DataFrame, list[str], list[Problem]]:
    problems: list[Problem] = []
    if not (root / "train").is_dir():
        return (
            pd.DataFrame(),
            list(class_names or []),
            [
                Problem(
                    "layout",
                    str(root / "train"),
                    None,
                    f"no 'train' folder under {root}; expected root/<split>/<class>/*.jpg|png "
                    f"with split folders {', '.join(SPLITS)}",
                )
            ],
        )
    split_dirs = [root / s for s in SPLITS if (root / s).is_dir()]
    found = sorted({d.name for s in split_dirs for d in s.iterdir() if d.is_dir()})
    classes = list(class_names) if class_names else found
    index = {c: i for i, c in enumerate(classes)}
    real_root = root.resolve()
    rows = []
    for split_dir in split_dirs:
        for class_dir in sorted(d for d in split_dir.iterdir() if d.is_dir()):
            if class_dir.name not in index:
                problems.append(
                    Problem(
                        "label_range",
                        str(class_dir),
                        None,
                        f"class folder {class_dir.name!r} is not one of the given class names {classes}",
                    )
                )
                continue
            for f in sorted(class_dir.iterdir()):
                if f.name.startswith(".") or f.is_dir():
                    continue
                if not f.resolve().is_relative_to(real_root):
                    problems.append(
                        Problem("escapes_root", str(f), None, f"{f} links to {f.resolve()}, outside the root {root}")
                    )
                    continue
                if f.suffix.lower() not in IMAGE_SUFFIXES:
                    problems.append(
                        Problem(
                            "not_image",
                            str(f),
                            None,
                            f"{f.name} is not an image file (expected {', '.join(sorted(IMAGE_SUFFIXES))})",
                        )
                    )
                    continue
                rows.append(
                    {
                        "path": str(f),
                        "label": index[class_dir.name],
                        "split": split_dir.name,
                        "class_name": class_dir.name,
                        "_file": str(f),
                        "_line": None,
                    }
                )
    cols = ["path", "label", "split", "class_name", "_file", "_line"]
    return pd.DataFrame(rows, columns=cols), classes, problems
