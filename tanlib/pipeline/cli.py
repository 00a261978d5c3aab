"""``tan run`` and ``tan sweep``: argument parsing only; the work is in ``run`` and
``sweep`` (docs/pipeline.md)."""

from __future__ import annotations

from pathlib import Path

from ..config import SCALES, parse_set
from ..engine.rundir import run_is_complete
from ..errors import ConfigError, PipelineError, RunDirError
from ..executors import EXECUTORS, SLURM_KEYS, parse_slurm_items
from ..paths import project_path
from .notebooks import parse_param_items
from .run import run_pipeline
from .sweep import grid_jobs, load_grid, run_sweep, sweep_report


def _cmd_run(args) -> int:
    params = parse_param_items(args.param)
    if args.set:  # config keys for every training run: merged into 02_train's overrides
        key = "02_train.overrides" if "02_train.overrides" in params else "overrides"
        if not isinstance(params.get(key, {}), dict):
            raise PipelineError(f"-p {key}=... must be a JSON object to be combined with --set")
        params[key] = {**params.get(key, {}), **parse_set(args.set)}
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    run_pipeline(
        preset=args.preset,
        dataset=args.dataset,
        root=args.root,
        params=params,
        methods=methods,
        out=args.out,
        run_id=args.run_id,
        seed=args.seed,
        latest=args.latest,
        resume=args.resume,
        workers=args.jobs,
    )
    print(f"report: {project_path(args.latest) / 'REPORT.md'}")
    return 0


def _cmd_sweep(args) -> int:
    if args.report_only:
        if args.record:
            raise ConfigError("tan sweep --report-only records nothing: drop --record, or use tan record")
        grid = load_grid(args.grid)
        sweep_dir = project_path(args.out) / grid["name"]
        pending = [j.name for j in grid_jobs(grid) if not run_is_complete(sweep_dir / "runs" / j.name)]
        if pending:
            raise RunDirError(
                f"{len(pending)} job(s) of {args.grid} are not finished, e.g. {pending[0]}; "
                "run the remaining shards first"
            )
        sweep_report(sweep_dir)
        return 0
    record_to = project_path(args.record) if args.record else None  # as --out: from the project root
    run_sweep(
        args.grid,
        out=args.out,
        shard=args.shard,
        report=not args.no_report,
        executor=args.executor,
        slurm=parse_slurm_items(args.slurm),
        on_finished=_recorder(record_to) if record_to else None,
        records=record_to,
    )
    return 0


def _recorder(dest: Path):
    """``--record DEST``: each finished run recorded into DEST once, as its job ends
    (``save_record(once=True)``), indexed as ``tan record --out DEST`` does; refused before any
    training when the tree has uncommitted changes under tanlib/ (no run could be recorded)."""
    from ..engine.rundir import require_clean_tree
    from ..report.records import default_index, save_record

    require_clean_tree(
        f"no run of this sweep could be recorded (--record {dest}). Commit first, or sweep without --record "
        "and record with tan record --allow-dirty"
    )

    def record(run: Path) -> None:
        target = save_record(run, dest, index=default_index(dest), once=True)
        if target is not None:
            print(f"[sweep] recorded {run.name} -> {target}")

    return record


def register(subparsers) -> None:
    """Add ``tan run`` and ``tan sweep`` to the ``tan`` command."""
    p = subparsers.add_parser(
        "run",
        help="run the notebooks 01-05 with papermill and refresh reports/latest/REPORT.md",
        description="Execute notebooks 01_data, 02_train and 03_evaluate (per method), "
        "04_embeddings and 05_report into <out>/<run_id>/ and refresh reports/latest/REPORT.md.",
    )
    p.add_argument("--preset", default="quick", choices=SCALES, help="scale preset (default: quick)")
    p.add_argument("--dataset", default="synthfer", help="synthfer (default), rafdb, ferplus or folder")
    p.add_argument(
        "--root",
        default=None,
        help="dataset folder (default for synthfer: the preset's own, data/synthfer; data/synthfer-smoke with "
        "--preset smoke, data/synthfer-calibrated with --preset calibrated; generated when missing)",
    )
    p.add_argument("--methods", default="ce,tan", help="comma-separated methods to train (default: ce,tan)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "-p",
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="notebook parameter (JSON value); NAME for every notebook declaring it, "
        "NN_notebook.NAME for one; repeatable",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config key for every training run, as `tan train --set` (merged into 02_train's "
        "overrides), e.g. --set pretrained=synthface; repeatable",
    )
    p.add_argument("--out", default="reports/runs", help="folder of pipeline runs (default: reports/runs)")
    p.add_argument("--run-id", default=None, help="name of this run's folder (default: date-time-preset)")
    p.add_argument(
        "--latest",
        default="reports/latest",
        help="folder whose REPORT.md is replaced by this run's report (default: reports/latest)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run with the same --run-id (training runs resume or are reused)",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        help="notebooks run at the same time within a stage (training of each method; evaluation and "
        "embeddings), the cores split between them (default: 2 on 2+ cores; 1 = one by one)",
    )
    p.set_defaults(func=_cmd_run)

    s = subparsers.add_parser(
        "sweep",
        help="train methods x seeds x parameters from a YAML grid",
        description="Run a grid of training runs (see grids/*.yaml); finished runs are "
        "skipped, partial ones resumed; --shard I/N takes every N-th job; --executor slurm "
        "submits them to SLURM through submitit (docs/scale.md).",
    )
    s.add_argument("--grid", required=True, help="grid YAML file, e.g. grids/ablation.yaml")
    s.add_argument("--shard", default=None, metavar="I/N", help="run jobs I, I+N, I+2N, ... (1-based)")
    s.add_argument("--out", default="reports/sweeps", help="folder of sweeps (default: reports/sweeps)")
    s.add_argument("--no-report", action="store_true", help="do not run 05_report when the grid is finished")
    s.add_argument("--report-only", action="store_true", help="only run 05_report over a finished sweep")
    s.add_argument(
        "--record",
        metavar="DEST",
        help="record each finished run into DEST (e.g. results/calibration) as soon as its job ends, indexed "
        "as tan record --out DEST does; a job already recorded there is neither trained nor recorded again",
    )
    s.add_argument(
        "--executor",
        default="local",
        choices=EXECUTORS,
        help="local: run the jobs here, one after the other (default); slurm: one submitit job per run, "
        "waited for; ray: not provided (docs/scale.md says why)",
    )
    s.add_argument(
        "--slurm",
        action="append",
        metavar="KEY=VALUE",
        help=f"SLURM option for --executor slurm, repeatable, over the grid's slurm: section; keys: "
        f"{', '.join(SLURM_KEYS)} (cluster=local runs the jobs through submitit on this machine)",
    )
    s.set_defaults(func=_cmd_sweep)
