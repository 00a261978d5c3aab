"""Where the kit's files are: the project root, paths relative to it, run folder names.

Relative paths in configs, notebook parameters and grids are taken from the project root
(the checkout holding ``pyproject.toml``), so a notebook finds the same files from
JupyterLab (cwd ``notebooks/``), nbval, the pipeline and the benchmarks.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any


def project_root() -> Path:
    """The kit's checkout: the folder holding ``pyproject.toml`` above this package,
    or the current directory for an installed (non-editable) package."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file() and (here / "notebooks").is_dir():
        return here
    return Path.cwd()


def project_path(path: str | os.PathLike) -> Path:
    """``path`` made absolute: relative paths are taken from the project root, so a
    notebook finds the same files from JupyterLab (cwd ``notebooks/``), nbval and the
    pipeline."""
    p = Path(os.path.expanduser(str(path)))
    return p if p.is_absolute() else (project_root() / p).resolve()


def notebook_dir() -> Path:
    return project_root() / "notebooks"


def run_dir_name(method: str, seed: int, extra: dict | None = None) -> str:
    """Folder name of one training run: ``<method>-seed<seed>[-key=value...]``."""
    name = f"{method}-seed{int(seed)}"
    for key, value in sorted((extra or {}).items()):
        name += f"-{key}={slug(value)}"
    return name


def slug(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "x"


__all__ = ["notebook_dir", "project_path", "project_root", "run_dir_name", "slug"]
