"""Data problems: one record per defect found in a dataset, and image-file validation.

A ``Problem`` names its kind, the file, the line (1-based, or None when the defect is
not tied to one line) and what was expected. ``check_image`` decodes one image file
fully and returns the problem it has, if any; readers collect problems instead of
stopping at the first one, so a user sees the whole list at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..errors import DataError

# every kind a checker can report, with a one-line explanation (used in docs and tests)
PROBLEM_KINDS = {
    "missing": "an image named by a label file does not exist",
    "empty_file": "an image file has zero bytes",
    "not_image": "a file is not an image PIL can identify",
    "unreadable": "an image file cannot be opened (permissions, I/O error)",
    "truncated": "an image header is valid but its data is truncated or corrupt",
    "label_range": "a label is outside the range the format allows",
    "parse": "a label-file line does not parse",
    "duplicate": "an image is listed more than once",
    "escapes_root": "a listed path leaves the dataset root (e.g. ../x.jpg)",
    "empty_class": "a class has no image in a split",
    "layout": "a required file or folder of the layout is missing",
}


@dataclass(frozen=True)
class Problem:
    kind: str
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: [{self.kind}] {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)


def check_image(path: Path) -> tuple[str, str] | None:
    """Return ``(kind, message)`` when the image at ``path`` is not usable, else None."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing", f"image file {path} does not exist"
    except OSError as exc:
        return "unreadable", f"cannot stat {path}: {exc}"
    if size == 0:
        return "empty_file", f"image file {path} is empty (0 bytes)"
    try:
        with Image.open(path) as im:
            im.load()
    except UnidentifiedImageError:
        return "not_image", f"{path} is not an image file (expected JPEG or PNG)"
    except PermissionError as exc:
        return "unreadable", f"cannot read {path}: {exc}"
    except (OSError, SyntaxError, ValueError) as exc:
        return "truncated", f"image {path} is truncated or corrupt ({exc})"
    return None


def raise_problems(problems: list[Problem], what: str) -> None:
    """Raise one DataError listing every problem (nothing when the list is empty)."""
    if not problems:
        return
    shown = problems[:50]
    lines = [f"{what}: {len(problems)} problem(s) found"] + [f"  {p}" for p in shown]
    if len(problems) > len(shown):
        lines.append(f"  ... and {len(problems) - len(shown)} more (run `tan data check` for all)")
    lines.append("Fix them, or pass skip_problems=True / --skip-problems to leave those images out.")
    raise DataError("\n".join(lines))
