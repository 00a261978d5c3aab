"""Notebooks as pipeline steps: their ``parameters`` cell, validated parameters, the
kernel, and papermill execution (docs/pipeline.md).

- ``notebook_parameters`` reads a notebook's ``parameters`` cell (the first code cell,
  tagged ``parameters``) into ``{name: default}`` and checks it holds only ``name =
  <flat JSON literal>`` lines.
- ``validate_parameters`` checks parameters against a notebook *before* anything runs:
  unknown names and values whose JSON type differs from the default's raise
  ``PipelineError`` naming the notebook and the parameter (papermill alone only warns).
- ``execute_notebook`` runs one notebook with papermill, always with an explicit
  ``kernel_name`` (a kernelspec ``tanlib`` that runs this very interpreter, installed
  into ``sys.prefix`` when missing, ``ensure_kernel``) and ``cwd``; a failing notebook
  raises ``PipelineError`` naming the notebook, the cell and the exception, and its
  executed copy, error included, is kept. The kernel talks to papermill over local IPC
  sockets in a private folder (``kernel_transport``), not TCP, so it has nothing to warn
  about; it is shut down without the SIGINT jupyter_client sends first
  (``quiet_kernel_manager``); its stderr is left alone (a crashing kernel's traceback
  still shows).
- ``run_notebooks`` runs jobs stage by stage, the notebooks of one stage two at a time
  by default, the cores split between their kernels.
"""

from __future__ import annotations

import ast
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import parse_key_values
from ..errors import ConfigError, PipelineError
from ..paths import notebook_dir, project_root

NOTEBOOKS = ("01_data", "02_train", "03_evaluate", "04_embeddings", "05_report")
KERNEL_NAME = "tanlib"


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
        raise PipelineError(
            f"notebook {path.name}, parameters cell: syntax error line {exc.lineno}: {exc.msg}"
        ) from None
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


def validate_parameters(
    notebook: str | os.PathLike, params: dict[str, Any], declared: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Check ``params`` against the notebook's parameters cell; return them with float
    parameters given as ints converted. Raises ``PipelineError`` naming the notebook and
    the parameter on an unknown name or a JSON type that differs from the default's."""
    path = Path(notebook)
    declared = notebook_parameters(path) if declared is None else declared
    out = {}
    for name, value in params.items():
        if name not in declared:
            raise PipelineError(
                f"notebook {path.name}: unknown parameter {name!r}; its parameters are: {', '.join(sorted(declared))}"
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
    return parse_key_values(items, "-p", "-p n_mistakes=8", PipelineError)


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


@contextmanager
def kernel_transport():
    """papermill engine keyword arguments that make the kernel listen on IPC (Unix
    domain) sockets in a fresh private folder, removed afterwards.

    Why: over TCP (jupyter_client's default) ipykernel prints, for every kernel,
    ``[IPKernelApp] WARNING | Kernel is running over TCP without encryption...`` to
    stderr: read as a security problem in the kit, and it buries the pipeline's own lines.
    IPC sockets are files only this user can reach, so there is nothing to warn about.
    The folder is per kernel: jupyter_client's default IPC name (``kernel-ipc`` in the
    working directory, the project root here) would leave socket files there after a kill
    and let two kernels of one stage race for the same names. Windows has no IPC
    transport: there the kernel keeps TCP (and its warning)."""
    if os.name == "nt":
        yield {}
        return
    import shutil
    import tempfile

    from traitlets.config import Config

    folder = tempfile.mkdtemp(prefix="tan-kernel-")
    try:
        yield {"config": Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(folder, "k")}})}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def quiet_kernel_manager():
    """The kernel manager class papermill starts kernels with: jupyter_client's
    ``AsyncKernelManager``, except that shutting a kernel down sends no SIGINT first.

    Why: ``shutdown_kernel`` interrupts the kernel before its shutdown request. When the
    signal lands while the kernel still handles the last cell's messages (likely on a
    loaded machine, after a failing cell), ipykernel logs ``[IPKernelApp] ERROR |
    KeyboardInterrupt caught in kernel.`` under the pipeline's own error, which reads as
    a second failure. A notebook's kernel is idle when papermill shuts it down (it waited
    for the last reply), and the shutdown request, handled on ipykernel's control thread,
    ends it; a kernel that does not answer is still killed after the wait."""
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if getattr(self, "shutting_down", False):
                return
            await super()._async_interrupt_kernel()

    return QuietKernelManager


def execute_notebook(job: NotebookJob, out_dir: Path, kernel_name: str, cwd: Path, log=print) -> Path:
    """Run one validated notebook with papermill into ``out_dir/job.output_name``."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / job.output_name
    start = time.perf_counter()
    log(f"[pipeline] {job.output_name} ...")
    try:
        with kernel_transport() as transport:
            papermill.execute_notebook(
                str(job.source),
                str(output),
                parameters=job.parameters,
                kernel_name=kernel_name,
                cwd=str(cwd),
                progress_bar=False,
                log_output=False,
                kernel_manager_class=quiet_kernel_manager(),
                **transport,
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
            f"notebook {job.notebook} could not be executed ({type(exc).__name__}: {exc}); partial output at {output}"
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


def run_notebooks(
    jobs: list[NotebookJob],
    out_dir: Path,
    cwd: Path | None = None,
    kernel_name: str | None = None,
    workers: int = 1,
    log=print,
) -> list[dict]:
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
        records[i] = {
            "notebook": jobs[i].notebook,
            "output": str(output),
            "parameters": jobs[i].parameters,
            "seconds": round(time.perf_counter() - start, 2),
        }

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


__all__ = [
    "KERNEL_NAME",
    "NOTEBOOKS",
    "NotebookJob",
    "default_workers",
    "ensure_kernel",
    "execute_notebook",
    "kernel_transport",
    "notebook_parameters",
    "parse_param_items",
    "quiet_kernel_manager",
    "run_notebooks",
    "validate_parameters",
]
