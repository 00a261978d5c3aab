"""Figures across runs: the ablation and the verdict on the paper's claims.

What this module owns: the ablation bar chart of notebook 05 (``plot_ablation``: a
metric's mean ± std over seeds per method, from ``summarise_runs``) and the verdict's
figure (``plot_claims``: the paired differences of ``tanlib.analysis.verdict.claim_results``
per claim and label-noise level, coloured by the verdict).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tanlib.analysis.figures.style import (
    DOUBLE_COLUMN_IN,
    METHOD_ORDER,
    OKABE_ITO,
    _method_color,
    figsize,
    paper_style,
)
from tanlib.errors import DataError


def plot_ablation(
    summary_df: pd.DataFrame, metric: str, label_col: str = "method", scale: float = 100.0, ylabel: str | None = None
) -> Figure:
    """Bar chart of ``<metric>_mean`` per method with ``<metric>_std`` error bars (from
    ``summarise_runs``), in ``METHOD_ORDER`` and coloured by ``METHOD_COLORS``.

    ``scale`` multiplies the values (100 for percent; use 1 for ratios). Values are
    written above the bars; a single run has no error bar.
    """
    if not isinstance(summary_df, pd.DataFrame):
        raise DataError(f"summary_df must be a summarise_runs() DataFrame, got {type(summary_df).__name__}")
    mean_col, std_col = f"{metric}_mean", f"{metric}_std"
    for col in (label_col, mean_col):
        if col not in summary_df.columns:
            raise DataError(
                f"summary_df has no column {col!r} (metric={metric!r}); columns are {list(summary_df.columns)}"
            )
    if summary_df[label_col].duplicated().any():
        dup = sorted(summary_df.loc[summary_df[label_col].duplicated(), label_col].astype(str).unique())
        raise DataError(
            f"summary_df has several rows per {label_col!r}; filter it to one configuration per "
            f"{label_col} first (duplicates: {dup})"
        )
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    df = summary_df.assign(_rank=summary_df[label_col].map(lambda m: rank.get(str(m).lower(), len(rank))))
    df = df.sort_values("_rank", kind="stable")
    labels = df[label_col].astype(str).tolist()
    means = df[mean_col].to_numpy(dtype=float) * scale
    stds = (df[std_col].to_numpy(dtype=float) if std_col in df.columns else np.full(len(df), np.nan)) * scale
    with paper_style():
        fig, ax = plt.subplots(figsize=figsize(1, 0.8))
        x = np.arange(len(labels))
        bars = ax.bar(
            x,
            means,
            yerr=np.nan_to_num(stds, nan=0.0),
            capsize=2,
            color=[_method_color(m, k) for k, m in enumerate(labels)],
            error_kw={"elinewidth": 0.8, "capthick": 0.8},
        )
        ax.bar_label(bars, labels=[f"{m:.2f}" if np.isfinite(m) else "" for m in means], fontsize=6, padding=2)
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.set_ylabel(ylabel or (f"{metric} (%)" if scale == 100.0 else metric))
        finite = means[np.isfinite(means)]
        if finite.size:
            top = float(np.nanmax(means + np.nan_to_num(stds, nan=0.0)))
            low = float(np.nanmin(means - np.nan_to_num(stds, nan=0.0)))
            span = max(top - low, abs(top) * 0.02, 1e-9)
            ax.set_ylim(max(0.0, low - span * 1.5) if low >= 0 else low - span * 0.5, top + span * 0.6)
        ax.yaxis.grid(True)
        ax.set_axisbelow(True)
        n_runs = df["n_runs"].tolist() if "n_runs" in df.columns else None
        title = metric.replace("_", " ")
        if n_runs:
            title += (
                f" (mean ± std over {min(n_runs)}"
                + (f"-{max(n_runs)}" if max(n_runs) != min(n_runs) else "")
                + (" seed)" if max(n_runs) == 1 else " seeds)")
            )
        ax.set_title(title)
        fig.tight_layout()
    return fig


_VERDICT_COLORS = {
    "supported": OKABE_ITO["bluish_green"],
    "contradicted": OKABE_ITO["vermillion"],
    "equivalent": OKABE_ITO["blue"],
    "inconclusive": "0.45",
    "not judged": "0.6",
    "n/a": "0.75",
}


#: verdicts hyphenated onto two lines: three levels' tick labels side by side in a narrow panel ran together
_SHORT = {
    "supported": "suppor-\nted",
    "contradicted": "contra-\ndicted",
    "equivalent": "equiva-\nlent",
    "inconclusive": "incon-\nclusive",
    "not judged": "not\njudged",
    "n/a": "n/a",
}


def plot_claims(results: Sequence[dict]) -> Figure:
    """The verdict's figure: one panel per claim (``tanlib.analysis.verdict.claim_results``),
    one x position per label-noise level; the per-seed paired differences as points, the
    effect with its 95 % interval (seeds + test images) as a bar with caps and its 90 % interval,
    the one the equivalence test (TOST) reads, as the bar's thick middle, the hierarchical
    bootstrap interval as a thin bar beside it, +-delta (the smallest effect that matters) as a grey
    band around 0, coloured by the verdict. The y axis spans the points, the band and the bootstrap
    intervals (with a margin): a t interval wider than that (two seeds give t's 1 degree of freedom)
    runs to the panel's edge and ends in a triangle there, so one level's wide interval does not
    flatten the others (the claims table has its numbers)."""
    from scipy import stats

    from tanlib.analysis.verdict import MEASURE_FORMAT

    claims = list(dict.fromkeys(r["claim"] for r in results))
    if not claims:  # e.g. runs that are variants of their methods (a smoke run at 32 px): nothing to judge
        with paper_style():
            fig, ax = plt.subplots(figsize=(DOUBLE_COLUMN_IN, 1.0))
            ax.text(0.5, 0.5, "no claim has runs of the methods' presets to compare", ha="center", va="center")
            ax.set_axis_off()
        return fig
    with paper_style():
        ncols = min(3, len(claims))
        nrows = -(-len(claims) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(DOUBLE_COLUMN_IN, 2.0 * nrows), squeeze=False)
        for ax in axes.flat[len(claims) :]:
            ax.set_visible(False)
        for ax, claim in zip(axes.flat, claims):
            rows = [r for r in results if r["claim"] is claim]
            scale = MEASURE_FORMAT.get(claim.measure, (1, 3, ""))[0]
            shown = [-scale * claim.delta, scale * claim.delta]  # what the y axis must hold
            bars = []  # (x, lo, hi, colour) of the t intervals, clipped to the axis below
            for k, r in enumerate(rows):
                d, t, color = r["diff"], r.get("test"), _VERDICT_COLORS[r["verdict"]]
                ax.fill_between([k - 0.4, k + 0.4], -scale * claim.delta, scale * claim.delta, color="0.9", lw=0)
                if d is None:
                    box = dict(fc="0.9", ec="none")  # over the zero line
                    ax.text(k, 0, "no paired\nruns", ha="center", va="center", fontsize=6, color="0.5", bbox=box)
                    continue
                jitter = np.linspace(-0.12, 0.12, len(d.diffs)) if len(d.diffs) > 1 else np.zeros(1)
                ax.scatter(k - 0.1 + jitter, scale * d.diffs, s=8, color=color, zorder=3)
                shown.extend(scale * np.asarray(d.diffs, dtype=float))
                if t is not None and np.isfinite(t.lo):
                    bars.append((k + 0.15, scale * t.lo, scale * t.hi, color))
                    ax.errorbar(
                        k + 0.15,
                        scale * t.effect,
                        yerr=[[scale * (t.effect - t.lo)], [scale * (t.hi - t.effect)]],
                        fmt="o",
                        ms=3,
                        color=color,
                        capsize=2,
                        lw=1,
                    )
                    half = float(stats.t.ppf(0.95, t.df)) * t.se  # the 90 % interval TOST reads
                    ax.plot([k + 0.15] * 2, [scale * (t.effect - half), scale * (t.effect + half)], color=color, lw=2.5)
                if r["bootstrap"] is not None:
                    lo, hi = r["bootstrap"]
                    ax.plot([k + 0.25] * 2, [scale * lo, scale * hi], color=color, lw=0.6)
                    shown.extend([scale * lo, scale * hi])
            bottom, top = min(shown), max(shown)
            margin = 0.25 * (top - bottom) or 1.0
            bottom, top = bottom - margin, top + margin
            ax.set_ylim(bottom, top)
            for x, lo, hi, color in bars:  # an interval running off the panel: a triangle at the edge
                if hi > top:
                    ax.plot([x], [top], marker="^", ms=4, color=color, clip_on=False, zorder=4)
                if lo < bottom:
                    ax.plot([x], [bottom], marker="v", ms=4, color=color, clip_on=False, zorder=4)
            ax.axhline(0, color="0.3", lw=0.6)
            ax.set_xticks(
                range(len(rows)),
                [
                    "all runs" if r["level"] is None else f"{100 * r['level']:.0f} %\n{_SHORT[r['verdict']]}"
                    for r in rows
                ],
                fontsize=6,
            )
            ax.set_xlim(-0.6, len(rows) - 0.4)
            ax.set_title(textwrap.fill(claim.text, 44), fontsize=6, loc="left")
            ax.set_ylabel(
                claim.comparison + (" (pts)" if scale == 100 else ""),
                fontsize=6,
            )
        fig.tight_layout()
    return fig
