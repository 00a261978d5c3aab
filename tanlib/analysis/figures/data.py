"""Figures of a dataset: what the images and labels look like.

What this module owns: the data figures of notebook 01 (``plot_class_distribution``:
images per class and split; ``plot_sample_grid``: example images per class),
``plot_noise_by_intensity`` (where SynthFER's wrong labels fall, from its
``synthfer_meta.csv``; docs/make_synthfer_figure.py) and ``plot_image_grid`` (any list
of images with titles: the hardest mistakes and Grad-CAM overlays of notebook 03), with
the image conversion they share (``_to_hwc``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tanlib.analysis.figures.style import _GREY, DOUBLE_COLUMN_IN, OKABE_ITO, figsize, paper_style
from tanlib.errors import ConfigError, DataError


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
            bars = ax.bar(
                x + (k - (len(order) - 1) / 2) * width,
                counts[split].to_numpy(),
                width,
                label=f"{split} (n={int(counts[split].sum())})",
            )
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
        fig, axes = plt.subplots(
            len(names), per_class, figsize=(cell * per_class + 0.9, cell * len(names)), squeeze=False
        )
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
                    ax.imshow(
                        img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype == np.uint8 else 1
                    )
                if col == 0:
                    ax.set_ylabel(name, rotation=0, ha="right", va="center")
        fig.subplots_adjust(wspace=0.04, hspace=0.04, left=0.14, right=0.99, top=0.99, bottom=0.01)
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
        ax.axhline(
            100 * overall, color=_GREY, ls="--", label=f"the uniform model: {100 * overall:.0f} % at every intensity"
        )
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
