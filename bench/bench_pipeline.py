"""Benchmark 4: wall time of the notebook pipeline and where it goes.

Runs ``tan run --preset smoke`` (the same ``run_pipeline`` call, into a temporary folder
and without refreshing reports/latest) in a fresh Python process, or reads an existing
pipeline run (``--from DIR``), and splits the wall time with papermill's per-cell
durations and the pipeline's per-notebook seconds (pipeline.json) into:

* ``interpreter_and_imports``: the ``tan`` process's start until the first notebook;
* ``kernel_startup``: per notebook, its seconds minus the sum of its cells (kernel
  start, papermill reading and writing the notebook);
* ``imports``: each notebook's set-up cell (two or more ``import`` lines: torch,
  matplotlib and tanlib imported in the kernel, paths);
* ``data``: 01_data's cells other than figures (SynthFER generation, checks);
* ``training``: 02_train's training cell (``ensure_run``);
* ``evaluation``: 03_evaluate's cells other than plotting;
* ``umap_numba``: cells calling UMAP (numba JIT included);
* ``plotting``: other cells drawing or saving figures;
* ``report`` / ``other``: the rest.

``--preset quick`` measures ``make reproduce`` (the quick pipeline: many minutes on 2 cores).

The parts are seconds summed over notebooks; notebooks of one stage run at the same time
(``--jobs``, default 2 on 2+ cores), so the parts add up to more than the wall time.

Usage: ``python bench/bench_pipeline.py [--preset smoke] [--jobs N] [--from RUN_DIR]``
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import write_result  # noqa: E402

PLOT = re.compile(r"\bplt\.|savefig|plot_|\bfig\b|figure|save_figure|imshow")


def classify(notebook: str, source: str) -> str:
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    imports = sum(bool(re.match(r"\s*(import |from \S+ import )", ln)) for ln in lines)
    if not lines or imports >= 2 or (lines and imports == len(lines)):
        return "imports"  # the set-up cell: imports (torch, matplotlib, tanlib...) and paths
    if "umap" in source.lower():
        return "umap_numba"
    if notebook.startswith("02_train") and re.search(r"ensure_run|train\(", source):
        return "training"
    if notebook.startswith("01_data") and not PLOT.search(source):
        return "data"
    if PLOT.search(source):
        return "plotting"
    if notebook.startswith("03_evaluate"):
        return "evaluation"
    if notebook.startswith("05_report"):
        return "report"
    return "other"


def analyse(run_root: Path, wall: float | None) -> dict:
    record = json.loads((run_root / "pipeline.json").read_text())
    shares: dict[str, float] = {}
    per_notebook = []
    for entry in record["notebooks"]:
        path = Path(entry["output"])
        nb = json.loads(path.read_text())
        cells = 0.0
        kinds: dict[str, float] = {}
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            dur = float(cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0)
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            kind = classify(path.stem, src)
            kinds[kind] = kinds.get(kind, 0.0) + dur
            cells += dur
        startup = max(float(entry["seconds"]) - cells, 0.0)
        kinds["kernel_startup"] = kinds.get("kernel_startup", 0.0) + startup
        for k, v in kinds.items():
            shares[k] = shares.get(k, 0.0) + v
        per_notebook.append(
            {
                "notebook": path.stem,
                "seconds": entry["seconds"],
                "parts": {k: round(v, 2) for k, v in sorted(kinds.items())},
            }
        )
    notebooks_total = float(record["seconds"])
    if wall is not None:
        shares["interpreter_and_imports"] = max(wall - notebooks_total, 0.0)
    total = wall if wall is not None else notebooks_total
    parts = sum(shares.values())  # notebooks running at the same time overlap: parts may exceed the wall time
    return {
        "wall_seconds": round(total, 1),
        "notebooks_seconds": round(notebooks_total, 1),
        "summed_part_seconds": round(parts, 1),
        "seconds": {k: round(v, 1) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])},
        "share": {k: round(v / parts, 3) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])},
        "per_notebook": per_notebook,
        "status": record.get("status"),
    }


def run(preset: str, out: Path, methods: str = "ce,tan", workers: int | None = None) -> tuple[Path, float]:
    code = (
        "import sys; from tanlib.pipeline import run_pipeline; "
        f"run_pipeline({preset!r}, out={str(out)!r}, run_id='bench', latest=None, "
        f"methods=tuple({methods!r}.split(',')), workers={workers!r})"
    )
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
    return out / "bench", time.perf_counter() - t


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="smoke", choices=("smoke", "quick"))
    ap.add_argument("--methods", default="ce,tan")
    ap.add_argument(
        "--jobs",
        default="2",
        help="notebooks at the same time; a comma list (e.g. 1,2) runs the pipeline once per value, "
        "one after the other in this process, and reports the wall-time ratios (default: 2)",
    )
    ap.add_argument("--from", dest="from_dir", default=None, help="analyse this finished pipeline run instead")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    jobs = [int(j) for j in str(args.jobs).split(",") if j.strip()]
    results = {}
    if args.from_dir:
        results["from"] = analyse(Path(args.from_dir), None)
    else:
        for j in jobs:
            with tempfile.TemporaryDirectory() as tmp:
                run_root, wall = run(args.preset, Path(tmp) / "runs", args.methods, j)
                results[f"jobs{j}"] = analyse(run_root, wall)
    for key, res in results.items():
        print(f"--- {key}")
        for k, v in res["seconds"].items():
            print(f"{k:>24}: {v:7.1f} s  {100 * res['share'][k]:5.1f} %")
        print(f"{'parts summed':>24}: {res['summed_part_seconds']:7.1f} s (notebooks of a stage overlap)")
        print(f"{'wall':>24}: {res['wall_seconds']:7.1f} s")
    walls = {k: r["wall_seconds"] for k, r in results.items()}
    ratios = {
        f"{k}_over_{first}": round(w / walls[first], 3)
        for first in list(walls)[:1]
        for k, w in walls.items()
        if k != first
    }
    for k, v in ratios.items():
        print(f"wall ratio {k}: {v}")
    out = {
        "params": {"preset": args.preset, "methods": args.methods, "jobs": jobs, "from": args.from_dir},
        "wall_seconds": walls,
        "wall_ratios": ratios,
        "runs": results,
    }
    write_result("pipeline_wall_" + args.preset, out, args.out)
    return out


if __name__ == "__main__":
    main()
