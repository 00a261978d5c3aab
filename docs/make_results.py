"""Write docs/results.md from the ablation sweep's run directories.

Every number on the page is read from the runs' ``metrics.json`` files with the functions
05_report uses (``tanlib.report.collect_records`` / ``results_tables``), so the page can be
regenerated and checked:

    python docs/make_results.py [reports/sweeps/ablation/runs] > docs/results.md

The prose around the tables is fixed text; the figures quoted in it are computed here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tanlib.analysis import to_markdown  # noqa: E402
from tanlib.report import collect_records, results_tables  # noqa: E402

ORDER = ["ce", "scn", "triplet", "tan-euclid", "tan-nothreshold", "tan"]


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def main(runs: str = "reports/sweeps/ablation/runs") -> str:
    records = collect_records([REPO / runs if not Path(runs).is_absolute() else Path(runs)])
    records["order"] = records["method"].map({m: i for i, m in enumerate(ORDER)})
    records = records.sort_values(["order", "seed"]).drop(columns="order")
    summary, shown = results_tables(records)
    shown = shown.set_index("method").loc[[m for m in ORDER if m in set(shown["method"])]].reset_index()
    seeds = sorted(records["seed"].unique().tolist())
    n_seeds = len(seeds)
    means = summary.set_index("method")
    acc = {m: (100 * means.loc[m, "accuracy_mean"], 100 * means.loc[m, "accuracy_std"]) for m in means.index}
    mca = {m: 100 * means.loc[m, "mean_class_accuracy_mean"] for m in means.index}
    ratio = {m: means.loc[m, "intra_inter_ratio_mean"] for m in means.index}
    auc = {m: means.loc[m, "noisy_auc_mean"] for m in means.index if m in ("scn", "tan-euclid", "tan-nothreshold", "tan")}
    ce_runs = records[records.method == "ce"]
    base = json.loads((REPO / "docs" / "sanity_baseline.json").read_text())
    triplets = [m for m in ("triplet", "tan-euclid", "tan-nothreshold", "tan") if m in ratio]
    best = records.groupby("method")["best_epoch"].agg(["min", "max"])
    per_run = records[["method", "seed", "accuracy", "accuracy_last", "mean_class_accuracy", "intra_inter_ratio",
                       "silhouette", "noisy_auc", "accuracy_test_selected", "best_epoch"]].copy()
    for c in ("accuracy", "accuracy_last", "mean_class_accuracy", "accuracy_test_selected"):
        per_run[c] = (100 * per_run[c]).round(2)
    for c in ("intra_inter_ratio", "silhouette", "noisy_auc"):
        per_run[c] = per_run[c].round(3)
    per_run = per_run.astype(object).where(per_run.notna(), "n/a")
    in_band = [m for m in ORDER if m in acc and 55 <= acc[m][0] <= 90]
    close = [m for m in ("ce", "triplet", "tan-euclid", "tan-nothreshold", "tan") if m in acc]
    between = max(acc[m][0] for m in close) - min(acc[m][0] for m in close)
    spread = records[records.method.isin(close)].groupby("method")["accuracy"].agg(lambda a: 100 * (a.max() - a.min()))
    within_m = str(spread.idxmax())
    within = float(spread.max())

    def acc_list() -> str:
        return "; ".join(f"`{m}` {acc[m][0]:.1f} ± {acc[m][1]:.1f}" for m in ORDER if m in acc)

    lines = [
        "# Results: the six methods on SynthFER (quick preset)",
        "",
        "**What this is.** The results table of issue 4: `ce`, `scn`, `triplet`, `tan-euclid`,",
        "`tan-nothreshold` and `tan` trained with one protocol, the `quick` preset (ResNet-18 from",
        "scratch, 64 px, 10 epochs, batch 64, Adam 1e-3, ExponentialLR 0.9, channels_last), on the",
        "default SynthFER (generator version 2; 2,250 train / 250 val / 700 test faces, 10 % of",
        "train labels flipped, test labels clean). **These are SynthFER numbers; they say nothing",
        "about RAF-DB or FERPlus accuracy** (paper: 88.40 % RAF-DB, 88.73 % FERPlus, with an",
        "MS-Celeb-1M-pretrained ResNet-18 at 224 px for 70 epochs).",
        "",
        f"**Seeds.** {n_seeds} seeds per method ({', '.join(map(str, seeds))}) of the 3 the grid",
        "(`grids/ablation.yaml`) defines; mean ± standard deviation (ddof 1) over them. With so few",
        "seeds a standard deviation is a rough spread, not a confidence interval. On this 2-core",
        "machine one quick run takes 7.5-9 minutes with two runs side by side (one thread each).",
        "",
        "**Model selection.** `accuracy` is the test accuracy of the epoch with the best",
        "*validation* accuracy (10 % of train, stratified, seed 0); `accuracy_last` that of the",
        "last epoch. The test-selected figure (SCN's published script picks the best *test*",
        "epoch) is only in the per-run table, labelled as such, for comparison with papers.",
        "",
        "Reproduce (each run writes a complete run directory under `reports/sweeps/ablation/runs/`):",
        "",
        "```bash",
        "tan data synth --out data/synthfer                                    # the default dataset, seed 0",
        "tan sweep --grid grids/ablation.yaml                                  # all 18 runs; or, on two cores:",
        "OMP_NUM_THREADS=1 tan sweep --grid grids/ablation.yaml --shard 1/2 &  # ... two shards in parallel",
        "OMP_NUM_THREADS=1 tan sweep --grid grids/ablation.yaml --shard 2/2",
        "python docs/make_results.py > docs/results.md                          # this page, from the runs",
        "```",
        "",
        f"## Summary (mean ± std over {n_seeds} seeds, %)",
        "",
        to_markdown(shown),
        "",
        "`accuracy`, `mean_class_accuracy` (mean per-class recall) and `macro_f1`: test split,",
        "best-validation epoch, in %. `intra_inter_ratio`: mean intra-class over mean inter-class",
        "Euclidean distance of the test embeddings (lower is tighter classes), best-validation",
        "epoch. `noisy_auc`: ROC AUC of *low* attention for finding the flipped training labels",
        "(0.5 = chance; n/a for methods without attention).",
        "",
        "## Beside them: the sanity band",
        "",
        "| model | test accuracy | mean class accuracy | command |",
        "| --- | ---: | ---: | --- |",
        f"| always the majority class (Happiness) | {pct(base['majority_accuracy'])} | 14.3 | - |",
        f"| logistic regression on 32x32 gray pixels | {pct(base['accuracy'])} | {pct(base['balanced_accuracy'])} "
        "| `tan data baseline --root data/synthfer` |",
        f"| ResNet-18, `ce`, quick ({n_seeds} seeds) | {acc['ce'][0]:.1f} ± {acc['ce'][1]:.1f} | {mca['ce']:.1f} | above |",
        "",
        "DESIGN section 5 asks the quick ResNet-18 to land in roughly 55-90 %. "
        f"`ce` does ({pct(ce_runs['accuracy'].min())}-{pct(ce_runs['accuracy'].max())} % over the seeds), "
        f"well above the pixel model and far from solved. Methods whose mean is in the band: "
        f"{', '.join(f'`{m}`' for m in in_band) or 'none'}. How the generator defaults were set to get there "
        "(version 1 left every method near 50 %) is in [synthfer.md](synthfer.md#sanity-band-default-dataset-seed-0).",
        "",
        "## Every run",
        "",
        "Test accuracy (%) at the best-validation epoch, at the last epoch, and at the",
        "test-selected epoch (**test-selected, for comparison with papers only**); geometry and",
        "noisy-label AUC at the best-validation epoch.",
        "",
        to_markdown(per_run),
        "",
        "## What the numbers say",
        "",
        f"- **Accuracy: the methods are not separated at this scale.** Test accuracy: {acc_list()}.",
        f"  The means of `ce`, `triplet` and the three TAN variants lie within {between:.1f} points of each",
        f"  other, while one method's seeds alone differ by up to {within:.1f} points (`{within_m}`); with",
        f"  {n_seeds} seeds no difference is established, and no claim that TAN beats or trails CE on",
        "  SynthFER is made from these runs.",
        f"- **`scn` trails and varies most** ({acc['scn'][0]:.1f} ± {acc['scn'][1]:.1f}); its best-validation",
        f"  epochs range {int(best.loc['scn', 'min'])}-{int(best.loc['scn', 'max'])} of 10 (relabelling starts at",
        "  epoch 5, `relabel_epoch`). What of SCN's recipe costs accuracy at this short schedule",
        "  (attention-weighted CE, rank regularisation or relabelling) is not isolated here.",
        "- **The abstract's geometric claim is not visible here.** The intra/inter distance ratio",
        f"  of the test embeddings is lower (tighter classes) for `ce` ({ratio['ce']:.2f}) than for every",
        f"  method with a triplet term ({min(ratio[m] for m in triplets):.2f}-{max(ratio[m] for m in triplets):.2f});",
        "  silhouette scores are near 0 for all. After 10 epochs from scratch the triplet and",
        "  Mahalanobis terms have not yet shaped the embedding into tighter class clusters than",
        "  the classifier alone does.",
        "- **Attention barely finds the flipped labels.** The noisy-label AUC of low attention is",
        f"  {min(auc.values()):.2f}-{max(auc.values()):.2f} for `scn` and the TAN variants: at this training length the",
        "  attention weights carry little information about which training labels are wrong.",
        "",
        "What they do not say: anything about RAF-DB or FERPlus, anything about pretrained",
        "backbones (all runs start from scratch), or anything about longer training. The kit's",
        "`paper` preset and real-data readers are there for that; see [training.md](training.md).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(*sys.argv[1:2]), end="")
