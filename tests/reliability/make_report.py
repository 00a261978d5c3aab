"""Regenerate the case table of docs/reliability.md from the reliability suite's results.

    .venv/bin/python tests/reliability/make_report.py            # run the suite, then write the table
    .venv/bin/python tests/reliability/make_report.py --from R.json   # only render an earlier result file
    .venv/bin/python tests/reliability/make_report.py --merge tests/reliability/test_x.py  # re-run some files only

``tests/conftest.py`` records every case declared by this folder's tests (and by the tests of
``ELSEWHERE``): id, category, what was done, what is expected, what was observed,
passed/failed/skipped, into the JSON named by
``TAN_RELIABILITY_JSON``; this script renders that JSON into the part of
docs/reliability.md between the ``cases:begin`` and ``cases:end`` markers, and leaves the
rest of the file as it is. It exits with pytest's status, so a failing case is both in the
table and visible to the caller. ``--merge`` keeps the rows of the table already in the
file and replaces or adds only the cases of this run (for a run of some files), and says
so in the table's header.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
DOC = PROJECT / "docs" / "reliability.md"
BEGIN, END = "<!-- cases:begin -->", "<!-- cases:end -->"
# cases declared outside this folder, beside the fixture they share
ELSEWHERE = [
    "tests/pipeline/test_smoke_pipeline.py::test_killed_tan_run_is_never_taken_for_finished",
    "tests/pipeline/test_results_page.py::test_a_damaged_record_stops_the_generator_and_nothing_is_written",
    "tests/report/test_records.py::test_tan_record_writes_and_updates_the_index",
    "tests/report/test_records.py::test_a_damaged_run_in_a_folder_without_index_is_named_not_dropped",
    "tests/report/test_records.py::test_reindex_refuses_a_record_that_does_not_parse_and_writes_nothing",
]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _key(row):
    m = re.fullmatch(r"([A-Z]+)(\d+)", row["id"])
    order = "FWRDPCS"
    return (order.index(m.group(1)) if m and m.group(1) in order else 9, int(m.group(2)) if m else 0, row["id"])


def render(rows: list[dict], header: str) -> str:
    rows = sorted(rows, key=_key)
    counts = {}
    for r in rows:
        counts[r["outcome"].split()[0]] = counts.get(r["outcome"].split()[0], 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    lines = [
        BEGIN,
        "",
        header,
        "",
        f"{len(rows)} cases: {summary}.",
        "",
        "| id | category | what was done | expected | observed | outcome |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(_cell(r[k]) for k in ("id", "category", "action", "expected", "observed", "outcome"))
            + " |"
        )
    lines += ["", END]
    return "\n".join(lines)


def write_doc(table: str) -> None:
    text = DOC.read_text() if DOC.is_file() else f"# Reliability\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(head + table + tail)


def read_table() -> list[dict]:
    """The case rows of the table now in docs/reliability.md (for ``--merge``)."""
    text = DOC.read_text() if DOC.is_file() else ""
    if BEGIN not in text:
        return []
    rows = []
    keys = ("id", "category", "action", "expected", "observed", "outcome")
    for line in text.split(BEGIN, 1)[1].split(END, 1)[0].splitlines():
        if not line.startswith("| ") or line.startswith(("| id |", "| --- |")):
            continue
        cells = [c.replace("\\|", "|") for c in re.split(r"(?<!\\) \| ", line[2:-2])]
        if len(cells) == len(keys):
            rows.append(dict(zip(keys, cells)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", default=None, help="render this result JSON; do not run pytest")
    parser.add_argument(
        "--merge", action="store_true", help="keep the rows already in the table; replace or add only this run's cases"
    )
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (e.g. the test files to run)")
    args = parser.parse_args()
    status = 0
    if args.source:
        source = Path(args.source)
    else:
        source = Path(tempfile.mkdtemp(prefix="tan-reliability-")) / "results.json"
        env = {**os.environ, "TAN_RELIABILITY_JSON": str(source), "OMP_NUM_THREADS": "1"}
        targets = (
            []
            if args.merge and any(a.endswith(".py") or "::" in a for a in args.pytest_args)
            else [str(HERE.relative_to(PROJECT)), *ELSEWHERE]
        )
        cmd = [sys.executable, "-m", "pytest", *targets, "-q", "-p", "no:cacheprovider", *args.pytest_args]
        status = subprocess.run(cmd, cwd=PROJECT, env=env).returncode
        if not source.is_file():
            print(f"no results were recorded (pytest exit {status})", file=sys.stderr)
            return status or 1
    rows = json.loads(source.read_text())
    header = (
        f"Generated by `tests/reliability/make_report.py` on {time.strftime('%Y-%m-%d')} "
        f"({sys.platform}, Python {sys.version.split()[0]}); do not edit by hand."
    )
    if args.merge:
        fresh = {r["id"] for r in rows}
        kept = [r for r in read_table() if r["id"] not in fresh]
        header += (
            f" Merged run: {len(rows)} case(s) ({', '.join(sorted(fresh, key=lambda i: _key({'id': i})))}) "
            f"recorded then; the other {len(kept)} come from the table's previous run."
        )
        rows = kept + rows
    write_doc(render(rows, header))
    print(f"wrote {len(rows)} cases to {DOC}")
    return status


if __name__ == "__main__":
    sys.exit(main())
