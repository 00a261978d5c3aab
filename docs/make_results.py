"""Write docs/results.md, its figure and the README's results paragraph from the run
records committed under results/.

Every number on the page is read from the records (``config.json``, ``history.csv``,
``metrics.json``, ``env.json`` per run, written by ``tan record``) with the functions
05_report uses (``tanlib.report.collect_records``), so anyone can audit and regenerate it:

    python docs/make_results.py            # rewrites docs/results.md, its figure, README's block
    python docs/make_results.py --check    # exit 1 when a committed text differs from the records

``tests/pipeline/test_results_page.py`` runs the check. The prose around the tables is
fixed text; the figures quoted in it are computed here.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
PAGE = REPO / "docs" / "results.md"
README = REPO / "README.md"
FIGURE = REPO / "docs" / "figures" / "recipe_curves.png"
MARK_START, MARK_END = "<!-- results:start (python docs/make_results.py) -->", "<!-- results:end -->"
RECIPE_ORDER = ["ce", "triplet", "tan", "tan-rr"]
BAND = (55.0, 90.0)


def _records(folder: Path) -> pd.DataFrame:
    from tanlib.report import collect_records

    records = collect_records([folder])
    records["name"] = records["run"].str.replace(r"-seed\d+$", "", regex=True)
    records["path"] = [str(Path(p).relative_to(REPO)) for p in records["path"]]
    return records


def _history(record_path: str) -> pd.DataFrame:
    return pd.read_csv(REPO / record_path / "history.csv")


def _config(record_path: str) -> dict:
    return json.loads((REPO / record_path / "config.json").read_text())


def _t_interval(diffs: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t interval of paired differences (n - 1 degrees of freedom)."""
    from scipy import stats

    mean = float(np.mean(diffs))
    if len(diffs) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.975, len(diffs) - 1) * np.std(diffs, ddof=1) / math.sqrt(len(diffs)))
    return mean, mean - half, mean + half


def _fmt(x: float, digits: int = 1, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{100 * x:.{digits}f}" if pct else f"{x:.{digits}f}"


def _table(rows: list[dict]) -> str:
    from tanlib.analysis import to_markdown

    return to_markdown(pd.DataFrame(rows))


# ---------------------------------------------------------------------------- selection
def selection_rows(sel: pd.DataFrame) -> list[dict]:
    rows = []
    for _, r in sel.sort_values("run").iterrows():
        c, h = _config(r["path"]), _history(r["path"])
        best = h.loc[h["val_acc"].idxmax()]
        rows.append({
            "candidate": r["run"],
            "L_T / L_M mining": f"{c['triplet_mining']} / {c['mahalanobis_mining']}",
            "sampler": c["sampler"] + (f" (K={c['m_per_class']})" if c["sampler"] == "m_per_class" else ""),
            "best epoch": int(best["epoch"]),
            "val acc. (%)": _fmt(best["val_acc"], 1, pct=True),
            "min batch spread (epoch)": f"{h['embedding_spread'].min():.3f} ({int(h.loc[h['embedding_spread'].idxmin(), 'epoch'])})",
            "test spread": _fmt(r["embedding_spread"], 3),
            "final L_T": _fmt(h["loss_triplet"].iloc[-1], 3),
            "attention mean, last epoch": _fmt(h["attention_mean"].iloc[-1], 3),
            "collapsed": "yes" if r["collapsed"] is True else "no",
        })
    return rows


# ---------------------------------------------------------------------------- recipe
def summary_rows(rec: pd.DataFrame) -> list[dict]:
    rows = []
    for name in [n for n in RECIPE_ORDER if n in set(rec["name"])]:
        g = rec[rec["name"] == name]

        def ms(col, pct=False, digits=2):
            v = g[col].astype(float)
            v = v[np.isfinite(v)]
            if not len(v):
                return "n/a"
            scale = 100 if pct else 1
            return f"{scale * v.mean():.{digits}f} ± {scale * v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{scale * v.mean():.{digits}f}"

        rows.append({
            "method": name, "seeds": len(g),
            "test acc. (%)": ms("accuracy", True, 1),
            "mean class acc. (%)": ms("mean_class_accuracy", True, 1),
            "intra/inter, features h": ms("feature_ratio", digits=3),
            "intra/inter, embedding e": ms("intra_inter_ratio", digits=3),
            "test embedding spread": ms("embedding_spread", digits=2),
            "noisy AUC, attention": ms("noisy_auc", digits=3),
            "noisy AUC, self-confidence": ms("noisy_auc_confidence", digits=3),
            "collapsed runs": int((g["collapsed"] == True).sum()),  # noqa: E712
        })
    return rows


def paired(rec: pd.DataFrame, a: str, b: str, col: str) -> dict | None:
    """Per-seed paired difference a - b of ``col`` (same seed: same data order and start)."""
    x = rec[rec["name"] == a].set_index("seed")[col]
    y = rec[rec["name"] == b].set_index("seed")[col]
    seeds = sorted(set(x.index) & set(y.index))
    if not seeds:
        return None
    d = (x.loc[seeds] - y.loc[seeds]).to_numpy(float)
    mean, lo, hi = _t_interval(d)
    return {"seeds": seeds, "diffs": d, "mean": mean, "lo": lo, "hi": hi}


def paired_rows(rec: pd.DataFrame) -> list[dict]:
    rows = []
    for a, b in (("tan", "ce"), ("triplet", "ce"), ("tan", "triplet"), ("tan-rr", "tan")):
        for col, label, scale in (("accuracy", "test acc. (points)", 100), ("feature_ratio", "intra/inter, h", 1),
                                  ("noisy_auc", "noisy AUC, attention", 1)):
            p = paired(rec, a, b, col)
            if p is None or not np.isfinite(p["diffs"]).all():
                continue
            digits = 2 if scale == 100 else 3
            rows.append({
                "comparison": f"{a} - {b}", "measure": label,
                "per seed": ", ".join(f"{scale * v:+.{digits}f}" for v in p["diffs"]),
                "mean": f"{scale * p['mean']:+.{digits}f}",
                "95 % t interval": (f"[{scale * p['lo']:+.{digits}f}, {scale * p['hi']:+.{digits}f}]"
                                    if math.isfinite(p["lo"]) else "n/a"),
            })
    return rows


def run_rows(rec: pd.DataFrame) -> list[dict]:
    rows = []
    order = {n: i for i, n in enumerate(RECIPE_ORDER)}
    for _, r in rec.sort_values(["name", "seed"], key=lambda s: s.map(order) if s.name == "name" else s).iterrows():
        h = _history(r["path"])
        rows.append({
            "run": r["run"], "best epoch": r["best_epoch"],
            "val acc. (%)": _fmt(h["val_acc"].max(), 1, pct=True),
            "test acc. (%)": _fmt(r["accuracy"], 2, pct=True),
            "test acc. last (%)": _fmt(r["accuracy_last"], 2, pct=True),
            "mean class acc. (%)": _fmt(r["mean_class_accuracy"], 2, pct=True),
            "intra/inter h": _fmt(r["feature_ratio"], 3),
            "intra/inter e": _fmt(r["intra_inter_ratio"], 3),
            "spread e": _fmt(r["embedding_spread"], 2),
            "final L_T": _fmt(h["loss_triplet"].iloc[-1], 3) if r["name"] != "ce" else "n/a",
            "attention mean (last)": _fmt(h["attention_mean"].iloc[-1], 2) if _config(r["path"])["attention"] else "n/a",
            "AUC attention": _fmt(r["noisy_auc"], 3),
            "AUC self-conf.": _fmt(r["noisy_auc_confidence"], 3),
            "test-selected acc. (%, papers only)": _fmt(r["accuracy_test_selected"], 2, pct=True),
        })
    return rows


def write_figure(rec: pd.DataFrame, sel: pd.DataFrame, path: Path) -> None:
    """The curves to read before the tables: batch embedding spread, share of violating
    triplets, triplet loss and attention mean per epoch, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tanlib.analysis.figures import METHOD_COLORS, OKABE_ITO, paper_style, save_figure

    colors = {**METHOD_COLORS, "tan-rr": OKABE_ITO["blue"]}
    panels = [("embedding_spread", "batch embedding spread"), ("violating_triplet", "share of violating triplets (L_T)"),
              ("loss_triplet", "L_T (mined triplets)"), ("attention_mean", "attention mean (tan, tan-rr)")]
    with paper_style():
        fig, axes = plt.subplots(1, 4, figsize=(12, 2.8))
        for ax, (col, title) in zip(axes, panels):
            for _, r in rec.iterrows():
                h = _history(r["path"])
                no_attention = col == "attention_mean" and not _config(r["path"])["attention"]
                if col in h and r["name"] != "ce" and not no_attention:
                    ax.plot(h["epoch"], h[col], color=colors.get(r["name"], "k"), alpha=0.8,
                            label=r["name"] if r["seed"] == rec[rec["name"] == r["name"]]["seed"].min() else None)
            for _, r in sel.iterrows():
                h = _history(r["path"])
                if col in h and r["run"] in ("all", "batchhard"):
                    ax.plot(h["epoch"], h[col], color="0.5", ls="--" if r["run"] == "all" else ":",
                            label=f"selection: {r['run']}")
            ax.set_title(title)
            ax.set_xlabel("epoch")
        axes[0].axhline(0.2, color="0.3", lw=0.8)
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        save_figure(fig, path.with_suffix(""))
        plt.close(fig)


def commands() -> list[str]:
    """The command of every recorded run, from its env.json (duplicates once)."""
    out = []
    for folder in (RESULTS / "selection", RESULTS / "recipe"):
        for run in sorted(p for p in folder.iterdir() if p.is_dir()):
            argv = json.loads((run / "env.json").read_text()).get("argv") or []
            out.append("tan " + " ".join(argv[1:]))
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------------- page
def build(write_figures: bool = False) -> tuple[str, str]:
    """(docs/results.md text, README block text) from the committed records."""
    rec, sel = _records(RESULTS / "recipe"), _records(RESULTS / "selection")
    if write_figures:
        write_figure(rec, sel, FIGURE)
    base = json.loads((REPO / "docs" / "sanity_baseline.json").read_text())
    seeds = sorted(rec["seed"].unique().tolist())
    acc = rec.groupby("name")["accuracy"].agg(["mean", "std", "min", "max"]) * 100
    ce_lo, ce_hi = acc.loc["ce", "min"], acc.loc["ce", "max"]
    in_band = BAND[0] <= acc.loc["ce", "mean"] <= BAND[1]
    collapsed = rec[rec["collapsed"] == True]  # noqa: E712
    spread = rec[rec["name"] != "ce"].groupby("name")["embedding_spread"].min()
    pt_ce, pt_tr = paired(rec, "tan", "ce", "accuracy"), paired(rec, "triplet", "ce", "accuracy")
    rr = paired(rec, "tan-rr", "tan", "accuracy")
    val = {n: [h["val_acc"].max() for h in map(_history, rec[rec["name"] == n]["path"])] for n in set(rec["name"])}
    auc = rec.groupby("name")["noisy_auc"].agg(["mean", "min", "max"])
    conf = rec.groupby("name")["noisy_auc_confidence"].agg(["mean", "min", "max"])
    feat = rec.groupby("name")["feature_ratio"].mean()

    def interval(p, scale=100, digits=2):
        if p is None or not math.isfinite(p["lo"]):
            return "n/a (fewer than two paired seeds)"
        return f"{scale * p['mean']:+.{digits}f} points (95 % t interval [{scale * p['lo']:+.{digits}f}, {scale * p['hi']:+.{digits}f}])"

    def contains_zero(p):
        return p is None or not math.isfinite(p["lo"]) or p["lo"] <= 0 <= p["hi"]

    rr_choice = "tan-rr" if "tan-rr" in val and np.mean(val["tan-rr"]) > np.mean(val["tan"]) else "tan"
    lines = [
        "# Results: a recipe whose metric terms learn, on SynthFER with annotator noise (quick preset)",
        "",
        "**What this is.** `ce`, `triplet` and `tan` (and `tan` with SCN's rank regularisation,",
        "`tan-rr`) trained with one protocol, the `quick` preset (ResNet-18 from scratch, 64 px,",
        "10 epochs, batch 64, Adam 1e-3, ExponentialLR 0.9, channels_last), on the default SynthFER",
        "(generator version 3: 2,250 train / 250 val / 700 test faces; 10 % of the training labels",
        "wrong by the `annotators` noise model, which puts them on ambiguous faces; test labels",
        "clean). **These are SynthFER numbers: verdicts on the mechanism, not on the paper's",
        "RAF-DB (88.40 %) or FERPlus (88.73 %) accuracy**, which used an MS-Celeb-1M-pretrained",
        "ResNet-18 at 224 px for 70 epochs.",
        "",
        f"**Seeds and selection.** Seeds {', '.join(map(str, seeds))} per method. `test acc.` is the test",
        "accuracy of the epoch with the best *validation* accuracy (10 % of train, stratified,",
        "seed 0); the test-selected figure (SCN's script picks the best *test* epoch) appears only",
        "in the per-run table, labelled. Runs with the same seed share the data order and the",
        "initial weights, so methods are compared by per-seed paired differences.",
        "",
        "**Records.** Every number here is read from the run records committed under",
        "[`results/`](../results) (`config.json`, `history.csv`, `metrics.json`, `env.json`; no",
        "checkpoints). `tan-seed0` is the `semihard` run of the recipe selection (the same config",
        "and seed). Regenerate this page with `python docs/make_results.py`; a test fails when",
        "it differs from what the records give.",
        "",
        "Reproduce the runs (each writes a run directory; `tan record` copies its record). The",
        "commands are the ones the records' `env.json` saved:",
        "",
        "```bash",
        "tan data synth --out data/synthfer    # the default dataset (version 3), seed 0",
        *commands(),
        "tan record reports/selection/* --out results/selection",
        "tan record reports/grid/* --out results/recipe",
        "python docs/make_results.py",
        "```",
        "",
        
        "Two runs at a time on 2 CPU cores (`OMP_NUM_THREADS=1`, `num_threads=1`): 12-17 minutes each.",
        "",
        "## Read the curves first",
        "",
        "![curves](figures/recipe_curves.png)",
        "",
        "Per epoch, over the training batches: the mean pairwise distance of the embeddings (the",
        "collapse criterion's line at 0.2), the share of all valid triplets that violate the margin",
        "(1.0 when collapsed; it falls as classes separate), the triplet loss over the mined",
        "triplets (semi-hard triplets have a hinge between 0 and the margin by definition, so this",
        "loss stays near half the margin whether or not the embedding improves: read the share of",
        "violating triplets instead) and the attention mean. Dashed and dotted grey: the `all` and",
        "`batch_hard` candidates of the selection.",
        "",
        "## Recipe selection (`tan`, seed 0, validation split)",
        "",
        "One run per candidate; the rule: the best validation accuracy among candidates whose",
        "embedding does not collapse, read with the curves. Test accuracy plays no part in the choice.",
        "",
        _table(selection_rows(sel)),
        "",
        "`min batch spread`: the lowest per-epoch mean pairwise distance of the training batches'",
        "embeddings; `test spread`: that of the test embeddings at the best-validation epoch;",
        "below 0.2 is collapsed (docs/method.md, \"Collapse\"). The validation split has 249",
        "faces, so one run's validation accuracy has a standard error of about 3 points.",
        "",
        f"## Summary over seeds {', '.join(map(str, seeds))} (mean ± std)",
        "",
        _table(summary_rows(rec)),
        "",
        "`intra/inter, features h`: mean intra-class over mean inter-class Euclidean distance of",
        "the L2-normalised backbone features of the test faces, the one space every method has",
        "(lower: tighter classes). `intra/inter, embedding e`: the same on the trained embedding,",
        "n/a where no metric term trains it. `noisy AUC`: ROC AUC for finding the wrong training",
        "labels, by low attention (label-blind) or by low p(given label | x) (label-aware,",
        "Confident Learning's self-confidence; it ranks as the small-loss criterion); 0.5 is chance.",
        "",
        "## Paired differences (same seed)",
        "",
        _table(paired_rows(rec)),
        "",
        "## Every run",
        "",
        _table(run_rows(rec)),
        "",
        "## The sanity band",
        "",
        "| model | test accuracy (%) | mean class accuracy (%) | command |",
        "| --- | ---: | ---: | --- |",
        f"| always the majority class (Happiness) | {100 * base['majority_accuracy']:.1f} | 14.3 | - |",
        f"| logistic regression on 32x32 gray pixels | {100 * base['accuracy']:.1f} | {100 * base['balanced_accuracy']:.1f} "
        "| `tan data baseline --root data/synthfer` |",
        f"| ResNet-18, `ce`, quick ({len(seeds)} seeds) | {acc.loc['ce', 'mean']:.1f} ± {acc.loc['ce', 'std']:.1f} | "
        f"{100 * rec[rec['name'] == 'ce']['mean_class_accuracy'].mean():.1f} | above |",
        "",
        f"The kit asks the quick `ce` ResNet-18 to land in roughly {BAND[0]:.0f}-{BAND[1]:.0f} %. On version 3 it",
        f"reaches {ce_lo:.1f}-{ce_hi:.1f} % over the seeds (mean {acc.loc['ce', 'mean']:.1f} %): "
        + ("inside the band" if in_band else "**at the band's lower edge, below 55 % on average**")
        + f", far above the pixel model ({100 * base['accuracy']:.1f} %). Version 2 (uniform flips, no blends)",
        "gave 58.7 ± 0.5 % with the same preset (the previous version of this page; those run directories",
        "were not committed); the blends and the noise on ambiguous faces make version 3 harder.",
        "",
        "## What the numbers say",
        "",
        "- **The metric terms now learn.** "
        + (f"No run of the recipe collapsed; the lowest test embedding spread of a triplet method is "
           f"{spread.min():.2f} (collapse: below 0.2; random unit vectors: 1.41)."
           if collapsed.empty else f"{len(collapsed)} run(s) collapsed: {', '.join(collapsed['run'])}.")
        + " The share of violating triplets falls over training (figure), which a flat semi-hard",
        "  loss hides. The selection's `batch_hard` candidate is the collapse the old recipe had.",
        f"- **Accuracy.** `tan` - `ce`: {interval(pt_ce)}; `triplet` - `ce`: {interval(pt_tr)}."
        + (" Both intervals contain 0: no accuracy difference is established at this scale."
           if contains_zero(pt_ce) and contains_zero(pt_tr) else " See the paired table for which intervals exclude 0."),
        f"- **Geometry in one space.** Mean intra/inter of the features h: "
        + ", ".join(f"`{n}` {feat[n]:.3f}" for n in RECIPE_ORDER if n in feat.index) + ". Paired against `ce`: "
        + "; ".join(f"`{n}` {interval(paired(rec, n, 'ce', 'feature_ratio'), scale=1, digits=3).replace(' points', '')}"
                    + (" (excludes 0)" if not contains_zero(paired(rec, n, "ce", "feature_ratio")) else "")
                    for n in ("triplet", "tan") if n in feat.index) + ".",
        f"- **Noise detection.** Attention AUC: "
        + ", ".join(f"`{n}` {auc.loc[n, 'mean']:.3f} ({auc.loc[n, 'min']:.3f}-{auc.loc[n, 'max']:.3f})"
                    for n in RECIPE_ORDER if n in auc.index and np.isfinite(auc.loc[n, "mean"]))
        + "; the label-aware self-confidence AUC: "
        + ", ".join(f"`{n}` {conf.loc[n, 'mean']:.3f}" for n in RECIPE_ORDER if n in conf.index) + ".",
    ]
    for n in ("tan", "tan-rr"):
        a_std = rec[rec["name"] == n]["noisy_auc"].std(ddof=1)
        if n in auc.index and np.isfinite(auc.loc[n, "mean"]):
            above = auc.loc[n, "mean"] - 0.5
            lines.append(
                f"  `{n}`: the attention beats chance by {above:+.3f} on average, "
                + (f"more than its seed standard deviation ({a_std:.3f}), "
                   + ("on every seed" if auc.loc[n, "min"] > 0.5 else "but not on every seed")
                   if above > a_std else f"less than its seed standard deviation ({a_std:.3f}): not established")
                + ".")
    att_runs = rec[np.isfinite(rec["noisy_auc"].astype(float))]
    better = int((att_runs["noisy_auc_confidence"] > att_runs["noisy_auc"]).sum())
    lines.append(
        "  The attention is label-blind and its mean drifts up over training (figure): weighted CE pushes every "
        "weight up, so the weights rank how hard a face is more than whether its label is wrong. The label-aware "
        f"self-confidence, which sees the label, beats the attention on {better} of {len(att_runs)} runs with attention.")
    if rr is not None:
        lines += [
            f"- **Rank regularisation.** Validation accuracy, mean over seeds: `tan` "
            f"{100 * np.mean(val['tan']):.1f} %, `tan-rr` {100 * np.mean(val['tan-rr']):.1f} %; chosen on validation: "
            f"`{rr_choice}`. Test accuracy `tan-rr` - `tan`: {interval(rr)}.",
        ]
    lines += [
        "",
        "What they do not say: anything about RAF-DB or FERPlus, about pretrained backbones (all",
        "runs start from scratch), or about longer training; nor does the Mahalanobis term or the",
        "threshold get an ablation here (`tan-euclid`, `tan-nothreshold` and the noise levels are",
        "the verdict's grid).",
        "",
    ]
    page = "\n".join(lines)
    readme = "\n".join([
        MARK_START,
        f"[docs/results.md](docs/results.md), generated from the run records in `results/`: `ce`, `triplet`,",
        f"`tan` and `tan-rr` on SynthFER version 3 (annotator noise) at the `quick` preset, seeds "
        f"{', '.join(map(str, seeds))}. Test accuracy at the best-validation epoch: "
        + "; ".join(f"`{n}` {acc.loc[n, 'mean']:.1f} ± {acc.loc[n, 'std']:.1f} %" for n in RECIPE_ORDER if n in acc.index)
        + f". Paired `tan` - `ce`: {interval(pt_ce)}"
        + (": no accuracy difference is established. " if contains_zero(pt_ce) else ". ")
        + ("No embedding collapsed (semi-hard mining; the old batch-hard recipe collapses, and every run now "
           "says so in its metrics.json)." if collapsed.empty else f"{len(collapsed)} run(s) collapsed.")
        + " In the shared feature space, intra/inter of `triplet` - `ce`: "
        + interval(paired(rec, "triplet", "ce", "feature_ratio"), scale=1, digits=3).replace(" points", "")
        + (" (the triplet term tightens the classes)" if not contains_zero(paired(rec, "triplet", "ce", "feature_ratio"))
           else " (not established)")
        + f"; `tan`'s attention finds the wrong labels only weakly (AUC {auc.loc['tan', 'mean']:.2f}, against "
        + f"{conf.loc['tan', 'mean']:.2f} for the label-aware self-confidence)."
        + " SynthFER numbers test the mechanism, not the paper's RAF-DB / FERPlus accuracy.",
        MARK_END,
    ])
    return page, readme


def _readme_with(block: str) -> str:
    text = README.read_text()
    start, end = text.index(MARK_START), text.index(MARK_END) + len(MARK_END)
    return text[:start] + block + text[end:]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    page, block = build(write_figures=not check)
    if check:
        stale = [p for p, want in ((PAGE, page), (README, _readme_with(block))) if p.read_text() != want]
        for p in stale:
            print(f"{p.name} differs from what the records in results/ generate; "
                  "run python docs/make_results.py", file=sys.stderr)
        return 1 if stale else 0
    PAGE.write_text(page)
    README.write_text(_readme_with(block))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main(sys.argv[1:]))
