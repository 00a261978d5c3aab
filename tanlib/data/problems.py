"""Data problems: one record per defect found in a dataset, and image-file validation.

A ``Problem`` names its kind, the file, the line (1-based, or None when the defect is
not tied to one line) and what was expected. ``check_image`` decodes one image file
fully, exactly as training will (``decode.decode_rgb``: size limit, format by content,
conversion to RGB), and returns the problem it has, if any; readers collect problems
instead of stopping at the first one, so a user sees the whole list at once. The same
list is what ``tan data check`` prints and what training skips with ``skip_bad_data``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import DataError
from .decode import ImageProblem, decode_rgb

# every kind a checker can report, with a one-line explanation (used in docs and tests)
PROBLEM_KINDS = {
    "missing": "an image named by a label file does not exist",
    "empty_file": "an image file has zero bytes",
    "not_image": "a file is not a JPEG, PNG, BMP or WebP image (by content; the extension does not matter)",
    "unreadable": "an image file cannot be opened (permissions, I/O error)",
    "truncated": "an image header is valid but its data is truncated or corrupt",
    "too_large": "an image has more pixels than the limit (TAN_MAX_IMAGE_PIXELS): a decompression bomb",
    "unsupported_mode": "an image's pixel format cannot be converted to RGB",
    "encoding": "a label file (or one of its lines) is not UTF-8 and has no byte-order mark saying otherwise",
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
        decode_rgb(path)
    except ImageProblem as exc:
        return exc.kind, str(exc)
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
