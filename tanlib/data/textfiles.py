"""Label files as people save them: encodings, line ends, blank lines, delimiters.

Every text label file of the kit (RAF-DB's ``list_patition_label.txt``, FERPlus'
``fer2013new.csv`` and ``fer2013.csv``) is read through ``label_file_lines``, which
accepts what editors and spreadsheet programs write:

- a byte-order mark: UTF-8 (Notepad, Excel's "CSV UTF-8"), UTF-16 and UTF-32 (Notepad's
  "Unicode"), decoded as the mark says; without one the file must be UTF-8, and a line
  that is not becomes an ``encoding`` problem naming the line and the byte;
- line ends ``\\n``, ``\\r\\n`` (Windows) and ``\\r`` (classic Mac), mixed or not, and a
  last line without one;
- blank lines and whitespace-only lines (skipped, line numbers kept);
- a stray byte-order mark at the start of a later line (files joined with ``cat``).

Spaces, tabs and trailing whitespace inside a line are left to each reader: RAF-DB splits
on any whitespace; ``csv_delimiter`` finds whether a CSV was saved with commas,
semicolons (spreadsheets in many locales) or tabs, by which of them splits the header into
the expected columns.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from .problems import Problem

# longest first: the UTF-32 LE mark begins with the UTF-16 LE one
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _split_lines(text: str) -> list[str]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline of the last line ends it; it does not start another
    return lines


def label_file_lines(path: str | Path) -> tuple[list[tuple[int, str]], list[Problem]]:
    """The non-blank lines of a text label file as ``(1-based line number, text)`` with
    the line end removed, and the problems met: ``encoding`` for every line that cannot
    be decoded (left out) or for the whole file (no lines), ``unreadable`` when the file
    cannot be read."""
    path = Path(path)
    shown = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [], [Problem("unreadable", shown, None, f"cannot read {path}: {exc.strerror or exc}")]
    problems: list[Problem] = []
    found = next(((bom, enc) for bom, enc in _BOMS if data.startswith(bom)), None)
    if found is not None:
        bom, encoding = found
        try:
            lines = _split_lines(data[len(bom) :].decode(encoding))
        except UnicodeDecodeError as exc:
            return [], [
                Problem(
                    "encoding",
                    shown,
                    None,
                    f"starts with a {encoding.upper()} byte-order mark but is not valid {encoding.upper()} "
                    f"({exc.reason} at byte {exc.start + len(bom)}); save it as UTF-8",
                )
            ]
    elif b"\x00" in data:
        return [], [
            Problem(
                "encoding",
                shown,
                None,
                "holds NUL bytes: probably UTF-16 saved without a byte-order mark; save it as UTF-8",
            )
        ]
    else:
        try:
            lines = _split_lines(data.decode("utf-8"))
        except UnicodeDecodeError:
            lines = _utf8_lines(data, shown, problems)
    out = []
    for lineno, text in enumerate(lines, start=1):
        if text is None:
            continue
        text = text.lstrip("\ufeff")
        if text.strip():
            out.append((lineno, text))
    return out, problems


def _utf8_lines(data: bytes, shown: str, problems: list[Problem]) -> list[str | None]:
    """Lines of ``data`` decoded one by one; None (and a problem) for each that is not UTF-8."""
    lines: list[str | None] = []
    for raw in _split_lines(data.decode("latin-1")):  # split the bytes, then decode each line strictly
        raw_bytes = raw.encode("latin-1")
        try:
            lines.append(raw_bytes.decode("utf-8"))
        except UnicodeDecodeError as exc:
            problems.append(
                Problem(
                    "encoding",
                    shown,
                    len(lines) + 1,
                    f"line is not UTF-8 text (byte 0x{raw_bytes[exc.start]:02x} at column "
                    f"{exc.start + 1}); save the file as UTF-8",
                )
            )
            lines.append(None)
    return lines


def csv_delimiter(header: str, expected: list[str]) -> str | None:
    """The delimiter (``,``, ``;`` or tab) that splits ``header`` into the ``expected``
    column names (surrounding spaces and quotes ignored), or None when none does."""
    for sep in (",", ";", "\t"):
        if [c.strip().strip('"').strip() for c in header.split(sep)] == list(expected):
            return sep
    return None
