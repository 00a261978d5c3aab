"""Benchmark 10: the verdict's hierarchical bootstrap, draw counts against indexed draws.

``tanlib.analysis.stats.hierarchical_bootstrap`` resamples seeds, then test images (one image
draw shared by the drawn seeds), 2,000 times. The kit applies each image resample as its draw
counts times the per-image values (one matrix product per class) and makes the draws once per
(seed, seeds, labels, statistic) (``_resamples``: every bootstrap of the verdict draws with
seed 0). ``indexed`` is the implementation it replaced, kept here as the reference: the same
draws (``_draws``), indexed into a seeds x resamples x images array and averaged. Both must
give the same numbers, bit for bit (asserted). Variants, interleaved per round:

- ``indexed``: the reference, draws made in the call;
- ``counts``: the kit's function with its draw cache emptied first (the first bootstrap of a
  page build);
- ``counts_cached``: the kit's function with the draws cached (every later one).

Data: paired per-image differences (-1, 0, 1) of n seeds on a test split of the verdict's
size (6,300 images, 7 classes of SynthFER's shares), statistics ``accuracy`` and
``mean_class_accuracy``. Only the ratios count (bench/common.py).

Usage: ``python bench/bench_bootstrap.py [--seeds 3 8 13] [--rounds 5] [--tiny]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import interleave, ratios, summary, write_result  # noqa: E402
from tanlib.analysis import stats as S  # noqa: E402


def indexed(values, labels, statistic: str, n_boot: int, seed: int = 0) -> np.ndarray:
    """The replaced implementation: each seed's mean over its drawn images by indexing."""
    rng = np.random.default_rng(seed)
    n_seeds = values.shape[0]
    seeds, groups = S._draws(rng, n_seeds, labels, n_boot, statistic != "accuracy")
    per_seed = np.empty((n_seeds, n_boot, len(groups)))
    for g, (members, idx) in enumerate(groups):
        per_seed[:, :, g] = values[:, members][:, idx].mean(axis=2)
    drawn = per_seed[seeds, np.arange(n_boot)[:, None], :].mean(axis=1)
    return drawn.mean(axis=1) if statistic == "mean_class_accuracy" else drawn[:, 0]


def make_data(n_seeds: int, n_images: int, seed: int = 0):
    """Paired differences of two methods about 85 % accurate, on 7 classes of unequal size."""
    rng = np.random.default_rng(seed)
    shares = np.array([0.10, 0.05, 0.10, 0.30, 0.15, 0.08, 0.22])
    labels = rng.choice(7, size=n_images, p=shares)
    a = (rng.random((n_seeds, n_images)) < 0.85).astype(float)
    b = (rng.random((n_seeds, n_images)) < 0.84).astype(float)
    return a - b, labels


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 8, 13])
    ap.add_argument("--images", type=int, default=6300)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tiny", action="store_true", help="toy sizes for the tests")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.tiny:
        args.seeds, args.images, args.n_boot, args.rounds = [3], 300, 50, 1
    results = {}
    for n in args.seeds:
        values, labels = make_data(n, args.images)
        for statistic in ("accuracy", "mean_class_accuracy"):
            want = indexed(values, labels, statistic, args.n_boot)

            def kit(clear: bool):
                if clear:
                    S._cached_resamples.cache_clear()
                return S.hierarchical_bootstrap(values, labels, statistic, n_boot=args.n_boot, seed=0)

            for clear in (True, False):
                if not np.array_equal(kit(clear), want):
                    raise SystemExit(f"counts and indexed differ at {n} seeds, {statistic}")
            times = interleave(
                {
                    "indexed": lambda: indexed(values, labels, statistic, args.n_boot),
                    "counts": lambda: kit(True),
                    "counts_cached": lambda: kit(False),
                },
                rounds=args.rounds,
            )
            results[f"seeds{n}-{statistic}"] = {
                "seconds": {k: summary(v) for k, v in times.items()},
                "indexed_over_counts": summary(ratios(times["indexed"], times["counts"]), 2),
                "indexed_over_counts_cached": summary(ratios(times["indexed"], times["counts_cached"]), 2),
                "identical": True,
            }
            print(
                f"{n:>2} seeds, {statistic:<19} indexed {np.median(times['indexed']):.3f} s, counts "
                f"{np.median(times['counts']):.3f} s, cached {np.median(times['counts_cached']):.3f} s"
            )
    params = {k: v for k, v in vars(args).items() if k != "out"}
    write_result("bootstrap", {"params": params, "results": results}, args.out)
    return results


if __name__ == "__main__":
    main()
