"""The notebook pipeline and sweeps: ``tan run`` and ``tan sweep`` (docs/pipeline.md).

- ``notebooks``: a notebook's parameters cell, parameter validation, the kernel,
  papermill execution (``run_notebooks``).
- ``run``: ``tan run``, the five notebooks of one pipeline run (``run_pipeline``).
- ``sweep``: ``tan sweep``, a YAML grid of training runs (``run_sweep``,
  ``run_grid_job``).
- ``cli``: the two sub-commands' arguments.

The names notebooks and scripts use are importable from here: the project paths
(``tanlib.paths``), ``ensure_dataset`` (``tanlib.data.prepare``) and the run-directory
rules ``ensure_run`` and ``run_is_complete`` (``tanlib.engine.rundir``), which this
package only calls.
"""

from ..data.prepare import SYNTHFER_DEFAULTS, ensure_dataset
from ..engine.rundir import ensure_run, run_is_complete
from ..paths import notebook_dir, project_path, project_root, run_dir_name
from .cli import register
from .notebooks import (
    NOTEBOOKS,
    NotebookJob,
    default_workers,
    ensure_kernel,
    execute_notebook,
    notebook_parameters,
    parse_param_items,
    run_notebooks,
    validate_parameters,
)
from .run import plan_pipeline, prepare_pretrained, run_pipeline
from .sweep import SweepJob, grid_jobs, load_grid, parse_shard, run_grid_job, run_sweep, sweep_report, synthfer_root

__all__ = [
    "NOTEBOOKS",
    "SYNTHFER_DEFAULTS",
    "NotebookJob",
    "SweepJob",
    "default_workers",
    "ensure_dataset",
    "ensure_kernel",
    "ensure_run",
    "execute_notebook",
    "grid_jobs",
    "load_grid",
    "notebook_dir",
    "notebook_parameters",
    "parse_param_items",
    "parse_shard",
    "plan_pipeline",
    "prepare_pretrained",
    "project_path",
    "project_root",
    "register",
    "run_dir_name",
    "run_grid_job",
    "run_is_complete",
    "run_notebooks",
    "run_pipeline",
    "run_sweep",
    "sweep_report",
    "synthfer_root",
    "validate_parameters",
]
