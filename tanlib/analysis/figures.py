"""Figures of the kit, in one paper style, saved reproducibly.

What this module implements:

- ``paper_style`` / ``PAPER_RC``: one matplotlib style for every figure: DejaVu Sans,
  8 pt text sized for a 3.5 in single-column or 7 in double-column figure
  (``figsize``), TrueType fonts embedded in PDFs, and the Okabe-Ito colour-blind-safe
  palette (Okabe & Ito, "Color Universal Design", 2008; Wong, Nature Methods 8:441,
  2011), with ``METHOD_COLORS`` fixing one colour per method of docs/method.md.
- ``save_figure``: PNG (200 dpi) and PDF with deterministic metadata (no creation
  date, no software stamp), so that saving the same figure twice gives byte-identical
  files and a rerun of the pipeline changes a figure file only when its content does.
- Plot functions that return a ``matplotlib.figure.Figure`` and never save: the data
  figures of notebook 01 (class distribution, sample grid), the training curves of
  02, the evaluation figures of 03 (confusion matrix, per-class recall, attention
  histogram split by clean / flipped label, image grids for hardest mistakes and
  Grad-CAM overlays), the embedding figures of 04 (UMAP panels, intra- vs inter-class
  distance distributions; McInnes et al., "UMAP", arXiv:1802.03426) and the ablation
  bar chart of 05.

umap-learn is imported inside ``umap_2d`` only.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tanlib.errors import ConfigError, DataError

__all__ = [
    "DOUBLE_COLUMN_IN",
    "METHOD_COLORS",
    "METHOD_ORDER",
    "OKABE_ITO",
    "PAPER_RC",
    "SINGLE_COLUMN_IN",
    "class_colors",
    "figsize",
    "paper_style",
    "plot_ablation",
    "plot_attention_hist",
    "plot_claims",
    "plot_class_distribution",
    "plot_confusion",
    "plot_distance_distributions",
    "plot_embeddings_2d",
    "plot_image_grid",
    "plot_learning_curves",
    "plot_per_class",
    "plot_sample_grid",
    "save_figure",
    "umap_2d",
]

SINGLE_COLUMN_IN = 3.5
DOUBLE_COLUMN_IN = 7.0

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
_GREY = "#999999"

#: Display order of the methods (docs/method.md), baseline first, TAN last.
METHOD_ORDER = ("ce", "scn", "triplet", "tan-euclid", "tan-nothreshold", "tan")

#: One fixed colour per method; TAN gets the most salient (vermillion), CE neutral grey.
METHOD_COLORS = {
    "ce": _GREY,
    "scn": OKABE_ITO["orange"],
    "triplet": OKABE_ITO["sky_blue"],
    "tan-euclid": OKABE_ITO["bluish_green"],
    "tan-nothreshold": OKABE_ITO["reddish_purple"],
    "tan": OKABE_ITO["vermillion"],
}

_CYCLE = [
    OKABE_ITO[k]
    for k in ("blue", "vermillion", "bluish_green", "orange", "reddish_purple", "sky_blue", "yellow", "black")
]

PAPER_RC = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "legend.frameon": False,
    "figure.titlesize": 9,
    "figure.dpi": 100,
    "figure.figsize": (SINGLE_COLUMN_IN, SINGLE_COLUMN_IN * 0.75),
    "axes.prop_cycle": matplotlib.cycler(color=_CYCLE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "axes.grid": False,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.5,
    "lines.linewidth": 1.2,
    "lines.markersize": 3,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "image.cmap": "viridis",
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "svg.hashsalt": "tanlib",
}


def paper_style():
    """Context manager applying ``PAPER_RC`` (``matplotlib.rc_context``).

    ``with paper_style(): fig, ax = plt.subplots(...)``. Every plot function of this
    module already draws inside it; use it for figures drawn by hand.
    """
    return matplotlib.rc_context(PAPER_RC)


def figsize(columns: int = 1, aspect: float = 0.75, rows: float = 1.0) -> tuple[float, float]:
    """Figure size in inches: width of one (3.5 in) or two (7 in) columns, height =
    width x ``aspect`` x ``rows``."""
    if columns not in (1, 2):
        raise ConfigError(f"columns must be 1 (single column, 3.5 in) or 2 (double, 7 in), got {columns!r}")
    if aspect <= 0 or rows <= 0:
        raise ConfigError(f"aspect and rows must be positive, got aspect={aspect!r}, rows={rows!r}")
    width = SINGLE_COLUMN_IN if columns == 1 else DOUBLE_COLUMN_IN
    return (width, width * aspect * rows)


def class_colors(n: int) -> list[str]:
    """``n`` distinguishable colours for classes: Okabe-Ito up to 8, tab20 beyond."""
    if n <= len(_CYCLE):
        return _CYCLE[:n]
    cmap = matplotlib.colormaps["tab20"]
    return [matplotlib.colors.to_hex(cmap(i % 20)) for i in range(n)]


def _method_color(name: str, fallback_index: int) -> str:
    key = str(name).lower()
    if key in METHOD_COLORS:
        return METHOD_COLORS[key]
    # "tan (seed 0)", "tan/seed1": match the longest method name the run name starts with
    for method in sorted(METHOD_COLORS, key=len, reverse=True):
        if key.startswith(method) and (len(key) == len(method) or not key[len(method)].isalnum() and key[len(method)] != "-"):
            return METHOD_COLORS[method]
    return _CYCLE[fallback_index % len(_CYCLE)]


# --------------------------------------------------------------------------- saving


def save_figure(fig: Figure, path_without_suffix, dpi: int = 200) -> list[Path]:
    """Write ``fig`` as ``<path>.png`` (``dpi``) and ``<path>.pdf``; return both paths.

    Metadata that would change between runs is removed (PDF ``CreationDate``, PNG
    ``Software``), so the same figure saved twice gives byte-identical files. A
    trailing ``.png``/``.pdf`` on the path is dropped; parent folders are created.
    """
    if not isinstance(fig, Figure):
        raise ConfigError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    base = Path(path_without_suffix)
    if base.suffix.lower() in (".png", ".pdf"):
        base = base.with_suffix("")
    if not base.name:
        raise ConfigError(f"path_without_suffix must name a file, got {str(path_without_suffix)!r}")
    base.parent.mkdir(parents=True, exist_ok=True)
    png = base.with_name(base.name + ".png")
    pdf = base.with_name(base.name + ".pdf")
    with paper_style():
        fig.savefig(png, dpi=dpi, format="png", metadata={"Software": None})
        fig.savefig(
            pdf,
            format="pdf",
            metadata={"CreationDate": None, "ModDate": None, "Producer": "tanlib (matplotlib pdf backend)", "Creator": "tanlib"},
        )
    return [png, pdf]


# --------------------------------------------------------------------------- data


def _label_names(values: pd.Series, classes: Sequence[str]) -> pd.Series:
    """Map a label column (indices or names) to class names, checking the values."""
    names = list(classes)
    if pd.api.types.is_integer_dtype(values):
        bad = sorted(set(values[(values < 0) | (values >= len(names))].tolist()))
        if bad:
            raise DataError(f"label values {bad[:5]} are outside 0..{len(names) - 1} (one per class)")
        return values.map(lambda i: names[int(i)])
    unknown = sorted(set(values.astype(str)) - set(names))
    if unknown:
        raise DataError(f"labels {unknown[:5]} are not among classes {names}")
    return values.astype(str)


def plot_class_distribution(frame: pd.DataFrame, classes, label_col: str = "label", split_col: str = "split") -> Figure:
    """Grouped bars: number of images per class, one bar per split (train/val/test).

    ``frame`` is a manifest: ``label_col`` holds class indices or names,
    ``split_col`` the split (a frame without it is drawn as one split "all").
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"frame must be a pandas DataFrame (a manifest), got {type(frame).__name__}")
    if label_col not in frame.columns:
        raise DataError(f"frame has no label column {label_col!r}; columns are {list(frame.columns)}")
    names = [str(c) for c in classes]
    labels = _label_names(frame[label_col], names)
    splits = frame[split_col].astype(str) if split_col in frame.columns else pd.Series("all", index=frame.index)
    order = [s for s in ("train", "val", "test") if s in set(splits)] + sorted(set(splits) - {"train", "val", "test"})
    counts = pd.crosstab(labels, splits).reindex(index=names, columns=order, fill_value=0)
    with paper_style():
        fig, ax = plt.subplots(figsize=figsize(2, 0.32))
        width = 0.8 / max(len(order), 1)
        x = np.arange(len(names))
        for k, split in enumerate(order):
            bars = ax.bar(x + (k - (len(order) - 1) / 2) * width, counts[split].to_numpy(), width, label=f"{split} (n={int(counts[split].sum())})")
            ax.bar_label(bars, fontsize=5, padding=1)
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_ylabel("images")
        ax.set_title("Class distribution per split")
        ax.legend(ncols=len(order))
        fig.tight_layout()
    return fig


def _to_hwc(image) -> np.ndarray:
    """One image (HW, CHW with C in 1/3, or HWC) as HxW or HxWx3 for imshow."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.transpose(img, (1, 2, 0))
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[-1] not in (3, 4)):
        raise DataError(f"an image must be HxW, CxHxW or HxWxC with C in (1, 3, 4), got shape {img.shape}")
    if img.dtype != np.uint8:
        img = np.clip(img.astype(np.float64), 0.0, 1.0 if img.max() <= 1.0 else 255.0)
        if img.max() > 1.0:
            img = img / 255.0
    return img


def plot_sample_grid(images_uint8_NCHW, labels, classes, per_class: int = 6) -> Figure:
    """A grid with one row per class and up to ``per_class`` of its images (the first
    ones in the given order); empty cells stay blank.

    ``images_uint8_NCHW``: N x C x H x W uint8 (C = 1 or 3), numpy or torch.
    ``labels``: N class indices.
    """
    if hasattr(images_uint8_NCHW, "detach"):
        images_uint8_NCHW = images_uint8_NCHW.detach().cpu().numpy()
    images = np.asarray(images_uint8_NCHW)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DataError(f"images_uint8_NCHW must have shape N x C x H x W with C in (1, 3), got {images.shape}")
    if not isinstance(per_class, int) or per_class < 1:
        raise ConfigError(f"per_class must be a positive int, got {per_class!r}")
    labels = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels).astype(np.int64)
    if labels.shape != (images.shape[0],):
        raise DataError(f"labels must have one entry per image ({images.shape[0]}), got shape {labels.shape}")
    names = [str(c) for c in classes]
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        raise DataError(f"labels must be class indices in 0..{len(names) - 1}")
    cell = min(DOUBLE_COLUMN_IN / (per_class + 1), 0.9)
    with paper_style():
        fig, axes = plt.subplots(len(names), per_class, figsize=(cell * per_class + 0.9, cell * len(names)), squeeze=False)
        for row, name in enumerate(names):
            chosen = np.flatnonzero(labels == row)[:per_class]
            for col in range(per_class):
                ax = axes[row, col]
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if col < len(chosen):
                    img = _to_hwc(images[chosen[col]])
                    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
                if col == 0:
                    ax.set_ylabel(name, rotation=0, ha="right", va="center")
        fig.subplots_adjust(wspace=0.04, hspace=0.04, left=0.14, right=0.99, top=0.99, bottom=0.01)
    return fig


# --------------------------------------------------------------------------- training


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
        "attention": [c for c in cols if c.startswith("attention")],
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
                ax.plot(xs, history_df[col].to_numpy(dtype=float), style, lw=width, marker="o" if len(xs) <= 12 else None, label=col)
            ax.set_title(title)
            ax.set_xlabel(x if x in history_df.columns else "row")
            if title == "loss" and (history_df[columns].to_numpy(dtype=float) > 0).all() and len(columns) > 1:
                ax.set_yscale("log")
            ax.legend(loc="best")
        fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- evaluation


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
                ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=6, color="white" if value > 0.6 * vmax else "black")
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
            ax.bar(x + (k - (len(runs) - 1) / 2) * width, np.asarray(values[run]) * 100.0, width, label=str(run), color=_method_color(run, k))
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

    a = np.asarray(attention.detach().cpu().numpy() if hasattr(attention, "detach") else attention, dtype=np.float64).ravel()
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
            for mask, label, color in ((~n, "clean label", OKABE_ITO["blue"]), (n, "flipped label", OKABE_ITO["vermillion"])):
                if mask.any():
                    ax.hist(a[mask], bins=edges, density=True, alpha=0.55, color=color, label=f"{label} (n={int(mask.sum())})")
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
    names = {"attention": "attention weight", "self_confidence": "p(given label | x)",
             "margin": "p(given) - max p(other)"}
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
                    ax.hist(v[mask], bins=edges, density=True, alpha=0.55, color=color,
                            label=f"{label} label (n={int(mask.sum())})")
            ax.set_xlabel(names.get(name, name))
            ax.set_title(f"{name}: AUC {auc:.3f}" if auc is not None else name)
        axes[0][0].set_ylabel("density")
        axes[0][0].legend()
        fig.tight_layout()
    return fig


def plot_noise_by_intensity(meta, bins: int = 8) -> Figure:
    """SynthFER's wrong-label rate of the training faces against expression intensity
    (expressive faces, equal-count bins), and against the other causes of ambiguity
    (blend, occluder, pose), from a ``synthfer_meta.csv`` frame."""
    train = meta[meta["split"] == "train"]
    expressive = train[train["clean_label"] != 6].copy()
    if expressive.empty:
        raise DataError("the meta frame has no expressive training face")
    expressive["bin"] = pd.qcut(expressive["intensity"], bins, duplicates="drop")
    by_bin = expressive.groupby("bin", observed=True).agg(x=("intensity", "mean"), rate=("noisy", "mean"))
    overall = float(train["noisy"].mean())
    with paper_style():
        fig, (ax, bx) = plt.subplots(1, 2, figsize=figsize(2, 0.38), gridspec_kw={"width_ratios": [1.3, 1]})
        ax.plot(by_bin["x"], 100 * by_bin["rate"], "o-", color=OKABE_ITO["vermillion"], label="wrong labels")
        ax.axhline(100 * overall, color=_GREY, ls="--", label=f"the uniform model: {100 * overall:.0f} % at every intensity")
        ax.set_xlabel("expression intensity (bin mean)")
        ax.set_ylabel("wrong training labels (%)")
        ax.legend()
        groups = {
            "blend": train.groupby(train["blend_label"] >= 0)["noisy"].mean().rename({False: "no", True: "yes"}),
            "occluder": train.groupby("occluder")["noisy"].mean(),
            "pose": train.groupby("pose_bin")["noisy"].mean(),
        }
        labels, values = [], []
        for name, series in groups.items():
            for key, value in series.items():
                labels.append(f"{name}: {key}")
                values.append(100 * value)
        bx.barh(labels, values, color=OKABE_ITO["blue"])
        bx.axvline(100 * overall, color=_GREY, ls="--")
        bx.set_xlabel("wrong training labels (%)")
        bx.invert_yaxis()
        fig.tight_layout()
    return fig


def plot_image_grid(images, titles=None, ncols: int | None = None, title_colors=None) -> Figure:
    """A grid of images (HxW, CxHxW or HxWxC; uint8 or floats in [0, 1]) with one
    title each: hardest mistakes, Grad-CAM overlays. ``title_colors`` optionally
    colours each title (e.g. red for wrong predictions)."""
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    images = list(images)
    if not images:
        raise DataError("images is empty: nothing to show")
    if titles is not None and len(titles) != len(images):
        raise DataError(f"titles must have one entry per image ({len(images)}), got {len(titles)}")
    if title_colors is not None and len(title_colors) != len(images):
        raise DataError(f"title_colors must have one entry per image ({len(images)}), got {len(title_colors)}")
    if ncols is None:
        ncols = min(len(images), 8)
    if not isinstance(ncols, int) or ncols < 1:
        raise ConfigError(f"ncols must be a positive int, got {ncols!r}")
    nrows = math.ceil(len(images) / ncols)
    cell = DOUBLE_COLUMN_IN / max(ncols, 4)
    with paper_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, (cell + 0.25) * nrows), squeeze=False)
        for k, ax in enumerate(axes.ravel()):
            ax.axis("off")
            if k >= len(images):
                continue
            img = _to_hwc(images[k])
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
            if titles is not None:
                ax.set_title(str(titles[k]), fontsize=6, color=title_colors[k] if title_colors is not None else "black")
        fig.tight_layout(pad=0.3)
    return fig


# --------------------------------------------------------------------------- embeddings


def umap_2d(embeddings, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """2-D UMAP of N x D embeddings (umap-learn, Euclidean, deterministic for a seed:
    ``random_state`` set, which also makes it single-threaded). Returns N x 2 float."""
    if hasattr(embeddings, "detach"):
        embeddings = embeddings.detach().cpu().numpy()
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"embeddings must be N x D, got shape {x.shape}")
    if not isinstance(n_neighbors, int) or n_neighbors < 2 or n_neighbors >= x.shape[0]:
        raise ConfigError(
            f"n_neighbors must be an int in 2..N-1 = {x.shape[0] - 1} (N embeddings), got {n_neighbors!r}"
        )
    if not 0.0 <= float(min_dist) <= 1.0:
        raise ConfigError(f"min_dist must be in [0, 1], got {min_dist!r}")
    try:
        import umap
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError("umap_2d needs umap-learn: pip install 'tanlib[notebooks]'") from exc
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=float(min_dist), random_state=seed, n_jobs=1, metric="euclidean")
    return np.asarray(reducer.fit_transform(x), dtype=np.float64)


def plot_embeddings_2d(coords_by_run: Mapping, classes, point_size: float = 3.0) -> Figure:
    """Side-by-side 2-D embedding panels, one per run, points coloured by class.

    ``coords_by_run``: ``{run name: (xy N x 2 array, labels N class indices)}`` (e.g.
    from ``umap_2d``). One shared legend of the classes below the panels.
    """
    if not isinstance(coords_by_run, Mapping) or not coords_by_run:
        raise DataError("coords_by_run must be a non-empty dict {run name: (xy, labels)}")
    names = [str(c) for c in classes]
    colors = class_colors(len(names))
    panels = []
    for run, value in coords_by_run.items():
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise DataError(f"coords_by_run[{run!r}] must be a pair (xy, labels)")
        xy = np.asarray(value[0], dtype=np.float64)
        labels = np.asarray(value[1]).astype(np.int64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise DataError(f"coords_by_run[{run!r}] xy must be N x 2, got shape {xy.shape}")
        if labels.shape != (xy.shape[0],):
            raise DataError(f"coords_by_run[{run!r}] labels must have one entry per point ({xy.shape[0]}), got {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
            raise DataError(f"coords_by_run[{run!r}] labels must be class indices in 0..{len(names) - 1}")
        panels.append((run, xy, labels))
    n = len(panels)
    width = SINGLE_COLUMN_IN if n == 1 else DOUBLE_COLUMN_IN
    panel = min(width / n, 3.3)
    with paper_style():
        fig, axes = plt.subplots(1, n, figsize=(width, panel + 0.55), squeeze=False)
        for ax, (run, xy, labels) in zip(axes[0], panels):
            for c, name in enumerate(names):
                mask = labels == c
                ax.scatter(xy[mask, 0], xy[mask, 1], s=point_size, c=colors[c], label=name, linewidths=0, alpha=0.85, rasterized=True)
            ax.set_title(str(run))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal", adjustable="datalim")
        handles = [matplotlib.lines.Line2D([], [], ls="", marker="o", ms=4, color=colors[c], label=name) for c, name in enumerate(names)]
        fig.legend(handles=handles, loc="lower center", ncols=min(len(names), 8), bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def plot_distance_distributions(samples_by_run: Mapping, bins: int = 50) -> Figure:
    """Intra- vs inter-class distance distributions, one panel per run.

    ``samples_by_run``: ``{run name: distance_samples(...) dict}`` (keys ``intra``,
    ``inter``). Each panel shows density histograms, a Gaussian KDE line
    (``scipy.stats.gaussian_kde``), dashed lines at the means and their ratio.
    """
    from scipy.stats import gaussian_kde

    if not isinstance(samples_by_run, Mapping) or not samples_by_run:
        raise DataError("samples_by_run must be a non-empty dict {run name: {'intra': ..., 'inter': ...}}")
    prepared = []
    for run, samples in samples_by_run.items():
        if not isinstance(samples, Mapping) or "intra" not in samples or "inter" not in samples:
            raise DataError(f"samples_by_run[{run!r}] must be a dict with 'intra' and 'inter' arrays")
        prepared.append((run, np.asarray(samples["intra"], dtype=np.float64), np.asarray(samples["inter"], dtype=np.float64)))
    all_values = np.concatenate([np.concatenate([i, e]) for _, i, e in prepared])
    if all_values.size == 0:
        raise DataError("samples_by_run holds no distances")
    edges = np.linspace(0.0, float(all_values.max()) * 1.02 + 1e-12, bins + 1)
    grid = np.linspace(edges[0], edges[-1], 200)
    n = len(prepared)
    with paper_style():
        fig, axes = plt.subplots(1, n, figsize=(SINGLE_COLUMN_IN if n == 1 else DOUBLE_COLUMN_IN, 2.1), sharey=True, squeeze=False)
        for ax, (run, intra, inter) in zip(axes[0], prepared):
            for values, label, color in ((intra, "intra-class", OKABE_ITO["blue"]), (inter, "inter-class", OKABE_ITO["vermillion"])):
                if values.size == 0:
                    continue
                ax.hist(values, bins=edges, density=True, alpha=0.4, color=color, label=f"{label} (mean {values.mean():.3f})")
                if values.size > 1 and np.ptp(values) > 0:
                    ax.plot(grid, gaussian_kde(values)(grid), color=color, lw=1.0)
                ax.axvline(values.mean(), color=color, ls="--", lw=0.8)
            ratio = intra.mean() / inter.mean() if intra.size and inter.size and inter.mean() > 0 else float("nan")
            ax.set_title(f"{run} (intra/inter {ratio:.3f})")
            ax.set_xlabel("Euclidean distance")
            ax.legend(loc="upper left")
        axes[0, 0].set_ylabel("density")
        fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- report


def plot_ablation(summary_df: pd.DataFrame, metric: str, label_col: str = "method", scale: float = 100.0, ylabel: str | None = None) -> Figure:
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
            raise DataError(f"summary_df has no column {col!r} (metric={metric!r}); columns are {list(summary_df.columns)}")
    if summary_df[label_col].duplicated().any():
        raise DataError(
            f"summary_df has several rows per {label_col!r}; filter it to one configuration per "
            f"{label_col} first (duplicates: {sorted(summary_df.loc[summary_df[label_col].duplicated(), label_col].astype(str).unique())})"
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
            title += f" (mean ± std over {min(n_runs)}" + (f"-{max(n_runs)}" if max(n_runs) != min(n_runs) else "") + " seeds)"
        ax.set_title(title)
        fig.tight_layout()
    return fig


_VERDICT_COLORS = {"supported": OKABE_ITO["bluish_green"], "contradicted": OKABE_ITO["vermillion"],
                   "inconclusive": "0.45", "n/a": "0.75"}


def plot_claims(results: Sequence[dict]) -> Figure:
    """The verdict's figure: one panel per claim (``tanlib.analysis.verdict.claim_results``),
    one x position per label-noise level; the per-seed paired differences as points, their
    mean with the 95 % t interval as a bar, the test-image bootstrap interval as a thin
    bar beside it, the noise floor of the mean as a grey band around 0, coloured by the verdict."""
    from .verdict import MEASURE_FORMAT

    claims = list(dict.fromkeys(r["claim"] for r in results))
    with paper_style():
        ncols = min(3, len(claims))
        nrows = -(-len(claims) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(DOUBLE_COLUMN_IN, 2.0 * nrows), squeeze=False)
        for ax in axes.flat[len(claims):]:
            ax.set_visible(False)
        for ax, claim in zip(axes.flat, claims):
            rows = [r for r in results if r["claim"] is claim]
            scale = MEASURE_FORMAT.get(claim.measure, (1, 3, ""))[0]
            for k, r in enumerate(rows):
                d, color = r["diff"], _VERDICT_COLORS[r["verdict"]]
                if r["floor"]:
                    ax.fill_between([k - 0.4, k + 0.4], -scale * r["floor"], scale * r["floor"], color="0.9", lw=0)
                if d is None:
                    ax.text(k, 0, "no runs", ha="center", va="center", fontsize=6, color="0.5")
                    continue
                jitter = np.linspace(-0.12, 0.12, len(d.diffs)) if len(d.diffs) > 1 else np.zeros(1)
                ax.scatter(k - 0.1 + jitter, scale * d.diffs, s=8, color=color, zorder=3)
                if np.isfinite(d.lo):
                    ax.errorbar(k + 0.15, scale * d.mean, yerr=[[scale * (d.mean - d.lo)], [scale * (d.hi - d.mean)]],
                                fmt="o", ms=3, color=color, capsize=2, lw=1)
                if r["bootstrap"] is not None:
                    lo, hi = r["bootstrap"]
                    ax.plot([k + 0.25] * 2, [scale * lo, scale * hi], color=color, lw=0.6)
            ax.axhline(0, color="0.3", lw=0.6)
            ax.set_xticks(range(len(rows)), ["all runs" if r["level"] is None else
                                             f"{100 * r['level']:.0f} %\n{r['verdict']}" for r in rows], fontsize=6)
            ax.set_xlim(-0.6, len(rows) - 0.4)
            ax.set_title(textwrap.fill(claim.text, 44), fontsize=6, loc="left")
            ax.set_ylabel((f"{claim.method} - {claim.baseline}" if claim.baseline else f"{claim.method} - "
                           f"{claim.reference:g}") + (" (pts)" if scale == 100 else ""), fontsize=6)
        fig.tight_layout()
    return fig
