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


#: The value of a notebook's ``run_root`` that means "the newest folder under
#: ``reports/runs`` holding the finished runs asked for" (``choose_run_root``).
NEWEST = "newest"


def _finished(run_dir: Path) -> float | None:
    """The finish time (mtime of a complete metrics.json) of a run directory, else None."""
    from .engine.rundir import metrics_complete

    path = run_dir / "metrics.json"
    try:
        return path.stat().st_mtime if metrics_complete(json.loads(path.read_text())) else None
    except (OSError, ValueError):
        return None


def finished_methods(run_root: str | os.PathLike, seed: int) -> list[str]:
    """The methods with a finished run ``runs/<method>-seed<seed>/`` in a run folder, in
    the kit's method order (``tanlib.config.METHODS``) and then by name."""
    from .config import METHODS

    runs = Path(run_root) / "runs"
    suffix = f"-seed{int(seed)}"
    found = (
        [d.name[: -len(suffix)] for d in runs.iterdir() if d.name.endswith(suffix) and _finished(d) is not None]
        if runs.is_dir()
        else []
    )
    rank = {m: i for i, m in enumerate(METHODS)}
    return sorted(found, key=lambda m: (rank.get(m, len(rank)), m))


def choose_run_root(
    run_root: str | os.PathLike, methods, seed: int = 0, runs_dir: str | os.PathLike = "reports/runs"
) -> tuple[Path, list[str], str]:
    """The run folder a notebook reads (03, 04), the methods it shows, and one line saying
    which folder that is.

    ``run_root`` ``"newest"`` (``NEWEST``): the folder under ``runs_dir`` (``tan run``'s
    ``reports/runs/<run_id>``, notebooks 01/02's ``reports/runs/interactive``) whose
    finished runs ``runs/<method>-seed<seed>`` of ``methods`` (every finished method when
    ``methods`` is empty) ended last. Any other value is a run folder, checked the same
    way. Nothing is created; a folder without those runs raises ``RunDirError`` with one
    sentence saying what to run. Returns ``(folder, methods, line)``."""
    from .errors import RunDirError

    methods = [methods] if isinstance(methods, str) else list(methods or [])
    want = ", ".join(f"{m}-seed{int(seed)}" for m in methods) or f"any method, seed {int(seed)}"

    def complete(folder: Path) -> tuple[list[str], float] | None:
        names = methods or finished_methods(folder, seed)
        times = [_finished(folder / "runs" / run_dir_name(m, seed)) for m in names]
        if not names or any(t is None for t in times):
            return None
        return names, max(times)

    if str(run_root) != NEWEST:
        folder = project_path(run_root)
        found = complete(folder)
        if found is None:
            raise RunDirError(
                f"{folder} holds no finished run {want} (runs/<method>-seed<seed>/metrics.json): train it with "
                f"notebook 02 or `tan run`, or set run_root = {NEWEST!r} to read the newest finished run."
            )
        return folder, found[0], f"Reading {_shown(folder)} (run_root), methods {', '.join(found[0])}."
    base = project_path(runs_dir)
    candidates = []
    for folder in sorted(base.iterdir()) if base.is_dir() else []:
        found = complete(folder) if folder.is_dir() else None
        if found is not None:
            candidates.append((found[1], folder, found[0]))
    if not candidates:
        raise RunDirError(
            f"No finished run ({want}) under {_shown(base)} yet: run `make reproduce` (or `make smoke`, about "
            "2 minutes) first, or set run_root to a run folder."
        )
    _, folder, names = max(candidates, key=lambda c: c[0])
    return (
        folder,
        names,
        f"Reading {_shown(folder)}, the newest finished run under {_shown(base)} (methods {', '.join(names)}, "
        f"seed {int(seed)}); set run_root to read another.",
    )


def _shown(path: Path) -> str:
    """A path relative to the project root when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(project_root()))
    except ValueError:
        return str(path)


def slug(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "x"


__all__ = [
    "NEWEST",
    "choose_run_root",
    "finished_methods",
    "notebook_dir",
    "project_path",
    "project_root",
    "run_dir_name",
    "slug",
]
