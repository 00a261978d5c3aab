"""Engine: training, evaluation, checkpoints and run directories (docs/training.md).

The names below are imported from their modules on first use (``tanlib.lazy``):
``from tanlib.engine import load_run`` does not import the training objective.
"""

from tanlib.lazy import lazy_exports

_EXPORTS = {  # name -> the module that defines it
    **dict.fromkeys(["evaluate", "load_model", "predict"], "tanlib.engine.evaluate"),
    **dict.fromkeys(["Run", "load_run"], "tanlib.engine.rundir"),
    "train": "tanlib.engine.train",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
