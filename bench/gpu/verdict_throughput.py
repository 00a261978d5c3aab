"""Throughput of the verdict's runs on a GPU, from what one device call left behind.

Reads the start/end events of each run (``events.txt``: ``<unix s> start|end <grid name>``,
one line each, written while K runs shared the GPU), the names of the records the call wrote
(``recorded.txt``: a run finished in the call when its record is there; another call may have
recorded a run this one stopped at its limit) and the ``history.csv`` of each of those
records, and writes a JSON summary: runs finished, wall seconds per run (median, range, per
method), the engine's training images/s per run (median of epochs 2-16) and, from ``dmon.txt``
(``nvidia-smi dmon -s u``), the share of 5-second samples with the GPU busy.

    python bench/gpu/verdict_throughput.py bench/results/gpu_verdict_h200 \\
        results/verdict/synthfer-calibrated-float32
"""

import argparse
import json
import re
import statistics
from pathlib import Path

import pandas as pd


def engine_images_per_s(history: pd.DataFrame) -> float:
    """A run's training throughput: the median of its ``history.csv`` images/s over epochs 2 on
    (the first holds the start-up)."""
    return float(history["images_per_s"].iloc[1:].median())


def summary(events_dir: Path, records: Path) -> dict:
    events: dict = {}
    for line in (events_dir / "events.txt").read_text().splitlines():
        t, kind, name = line.split()[:3]
        events.setdefault(name, {})[kind] = int(t)
    mine = set((events_dir / "recorded.txt").read_text().split())
    recorded = {p.name.split("-num_threads")[0]: p for p in records.iterdir() if p.name in mine}
    rows = []
    for name, e in events.items():
        m = re.fullmatch(r"gpu-(.+)-s(\d+)-n([\d.]+)", name)
        record = recorded.get(f"{m[1]}-seed{m[2]}") if m else None
        if record is None or "end" not in e:
            continue
        rows.append(
            {
                "method": m[1],
                "seconds": e["end"] - e["start"],
                "images_per_s": engine_images_per_s(pd.read_csv(record / "history.csv")),
            }
        )
    frame = pd.DataFrame(rows)
    sm = [int(x.split()[1]) for x in (events_dir / "dmon.txt").read_text().splitlines() if not x.startswith("#")]
    started = [e["start"] for e in events.values() if "start" in e]
    return {
        "runs_started": len(started),
        "runs_finished": len(frame),
        "concurrent": max(sum(1 for e in events.values() if e["start"] <= t < e.get("end", 1 << 40)) for t in started),
        "seconds_per_run": {
            "median": float(frame["seconds"].median()),
            "min": int(frame["seconds"].min()),
            "max": int(frame["seconds"].max()),
            "by_method": frame.groupby("method")["seconds"].median().to_dict(),
        },
        "images_per_s_per_run_median": float(frame["images_per_s"].median()),
        "gpu_busy_share": statistics.mean(s >= 90 for s in sm),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events_dir", type=Path)
    parser.add_argument("records", type=Path)
    args = parser.parse_args()
    out = summary(args.events_dir, args.records)
    (args.events_dir / "summary.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
