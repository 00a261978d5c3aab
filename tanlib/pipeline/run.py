"""``tan run``: the five notebooks of one pipeline run (docs/pipeline.md).

``run_pipeline`` runs 01_data -> 02_train (one per method) -> 03_evaluate (one per
method) and 04_embeddings -> 05_report into ``reports/runs/<run_id>/``, then refreshes
``reports/latest/REPORT.md`` with its figures. The notebooks of one stage are
independent and run two at a time by default (``run_notebooks``, ``workers``). The run
folder's lock (``tanlib.runlock``) is held throughout, so a second ``tan run --resume``
of it is refused. ``tan run --set KEY=VALUE`` sets config keys of every training run
(02_train's ``overrides``); a ``pretrained`` file there is checked, and ``synthface``
made, before the first notebook (``prepare_pretrained``, docs/pretraining.md).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from ..atomicio import atomic_write_text
from ..config import METHODS, SCALES
from ..data.prepare import SYNTHFER_DEFAULTS
from ..errors import ConfigError, PipelineError, RunDirError, TANError
from ..paths import notebook_dir, project_path, project_root
from ..runlock import acquire_run_lock, release_run_lock
from .notebooks import NOTEBOOKS, NotebookJob, default_workers, notebook_parameters, run_notebooks, validate_parameters

#: Parameters the pipeline sets itself for each notebook; a user may not pass them.
_PIPELINE_OWNED = ("run_root", "method", "methods", "runs_from", "report_dir", "preset", "dataset", "root", "seed")


def _route_params(params: dict[str, Any], declared: dict[str, dict]) -> dict[str, dict]:
    """Split user parameters over notebooks: ``name`` goes to every notebook declaring
    it, ``NN_notebook.name`` to that notebook only."""
    routed: dict[str, dict] = {nb: {} for nb in declared}
    for key, value in params.items():
        if "." in key:
            nb, name = key.split(".", 1)
            if nb not in declared:
                raise PipelineError(f"parameter {key!r}: no notebook {nb!r}; notebooks are {', '.join(declared)}")
            targets = [nb]
        else:
            name = key
            targets = [nb for nb, names in declared.items() if name in names]
            if not targets:
                known = sorted(set().union(*declared.values()) - set(_PIPELINE_OWNED))
                raise PipelineError(
                    f"unknown parameter {name!r}: no notebook declares it; known parameters: {', '.join(known)}"
                )
        if name in _PIPELINE_OWNED:
            raise PipelineError(
                f"parameter {name!r} is set by the pipeline itself; use the options --preset, --dataset, "
                "--root, --seed, --methods, --out or --run-id instead"
            )
        for nb in targets:
            routed[nb][name] = value
    return routed


def plan_pipeline(
    run_root: Path,
    preset: str = "quick",
    dataset: str = "synthfer",
    root: str | None = None,
    params: dict | None = None,
    methods=("ce", "tan"),
    seed: int = 0,
) -> list[NotebookJob]:
    """The notebook jobs of one pipeline run (parameters not yet validated)."""
    if preset not in SCALES:
        raise ConfigError(f"preset={preset!r} is not allowed; choose one of {', '.join(SCALES)}")
    methods = list(methods)
    if not methods:
        raise ConfigError("methods must name at least one method")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ConfigError(f"unknown method(s) {bad}; choose from {', '.join(METHODS)}")
    declared = {nb: notebook_parameters(notebook_dir() / f"{nb}.ipynb") for nb in NOTEBOOKS}
    routed = _route_params(dict(params or {}), declared)
    if root is None:
        if dataset != "synthfer":
            raise ConfigError(f"dataset={dataset!r} needs --root (the folder holding the dataset)")
        root = SYNTHFER_DEFAULTS[preset]["root"]
    base = {
        "run_root": str(run_root),
        "dataset": dataset,
        "root": str(project_path(root)),
        "preset": preset,
        "seed": seed,
    }

    def make(nb, own, output_name, stage):
        wanted = {k: v for k, v in {**base, **own}.items() if k in declared[nb]}
        return NotebookJob(nb, {**wanted, **routed[nb]}, output_name, stage=stage)

    synth = {k: v for k, v in SYNTHFER_DEFAULTS[preset].items() if k != "root"}
    # stages: data -> training (one per method) -> evaluation and embeddings (both need
    # only the trained runs) -> report; the jobs of a stage may run at the same time
    jobs = [make("01_data", synth, "01_data.ipynb", 0)]
    jobs += [make("02_train", {"method": m}, f"02_train-{m}.ipynb", 1) for m in methods]
    jobs.append(make("04_embeddings", {"methods": methods}, "04_embeddings.ipynb", 2))
    jobs += [make("03_evaluate", {"method": m}, f"03_evaluate-{m}.ipynb", 2) for m in methods]
    jobs.append(make("05_report", {"runs_from": [str(run_root)], "report_dir": str(run_root)}, "05_report.ipynb", 3))
    return jobs


def prepare_pretrained(jobs: list[NotebookJob], log=print) -> None:
    """Before any notebook runs: a ``pretrained`` file named in 02_train's ``overrides``
    that does not exist is refused, and ``pretrained=synthface`` is made (``tan
    pretrain``'s defaults, on every core, docs/pretraining.md) when it is not cached yet."""
    from ..config import preset as make_config

    for job in jobs:
        overrides = (job.parameters.get("overrides") or {}) if job.notebook == "02_train" else {}
        if overrides.get("pretrained", "scratch") in ("scratch", "imagenet"):
            continue
        config = make_config(job.parameters["method"], job.parameters["preset"], **overrides)
        if config.pretrained == "synthface":
            from ..engine.pretrain import ensure_synthface

            ensure_synthface(config.backbone, log=log)
        elif not project_path(config.pretrained).is_file():
            from ..errors import CheckpointError

            raise CheckpointError(
                f"pretrained={config.pretrained!r} (02_train's overrides): "
                f"{project_path(config.pretrained)} does not exist; pass the path of a weights "
                "file, 'synthface', 'imagenet' or 'scratch'"
            )


def run_pipeline(
    preset: str = "quick",
    dataset: str = "synthfer",
    root: str | None = None,
    params: dict | None = None,
    methods=("ce", "tan"),
    out: str = "reports/runs",
    run_id: str | None = None,
    seed: int = 0,
    latest: str | None = "reports/latest",
    resume: bool = False,
    workers: int | None = None,
    log=print,
) -> Path:
    """Run the five notebooks into ``<out>/<run_id>/`` and refresh ``<latest>/REPORT.md``.

    ``params``: extra notebook parameters, ``name`` for every notebook that declares it
    or ``NN_notebook.name`` for one. All parameters of all notebooks are validated
    before the first notebook starts. ``resume=True`` continues an interrupted run with
    the same ``run_id`` and settings: the notebooks run again, finished training runs are
    reused and partial ones resume from their ``last.pt``. ``workers``: notebooks of one
    stage run at the same time (default ``default_workers()``; 1 runs them one by one).
    Returns the run folder.
    """
    from ..report import write_report

    out_dir = project_path(out)
    run_id = run_id or time.strftime("%Y%m%d-%H%M%S") + f"-{preset}"
    if not re.fullmatch(r"[A-Za-z0-9._-]+", run_id):
        raise ConfigError(f"run_id={run_id!r} may only hold letters, digits, '.', '_' and '-'")
    run_root = out_dir / run_id
    jobs = plan_pipeline(run_root, preset, dataset, root, params, methods, seed)
    for job in jobs:  # validate everything before anything runs
        job.parameters = validate_parameters(job.source, job.parameters)
    record = {
        "run_id": run_id,
        "preset": preset,
        "dataset": dataset,
        "methods": list(methods),
        "seed": seed,
        "params": params or {},
        "notebooks": [],
        "status": "running",
    }
    manifest = run_root / "pipeline.json"
    if run_root.exists() and not resume:
        raise RunDirError(
            f"{run_root} already exists; pass --resume to continue it, choose another --run-id or remove it"
        )
    if resume:
        if not manifest.is_file():
            raise RunDirError(f"cannot resume: {manifest} does not exist (start the run without --resume)")
        before = json.loads(manifest.read_text())
        changed = [k for k in ("preset", "dataset", "methods", "seed", "params") if before.get(k) != record[k]]
        if changed:
            raise RunDirError(
                f"cannot resume {run_root}: {', '.join(changed)} differ from the interrupted run's "
                f"({', '.join(f'{k}={before.get(k)!r}' for k in changed)})"
            )
        log(f"[pipeline] resuming {run_root}: finished training runs are reused, partial ones resumed")
    try:
        run_root.mkdir(parents=True, exist_ok=resume)
    except FileExistsError:
        raise RunDirError(f"{run_root} was created by another `tan run` just now; choose another --run-id") from None
    acquire_run_lock(run_root)  # one `tan run` per run folder (a second --resume is refused), released below
    try:
        started = time.perf_counter()
        atomic_write_text(manifest, json.dumps(record, indent=2) + "\n")
        try:
            prepare_pretrained(jobs, log=log)
            record["notebooks"] = run_notebooks(
                jobs,
                run_root / "notebooks",
                cwd=project_root(),
                workers=default_workers() if workers is None else workers,
                log=log,
            )
            record["status"] = "ok"
        except TANError as exc:
            record["status"] = f"failed: {exc}"
            raise
        finally:
            record["seconds"] = round(time.perf_counter() - started, 1)
            atomic_write_text(manifest, json.dumps(record, indent=2, default=str) + "\n")
    finally:
        release_run_lock(run_root)
    if latest:
        report = write_report(project_path(latest), run_root=run_root, runs_from=[run_root], replace=True)
        log(f"[pipeline] report: {report}")
    log(f"[pipeline] finished in {record['seconds']:.1f} s: {run_root}")
    return run_root


__all__ = ["plan_pipeline", "prepare_pretrained", "run_pipeline"]
