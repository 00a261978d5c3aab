"""Figures of one run: how it trained and how it does on its test images.

What this module owns: the training curves of notebook 02 (``plot_learning_curves``,
from a run's ``history.csv``; ``plot_attention_by_class``, the mean attention per given
class and epoch) and the evaluation figures of notebook 03: the confusion
matrix (``plot_confusion``), per-class recall by run (``plot_per_class``), the attention
histogram split by clean / flipped label (``plot_attention_hist``) and the noisy-label
detectors' score distributions (``plot_noise_detectors``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tanlib.analysis.figures.style import (
    DOUBLE_COLUMN_IN,
    OKABE_ITO,
    _method_color,
    class_colors,
    figsize,
    paper_style,
)
from tanlib.errors import DataError


def plot_learning_curves(history_df: pd.DataFrame, x: str = "epoch") -> Figure:
    """Training curves from a run's ``history.csv``: one panel per group of columns
    that exists: losses (``loss*``, ``val_loss*``), accuracy (``*_acc``, ``*accuracy``),
    attention (``attention*``) and counts (``n_*``: |H|, triplets, empty batches).

    The x axis is the ``x`` column (default "epoch") or the row number.
    """
    if not isinstance(history_df, pd.DataFrame):
        raise DataError(f"history_df must be a pandas DataFrame, got {type(history_df).__name__}")
    cols = [c for c in history_df.columns if c != x and pd.api.types.is_numeric_dtype(history_df[c])]
    groups = {
        "loss": [c for c in cols if c.startswith("loss") or c.startswith("val_loss") or c.startswith("train_loss")],
        "accuracy": [c for c in cols if c.endswith("_acc") or c.endswith("accuracy") or c.endswith("_mca")],
        "attention": [c for c in cols if c.startswith("attention") and not c.startswith("attention_class")],
        "count per epoch": [c for c in cols if c.startswith("n_")],
    }
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        raise DataError(
            "history_df has no column to plot; expected loss_*, *_acc, attention_* or n_* "
            f"columns, got {list(history_df.columns)}"
        )
    xs = history_df[x].to_numpy() if x in history_df.columns else np.arange(1, len(history_df) + 1)
    with paper_style():
        fig, axes = plt.subplots(1, len(groups), figsize=(DOUBLE_COLUMN_IN, 2.0), squeeze=False)
        for ax, (title, columns) in zip(axes[0], groups.items()):
            for col in columns:
                style = "--" if col.startswith("val") else "-"
                width = 1.8 if col in ("loss_total", "loss") else 1.0
                ax.plot(
                    xs,
                    history_df[col].to_numpy(dtype=float),
                    style,
                    lw=width,
                    marker="o" if len(xs) <= 12 else None,
                    label=col,
                )
            ax.set_title(title)
            ax.set_xlabel(x if x in history_df.columns else "row")
            if title == "loss" and (history_df[columns].to_numpy(dtype=float) > 0).all() and len(columns) > 1:
                ax.set_yscale("log")
            ax.legend(loc="best")
        fig.tight_layout()
    return fig


ATTENTION_CLASS = re.compile(r"attention_class(\d+)")


def has_attention_by_class(history: pd.DataFrame) -> bool:
    """Whether a ``history.csv`` holds the mean attention per given class (``attention_class<j>``)."""
    return any(ATTENTION_CLASS.fullmatch(str(c)) for c in history.columns)


def attention_by_class(histories) -> pd.DataFrame:
    """The mean attention weight per given class and epoch (``history.csv``'s
    ``attention_class<j>``), averaged over ``histories`` (the seeds of one method): a frame
    indexed by epoch, one column per class index. Raises ``DataError`` when no history has
    the columns (a method without attention, or a run written before they were recorded)."""
    if isinstance(histories, pd.DataFrame):
        histories = [histories]
    frames = []
    for h in histories:
        cols = {int(m.group(1)): c for c in h.columns if (m := ATTENTION_CLASS.fullmatch(str(c)))}
        if cols:
            frames.append(h.set_index("epoch")[[cols[j] for j in sorted(cols)]].set_axis(sorted(cols), axis=1))
    if not frames:
        raise DataError("no history has attention_class<j> columns (a method with attention, recorded per class)")
    return pd.concat(frames).groupby(level=0).mean()


def plot_attention_by_class(histories_by_method: Mapping, classes) -> Figure:
    """The mean attention weight of each given class per epoch, one panel per method
    (``{method: [history, ...]}``, averaged over the histories of its seeds): which classes
    the attention down-weights as training goes on. A class the attention keeps low trains
    with a smaller share of the cross-entropy, which is what a drop in its recall (and in
    mean class accuracy) would follow from."""
    if not isinstance(histories_by_method, Mapping) or not histories_by_method:
        raise DataError("histories_by_method must be a non-empty mapping {method: [history DataFrame, ...]}")
    names = [str(c) for c in classes]
    lists = {m: [h] if isinstance(h, pd.DataFrame) else list(h) for m, h in histories_by_method.items()}
    seeds = {m: sum(has_attention_by_class(h) for h in hs) for m, hs in lists.items()}
    means = {m: attention_by_class(hs) for m, hs in lists.items()}
    colors = dict(zip(range(len(names)), class_colors(len(names))))
    with paper_style():
        n = len(means)
        width = min(DOUBLE_COLUMN_IN, max(4.5, 1.9 * n + 1.2))
        ncol = 7 if width >= 6 else 4  # the legend's rows: one on a wide figure, two on a narrow one
        fig, axes = plt.subplots(1, n, figsize=(width, 2.3 if ncol == 7 else 2.6), squeeze=False, sharey=True)
        for ax, (method, frame) in zip(axes[0], means.items()):
            for j in frame.columns:
                ax.plot(frame.index, frame[j], lw=1.2, color=colors.get(j), label=names[j] if j < len(names) else j)
            # five panels on a double column leave 1.4 in each: "tan-nothreshold (2 seeds)" in a smaller size
            ax.set_title(
                f"{method} ({seeds[method]} seed{'s' if seeds[method] != 1 else ''})",
                fontsize="small" if width / n < 1.6 else None,
            )
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylim(0, 1)
        axes[0][0].set_ylabel("mean attention, given class")
        legend = {}  # every class of every panel, once, in class order
        for ax in axes[0]:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(label, handle)
        order = sorted(legend, key=lambda label: names.index(label) if label in names else len(names))
        fig.legend([legend[k] for k in order], order, loc="lower center", ncol=min(len(order), ncol), frameon=False)
        fig.tight_layout(rect=(0, 0.14 if ncol == 7 else 0.22, 1, 1))
    return fig


def plot_confusion(confusion, classes, normalize: bool = True) -> Figure:
    """Confusion matrix heatmap (rows = true class). ``normalize`` divides each row by
    its count, so the diagonal shows per-class recall (in %); rows without samples
    stay 0."""
    cm = np.asarray(confusion, dtype=np.float64)
    names = [str(c) for c in classes]
    if cm.shape != (len(names), len(names)):
        raise DataError(f"confusion must be {len(names)} x {len(names)} (one row/column per class), got {cm.shape}")
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        shown = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0) * 100.0
        fmt = "{:.0f}"
    else:
        shown = cm
        fmt = "{:.0f}"
    size = min(max(2.2, 0.42 * len(names) + 1.0), DOUBLE_COLUMN_IN)
    with paper_style():
        fig, ax = plt.subplots(figsize=(size + 0.5, size))
        vmax = 100.0 if normalize else max(shown.max(), 1.0)
        im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=vmax)
        for i in range(len(names)):
            for j in range(len(names)):
                value = shown[i, j]
                ax.text(
                    j,
                    i,
                    fmt.format(value),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if value > 0.6 * vmax else "black",
                )
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for spine in ax.spines.values():
            spine.set_visible(False)
        cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cbar.set_label("% of true class" if normalize else "count")
        ax.set_title("Confusion matrix" + (" (row-normalised, %)" if normalize else ""))
        fig.tight_layout()
    return fig


def plot_per_class(metrics_dicts_by_run: Mapping, classes, metric: str = "recall") -> Figure:
    """Grouped bars of per-class recall (or ``metric``: precision, f1), one bar per run.

    ``metrics_dicts_by_run``: ``{run name: classification_metrics(...) dict}`` (or its
    ``per_class`` part). Runs named after a method get its ``METHOD_COLORS`` colour.
    """
    if not isinstance(metrics_dicts_by_run, Mapping) or not metrics_dicts_by_run:
        raise DataError("metrics_dicts_by_run must be a non-empty dict {run name: metrics dict}")
    names = [str(c) for c in classes]
    values = {}
    for run, metrics in metrics_dicts_by_run.items():
        per_class = metrics.get("per_class", metrics) if isinstance(metrics, Mapping) else None
        if not isinstance(per_class, Mapping):
            raise DataError(f"metrics of run {run!r} must be a dict with a 'per_class' entry")
        missing = [c for c in names if c not in per_class]
        if missing:
            raise DataError(f"run {run!r} has no per-class metrics for classes {missing}")
        try:
            values[run] = [float(per_class[c][metric]) for c in names]
        except KeyError as exc:
            raise DataError(f"run {run!r}: per-class entries lack {metric!r} (expected precision, recall, f1)") from exc
    runs = list(values)
    with paper_style():
        fig, ax = plt.subplots(figsize=figsize(2, 0.34))
        width = 0.8 / len(runs)
        x = np.arange(len(names))
        for k, run in enumerate(runs):
            ax.bar(
                x + (k - (len(runs) - 1) / 2) * width,
                np.asarray(values[run]) * 100.0,
                width,
                label=str(run),
                color=_method_color(run, k),
            )
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_ylim(0, 100)
        ax.yaxis.grid(True)
        ax.set_axisbelow(True)
        ax.legend(ncols=min(len(runs), 6), loc="upper center", bbox_to_anchor=(0.5, 1.18))
        fig.tight_layout()
    return fig


def plot_attention_hist(attention, noisy=None, bins: int = 40) -> Figure:
    """Histogram of the per-sample attention weights; with ``noisy`` (True = label was
    flipped) two density histograms, clean vs flipped, and the noisy-label AUC in the
    title (``noisy_label_auc``)."""
    from tanlib.analysis.metrics import noisy_label_auc

    a = np.asarray(
        attention.detach().cpu().numpy() if hasattr(attention, "detach") else attention, dtype=np.float64
    ).ravel()
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise DataError("attention must be a non-empty array of finite values")
    edges = np.linspace(0.0, 1.0, bins + 1) if a.min() >= 0.0 and a.max() <= 1.0 else bins
    with paper_style():
        fig, ax = plt.subplots(figsize=figsize(1, 0.7))
        if noisy is None:
            ax.hist(a, bins=edges, color=OKABE_ITO["blue"], alpha=0.85)
            ax.set_ylabel("samples")
            ax.set_title(f"Attention weights (n={a.size}, mean {a.mean():.3f})")
        else:
            n = np.asarray(noisy.detach().cpu().numpy() if hasattr(noisy, "detach") else noisy).astype(bool).ravel()
            if n.shape != a.shape:
                raise DataError(f"noisy must have one entry per attention value ({a.size}), got {n.size}")
            auc = noisy_label_auc(a, n)
            for mask, label, color in (
                (~n, "clean label", OKABE_ITO["blue"]),
                (n, "flipped label", OKABE_ITO["vermillion"]),
            ):
                if mask.any():
                    ax.hist(
                        a[mask],
                        bins=edges,
                        density=True,
                        alpha=0.55,
                        color=color,
                        label=f"{label} (n={int(mask.sum())})",
                    )
            ax.set_ylabel("density")
            ax.set_title("Attention, clean vs flipped" + (f" (noisy-label AUC {auc:.3f})" if auc is not None else ""))
            ax.legend()
        ax.set_xlabel("attention weight")
        fig.tight_layout()
    return fig


def plot_noise_detectors(scores: dict, noisy, bins: int = 30) -> Figure:
    """One panel per detector of ``detector_scores`` (low score = suspected wrong label):
    density histograms of the score for clean and wrong training labels, the detector's
    noisy-label AUC in the panel title."""
    from tanlib.analysis.metrics import noisy_label_auc

    n = np.asarray(noisy).astype(bool).ravel()
    if not scores:
        raise DataError("scores is empty: no detector to show")
    names = {
        "attention": "attention weight",
        "self_confidence": "p(given label | x)",
        "margin": "p(given) - max p(other)",
    }
    with paper_style():
        fig, axes = plt.subplots(1, len(scores), figsize=figsize(2, 0.35), squeeze=False)
        for ax, (name, score) in zip(axes[0], scores.items()):
            v = np.asarray(score, dtype=np.float64).ravel()
            if v.shape != n.shape:
                raise DataError(f"detector {name!r} has {v.size} scores for {n.size} labels")
            auc = noisy_label_auc(v, n)
            edges = np.linspace(v.min(), v.max() + 1e-9, bins + 1)
            for mask, label, color in ((~n, "clean", OKABE_ITO["blue"]), (n, "wrong", OKABE_ITO["vermillion"])):
                if mask.any():
                    ax.hist(
                        v[mask],
                        bins=edges,
                        density=True,
                        alpha=0.55,
                        color=color,
                        label=f"{label} label (n={int(mask.sum())})",
                    )
            ax.set_xlabel(names.get(name, name))
            ax.set_title(f"{name}: AUC {auc:.3f}" if auc is not None else name)
        axes[0][0].set_ylabel("density")
        axes[0][0].legend()
        fig.tight_layout()
    return fig
