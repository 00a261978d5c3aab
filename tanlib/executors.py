"""Where the jobs of ``tan sweep`` run: ``--executor local|slurm|ray`` (docs/scale.md).

What this module owns:

- The executor names (``EXECUTORS``) and the refusal, before anything is written, of one
  that cannot run here (``check_executor``): ``ray`` is not an executor of the kit
  (docs/scale.md says why); ``slurm`` needs submitit, and SLURM unless ``cluster=local``.
- The SLURM options of a sweep, from the grid file's ``slurm:`` section and from
  ``--slurm KEY=VALUE`` (``SLURM_KEYS``): checked with a ``ConfigError`` that names the
  key and what was expected (``check_slurm_options``, ``parse_slurm_items``) and turned
  into submitit ``AutoExecutor`` parameters (``executor_parameters``).
- ``GridJob``: one grid job as a submitit callable. It calls
  ``tanlib.pipeline.sweep.run_grid_job``, the one body of a sweep job (the local executor
  calls it too), and it is checkpointable (submitit's ``Checkpointable`` contract: a
  ``checkpoint`` method returning a ``DelayedSubmission`` of the same job), so a job
  preempted or out of time is requeued by submitit and resumes from its run's
  ``last.pt``.
- ``run_submitit``: submit the unfinished jobs of a sweep as one job array through
  submitit (``cluster=local``: submitit's local executor, the same code path as
  processes on this machine), wait for them, and return one line per failed job naming
  its run and its stderr file.

submitit is imported only when the slurm executor runs (``pip install 'tanlib[slurm]'``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .errors import ConfigError, PipelineError

EXECUTORS = ("local", "slurm", "ray")

#: ``--slurm`` / grid ``slurm:`` keys and what each expects.
SLURM_KEYS = {
    "cluster": "slurm (submit to SLURM, the default) or local (submitit's local executor: the jobs run as "
    "processes on this machine)",
    "partition": "a partition name",
    "account": "an account name",
    "qos": "a quality-of-service name",
    "constraint": "a node feature constraint, e.g. a100",
    "time": "minutes per job, a positive integer",
    "gpus": "GPUs per job, an integer >= 0",
    "cpus": "CPU cores per job, a positive integer",
    "mem": "memory per job in GB, a positive number",
    "parallel": "jobs of the array running at once, a positive integer",
}
DEFAULT_TIME_MIN = 180  # per job; a job past it is requeued and resumes from last.pt (up to 3 times)
_CLUSTERS = ("slurm", "local")
_SUBMITIT_PARAMS = {
    "gpus": "gpus_per_node",
    "cpus": "cpus_per_task",
    "mem": "mem_gb",
    "partition": "slurm_partition",
    "account": "slurm_account",
    "qos": "slurm_qos",
    "constraint": "slurm_constraint",
    "parallel": "slurm_array_parallelism",
}
_RAY_REASON = (
    "--executor ray is not provided: Ray is a 79 MB wheel (200 MB installed) that starts its own cluster "
    "services even on one machine, too heavy for the kit's install and test suite, and SLURM through submitit "
    "already gives queueing, retries, GPU requests and requeue on preemption. Use --executor slurm, or "
    "--shard I/N on each machine sharing the sweep folder (docs/scale.md)"
)


def check_executor(name: str, options: dict) -> None:
    """Refuse, with a ``ConfigError`` saying why, an executor that cannot run here: ``ray``
    (not provided), ``slurm`` without submitit installed, or with ``cluster=slurm`` (the
    default) where there is no SLURM. ``options``: the checked SLURM options."""
    if name == "ray":
        raise ConfigError(_RAY_REASON)
    if name not in EXECUTORS:
        raise ConfigError(f"--executor {name!r}: expected one of local, slurm")
    if name != "slurm":
        return
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--executor slurm needs the submitit package: pip install 'tanlib[slurm]' "
            "(from a checkout: pip install -e '.[slurm]')"
        ) from None
    if options.get("cluster", "slurm") == "slurm" and not (shutil.which("sbatch") and shutil.which("srun")):
        raise ConfigError(
            "--slurm cluster=slurm (the default): there is no SLURM here (sbatch and srun are not on "
            "PATH); run tan sweep on a machine of the cluster, or pass --slurm cluster=local to run "
            "the jobs on this machine"
        )


def _int(value, minimum: int) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= minimum else None


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 and number != float("inf") else None


def _name(value) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value.strip() if isinstance(value, str) and value.strip() else None


def check_slurm_options(options: dict, where: str) -> dict:
    """Check SLURM options and return them with their types (ints, GB as float, names).
    ``where`` starts every error, e.g. ``"--slurm "`` or ``"grid file g.yaml: slurm."``."""
    out = {}
    for key, value in options.items():
        if key not in SLURM_KEYS:
            raise ConfigError(f"{where}{key}: unknown SLURM option; allowed: {', '.join(SLURM_KEYS)}")
        if key in ("time", "cpus", "parallel"):
            checked = _int(value, 1)
        elif key == "gpus":
            checked = _int(value, 0)
        elif key == "mem":
            checked = _number(value)
        elif key == "cluster":
            checked = value if value in _CLUSTERS else None
        else:
            checked = _name(value)
        if checked is None:
            raise ConfigError(f"{where}{key}: got {value!r}, expected {SLURM_KEYS[key]}")
        out[key] = checked
    return out


def parse_slurm_items(items: list[str] | None) -> dict:
    """``["partition=gpu", "time=60"]`` (``--slurm``, repeatable) to checked options."""
    raw = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--slurm {item!r}: expected KEY=VALUE, e.g. --slurm partition=gpu; keys: {', '.join(SLURM_KEYS)}"
            )
        raw[key.strip()] = value.strip()
    return check_slurm_options(raw, "--slurm ")


def executor_parameters(options: dict, name: str) -> dict:
    """Checked SLURM options to ``AutoExecutor.update_parameters`` keywords. Keys prefixed
    ``slurm_`` apply on SLURM only (submitit ignores them under ``cluster=local``)."""
    params = {"name": name, "timeout_min": options.get("time", DEFAULT_TIME_MIN)}
    params.update({_SUBMITIT_PARAMS[k]: v for k, v in options.items() if k in _SUBMITIT_PARAMS})
    return params


class GridJob:
    """One job of a sweep grid, run by submitit: ``__call__`` runs it through
    ``tanlib.pipeline.sweep.run_grid_job`` and returns its outcome (finished / busy / trained).
    ``checkpoint`` is submitit's requeue hook (the ``submitit.helpers.Checkpointable``
    contract, kept without subclassing so that importing this module does not need
    submitit): on preemption or timeout submitit calls it and requeues the same job,
    which finds ``last.pt`` and resumes."""

    def __init__(self, grid: dict, job, runs_dir: str):
        self.grid, self.job, self.runs_dir = grid, job, runs_dir

    def __call__(self) -> str:
        from .pipeline.sweep import run_grid_job

        return run_grid_job(self.grid, self.job, Path(self.runs_dir))

    def checkpoint(self):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)


def _failure(error: Exception) -> str:
    """One line saying how a job ended without a result."""
    import submitit

    if isinstance(error, submitit.core.utils.FailedJobError):  # its message holds the job's traceback
        lines = str(error).splitlines()
        last_frame = max((i for i, x in enumerate(lines) if x.startswith("  File ")), default=-1)
        raised = [x for x in lines[last_frame + 1 :] if x.strip() and not x.startswith(" ")]
        return f"raised {raised[0] if raised else 'an error'}"
    return "ended without a result (killed, cancelled, or out of memory or time)"


def run_submitit(
    grid: dict, jobs: list, runs_dir: Path, folder: Path, options: dict, log=print, on_finished=None
) -> list[str]:
    """Submit the unfinished ``jobs`` of ``grid`` as one submitit job array (one task per
    run) with ``options`` (checked SLURM options), wait for all of them, and return one
    line per job that failed: its run, how it ended and its stderr file. Finished runs
    are not submitted. submitit keeps its pickles and logs under ``folder``.
    ``on_finished(run_dir)``: called for each finished run, skipped or as its job ends."""
    import submitit

    from .engine.rundir import run_is_complete

    todo = []
    for job in jobs:
        if run_is_complete(runs_dir / job.name):
            log(f"[sweep] {job.name}: finished, skipped")
            if on_finished is not None:
                on_finished(runs_dir / job.name)  # run_sweep's guard: a failure there is collected, not raised
        else:
            todo.append(job)
    if not todo:
        return []
    cluster = options.get("cluster", "slurm")
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(**executor_parameters(options, f"tan-{grid['name']}"))
    try:
        with executor.batch():
            submitted = [executor.submit(GridJob(grid, job, str(runs_dir))) for job in todo]
    except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError) as exc:
        raise PipelineError(f"the submission of {len(todo)} job(s) was refused: {str(exc).strip()}") from None
    names = {id(s): job.name for s, job in zip(submitted, todo)}
    log(
        f"[sweep] submitted {len(todo)} job(s) ({cluster}), job ids {submitted[0].job_id}..{submitted[-1].job_id}; "
        f"logs under {folder}"
    )
    failures = []
    for done in submitit.helpers.as_completed(submitted, poll_frequency=1 if cluster == "local" else 15):
        name = names[id(done)]
        error = done.exception()
        if error is None:
            log(f"[sweep] {name}: {done.result()} (job {done.job_id})")
            if on_finished is not None:
                on_finished(runs_dir / name)
        else:
            failures.append(f"{name}: job {done.job_id} {_failure(error)}; stderr: {done.paths.stderr}")
            log(f"[sweep] {failures[-1]}")
    return failures


__all__ = [
    "DEFAULT_TIME_MIN",
    "EXECUTORS",
    "GridJob",
    "SLURM_KEYS",
    "check_executor",
    "check_slurm_options",
    "executor_parameters",
    "parse_slurm_items",
    "run_submitit",
]
