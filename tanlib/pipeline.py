"""The notebook pipeline and sweeps: ``tan run`` and ``tan sweep`` (docs/pipeline.md).

What this module implements:

- Reading a notebook's ``parameters`` cell (the code cell tagged ``parameters``) into
  ``{name: default}`` and checking it holds only ``name = <flat JSON literal>`` lines
  (``notebook_parameters``).
- Validating parameters against a notebook *before* anything runs: unknown names and
  values whose JSON type differs from the default's raise ``PipelineError`` naming the
  notebook and the parameter (papermill alone only warns) (``validate_parameters``).
- Executing notebooks with papermill, always with an explicit ``kernel_name`` (a
  kernelspec ``tanlib`` that runs this very interpreter, installed into ``sys.prefix``
  when missing) and ``cwd``; a failing notebook raises ``PipelineError`` naming the
  notebook, the cell and the exception, and its executed copy, error included, is kept
  (``execute_notebook``).
- ``run_pipeline``: 01_data -> 02_train (one per method) -> 03_evaluate (one per
  method) and 04_embeddings -> 05_report into ``reports/runs/<run_id>/``, then refreshes
  ``reports/latest/REPORT.md`` with its figures (``tan run``). The notebooks of one stage
  are independent and run two at a time by default, the cores split between their
  kernels (``run_notebooks``, ``workers``). The run folder's lock (``tanlib.runlock``)
  is held throughout, so a second ``tan run --resume`` of it is refused. ``tan run --set
  KEY=VALUE`` sets config keys of every training run (02_train's ``overrides``); a
  ``pretrained`` file there is checked, and ``synthface`` made, before the first notebook
  (``prepare_pretrained``, docs/pretraining.md).
- ``run_sweep``: methods x seeds x config parameters x SynthFER generator settings from
  a YAML grid, skipping finished runs, resuming partial ones, every N-th job with
  ``--shard I/N``, and the 05_report notebook over the whole sweep folder once every job
  is finished (``tan sweep``). The jobs run here one after the other (``--executor
  local``) or as submitit jobs (``--executor slurm``, ``tanlib.executors``); either way
  each runs ``run_grid_job``, the one body of a sweep job: under its run directory's
  lock (a job that another process, an overlapping shard or a requeued copy, is writing
  is skipped, so a job started twice runs once) it writes ``job.json`` (the grid
  settings) and then trains or resumes the run (``ensure_run``).
- ``ensure_run``: train a config into a run directory unless it already finished
  (resume when partial); used by 02_train and the sweeps.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import config_differences
from .errors import ConfigError, DataError, PipelineError, RunDirBusyError, RunDirError, TANError
from .executors import EXECUTORS, SLURM_KEYS, check_executor, check_slurm_options, parse_slurm_items, run_submitit
from .runlock import acquire_run_lock, describe_holder, release_run_lock, run_lock

NOTEBOOKS = ("01_data", "02_train", "03_evaluate", "04_embeddings", "05_report")
KERNEL_NAME = "tanlib"
SCALES = ("smoke", "quick", "paper")

#: Default SynthFER location and size per scale (the generator's defaults for quick/paper).
SYNTHFER_DEFAULTS = {
    "smoke": {"root": "data/synthfer-smoke", "synth_n_train": 700, "synth_n_test": 210},
    "quick": {"root": "data/synthfer", "synth_n_train": 2500, "synth_n_test": 700},
    "paper": {"root": "data/synthfer", "synth_n_train": 2500, "synth_n_test": 700},
}

#: Parameters the pipeline sets itself for each notebook; a user may not pass them.
_PIPELINE_OWNED = ("run_root", "method", "methods", "runs_from", "report_dir", "preset", "dataset", "root", "seed")

# ============================================================================ paths


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
        name += f"-{key}={_slug(value)}"
    return name


def _slug(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "x"


# ============================================================================ parameters


def _json_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if value is None:
        return "None"
    return {str: "str", list: "list", dict: "dict"}.get(type(value), type(value).__name__)


def _is_json(value: Any) -> bool:
    if isinstance(value, (str, int, float, bool, type(None))):
        return True
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def _read_notebook(path: Path):
    import nbformat

    try:
        return nbformat.read(str(path), as_version=4)
    except FileNotFoundError:
        raise PipelineError(f"notebook {path} does not exist") from None
    except Exception as exc:  # nbformat raises several unrelated types on bad JSON
        raise PipelineError(f"notebook {path} is not a valid notebook: {exc}") from None


def notebook_parameters(path: str | os.PathLike) -> dict[str, Any]:
    """``{name: default}`` of the notebook's ``parameters`` cell.

    The cell must be the first code cell, tagged ``parameters``, and hold only
    assignments ``name = <literal>`` of flat JSON types (str, int, float, bool, None,
    list, dict) and comments; anything else raises ``PipelineError``.
    """
    path = Path(path)
    nb = _read_notebook(path)
    code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    tagged = [(i, c) for i, c in code_cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not tagged:
        raise PipelineError(f"notebook {path.name}: no code cell is tagged 'parameters'")
    index, cell = tagged[0]
    if code_cells[0][0] != index:
        raise PipelineError(f"notebook {path.name}: the 'parameters' cell (cell {index}) must be the first code cell")
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as exc:
        raise PipelineError(f"notebook {path.name}, parameters cell: syntax error line {exc.lineno}: {exc.msg}") from None
    params: dict[str, Any] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise PipelineError(
                f"notebook {path.name}, parameters cell line {node.lineno}: only 'name = literal' "
                "assignments are allowed there"
            )
        name = node.targets[0].id
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            raise PipelineError(
                f"notebook {path.name}, parameters cell line {node.lineno}: {name} must be a literal "
                "of a JSON type (str, int, float, bool, None, list, dict)"
            ) from None
        if not _is_json(value):
            raise PipelineError(
                f"notebook {path.name}, parameters cell line {node.lineno}: {name}={value!r} is not "
                "of a flat JSON type (str, int, float, bool, None, list, dict)"
            )
        params[name] = value
    return params


def _type_ok(default: Any, value: Any) -> bool:
    if default is None:  # an optional parameter: any JSON value
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    return isinstance(value, type(default))


def validate_parameters(notebook: str | os.PathLike, params: dict[str, Any],
                        declared: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check ``params`` against the notebook's parameters cell; return them with float
    parameters given as ints converted. Raises ``PipelineError`` naming the notebook and
    the parameter on an unknown name or a JSON type that differs from the default's."""
    path = Path(notebook)
    declared = notebook_parameters(path) if declared is None else declared
    out = {}
    for name, value in params.items():
        if name not in declared:
            raise PipelineError(
                f"notebook {path.name}: unknown parameter {name!r}; its parameters are: "
                f"{', '.join(sorted(declared))}"
            )
        if not _is_json(value):
            raise PipelineError(
                f"notebook {path.name}: parameter {name}={value!r} is not a JSON value "
                "(str, int, float, bool, None, list, dict)"
            )
        default = declared[name]
        if not _type_ok(default, value):
            raise PipelineError(
                f"notebook {path.name}: parameter {name}={value!r} has type {_json_type_name(value)}; "
                f"expected {_json_type_name(default)} (its default is {default!r})"
            )
        out[name] = float(value) if isinstance(default, float) else value
    return out


def parse_param_items(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` strings (``-p``) to a dict; values are JSON when they parse
    (numbers, true/false, null, lists, dicts), else strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise PipelineError(f"-p {item!r}: expected key=value (e.g. -p n_mistakes=8)")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


# ============================================================================ kernel


def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """Make sure a kernelspec ``name`` exists that starts *this* interpreter
    (``sys.executable``); install it into ``sys.prefix`` with ipykernel when it is
    missing or points elsewhere. Returns the kernel name to pass to papermill."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
        argv0 = spec.argv[0] if spec.argv else ""
        if argv0 and Path(argv0).exists() and os.path.samefile(argv0, sys.executable):
            return name
    except NoSuchKernel:
        pass
    try:
        from ipykernel.kernelspec import install
    except ImportError as exc:
        raise PipelineError("the notebook pipeline needs ipykernel: pip install 'tanlib[notebooks]'") from exc
    install(kernel_name=name, display_name="Python (tanlib)", prefix=sys.prefix)
    return name


# ============================================================================ execution


@dataclass
class NotebookJob:
    """One notebook execution of a pipeline: source notebook, parameters, output name."""

    notebook: str  # stem, e.g. "02_train"
    parameters: dict[str, Any]
    output_name: str  # file name of the executed notebook
    source: Path = field(default=None)  # type: ignore[assignment]
    stage: int = 0  # jobs of one stage are independent and may run at the same time

    def __post_init__(self):
        if self.source is None:
            self.source = notebook_dir() / f"{self.notebook}.ipynb"


def _error_cell(output_path: Path):
    """(cell index, first source line, ename, evalue) of the first cell with an error
    output in an executed notebook, counting code cells as they appear in the source
    notebook (papermill's injected cells excluded)."""
    nb = _read_notebook(output_path)
    index = -1
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type != "code" or "injected-parameters" in tags:
            continue
        index += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
                return index, first, out.get("ename", ""), out.get("evalue", "")
    return None


def execute_notebook(job: NotebookJob, out_dir: Path, kernel_name: str, cwd: Path,
                     log=print) -> Path:
    """Run one validated notebook with papermill into ``out_dir/job.output_name``."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / job.output_name
    start = time.perf_counter()
    log(f"[pipeline] {job.output_name} ...")
    try:
        papermill.execute_notebook(
            str(job.source), str(output), parameters=job.parameters, kernel_name=kernel_name,
            cwd=str(cwd), progress_bar=False, log_output=False,
        )
    except PapermillExecutionError as exc:
        where = _error_cell(output) if output.exists() else None
        if where is not None:
            cell, line, ename, evalue = where
            what = f"code cell {cell} ({line.strip()[:80]!r})"
        else:
            cell, ename, evalue = exc.cell_index, exc.ename, exc.evalue
            what = f"cell {cell}"
        raise PipelineError(
            f"notebook {job.notebook} failed in {what}: {ename}: {evalue}\n"
            f"the executed notebook with the error is kept at {output}"
        ) from None
    except Exception as exc:  # kernel death, timeouts: papermill raises assorted types
        raise PipelineError(
            f"notebook {job.notebook} could not be executed ({type(exc).__name__}: {exc}); "
            f"partial output at {output}"
        ) from None
    log(f"[pipeline] {job.output_name} done in {time.perf_counter() - start:.1f} s")
    return output


def default_workers() -> int:
    """Notebooks run at the same time by default: 2 when the machine has 2 or more cores
    (the pipeline's stages hold at most a few independent notebooks), else 1."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _threads_env(concurrent: int) -> dict[str, str]:
    """Environment for kernels started while ``concurrent`` notebooks run at once: the
    cores split between them (OMP_NUM_THREADS, read by torch at import), unless the
    user set OMP_NUM_THREADS."""
    if concurrent <= 1 or "OMP_NUM_THREADS" in os.environ:
        return {}
    return {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // concurrent))}


def run_notebooks(jobs: list[NotebookJob], out_dir: Path, cwd: Path | None = None,
                  kernel_name: str | None = None, workers: int = 1, log=print) -> list[dict]:
    """Validate every job's parameters first, then execute the jobs stage by stage
    (``NotebookJob.stage``); within a stage up to ``workers`` notebooks run at the same
    time, each kernel with its share of the cores. Returns one record per notebook
    (name, output, seconds) in job order. A failure stops the pipeline once the
    notebooks already running in its stage have ended (their executed copies are kept)."""
    from concurrent.futures import ThreadPoolExecutor

    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an int >= 1 (notebooks run at the same time), got {workers!r}")
    declared_cache: dict[Path, dict] = {}
    for job in jobs:
        if job.source not in declared_cache:
            declared_cache[job.source] = notebook_parameters(job.source)
        job.parameters = validate_parameters(job.source, job.parameters, declared_cache[job.source])
    kernel = kernel_name or ensure_kernel()
    cwd = Path(cwd or project_root()).resolve()
    out_dir = Path(out_dir).resolve()
    records: dict[int, dict] = {}

    def one(i: int) -> None:
        start = time.perf_counter()
        output = execute_notebook(jobs[i], out_dir, kernel, cwd, log=log)
        records[i] = {"notebook": jobs[i].notebook, "output": str(output), "parameters": jobs[i].parameters,
                      "seconds": round(time.perf_counter() - start, 2)}

    # papermill changes the process's working directory to ``cwd`` while a notebook runs;
    # with every job sharing one cwd, and the process already there, concurrent jobs agree.
    before = os.getcwd()
    os.chdir(cwd)
    try:
        for stage in sorted({job.stage for job in jobs}):
            members = [i for i, job in enumerate(jobs) if job.stage == stage]
            n = min(workers, len(members))
            env = _threads_env(n)
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                if n == 1:
                    for i in members:
                        one(i)
                else:
                    with ThreadPoolExecutor(max_workers=n) as pool:
                        futures = [pool.submit(one, i) for i in members]
                    errors = [f.exception() for f in futures if f.exception() is not None]
                    if errors:
                        raise errors[0]
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
    finally:
        os.chdir(before)
    return [records[i] for i in sorted(records)]


# ============================================================================ run_pipeline


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
                raise PipelineError(f"unknown parameter {name!r}: no notebook declares it; known parameters: {', '.join(known)}")
        if name in _PIPELINE_OWNED:
            raise PipelineError(
                f"parameter {name!r} is set by the pipeline itself; use the options --preset, --dataset, "
                "--root, --seed, --methods, --out or --run-id instead"
            )
        for nb in targets:
            routed[nb][name] = value
    return routed


def plan_pipeline(run_root: Path, preset: str = "quick", dataset: str = "synthfer", root: str | None = None,
                  params: dict | None = None, methods=("ce", "tan"), seed: int = 0) -> list[NotebookJob]:
    """The notebook jobs of one pipeline run (parameters not yet validated)."""
    if preset not in SCALES:
        raise ConfigError(f"preset={preset!r} is not allowed; choose one of {', '.join(SCALES)}")
    methods = list(methods)
    if not methods:
        raise ConfigError("methods must name at least one method")
    from .config import METHODS

    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ConfigError(f"unknown method(s) {bad}; choose from {', '.join(METHODS)}")
    declared = {nb: notebook_parameters(notebook_dir() / f"{nb}.ipynb") for nb in NOTEBOOKS}
    routed = _route_params(dict(params or {}), declared)
    if root is None:
        if dataset != "synthfer":
            raise ConfigError(f"dataset={dataset!r} needs --root (the folder holding the dataset)")
        root = SYNTHFER_DEFAULTS[preset]["root"]
    base = {"run_root": str(run_root), "dataset": dataset, "root": str(project_path(root)), "preset": preset,
            "seed": seed}

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
    from .config import preset as make_config

    for job in jobs:
        overrides = (job.parameters.get("overrides") or {}) if job.notebook == "02_train" else {}
        if overrides.get("pretrained", "scratch") in ("scratch", "imagenet"):
            continue
        config = make_config(job.parameters["method"], job.parameters["preset"], **overrides)
        if config.pretrained == "synthface":
            from .engine.pretrain import ensure_synthface

            ensure_synthface(config.backbone, log=log)
        elif not project_path(config.pretrained).is_file():
            from .errors import CheckpointError

            raise CheckpointError(f"pretrained={config.pretrained!r} (02_train's overrides): "
                                  f"{project_path(config.pretrained)} does not exist; pass the path of a weights "
                                  "file, 'synthface', 'imagenet' or 'scratch'")


def run_pipeline(preset: str = "quick", dataset: str = "synthfer", root: str | None = None,
                 params: dict | None = None, methods=("ce", "tan"), out: str = "reports/runs",
                 run_id: str | None = None, seed: int = 0, latest: str | None = "reports/latest",
                 resume: bool = False, workers: int | None = None, log=print) -> Path:
    """Run the five notebooks into ``<out>/<run_id>/`` and refresh ``<latest>/REPORT.md``.

    ``params``: extra notebook parameters, ``name`` for every notebook that declares it
    or ``NN_notebook.name`` for one. All parameters of all notebooks are validated
    before the first notebook starts. ``resume=True`` continues an interrupted run with
    the same ``run_id`` and settings: the notebooks run again, finished training runs are
    reused and partial ones resume from their ``last.pt``. ``workers``: notebooks of one
    stage run at the same time (default ``default_workers()``; 1 runs them one by one).
    Returns the run folder.
    """
    from .report import write_report

    out_dir = project_path(out)
    run_id = run_id or time.strftime("%Y%m%d-%H%M%S") + f"-{preset}"
    if not re.fullmatch(r"[A-Za-z0-9._-]+", run_id):
        raise ConfigError(f"run_id={run_id!r} may only hold letters, digits, '.', '_' and '-'")
    run_root = out_dir / run_id
    jobs = plan_pipeline(run_root, preset, dataset, root, params, methods, seed)
    for job in jobs:  # validate everything before anything runs
        job.parameters = validate_parameters(job.source, job.parameters)
    record = {"run_id": run_id, "preset": preset, "dataset": dataset, "methods": list(methods), "seed": seed,
              "params": params or {}, "notebooks": [], "status": "running"}
    manifest = run_root / "pipeline.json"
    if run_root.exists() and not resume:
        raise RunDirError(f"{run_root} already exists; pass --resume to continue it, choose another --run-id "
                          "or remove it")
    if resume:
        if not manifest.is_file():
            raise RunDirError(f"cannot resume: {manifest} does not exist (start the run without --resume)")
        before = json.loads(manifest.read_text())
        changed = [k for k in ("preset", "dataset", "methods", "seed", "params") if before.get(k) != record[k]]
        if changed:
            raise RunDirError(f"cannot resume {run_root}: {', '.join(changed)} differ from the interrupted run's "
                              f"({', '.join(f'{k}={before.get(k)!r}' for k in changed)})")
        log(f"[pipeline] resuming {run_root}: finished training runs are reused, partial ones resumed")
    try:
        run_root.mkdir(parents=True, exist_ok=resume)
    except FileExistsError:
        raise RunDirError(f"{run_root} was created by another `tan run` just now; choose another --run-id") from None
    acquire_run_lock(run_root)  # one `tan run` per run folder (a second --resume is refused), released below
    try:
        started = time.perf_counter()
        manifest.write_text(json.dumps(record, indent=2) + "\n")
        try:
            prepare_pretrained(jobs, log=log)
            record["notebooks"] = run_notebooks(jobs, run_root / "notebooks", cwd=project_root(),
                                                workers=default_workers() if workers is None else workers, log=log)
            record["status"] = "ok"
        except TANError as exc:
            record["status"] = f"failed: {exc}"
            raise
        finally:
            record["seconds"] = round(time.perf_counter() - started, 1)
            manifest.write_text(json.dumps(record, indent=2, default=str) + "\n")
    finally:
        release_run_lock(run_root)
    if latest:
        report = write_report(project_path(latest), run_root=run_root, runs_from=[run_root], replace=True)
        log(f"[pipeline] report: {report}")
    log(f"[pipeline] finished in {record['seconds']:.1f} s: {run_root}")
    return run_root


# ============================================================================ training runs


def run_is_complete(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a finished run: ``tanlib.engine.rundir.run_is_complete``,
    the one rule (re-exported here for the notebooks and the sweep)."""
    from .engine.rundir import run_is_complete as complete

    return complete(run_dir)


def ensure_run(config, run_dir: str | os.PathLike, overwrite: bool = False, log=print) -> Path:
    """Train ``config`` into ``run_dir`` unless a finished run is already there.

    Finished (complete ``metrics.json``): nothing is trained. Partial (a ``last.pt``
    exists): ``train(..., resume=True)``. Otherwise a fresh run. A finished run whose
    ``config.json`` differs from ``config`` raises ``RunDirError`` (pass ``overwrite``).
    """
    from .engine import train

    run_dir = Path(run_dir)
    if overwrite:
        return Path(train(config, run_dir, overwrite=True))
    if run_is_complete(run_dir):
        _check_same_config(config, run_dir)
        log(f"[run] {run_dir.name}: finished already, skipped")
        return run_dir
    if (run_dir / "last.pt").is_file():
        _check_same_config(config, run_dir)
        log(f"[run] {run_dir.name}: resuming from last.pt")
        return Path(train(config, run_dir, resume=True))
    return Path(train(config, run_dir, overwrite=run_dir.exists()))


def _check_same_config(config, run_dir: Path) -> None:
    path = run_dir / "config.json"
    if not path.is_file():
        return
    diff = config_differences(json.loads(path.read_text()), config.to_dict())
    if diff:
        shown = ", ".join(f"{k}: {a!r} there vs {b!r} asked" for k, (a, b) in list(diff.items())[:5])
        raise RunDirError(f"{run_dir} holds a run of another config ({shown}); use another folder or overwrite")


# ============================================================================ sweeps


@dataclass
class SweepJob:
    method: str
    seed: int
    overrides: dict
    synthfer: dict
    name: str

    def to_dict(self) -> dict:
        return {"method": self.method, "seed": self.seed, "overrides": self.overrides,
                "synthfer": self.synthfer, "name": self.name}


_GRID_KEYS = {"name", "preset", "dataset", "root", "methods", "seeds", "parameters", "synthfer", "data_dir", "slurm"}
_SYNTH_KEYS = {"label_noise", "n_train", "n_test", "size", "seed", "images_per_identity", "occluder_fraction"}


def load_grid(path: str | os.PathLike) -> dict:
    """Read and check a sweep grid (YAML); see ``docs/pipeline.md`` for the format."""
    import yaml

    path = Path(path)
    try:
        grid = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"grid file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"grid file {path} is not valid YAML: {exc}") from None
    if not isinstance(grid, dict):
        raise ConfigError(f"grid file {path}: expected a mapping at the top level")
    unknown = sorted(set(grid) - _GRID_KEYS)
    if unknown:
        raise ConfigError(f"grid file {path}: unknown key(s) {unknown}; allowed: {', '.join(sorted(_GRID_KEYS))}")
    grid.setdefault("name", path.stem)
    grid.setdefault("preset", "quick")
    grid.setdefault("dataset", "synthfer")
    grid.setdefault("seeds", [0])
    grid.setdefault("parameters", {})
    grid.setdefault("synthfer", {})
    if "methods" not in grid or not isinstance(grid["methods"], list) or not grid["methods"]:
        raise ConfigError(f"grid file {path}: 'methods' must be a non-empty list")
    if not isinstance(grid["seeds"], list) or not all(isinstance(s, int) and s >= 0 for s in grid["seeds"]):
        raise ConfigError(f"grid file {path}: 'seeds' must be a list of non-negative ints")
    for key in ("parameters", "synthfer"):
        if not isinstance(grid[key], dict):
            raise ConfigError(f"grid file {path}: '{key}' must map names to lists of values")
        for name, values in grid[key].items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"grid file {path}: {key}.{name} must be a non-empty list of values")
    bad_synth = sorted(set(grid["synthfer"]) - _SYNTH_KEYS)
    if bad_synth:
        raise ConfigError(f"grid file {path}: unknown synthfer setting(s) {bad_synth}; allowed: {', '.join(sorted(_SYNTH_KEYS))}")
    if grid["synthfer"] and grid["dataset"] != "synthfer":
        raise ConfigError(f"grid file {path}: 'synthfer' settings need dataset: synthfer")
    if grid["dataset"] != "synthfer" and not grid.get("root"):
        raise ConfigError(f"grid file {path}: dataset {grid['dataset']!r} needs 'root'")
    grid.setdefault("slurm", {})
    if not isinstance(grid["slurm"], dict):
        raise ConfigError(f"grid file {path}: 'slurm' must map SLURM options to values, e.g. slurm: {{partition: gpu, "
                          "time: 60}}")
    grid["slurm"] = check_slurm_options(grid["slurm"], f"grid file {path}: slurm.")
    return grid


def grid_jobs(grid: dict) -> list[SweepJob]:
    """Every job of a grid: seeds x config parameters x synthfer settings x methods, in a
    fixed order (so shards agree). Seeds are the outer loop, so an interrupted or partial
    sweep holds every method and setting of the first seeds: comparable, if fewer seeds."""
    from .config import preset

    params = grid["parameters"]
    synth = grid["synthfer"]
    jobs = []
    for seed in grid["seeds"]:
        for p_values in itertools.product(*params.values()):
            overrides = dict(zip(params, p_values))
            for s_values in itertools.product(*synth.values()):
                synthfer = dict(zip(synth, s_values))
                for method in grid["methods"]:
                    preset(method, grid["preset"], seed=seed, **overrides)  # validates every key now
                    extra = {**overrides, **{f"synth_{k}": v for k, v in synthfer.items()}}
                    jobs.append(SweepJob(method, seed, overrides, synthfer, run_dir_name(method, seed, extra)))
    return jobs


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"I/N"`` (1 <= I <= N) to ``(I, N)``; None gives ``(1, 1)``."""
    if not text:
        return 1, 1
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ConfigError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. --shard 2/4")
    return int(m.group(1)), int(m.group(2))


def _check_synthfer_settings(root: Path, settings: dict) -> None:
    """Refuse a SynthFER folder generated with other settings (or by an older generator)
    than the ones asked for: its numbers would not be the documented ones."""
    from .data.synthfer import GENERATOR_VERSION, SETTINGS_FILE, synthfer_settings

    wanted = synthfer_settings(**settings)
    path = root / SETTINGS_FILE
    if not path.is_file():
        raise DataError(f"{root} holds a SynthFER dataset made by an older generator (no {SETTINGS_FILE}); "
                        f"this kit generates version {GENERATOR_VERSION}. Remove or rename the folder and it is "
                        "generated again, or point --root elsewhere")
    try:
        have = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not readable JSON ({exc}); remove the folder {root} to generate it again") from None
    differ = [f"{k}: {have.get(k)!r} there, {v!r} wanted" for k, v in wanted.items() if have.get(k) != v]
    if differ:
        raise DataError(f"{root} was generated with other SynthFER settings ({'; '.join(differ)}); remove or "
                        "rename the folder and it is generated again, or point --root elsewhere")


def _generate_atomically(root: Path, settings: dict, check: bool = True) -> Path:
    """Generate SynthFER into ``root`` through a temporary sibling folder renamed at the
    end, so that concurrent callers never see half a dataset. With ``check`` an existing
    dataset is reused only when it was generated with the same settings; without, it is
    used as it is (a folder the user named)."""
    from .data import generate_synthfer

    if (root / "synthfer_meta.csv").is_file():
        if check:
            _check_synthfer_settings(root, settings)
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    generate_synthfer(tmp, **settings)
    try:
        tmp.rename(root)
    except OSError:  # another process finished first (or root exists): keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not (root / "synthfer_meta.csv").is_file():
            raise DataError(f"{root} exists but holds no SynthFER dataset (no synthfer_meta.csv); "
                            "remove it or choose another root") from None
    return root


def ensure_dataset(dataset: str, root: str | os.PathLike, n_train: int = 2500, n_test: int = 700,
                   label_noise: float = 0.1, seed: int = 0) -> Path:
    """The dataset folder, absolute. SynthFER is generated there when the folder does not
    hold it yet; any other dataset must already be in place (see data/README.md). An
    existing SynthFER folder at one of the kit's default locations (``data/synthfer``,
    ``data/synthfer-smoke``) must have been generated with these settings by this
    generator version; one the user points to elsewhere is used as it is."""
    path = project_path(root)
    if dataset == "synthfer":
        default = path in {project_path(v["root"]) for v in SYNTHFER_DEFAULTS.values()}
        return _generate_atomically(path, {"n_train": n_train, "n_test": n_test, "label_noise": label_noise,
                                           "seed": seed}, check=default)
    if not path.exists():
        raise DataError(f"dataset {dataset!r}: folder {path} does not exist; see data/README.md for how to "
                        "obtain and place it")
    return path


def synthfer_root(grid: dict, synthfer: dict) -> Path:
    """The dataset folder of one SynthFER setting, generated once (atomically, so shards
    sharing the folder never see half a dataset)."""
    if not synthfer:  # the grid's root, used as it is unless it is the default location
        root = project_path(grid.get("root") or "data/synthfer")
        return _generate_atomically(root, {}, check=root == project_path("data/synthfer"))
    name = "synthfer-" + "-".join(f"{k}={_slug(v)}" for k, v in sorted(synthfer.items()))
    return _generate_atomically(project_path(grid.get("data_dir", "data")) / name, dict(synthfer))


def run_grid_job(grid: dict, job: SweepJob, runs_dir: str | os.PathLike, log=print, tag: str = "") -> str:
    """Run one job of ``grid`` into ``runs_dir/<job name>/``: the one body of a sweep job,
    whichever executor runs it (``run_sweep``'s loop, a submitit job). A finished run is
    skipped (``"finished"``); one whose lock another process holds is skipped too
    (``"busy"``). Otherwise, under the run's lock, ``job.json`` (the grid settings) is
    written first, then the run is trained, or resumed from ``last.pt`` (``"trained"``),
    so a run killed at any point carries its grid settings. ``tag`` prefixes the name in
    the log lines."""
    from .config import preset
    from .engine.rundir import JOB_FILE

    run_dir = Path(runs_dir) / job.name
    if run_is_complete(run_dir):
        log(f"[sweep] {tag}{job.name}: finished, skipped")
        return "finished"
    root = synthfer_root(grid, job.synthfer) if grid["dataset"] == "synthfer" else project_path(grid["root"])
    config = preset(job.method, grid["preset"], seed=job.seed, dataset=grid["dataset"], root=str(root),
                    progress=False, **job.overrides)
    log(f"[sweep] {tag}{job.name}")
    try:
        with run_lock(run_dir, create=True):  # one writer per run: a job started twice runs once
            (run_dir / JOB_FILE).write_text(json.dumps({**job.to_dict(), "grid": grid["name"]}, indent=2) + "\n")
            ensure_run(config, run_dir, log=log)
    except RunDirBusyError as exc:
        log(f"[sweep] {tag}{job.name}: skipped, another process is writing it ({describe_holder(exc.holder)})")
        return "busy"
    return "trained"


def run_sweep(grid_path: str | os.PathLike, out: str = "reports/sweeps", shard: str | None = None,
              report: bool = True, log=print, executor: str = "local", slurm: dict | None = None) -> Path:
    """Run this shard's jobs of a grid into ``<out>/<grid name>/runs/``; skip finished
    runs and runs another process is writing (their lock is held), resume partial ones;
    when every job of the grid is finished, run 05_report on the sweep folder
    (``<out>/<grid name>/report/``). Returns the sweep folder.

    ``executor``: ``"local"`` runs the jobs here, one after the other; ``"slurm"`` submits
    them through submitit with the grid's ``slurm:`` options updated by ``slurm`` (the
    ``--slurm`` options; ``cluster="local"`` runs them as local processes), waits for
    them, and raises ``PipelineError`` naming every failed run and its stderr file."""
    if slurm and executor != "slurm":
        raise ConfigError(f"--slurm options ({', '.join(slurm)}) need --executor slurm")
    grid = load_grid(grid_path)
    options = {**grid["slurm"], **check_slurm_options(slurm or {}, "--slurm ")}
    check_executor(executor, options)
    jobs = grid_jobs(grid)
    index, count = parse_shard(shard)
    mine = jobs[index - 1::count]
    sweep_dir = project_path(out) / grid["name"]
    runs_dir = sweep_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "grid.json").write_text(json.dumps(grid, indent=2, default=str) + "\n")
    log(f"[sweep] {grid['name']}: {len(jobs)} jobs, shard {index}/{count} runs {len(mine)}, executor {executor}")
    if executor == "local":
        for k, job in enumerate(mine, 1):
            run_grid_job(grid, job, runs_dir, log=log, tag=f"({k}/{len(mine)}) ")
    else:
        failures = run_submitit(grid, mine, runs_dir, sweep_dir / "submitit", options, log=log)
        if failures:
            raise PipelineError(f"{len(failures)} job(s) of {grid_path} failed (no report yet):\n  "
                                + "\n  ".join(failures) + "\nonce the cause is fixed (see each stderr file), run "
                                "the same command again: finished runs are skipped, these resume from their last.pt")
    pending = [j.name for j in jobs if not run_is_complete(runs_dir / j.name)]
    if pending:
        log(f"[sweep] {len(pending)} job(s) not finished yet (other shards, or being written by another process); "
            f"the report is made by `tan sweep --grid {grid_path} --report-only` once they are")
    elif report:
        sweep_report(sweep_dir, log=log)
    return sweep_dir


def sweep_report(sweep_dir: str | os.PathLike, log=print) -> Path:
    """Run 05_report over every run under ``sweep_dir``; the report goes to
    ``sweep_dir/report/`` (REPORT.md, tables, figures, executed notebook)."""
    sweep_dir = Path(sweep_dir)
    report_dir = sweep_dir / "report"
    if report_dir.exists():
        shutil.rmtree(report_dir / "notebooks", ignore_errors=True)
    job = NotebookJob("05_report", {"runs_from": [str(sweep_dir / "runs")], "report_dir": str(report_dir)},
                      "05_report.ipynb")
    run_notebooks([job], report_dir / "notebooks", log=log)
    log(f"[sweep] report: {report_dir / 'REPORT.md'}")
    return report_dir


# ============================================================================ CLI


def _cmd_run(args) -> int:
    params = parse_param_items(args.param)
    if args.set:  # config keys for every training run: merged into 02_train's overrides
        from .config import parse_set

        key = "02_train.overrides" if "02_train.overrides" in params else "overrides"
        if not isinstance(params.get(key, {}), dict):
            raise PipelineError(f"-p {key}=... must be a JSON object to be combined with --set")
        params[key] = {**params.get(key, {}), **parse_set(args.set)}
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    run_pipeline(preset=args.preset, dataset=args.dataset, root=args.root, params=params, methods=methods,
                 out=args.out, run_id=args.run_id, seed=args.seed, resume=args.resume, workers=args.jobs)
    print(f"report: {project_path('reports/latest') / 'REPORT.md'}")
    return 0


def _cmd_sweep(args) -> int:
    if args.report_only:
        grid = load_grid(args.grid)
        sweep_dir = project_path(args.out) / grid["name"]
        pending = [j.name for j in grid_jobs(grid) if not run_is_complete(sweep_dir / "runs" / j.name)]
        if pending:
            raise RunDirError(f"{len(pending)} job(s) of {args.grid} are not finished, e.g. {pending[0]}; "
                              "run the remaining shards first")
        sweep_report(sweep_dir)
        return 0
    run_sweep(args.grid, out=args.out, shard=args.shard, report=not args.no_report, executor=args.executor,
              slurm=parse_slurm_items(args.slurm))
    return 0


def register(subparsers) -> None:
    """Add ``tan run`` and ``tan sweep`` to the ``tan`` command."""
    p = subparsers.add_parser("run", help="run the notebooks 01-05 with papermill and refresh reports/latest/REPORT.md",
                              description="Execute notebooks 01_data, 02_train and 03_evaluate (per method), "
                              "04_embeddings and 05_report into <out>/<run_id>/ and refresh reports/latest/REPORT.md.")
    p.add_argument("--preset", default="quick", choices=SCALES, help="scale preset (default: quick)")
    p.add_argument("--dataset", default="synthfer", help="synthfer (default), rafdb, ferplus or folder")
    p.add_argument("--root", default=None, help="dataset folder (default for synthfer: data/synthfer, "
                   "data/synthfer-smoke with --preset smoke; generated when missing)")
    p.add_argument("--methods", default="ce,tan", help="comma-separated methods to train (default: ce,tan)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                   help="notebook parameter (JSON value); NAME for every notebook declaring it, "
                   "NN_notebook.NAME for one; repeatable")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config key for every training run, as `tan train --set` (merged into 02_train's "
                   "overrides), e.g. --set pretrained=synthface; repeatable")
    p.add_argument("--out", default="reports/runs", help="folder of pipeline runs (default: reports/runs)")
    p.add_argument("--run-id", default=None, help="name of this run's folder (default: date-time-preset)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run with the same --run-id (training runs resume or are reused)")
    p.add_argument("-j", "--jobs", type=int, default=None,
                   help="notebooks run at the same time within a stage (training of each method; evaluation and "
                   "embeddings), the cores split between them (default: 2 on 2+ cores; 1 = one by one)")
    p.set_defaults(func=_cmd_run)

    s = subparsers.add_parser("sweep", help="train methods x seeds x parameters from a YAML grid",
                              description="Run a grid of training runs (see grids/*.yaml); finished runs are "
                              "skipped, partial ones resumed; --shard I/N takes every N-th job; --executor slurm "
                              "submits them to SLURM through submitit (docs/scale.md).")
    s.add_argument("--grid", required=True, help="grid YAML file, e.g. grids/ablation.yaml")
    s.add_argument("--shard", default=None, metavar="I/N", help="run jobs I, I+N, I+2N, ... (1-based)")
    s.add_argument("--out", default="reports/sweeps", help="folder of sweeps (default: reports/sweeps)")
    s.add_argument("--no-report", action="store_true", help="do not run 05_report when the grid is finished")
    s.add_argument("--report-only", action="store_true", help="only run 05_report over a finished sweep")
    s.add_argument("--executor", default="local", choices=EXECUTORS,
                   help="local: run the jobs here, one after the other (default); slurm: one submitit job per run, "
                   "waited for; ray: not provided (docs/scale.md says why)")
    s.add_argument("--slurm", action="append", metavar="KEY=VALUE",
                   help=f"SLURM option for --executor slurm, repeatable, over the grid's slurm: section; keys: "
                   f"{', '.join(SLURM_KEYS)} (cluster=local runs the jobs through submitit on this machine)")
    s.set_defaults(func=_cmd_sweep)


__all__ = [
    "NOTEBOOKS", "NotebookJob", "SweepJob", "default_workers", "ensure_dataset", "ensure_kernel", "ensure_run", "execute_notebook", "grid_jobs",
    "load_grid", "notebook_parameters", "parse_param_items", "parse_shard", "plan_pipeline", "project_path",
    "project_root", "register", "run_dir_name", "run_grid_job", "run_is_complete", "run_notebooks", "run_pipeline",
    "run_sweep", "sweep_report", "validate_parameters", "prepare_pretrained",
]
