"""Run directories: creation without overwriting, the environment record, and reading a
finished run back (DESIGN section 6).

A run directory holds everything needed to read or redo the run: ``config.json``,
``env.json``, ``manifest.csv`` (+ ``.json``), ``history.csv``, ``metrics.json``,
``last.pt``, ``best.pt``, ``predictions.csv``, ``embeddings.npz`` and, when data problems
were skipped, ``skipped.csv``.
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
import torch

from ..config import Config
from ..errors import RunDirError

RUN_FILES = ("config.json", "env.json", "manifest.csv", "manifest.json", "history.csv", "metrics.json",
             "last.pt", "best.pt", "predictions.csv", "embeddings.npz", "skipped.csv")


def prepare_run_dir(out: str | Path, resume: bool, overwrite: bool) -> Path:
    """Create ``out`` for a new run, or check it for ``resume``; never overwrite silently."""
    out = Path(out)
    existing = out.exists() and any(out.iterdir())
    if resume:
        if not (out / "last.pt").is_file():
            raise RunDirError(f"cannot resume: {out / 'last.pt'} does not exist (start the run without --resume)")
        for tmp in out.glob(".*.tmp-*"):  # half-written files of a killed atomic_write_bytes
            if tmp.is_file() and tmp.name.rsplit(".tmp-", 1)[-1].isdigit():
                tmp.unlink()
        return out
    if existing:
        if not overwrite:
            raise RunDirError(
                f"run directory {out} already exists and is not empty; pass --resume to continue it, "
                "--overwrite to replace it, or choose another --out"
            )
        if not (out / "config.json").is_file():
            raise RunDirError(f"refusing to overwrite {out}: it does not look like a run directory (no config.json)")
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create run directory {out}: {exc.strerror or exc}") from None
    return out


def environment() -> dict:
    """Versions, device and git commit, for env.json."""
    import pytorch_metric_learning
    import torchvision

    try:
        root = Path(__file__).resolve().parents[2]
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "tanlib"],
                                    capture_output=True, text=True, timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "pytorch_metric_learning": pytorch_metric_learning.__version__, "numpy": np.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(), "git_commit": commit, "git_dirty": dirty,
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

    def model(self, checkpoint: str = "best"):
        from .evaluate import load_model

        return load_model(self.path, checkpoint)[0]


def load_run(path: str | Path) -> Run:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise RunDirError(f"{path} is not a run directory (no config.json)")
    return Run(path)
