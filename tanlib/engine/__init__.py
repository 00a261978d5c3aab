"""Engine: training, evaluation, checkpoints and run directories (docs/training.md)."""

from .evaluate import evaluate, load_model, predict
from .rundir import Run, load_run
from .train import train

__all__ = ["train", "evaluate", "load_run", "load_model", "predict", "Run"]
