"""Benchmark: SynthFER generation throughput (images per second, whole command).

Generates the default dataset (2,500 + 700 images at 100 px) ``--repeats`` times into a
temporary folder (wall-clock images/s, JPEG writing included), then times rendering alone
in one process (images per CPU-second, independent of other load on the machine), and
writes both to ``bench/results/synthfer_<host>.json``.
Usage: ``python bench/bench_synthfer.py [--repeats 3] [--workers N] [--n-train N --n-test N]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from tanlib.data import generate_synthfer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--n-train", type=int, default=2500)
    ap.add_argument("--n-test", type=int, default=700)
    ap.add_argument("--size", type=int, default=100)
    args = ap.parse_args()
    n = args.n_train + args.n_test
    rates = []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            generate_synthfer(
                Path(tmp) / "sf", n_train=args.n_train, n_test=args.n_test, size=args.size, seed=i, workers=args.workers
            )
            rates.append(n / (time.perf_counter() - t))
            print(f"run {i}: {rates[-1]:.0f} images/s")
    # load-independent figure: CPU time per image in this process (one worker, 300 images)
    from tanlib.data.synthdraw import sample_image

    t_cpu = time.process_time()
    for i in range(300):
        sample_image(0, "train", i, i % 7, i % 40, 0.2, args.size)
    per_cpu_s = 300 / (time.process_time() - t_cpu)
    print(f"render only: {per_cpu_s:.0f} images per CPU-second")
    result = {
        "benchmark": "synthfer_generation",
        "images": n,
        "size": args.size,
        "workers": args.workers or min(os.cpu_count() or 1, 8),
        "cpu_count": os.cpu_count(),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
        "python": platform.python_version(),
        "images_per_s": [round(r, 1) for r in rates],
        "median_images_per_s": round(statistics.median(rates), 1),
        "min_images_per_s": round(min(rates), 1),
        "max_images_per_s": round(max(rates), 1),
        "render_images_per_cpu_s": round(per_cpu_s, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    out = Path(__file__).resolve().parent / "results" / f"synthfer_{platform.node() or 'host'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
