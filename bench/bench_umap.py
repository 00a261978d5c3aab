"""Benchmark: the 2-D UMAP of notebook 04 in a fresh process, kit vs umap-learn alone.

Every notebook kernel, test worker and ``tan`` command is a fresh process, so what a
projection costs there is dominated by numba compiling umap-learn's functions, not by
the data. Each round starts two fresh Python processes on the same embeddings (N x D,
Gaussian, seeded) and times the fit in each (imports excluded, CPU seconds of the
process, so other load on the machine does not count):

- ``umap-learn``: ``umap.UMAP(n_neighbors, random_state=seed, n_jobs=1)``, its own
  exact nearest-neighbour search for N < 4096;
- ``kit``: ``tanlib.analysis.figures.umap_2d``, the same settings with scikit-learn's
  exact neighbours passed as ``precomputed_knn``.

Rounds alternate the order. Writes ``bench/results/umap_<host>.json``.
Not run by ``make test``: each round compiles numba twice (about a minute of CPU).
Usage: ``python bench/bench_umap.py [--rounds 3] [--n 600] [--dim 128] [--neighbors 15]``
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ratios, summary, write_result  # noqa: E402

CHILD = """
import json, sys, time
import numpy as np
n, dim, k, variant = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
x = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
if variant == "kit":
    from tanlib.analysis.figures import umap_2d
    fit = lambda: umap_2d(x, seed=0, n_neighbors=k)
else:
    import umap
    fit = lambda: umap.UMAP(n_neighbors=k, random_state=0, n_jobs=1).fit_transform(x)
t = time.process_time()
xy = fit()
print(json.dumps({"cpu_seconds": time.process_time() - t, "shape": list(xy.shape)}))
"""


def fit_seconds(variant: str, n: int, dim: int, k: int) -> float:
    """CPU seconds of one fit in a fresh process (its last stdout line)."""
    res = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(dim), str(k), variant], capture_output=True, text=True, check=True
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["shape"] == [n, 2], out
    return out["cpu_seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--neighbors", type=int, default=15)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    names = ["umap-learn", "kit"]
    times = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(fit_seconds(name if name == "kit" else "umap", args.n, args.dim, args.neighbors))
            print(f"round {r} {name}: {times[name][-1]:.1f} CPU s")
    result = {
        "settings": vars(args),
        "cpu_seconds": {name: summary(times[name], 2) for name in names},
        "raw": times,
        "kit_over_umap_learn": summary(ratios(times["kit"], times["umap-learn"]), 3),
    }
    write_result(f"umap_{platform.node()}", result, args.out)


if __name__ == "__main__":
    main()
