"""Atomic file writes: a file is written to a temporary sibling (``.<name>.tmp-<pid>``),
flushed and fsynced, then renamed over the target, so a reader never sees half a file
and a kill during the write leaves the previous version intact. Every file of a run
directory, a pipeline run's ``pipeline.json``, reports and benchmark results go through
here (``tanlib.engine.rundir`` removes the temporaries a killed writer left behind).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import RunDirError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling, fsynced, then renamed over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunDirError(f"cannot write {path}: {exc.strerror or exc}; earlier files are untouched") from None


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text"]
