"""The verdict's CPU runs: what a run of the calibrated preset costs on the machine that trained it.

Read from the run records alone (docs/benchmarks.md, section 9): of each record trained on a CPU
(``env.json`` ``device``), the wall time of the run (``metrics.json`` ``seconds``: training and the
end-of-run evaluation), the median epoch time and the engine's training images/s (medians over
epochs 2 on of ``history.csv``). Records of another device are counted and left out.

    python bench/bench_cpu_verdict_cost.py [RECORDS]   # default: results/verdict/synthfer-calibrated

(``tan bench cpu_verdict_cost``) writes ``bench/results/cpu_verdict_cost.json`` (``--out`` to write elsewhere).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import summary as spread  # noqa: E402
from bench.common import write_result  # noqa: E402
from bench.gpu.verdict_throughput import engine_images_per_s  # noqa: E402


def summary(records: Path) -> dict:
    """Per-run costs of the CPU records under ``records`` (one folder per record)."""
    if not records.is_dir():
        raise SystemExit(f"{records}: not a folder of run records")
    rows, other = [], 0
    for record in sorted(p for p in records.iterdir() if (p / "metrics.json").is_file()):
        env = json.loads((record / "env.json").read_text())
        if env.get("device") != "cpu":
            other += 1
            continue
        metrics = json.loads((record / "metrics.json").read_text())
        history = pd.read_csv(record / "history.csv")
        rows.append(
            {
                "method": metrics["method"],
                "minutes": metrics["seconds"] / 60,
                "epoch_seconds": float(history["seconds"].iloc[1:].median()),
                "images_per_s": engine_images_per_s(history),
                "setting": f"{metrics.get('amp')}, {env.get('torch_threads')} thread(s)",
            }
        )
    if not rows:
        raise SystemExit(f"{records}: no record trained on a CPU (env.json device)")
    frame = pd.DataFrame(rows)
    return {
        "records": records.resolve().relative_to(REPO).as_posix()
        if records.resolve().is_relative_to(REPO)
        else str(records),
        "runs": len(frame),
        "other_devices": other,
        "settings": sorted(frame["setting"].unique()),
        "minutes_per_run": spread(frame["minutes"], 1)
        | {"by_method": frame.groupby("method")["minutes"].median().round(1).to_dict()},
        "epoch_seconds_median": round(float(frame["epoch_seconds"].median()), 1),
        "images_per_s_per_run_median": round(float(frame["images_per_s"].median()), 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", type=Path, nargs="?", default=REPO / "results" / "verdict" / "synthfer-calibrated")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    out = summary(args.records)
    write_result("cpu_verdict_cost", out, args.out)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
