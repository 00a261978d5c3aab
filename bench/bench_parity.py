"""Benchmark 8b: accuracy parity of bfloat16 autocast against float32 (issue 27).

Reads run records (``tan record``) of the same methods and seeds trained in float32 and in
bfloat16 and reports, per method, the test accuracy and mean class accuracy of each
format (mean and sample SD over seeds), the per-seed paired difference bf16 - fp32 with
its 95 % t interval, and whether the mean difference lies within float32's seed SD (the
parity rule of issue 27: a format change smaller than what another seed does).

Usage: ``python bench/bench_parity.py --fp32 results/recipe --bf16 results/parity_bf16
[--methods ce,tan]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_result  # noqa: E402

MEASURES = ("accuracy", "mean_class_accuracy")


def records(folder: str, methods: list[str]):
    """One row per (method, seed) of ``folder``'s records; the format each one ran in."""
    import pandas as pd

    from tanlib.report.records import collect_records, read_record_json

    frame = collect_records([folder])
    frame = frame[frame["method"].isin(methods) & (frame["variant"] == "")].copy()
    frame["amp"] = [read_record_json(Path(p) / "metrics.json").get("amp", "none") for p in frame["path"]]
    if frame.duplicated(["method", "seed"]).any():
        raise SystemExit(f"{folder}: more than one record of a method and seed")
    return pd.DataFrame(frame)


def compare(fp32, bf16, methods: list[str]) -> dict:
    import numpy as np

    from tanlib.analysis.verdict import t_interval

    out = {}
    for method in methods:
        a = fp32[fp32["method"] == method].set_index("seed")
        b = bf16[bf16["method"] == method].set_index("seed")
        if set(a["amp"]) - {"none"} or set(b["amp"]) != {"bf16"}:
            raise SystemExit(f"{method}: the fp32 records must have amp none and the bf16 records amp bf16")
        seeds = sorted(set(a.index) & set(b.index))
        res = {"seeds": seeds}
        for m in MEASURES:
            diff = (b.loc[seeds, m] - a.loc[seeds, m]).to_numpy(float) * 100
            mean, lo, hi = t_interval(diff)
            sd32 = float(np.std(a.loc[seeds, m] * 100, ddof=1))
            res[m] = {
                "fp32_mean": round(float(a.loc[seeds, m].mean() * 100), 2),
                "fp32_sd": round(sd32, 2),
                "bf16_mean": round(float(b.loc[seeds, m].mean() * 100), 2),
                "bf16_sd": round(float(np.std(b.loc[seeds, m] * 100, ddof=1)), 2),
                "diff_points": [round(float(d), 2) for d in diff],
                "diff_mean": round(mean, 2),
                "diff_t95": [round(lo, 2), round(hi, 2)],
                "within_fp32_seed_sd": bool(abs(mean) <= sd32),
            }
        out[method] = res
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fp32", default="results/recipe")
    ap.add_argument("--bf16", default="results/parity_bf16")
    ap.add_argument("--methods", default="ce,tan")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    methods = args.methods.split(",")
    res = compare(records(args.fp32, methods), records(args.bf16, methods), methods)
    for method, r in res.items():
        for m in MEASURES:
            x = r[m]
            print(
                f"{method} {m}: fp32 {x['fp32_mean']} +- {x['fp32_sd']}, bf16 {x['bf16_mean']} +- {x['bf16_sd']}, "
                f"bf16 - fp32 {x['diff_mean']} [{x['diff_t95'][0]}, {x['diff_t95'][1]}] points, "
                f"within the fp32 seed SD: {x['within_fp32_seed_sd']}"
            )
    write_result("parity_bf16", {"params": vars(args), "results": res}, args.out)
    return res


if __name__ == "__main__":
    main()
