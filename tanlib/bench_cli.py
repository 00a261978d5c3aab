"""``tan bench [NAME ...]``: run the benchmarks of bench/ (each writes bench/results/*.json).

Every benchmark runs in its own Python process (its thread settings stay its own), from
the project's root, and the command stops at the first that fails. Without names it runs
the CPU benchmarks that take about a minute each; ``pipeline`` and ``cpu_train`` (minutes), ``umap`` and ``gpu``
(a GPU, or ``gpu --cpu --tiny`` style arguments through ``--args``) run when named.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from .errors import TANError
from .paths import project_root

#: name -> (script relative to the project root, what it measures)
BENCHMARKS = {
    "objective": ("bench/bench_objective.py", "training step with the tan objective vs plain CE"),
    "miner": ("bench/bench_miner.py", "miner + Mahalanobis loss: vectorised vs naive loop, memory"),
    "input": ("bench/bench_input.py", "input pipeline: kit vs model alone vs per-sample PIL loader"),
    "synthfer": ("bench/bench_synthfer.py", "SynthFER generation throughput"),
    "memory_format": ("bench/bench_memory_format.py", "training step: channels_last vs contiguous on CPU"),
    "cpu_train": ("bench/bench_cpu_train.py", "the kit's training epoch on CPU: fp32/bf16 x channels_last x compile"),
    "pipeline": ("bench/bench_pipeline.py", "wall time of `tan run --preset smoke` and its shares"),
    "umap": ("bench/bench_umap.py", "2-D UMAP in a fresh process: kit vs umap-learn alone"),
    "bootstrap": ("bench/bench_bootstrap.py", "the verdict's hierarchical bootstrap: draw counts vs indexed draws"),
    "page_build": ("bench/bench_page_build.py", "the results page's build with and without the settled-file caches"),
    "cpu_verdict_cost": (
        "bench/bench_cpu_verdict_cost.py",
        "the verdict's CPU runs: minutes, epoch seconds, images/s, from the records",
    ),
    "gpu": ("bench/gpu/gpu_bench.py", "GPU fast path vs reference loader (needs CUDA, or --cpu --tiny)"),
}
DEFAULT = ("objective", "miner", "input", "synthfer")


def run_benchmarks(names: list[str], extra: list[str] | None = None, root: Path | None = None) -> int:
    root = root or project_root()
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise TANError(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    for name in names:
        script = root / BENCHMARKS[name][0]
        if not script.is_file():
            raise TANError(f"benchmark {name!r}: {script} not found (run `tan bench` from a source checkout)")
        cmd = [sys.executable, str(script), *(extra or [])]
        print(f"[bench] {name}: {' '.join(shlex.quote(c) for c in cmd)}", flush=True)
        rc = subprocess.run(cmd, cwd=root).returncode
        if rc:
            raise TANError(f"benchmark {name!r} failed with exit code {rc}")
    return 0


def _cmd(args) -> int:
    if args.list:
        for name, (script, what) in BENCHMARKS.items():
            print(f"{name:16} {script:34} {what}{'  (default)' if name in DEFAULT else ''}")
        return 0
    return run_benchmarks(args.names or list(DEFAULT), shlex.split(args.args or ""))


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="run the benchmarks of bench/ (JSON under bench/results/)", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: {', '.join(DEFAULT)})",
    )
    p.add_argument("--args", default="", help="extra arguments passed to every named benchmark, e.g. '--tiny'")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.set_defaults(func=_cmd)
