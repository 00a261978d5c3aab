"""The command line of the docs generators that read finished run directories rather than
committed records (docs/make_isotropy.py, docs/make_attention_scale.py): the checkpoints and
training-face predictions they need are not part of a record (docs/pipeline.md, "Run records")."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_run_dirs(doc: str, argv, out: Path, figure: Path, needs: tuple[str, ...], what: str):
    """The parsed ``RUN_DIR... [--out JSON] [--figure PNG]`` of a generator whose module
    docstring is ``doc``, its runs resolved; None, after naming every missing file of ``needs``
    on stderr, when a run is not a finished run directory (before any work)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help=what)
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--figure", type=Path, default=figure)
    args = parser.parse_args(argv)
    args.runs = [r.resolve() for r in args.runs]
    missing = [r / name for r in args.runs for name in needs if not (r / name).is_file()]
    if missing:
        listed = "\n  ".join(map(str, missing))
        print(f"error: not a finished run directory (missing):\n  {listed}", file=sys.stderr)
        return None
    return args


__all__ = ["parse_run_dirs"]
