"""``tan sweep``: a YAML grid of training runs (docs/pipeline.md, docs/scale.md).

``run_sweep`` runs methods x seeds x config parameters x SynthFER generator settings
from a grid, skipping finished runs, resuming partial ones, every N-th job with
``--shard I/N``, and the 05_report notebook over the whole sweep folder once every job
is finished. The jobs run here one after the other (``--executor local``) or as
submitit jobs (``--executor slurm``, ``tanlib.executors``); either way each runs
``run_grid_job``, the one body of a sweep job: under its run directory's lock (a job
that another process, an overlapping shard or a requeued copy, is writing is skipped,
so a job started twice runs once) it writes ``job.json`` (the grid settings) and then
trains or resumes the run (``engine.rundir.ensure_run``).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..config import preset
from ..data.prepare import SYNTHFER_DEFAULTS, generate_atomically
from ..data.synthfer import synthfer_settings
from ..engine.rundir import JOB_FILE, check_same_config, ensure_run, run_is_complete
from ..errors import ConfigError, PipelineError, RunDirBusyError, RunDirError
from ..executors import check_executor, check_slurm_options, run_submitit
from ..paths import project_path, run_dir_name, slug
from ..runlock import describe_holder, run_lock
from .notebooks import NotebookJob, run_notebooks


@dataclass
class SweepJob:
    method: str
    seed: int
    overrides: dict
    synthfer: dict
    name: str

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "seed": self.seed,
            "overrides": self.overrides,
            "synthfer": self.synthfer,
            "name": self.name,
        }


_GRID_KEYS = {"name", "preset", "dataset", "root", "methods", "seeds", "parameters", "synthfer", "data_dir", "slurm"}
#: SynthFER generator settings a grid may vary (``generate_synthfer``'s keywords).
_SYNTH_KEYS = set(synthfer_settings()) - {"generator_version"}


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
        raise ConfigError(
            f"grid file {path}: unknown synthfer setting(s) {bad_synth}; allowed: {', '.join(sorted(_SYNTH_KEYS))}"
        )
    if grid["synthfer"] and grid["dataset"] != "synthfer":
        raise ConfigError(f"grid file {path}: 'synthfer' settings need dataset: synthfer")
    if grid["dataset"] != "synthfer" and not grid.get("root"):
        raise ConfigError(f"grid file {path}: dataset {grid['dataset']!r} needs 'root'")
    grid.setdefault("slurm", {})
    if not isinstance(grid["slurm"], dict):
        raise ConfigError(
            f"grid file {path}: 'slurm' must map SLURM options to values, e.g. slurm: {{partition: gpu, time: 60}}}}"
        )
    grid["slurm"] = check_slurm_options(grid["slurm"], f"grid file {path}: slurm.")
    return grid


def grid_jobs(grid: dict) -> list[SweepJob]:
    """Every job of a grid: seeds x config parameters x synthfer settings x methods, in a
    fixed order (so shards agree). Seeds are the outer loop, so an interrupted or partial
    sweep holds every method and setting of the first seeds: comparable, if fewer seeds."""
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


def synthfer_location(grid: dict, synthfer: dict) -> tuple[Path, dict, bool]:
    """Where one SynthFER setting of ``grid`` lives, the generator settings it is made with,
    and whether an existing folder must hold exactly those (``generate_atomically``'s
    ``check``); nothing is generated. The grid's scale decides the base: its default folder
    and size (``SYNTHFER_DEFAULTS``: ``calibrated`` has a larger SynthFER of its own), and the
    grid's ``synthfer`` settings go over it, each setting in a folder named after the base and
    the settings (``data/synthfer-label_noise=0.3``, ``data/synthfer-calibrated-label_noise=0.3``)."""
    # smoke grids (the tests' and the docs' toy sweeps) draw at the default SynthFER's size
    base = dict(SYNTHFER_DEFAULTS["quick" if grid["preset"] == "smoke" else grid["preset"]])
    default_root = project_path(base.pop("root"))
    sizes = {k.removeprefix("synth_"): v for k, v in base.items()}
    if not synthfer:  # the grid's root, used as it is unless it is the scale's default location
        root = project_path(grid.get("root") or default_root)
        return root, (sizes if root == default_root else {}), root == default_root
    name = default_root.name + "-" + "-".join(f"{k}={slug(v)}" for k, v in sorted(synthfer.items()))
    return project_path(grid.get("data_dir", "data")) / name, {**sizes, **synthfer}, True


def synthfer_root(grid: dict, synthfer: dict) -> Path:
    """The dataset folder of one SynthFER setting (``synthfer_location``), generated once
    (atomically, so shards sharing the folder never see half a dataset)."""
    root, settings, check = synthfer_location(grid, synthfer)
    return generate_atomically(root, settings, check=check)


def job_config(grid: dict, job: SweepJob, generate: bool = True):
    """The config of one job of ``grid``; its SynthFER setting is generated when missing,
    unless not ``generate`` (the config names the folder all the same)."""
    if grid["dataset"] != "synthfer":
        root = project_path(grid["root"])
    else:
        root = synthfer_root(grid, job.synthfer) if generate else synthfer_location(grid, job.synthfer)[0]
    return preset(
        job.method,
        grid["preset"],
        seed=job.seed,
        dataset=grid["dataset"],
        root=str(root),
        progress=False,
        **job.overrides,
    )


def is_recorded(grid: dict, job: SweepJob, records: str | os.PathLike) -> bool:
    """Whether ``records`` holds this job's record (``holds_record``, with the index covering
    ``records`` when there is one; the same config by ``config_vs_record``): such a job is not
    trained again, even where its run directory is gone (a new machine, a cleaned folder), so
    the records are what a grid trained over many sittings resumes from. Generates no data: the
    job's SynthFER settings are compared with the record's ``data.json``. A record of the job's
    name with another config is refused (``RunDirError``), as ``save_record`` would refuse it."""
    from ..data.synthfer import synthfer_settings
    from ..report.records import config_vs_record, dataset_settings, holds_record, index_file_for

    record = Path(records) / job.name
    if not holds_record(record, index_file_for(records) if Path(records).is_dir() else None):
        return False
    config = job_config(grid, job, generate=False).to_dict()
    if grid["dataset"] == "synthfer":
        _, settings, check = synthfer_location(grid, job.synthfer)
        expected = synthfer_settings(**settings) if check else dataset_settings(config)
    else:
        expected = {}
    changed = config_vs_record(record, config, expected)
    if changed:
        keys = ", ".join(f"{k}: {a!r} there, {b!r} in the grid" for k, (a, b) in changed.items())
        raise RunDirError(
            f"sweep job {job.name}: {record} holds the record of a run with another config ({keys}); rename that "
            "record or record this grid elsewhere"
        )
    return True


def run_grid_job(grid: dict, job: SweepJob, runs_dir: str | os.PathLike, log=print, tag: str = "") -> str:
    """Run one job of ``grid`` into ``runs_dir/<job name>/``: the one body of a sweep job,
    whichever executor runs it (``run_sweep``'s loop, a submitit job). A finished run is
    skipped (``"finished"``); one whose lock another process holds is skipped too
    (``"busy"``). Otherwise, under the run's lock, ``job.json`` (the grid settings) is
    written first, then the run is trained, or resumed from ``last.pt`` (``"trained"``),
    so a run killed at any point carries its grid settings. ``tag`` prefixes the name in
    the log lines."""
    run_dir = Path(runs_dir) / job.name
    if run_is_complete(run_dir):
        # the same config, or it is refused: a preset that changed since the run is not skipped silently
        config_file = run_dir / "config.json"
        if config_file.is_file():
            root = json.loads(config_file.read_text()).get("root")  # the data is in the job's name: not generated
            kw = dict(seed=job.seed, dataset=grid["dataset"], root=root, **job.overrides)
            try:
                check_same_config(preset(job.method, grid["preset"], **kw), run_dir)
            except RunDirError as exc:
                raise RunDirError(
                    f"sweep job {job.name} is finished with another config than the grid's now: {exc}. Move that "
                    "run away to train the grid's config"
                ) from None
        log(f"[sweep] {tag}{job.name}: finished, skipped")
        return "finished"
    config = job_config(grid, job)
    log(f"[sweep] {tag}{job.name}")
    try:
        with run_lock(run_dir, create=True):  # one writer per run: a job started twice runs once
            (run_dir / JOB_FILE).write_text(json.dumps({**job.to_dict(), "grid": grid["name"]}, indent=2) + "\n")
            ensure_run(config, run_dir, log=log)
    except RunDirBusyError as exc:
        log(f"[sweep] {tag}{job.name}: skipped, another process is writing it ({describe_holder(exc.holder)})")
        return "busy"
    return "trained"


def run_sweep(
    grid_path: str | os.PathLike,
    out: str = "reports/sweeps",
    shard: str | None = None,
    report: bool = True,
    log=print,
    executor: str = "local",
    slurm: dict | None = None,
    on_finished=None,
    records: str | os.PathLike | None = None,
) -> Path:
    """Run this shard's jobs of a grid into ``<out>/<grid name>/runs/``; skip finished
    runs and runs another process is writing (their lock is held), resume partial ones;
    when every job of the grid is finished, run 05_report on the sweep folder
    (``<out>/<grid name>/report/``). Returns the sweep folder.

    ``executor``: ``"local"`` runs the jobs here, one after the other; ``"slurm"`` submits
    them through submitit with the grid's ``slurm:`` options updated by ``slurm`` (the
    ``--slurm`` options; ``cluster="local"`` runs them as local processes), waits for
    them, and raises ``PipelineError`` naming every failed run and its stderr file.

    ``on_finished(run_dir)`` is called for every run of this shard that is finished, as
    soon as its job ends (skipped finished runs included): ``tan sweep --record`` and
    ``tan verdict`` record each run there, not once the grid is done. With ``records``, a job
    whose record is already there (``is_recorded``) is skipped without its run directory."""
    if slurm and executor != "slurm":
        raise ConfigError(f"--slurm options ({', '.join(slurm)}) need --executor slurm")
    grid = load_grid(grid_path)
    options = {**grid["slurm"], **check_slurm_options(slurm or {}, "--slurm ")}
    check_executor(executor, options)
    jobs = grid_jobs(grid)
    index, count = parse_shard(shard)
    mine = jobs[index - 1 :: count]
    sweep_dir = project_path(out) / grid["name"]
    runs_dir = sweep_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "grid.json").write_text(json.dumps(grid, indent=2, default=str) + "\n")
    log(f"[sweep] {grid['name']}: {len(jobs)} jobs, shard {index}/{count} runs {len(mine)}, executor {executor}")
    recorded = set()  # jobs recorded in ``records`` whose run directory is not here: not trained again
    if records is not None:
        recorded = {j.name for j in mine if not run_is_complete(runs_dir / j.name) and is_recorded(grid, j, records)}
        for name in sorted(recorded):
            log(f"[sweep] {name}: recorded in {records}, skipped")
        mine = [j for j in mine if j.name not in recorded]
        # other shards' jobs recorded there are not pending either (their config is checked by their shard)
        recorded |= {j.name for j in jobs if (Path(records) / j.name / "metrics.json").is_file()}
    unrecorded: list[str] = []

    def finished(run_dir: Path) -> None:  # on_finished, guarded: its failure never stops the other jobs
        if on_finished is None or not run_is_complete(run_dir):
            return
        try:
            on_finished(run_dir)
        except Exception as exc:  # noqa: BLE001 - the run is intact; named at the end, never a lost sweep
            unrecorded.append(f"{run_dir.name}: {exc}")
            log(f"[sweep] {run_dir.name}: finished, but not recorded: {exc}")

    failures = []
    if executor == "local":
        for k, job in enumerate(mine, 1):
            run_grid_job(grid, job, runs_dir, log=log, tag=f"({k}/{len(mine)}) ")
            finished(runs_dir / job.name)
    else:
        failures = run_submitit(grid, mine, runs_dir, sweep_dir / "submitit", options, log=log, on_finished=finished)
    problems = []
    if failures:
        problems.append(
            f"{len(failures)} job(s) of {grid_path} failed (no report yet):\n  " + "\n  ".join(failures) + "\nonce "
            "the cause is fixed (see each stderr file), run the same command again: finished runs are skipped, "
            "these resume from their last.pt"
        )
    if unrecorded:
        problems.append(
            f"{len(unrecorded)} finished run(s) of {grid_path} were not recorded (the runs are intact; record them "
            "with tan record once the cause is fixed):\n  " + "\n  ".join(unrecorded)
        )
    if problems:
        raise PipelineError("\n".join(problems))
    pending = [j.name for j in jobs if not run_is_complete(runs_dir / j.name) and j.name not in recorded]
    only_recorded = [name for name in recorded if not run_is_complete(runs_dir / name)]
    if only_recorded and report and not pending:
        log(
            f"[sweep] no report: {len(only_recorded)} job(s) are recorded in {records} without their run directory "
            "here, and the sweep report gathers run directories; the records are the results"
        )
        return sweep_dir
    if pending:
        log(
            f"[sweep] {len(pending)} job(s) not finished yet (other shards, or being written by another process); "
            f"the report is made by `tan sweep --grid {grid_path} --report-only` once they are"
        )
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
    job = NotebookJob(
        "05_report", {"runs_from": [str(sweep_dir / "runs")], "report_dir": str(report_dir)}, "05_report.ipynb"
    )
    run_notebooks([job], report_dir / "notebooks", log=log)
    log(f"[sweep] report: {report_dir / 'REPORT.md'}")
    return report_dir


__all__ = [
    "SweepJob",
    "grid_jobs",
    "is_recorded",
    "job_config",
    "load_grid",
    "parse_shard",
    "run_grid_job",
    "run_sweep",
    "sweep_report",
    "synthfer_location",
    "synthfer_root",
]
