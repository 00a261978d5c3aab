"""Self-describing checkpoints (torchvision references style).

A checkpoint is a plain dict of tensors and JSON types: model, objective (the running
Mahalanobis covariance, a learned L), optimiser, scheduler, epoch, the resolved config,
the training labels (SCN relabels them), the history so far, RNG states. It is written
to a temporary file in the same folder, flushed and fsynced, then renamed over the
target (``tanlib.atomicio``), so a kill during the write leaves the previous checkpoint intact. It is read with
``torch.load(weights_only=True)``: a checkpoint can never execute code.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import torch

from ..atomicio import atomic_write_bytes
from ..errors import CheckpointError


def save_checkpoint(path: str | Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict:
    from ..models.pretrained import safe_torch_load

    state = safe_torch_load(path)
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path} is not a tanlib checkpoint (no 'model' and 'config' entries)")
    return state


def rng_state() -> dict:
    """Python, numpy and torch RNG states as tensors/JSON types (weights_only-safe)."""
    py = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
