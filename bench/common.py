"""Shared helpers of the benchmarks: interleaved timing, summaries, machine facts, JSON.

The machines these run on are shared and noisy, so the benchmarks compare variants as
ratios measured in one process, interleaving them (A B C, then C B A, ...) so that a
slow spell hits every variant alike, and report the median and the spread (min, max,
interquartile range) over rounds. Absolute times are recorded but only ratios count.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tanlib.atomicio import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"


def summary(values: list[float], digits: int = 4) -> dict:
    """Median, min, max, quartiles and n of ``values``."""
    v = sorted(float(x) for x in values)
    if not v:
        return {"n": 0}
    q = statistics.quantiles(v, n=4) if len(v) >= 2 else [v[0], v[0], v[0]]
    r = lambda x: round(x, digits)  # noqa: E731
    return {
        "median": r(statistics.median(v)),
        "min": r(v[0]),
        "max": r(v[-1]),
        "q1": r(q[0]),
        "q3": r(q[2]),
        "n": len(v),
    }


def interleave(
    variants: dict[str, Callable[[], object]], rounds: int, warmup: int = 1, sync: Callable[[], None] | None = None
) -> dict[str, list[float]]:
    """Seconds of each call of each variant, ``rounds`` times, interleaved.

    Every round runs each variant once; odd rounds run them in reverse order. ``warmup``
    untimed rounds come first. ``sync`` (e.g. ``torch.cuda.synchronize``) is called
    before each clock reading.
    """
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + rounds):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            if sync:
                sync()
            t = time.perf_counter()
            variants[n]()
            if sync:
                sync()
            if r >= warmup:
                times[n].append(time.perf_counter() - t)
    return times


def ratios(num: list[float], den: list[float]) -> list[float]:
    """Per-round ratios num[i] / den[i] (rounds are paired by interleaving)."""
    return [a / b for a, b in zip(num, den)]


def machine() -> dict:
    """Facts about the machine and the software versions."""
    import torch

    info = {
        "host": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        model = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        info["cpu_model"] = model[0] if model else None
    except OSError:
        pass
    return info


def write_result(name: str, data: dict, out: str | Path | None = None) -> Path:
    """Write ``data`` (with machine facts and the command) to ``out`` or bench/results/<name>.json."""
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "benchmark": name,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
        **data,
    }
    atomic_write_text(path, json.dumps(data, indent=2, default=float) + "\n")
    print(f"wrote {path}")
    return path


def set_threads(n: int) -> None:
    """Pin torch's intra-op threads (1 by default in the benchmarks: fair under contention)."""
    import torch

    if n > 0:
        torch.set_num_threads(n)
