"""TensorBoard logging of a training run (optional: config key ``tensorboard=true``).

``TensorBoardLog.open(config, run_dir)`` returns ``None`` when the key is off; when it is
on it checks that the ``tensorboard`` package is installed and raises ``ConfigError``
otherwise, before anything is trained or written. The training loop then calls

* ``log.epoch(row, attention)`` once per epoch, after the history row is appended: every
  numeric column of the row becomes a scalar at step = epoch (``loss/<term>``,
  ``accuracy/<split>``, ``optim/lr``, ``speed/<column>``, ``train/<column>`` for the rest,
  so the curves are exactly ``history.csv``), and the attention weights of the
  validation and test splits become histograms (``attention/val``, ``attention/test``);
* ``log.finish(test_images)`` once at the end, after the test split was evaluated: the
  embedding projector for the test split with the best checkpoint (the embeddings of
  ``embeddings.npz``; per point the true and predicted class, correctness and attention
  from ``predictions.csv``; thumbnails of the images, at most 32 px), then it closes.

Events go to ``<run_dir>/tensorboard/``; view them with
``tensorboard --logdir <run_dir>/tensorboard``. A resumed run appends new event files
for the epochs it trains, so every epoch is logged once.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import ConfigError

TENSORBOARD_DIR = "tensorboard"
PROJECTOR_TAG = "test_embedding"
THUMBNAIL_MAX = 32  # px: TensorBoard's sprite image must stay under 8192 x 8192


def require_tensorboard():
    """``torch.utils.tensorboard.SummaryWriter``, or ``ConfigError`` naming the extra to install."""
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it; checked first, explicitly)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError(
            f"tensorboard=true needs the tensorboard package, which cannot be imported ({exc}); "
            "install it with `pip install 'tanlib[tensorboard]'` or set tensorboard=false"
        ) from None
    return SummaryWriter


def scalar_tag(column: str) -> str:
    """TensorBoard tag of a history column."""
    if column.startswith("loss_"):
        return f"loss/{column[5:]}"
    if column.endswith("_acc"):
        return f"accuracy/{column[:-4]}"
    if column == "lr":
        return "optim/lr"
    if column in ("seconds", "images_per_s"):
        return f"speed/{column}"
    return f"train/{column}"


class TensorBoardLog:
    """Writes one run's TensorBoard events; see the module docstring."""

    def __init__(self, config, run_dir: str | Path):
        self._writer_class = require_tensorboard()
        self.config = config
        self.run_dir = Path(run_dir)
        self.log_dir = self.run_dir / TENSORBOARD_DIR
        self._writer = None

    @classmethod
    def open(cls, config, run_dir: str | Path) -> TensorBoardLog | None:
        """A logger when ``config.tensorboard`` is on (``ConfigError`` if not installed), else None."""
        return cls(config, run_dir) if getattr(config, "tensorboard", False) else None

    @property
    def writer(self):
        if self._writer is None:  # created on first use: the run directory exists by then
            self._writer = self._writer_class(log_dir=str(self.log_dir))
            text = json.dumps(self.config.to_dict(), indent=2, sort_keys=True)
            self._writer.add_text("config", "```\n" + text + "\n```", 0)
        return self._writer

    def epoch(self, row: dict, attention: dict | None = None) -> None:
        """Log one history row (step = its epoch) and the attention histograms."""
        step = int(row["epoch"])
        for column, value in row.items():
            if column == "epoch" or isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                continue
            if math.isfinite(float(value)):
                self.writer.add_scalar(scalar_tag(column), float(value), step)
        for split, values in (attention or {}).items():
            values = np.asarray(values, dtype=np.float64)
            if values.size:
                self.writer.add_histogram(f"attention/{split}", values, step, bins="auto")
        self.writer.flush()

    def finish(self, test_images=None) -> None:
        """The test split's embedding projector (best checkpoint), then close the writer."""
        import pandas as pd
        import torch

        emb_path, pred_path = self.run_dir / "embeddings.npz", self.run_dir / "predictions.csv"
        if emb_path.is_file() and pred_path.is_file():
            with np.load(emb_path) as z:
                embedding = z["embedding"]
            pred = pd.read_csv(pred_path, keep_default_na=False, na_values=[""])
            header = ["label", "pred", "correct", "attention"]
            metadata = [
                [str(r.class_name), str(r.pred_name), str(bool(r.correct)), f"{float(r.attention):.4f}"]
                for r in pred.itertuples()
            ]
            thumbs = None
            if test_images is not None and len(test_images) == len(embedding):
                x = torch.as_tensor(test_images).float().div(255)
                side = min(THUMBNAIL_MAX, x.shape[-1])
                if x.shape[-1] != side:
                    x = torch.nn.functional.interpolate(
                        x, size=(side, side), mode="bilinear", antialias=True, align_corners=False
                    )
                thumbs = x.clamp(0, 1)
            metrics_path = self.run_dir / "metrics.json"
            best_epoch = json.loads(metrics_path.read_text()).get("best_epoch", 0) if metrics_path.is_file() else 0
            self.writer.add_embedding(
                torch.from_numpy(embedding),
                metadata=metadata,
                metadata_header=header,
                label_img=thumbs,
                global_step=int(best_epoch or 0),
                tag=PROJECTOR_TAG,
            )
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None


__all__ = ["TensorBoardLog", "require_tensorboard", "scalar_tag", "TENSORBOARD_DIR", "PROJECTOR_TAG"]
