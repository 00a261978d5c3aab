"""Run directories: creation without overwriting, the one-writer lock, the environment
record, and reading a finished run back.

A run directory holds everything needed to read or redo the run: ``config.json``,
``env.json``, ``manifest.csv`` (+ ``.json``), ``history.csv``, ``metrics.json``,
``last.pt``, ``best.pt``, ``predictions.csv``, ``embeddings.npz`` and, when data problems
were skipped, ``skipped.csv``.

One writer per run directory: ``prepare_run_dir`` takes the run lock of
``tanlib.runlock`` (held until the enclosing ``train`` returns or raises) before it
decides anything, and clears a directory for ``--overwrite`` without touching the lock
files or a sweep's ``job.json``. ``holds_run_locks``, ``hold_run_lock`` and ``run_lock`` are re-exported here.

This module owns the run-directory rules everything else calls: what a finished run is
(``metrics_complete``, ``run_is_complete``), whether a run directory holds the same
config (``check_same_config``), and training a config into a directory unless it is
finished already, resuming it when partial (``ensure_run``; a sweep writes its
``job.json`` before calling it).
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Config, config_differences
from ..errors import RunDirError
from ..runlock import LOCK_FILES, hold_run_lock, holds_run_locks, refuse_if_busy, run_lock  # noqa: F401

RUN_FILES = (
    "config.json",
    "env.json",
    "manifest.csv",
    "manifest.json",
    "history.csv",
    "metrics.json",
    "last.pt",
    "best.pt",
    "predictions.csv",
    "embeddings.npz",
    "skipped.csv",
)


# written by ``tan sweep`` into a job's run directory before training starts (the job's grid
# settings); like the lock files it is not part of the run: a new run may start beside it and
# --overwrite keeps it
JOB_FILE = "job.json"


def metrics_complete(metrics: dict) -> bool:
    """Whether a ``metrics.json`` dict is a finished run's: both test evaluations
    ("last" and "best_val") and the run summary (``last_epoch``), which the engine
    writes last, so a kill between evaluation and the summary leaves a partial run."""
    results = metrics.get("results") or {}
    return "last_epoch" in metrics and all(
        isinstance(results.get(k), dict) and "accuracy" in results[k] for k in ("last", "best_val")
    )


def run_is_complete(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a finished run (``metrics_complete`` of its metrics.json):
    the one rule ``tan sweep`` (skip), ``tan record`` and the reports (gather) follow."""
    try:
        return metrics_complete(json.loads((Path(run_dir) / "metrics.json").read_text()))
    except (OSError, ValueError):
        return False


def ensure_run(config: Config, run_dir: str | Path, overwrite: bool = False, log=print) -> Path:
    """Train ``config`` into ``run_dir`` unless a finished run is already there.

    Finished (complete ``metrics.json``): nothing is trained. Partial (a ``last.pt``
    exists): ``train(..., resume=True)``. Otherwise a fresh run. A finished run whose
    ``config.json`` differs from ``config`` raises ``RunDirError`` (pass ``overwrite``).
    """
    from .train import train  # train builds on this module

    run_dir = Path(run_dir)
    if overwrite:
        return Path(train(config, run_dir, overwrite=True))
    if run_is_complete(run_dir):
        check_same_config(config, run_dir)
        log(f"[run] {run_dir.name}: finished already, skipped")
        return run_dir
    if (run_dir / "last.pt").is_file():
        check_same_config(config, run_dir)
        log(f"[run] {run_dir.name}: resuming from last.pt")
        return Path(train(config, run_dir, resume=True))
    return Path(train(config, run_dir, overwrite=run_dir.exists()))


def check_same_config(config: Config, run_dir: Path) -> None:
    """Refuse ``run_dir`` when it holds a run of another config (``config_differences``,
    the one rule for "the same config": runtime keys such as threads and progress aside)."""
    path = run_dir / "config.json"
    if not path.is_file():
        return
    diff = config_differences(json.loads(path.read_text()), config.to_dict())
    if diff:
        shown = ", ".join(f"{k}: {a!r} there vs {b!r} asked" for k, (a, b) in list(diff.items())[:5])
        raise RunDirError(f"{run_dir} holds a run of another config ({shown}); use another folder or overwrite")


def _contents(out: Path) -> list[Path]:
    """What ``out`` holds besides its lock files and a sweep's ``job.json``."""
    return [p for p in out.iterdir() if p.name not in LOCK_FILES and p.name != JOB_FILE] if out.is_dir() else []


def prepare_run_dir(out: str | Path, resume: bool, overwrite: bool) -> Path:
    """Create ``out`` for a new run, or check it for ``resume``; never overwrite silently.

    Takes the run directory's lock (``hold_run_lock``: held until the enclosing
    ``holds_run_locks`` function, ``train``, ends) and decides under it, so two writers
    started together cannot both pass the checks: the second gets ``RunDirBusyError``.
    """
    out = Path(out)
    if resume:
        if not (out / "last.pt").is_file():
            refuse_if_busy(out)  # a run still in its first epoch has no last.pt yet
            raise RunDirError(f"cannot resume: {out / 'last.pt'} does not exist (start the run without --resume)")
        hold_run_lock(out)
        for tmp in out.glob(".*.tmp-*"):  # half-written files of a killed atomic_write_bytes
            if tmp.is_file() and tmp.name.rsplit(".tmp-", 1)[-1].isdigit():
                tmp.unlink()
        return out
    if _contents(out):  # refused before anything is written there, lock file included
        if not overwrite:
            refuse_if_busy(out)
            raise RunDirError(
                f"run directory {out} already exists and is not empty; pass --resume to continue it, "
                "--overwrite to replace it, or choose another --out"
            )
        if not (out / "config.json").is_file():
            raise RunDirError(f"refusing to overwrite {out}: it does not look like a run directory (no config.json)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create run directory {out}: {exc.strerror or exc}") from None
    hold_run_lock(out)
    contents = _contents(out)
    if contents:
        if not overwrite or not (out / "config.json").is_file():  # filled between the check above and the lock
            raise RunDirError(f"run directory {out} was filled by another process just now; choose another --out")
        try:
            for entry in contents:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        except OSError as exc:
            raise RunDirError(f"cannot clear {out} for --overwrite: {exc.strerror or exc}") from None
    return out


def git_state(root: str | Path | None = None) -> tuple[str | None, bool | None]:
    """The commit of the kit's checkout and whether its ``tanlib/`` has uncommitted changes;
    (None, None) without one (an installed package, no git): what env.json records as
    ``git_commit`` / ``git_dirty`` (which ``tan record`` then reads), and what ``tan verdict``
    and ``tan sweep --record`` check before training (``require_clean_tree``). ``root``: the
    checkout this package was imported from, never the current directory."""
    root = Path(root) if root is not None else Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        return None, None

    def git(*args) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()

    try:
        return git("rev-parse", "HEAD") or None, bool(git("status", "--porcelain", "--", "tanlib"))
    except (OSError, subprocess.SubprocessError):
        return None, None


def require_clean_tree(why: str) -> None:
    """``RunDirError`` when ``git_state`` finds uncommitted changes under tanlib/, saying ``why``
    that matters here."""
    if git_state()[1]:
        raise RunDirError(f"the working tree has uncommitted changes under tanlib/: {why}")


def environment() -> dict:
    """Versions, device and git commit, for env.json."""
    import pytorch_metric_learning
    import torch
    import torchvision

    commit, dirty = git_state()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pytorch_metric_learning": pytorch_metric_learning.__version__,
        "numpy": np.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "git_commit": commit,
        "git_dirty": dirty,
        "argv": sys.argv,
    }


@dataclass
class Run:
    """A run directory read back: config, history, metrics, predictions, embeddings, model."""

    path: Path

    @cached_property
    def config(self) -> Config:
        return Config.load(self.path / "config.json")

    @cached_property
    def manifest(self):
        from ..data import Manifest

        return Manifest.load(self.path / "manifest.csv")

    @property
    def classes(self) -> list[str]:
        return self.manifest.classes

    @cached_property
    def history(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "history.csv")

    @cached_property
    def metrics(self) -> dict:
        return json.loads((self.path / "metrics.json").read_text())

    @cached_property
    def predictions(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "predictions.csv", keep_default_na=False, na_values=[""])

    @cached_property
    def embeddings(self) -> dict:
        with np.load(self.path / "embeddings.npz") as z:
            return {k: z[k] for k in z.files}

    def vectors(self, space: str = "features"):
        """The test vectors of one geometry space (``analysis.geometry.SPACES``):
        ``features`` (L2-normalised backbone features h) or ``embedding`` (e, only where a
        metric term trained it)."""
        from ..analysis.geometry import check_space, space_vectors

        check_space(space, self.config, self.path.name)
        return space_vectors(self.embeddings, space)

    def model(self, checkpoint: str | None = None):
        """The network of ``checkpoint`` ("best" or "last"; default: the run's primary one)."""
        from .evaluate import load_model, primary_checkpoint

        return load_model(self.path, checkpoint or primary_checkpoint(self.config))[0]


def load_run(path: str | Path) -> Run:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise RunDirError(f"{path} is not a run directory (no config.json)")
    return Run(path)
