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
import textwrap
from collections.abc import Sequence
from pathlib import Path

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
        fig, ax = plt.subplots(figsize=figsize(2, 0.38))
        width = 0.84 / max(len(order), 1)
        x = np.arange(len(names))
        for k, split in enumerate(order):
            bars = ax.bar(
                x + (k - (len(order) - 1) / 2) * width,
                counts[split].to_numpy(),
                width,
                label=f"{split} (n={int(counts[split].sum())})",
            )
            # counts above the bars, at the tick labels' size; turned upright when a bar is
            # too narrow for its number written flat (many splits, four-digit counts)
            digits = len(str(int(counts[split].max()))) if len(counts) else 1
            upright = width * DOUBLE_COLUMN_IN / len(names) * 72 < 4.2 * digits + 2
            ax.bar_label(bars, fontsize=6.5, padding=1.5, rotation=90 if upright else 0)
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_ylabel("images")
        ax.set_ylim(0, counts.to_numpy().max() * 1.25 + 1)  # room for the counts and the legend
        ax.set_title("Class distribution per split")
        ax.legend(ncols=len(order), loc="upper right")
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


def plot_sample_grid(images_uint8_NCHW, labels, classes, per_class: int = 6, wrong=None, clean_labels=None) -> Figure:
    """A grid with one row per class and up to ``per_class`` of its images (the first
    ones in the given order); empty cells stay blank.

    ``images_uint8_NCHW``: N x C x H x W uint8 (C = 1 or 3), numpy or torch.
    ``labels``: N class indices (the given labels: the rows). ``wrong``: optional N
    booleans, True where the given label is wrong (SynthFER's ``noisy``): those faces get
    a vermillion frame, and with ``clean_labels`` (N class indices) the right class
    written under them; a note below the grid says what the frame means.
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
    wrong = np.zeros(len(labels), bool) if wrong is None else np.asarray(wrong).astype(bool).ravel()
    if wrong.shape != labels.shape:
        raise DataError(f"wrong must have one entry per image ({labels.size}), got shape {wrong.shape}")
    if clean_labels is not None:
        clean_labels = np.asarray(clean_labels).astype(np.int64).ravel()
        if clean_labels.shape != labels.shape:
            raise DataError(f"clean_labels must have one entry per image ({labels.size}), got {clean_labels.shape}")
    marked = bool(wrong.any())
    cell = min(DOUBLE_COLUMN_IN / (per_class + 1), 0.9)
    note = 0.3 if marked else 0.0
    text_row = 0.14 if marked and clean_labels is not None else 0.0
    with paper_style():
        fig, axes = plt.subplots(
            len(names),
            per_class,
            figsize=(cell * per_class + 0.9, (cell + text_row) * len(names) + note),
            squeeze=False,
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
                    k = chosen[col]
                    img = _to_hwc(images[k])
                    ax.imshow(
                        img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype == np.uint8 else 1
                    )
                    if wrong[k]:
                        for spine in ax.spines.values():
                            spine.set_visible(True)
                            spine.set_color(OKABE_ITO["vermillion"])
                            spine.set_linewidth(2.0)
                        if clean_labels is not None:
                            ax.set_xlabel(
                                f"is {names[clean_labels[k]]}", color=OKABE_ITO["vermillion"], fontsize=6, labelpad=1
                            )
                if col == 0:
                    ax.set_ylabel(name, rotation=0, ha="right", va="center")
        height = fig.get_figheight()
        fig.subplots_adjust(
            wspace=0.04,
            hspace=0.04 + (text_row / cell if text_row else 0.0),
            left=0.14,
            right=0.99,
            top=1 - 0.02 / height,
            bottom=(note + 0.02 + text_row) / height,
        )
        if marked:
            fig.text(
                0.14,
                0.02 / height,
                "Framed: the given label (the row) is wrong"
                + ("; the right class is written under the face." if clean_labels is not None else "."),
                color=OKABE_ITO["vermillion"],
                fontsize=7,
                va="bottom",
            )
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
    # titles wrap at the width of a cell (6 pt DejaVu Sans: about 3.6 pt a character)
    wrapped = None if titles is None else [_wrap(str(t), cell) for t in titles]
    lines = max((t.count("\n") + 1 for t in wrapped), default=0) if wrapped else 0
    with paper_style():
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(cell * ncols, (cell + 0.12 + 0.12 * lines) * nrows), squeeze=False
        )
        for k, ax in enumerate(axes.ravel()):
            ax.axis("off")
            if k >= len(images):
                continue
            img = _to_hwc(images[k])
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
            if wrapped is not None:
                ax.set_title(wrapped[k], fontsize=6, color=title_colors[k] if title_colors is not None else "black")
        fig.tight_layout(pad=0.3)
    return fig


def _wrap(text: str, width_in: float, fontsize: float = 6.0) -> str:
    """``text`` wrapped at the spaces to lines that fit ``width_in`` inches at ``fontsize``."""
    chars = max(8, int(width_in * 72 / (0.62 * fontsize)))
    return "\n".join(textwrap.fill(line, chars, break_long_words=False) for line in text.split("\n"))


def plot_ranked_faces(
    images, scores, given, clean=None, classes=(), n_show: int = 8, score_name: str = "attention"
) -> Figure:
    """The faces a noisy-label detector ranks lowest and highest (SCN's figure): two rows of
    ``n_show`` faces, the lowest scores on top, each titled with its score and given label
    and, with ``clean`` (the true classes, SynthFER), framed and titled in vermillion with
    the right class when the given label is wrong.

    ``images``: N images (as ``plot_image_grid``) or N image paths (only the faces shown
    are decoded, at 96 px); ``scores``: N detector scores (low =
    suspected wrong label: attention, self-confidence); ``given``/``clean``: N class indices.
    """
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    images = list(images)
    paths = bool(images) and isinstance(images[0], (str, Path))  # decoded below, the shown faces only
    s = np.asarray(scores.detach().cpu().numpy() if hasattr(scores, "detach") else scores, dtype=np.float64).ravel()
    given = np.asarray(given).astype(np.int64).ravel()
    names = [str(c) for c in classes]
    if not images or s.shape != (len(images),) or given.shape != (len(images),):
        raise DataError(
            f"images, scores and given must be non-empty with one entry per image; got {len(images)} images, "
            f"{s.size} scores, {given.size} labels"
        )
    if not np.all(np.isfinite(s)):
        raise DataError("scores must be finite")
    clean = None if clean is None else np.asarray(clean).astype(np.int64).ravel()
    if clean is not None and clean.shape != given.shape:
        raise DataError(f"clean must have one entry per image ({given.size}), got {clean.size}")
    for what, values in (("given", given), ("clean", clean)):
        if values is not None and values.size and (values.min() < 0 or values.max() >= len(names)):
            raise DataError(f"{what} labels must be class indices in 0..{len(names) - 1}")
    if not isinstance(n_show, int) or n_show < 1:
        raise ConfigError(f"n_show must be a positive int, got {n_show!r}")
    n = min(n_show, len(images) // 2 if len(images) >= 2 else 1)
    order = np.argsort(s, kind="stable")
    rows = (("lowest", order[:n]), ("highest", order[::-1][:n]))
    if paths:
        from tanlib.data.decode import decode_images

        picked = np.concatenate([r[1] for r in rows])
        decoded = dict(zip(picked.tolist(), decode_images([images[k] for k in picked], size=96)))
        images = [decoded.get(k) for k in range(len(images))]
    cell = DOUBLE_COLUMN_IN / max(n + 0.6, 4)
    with paper_style():
        fig, axes = plt.subplots(
            2, n, figsize=(cell * n + 0.5, 2 * (cell + 0.42) + 0.2), squeeze=False, layout="constrained"
        )
        for r, (which, picked) in enumerate(rows):
            for c in range(n):
                ax = axes[r, c]
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if c >= len(picked):
                    continue
                k = picked[c]
                img = _to_hwc(images[k])
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
                is_wrong = clean is not None and clean[k] != given[k]
                title = f"{s[k]:.2f}\n{names[given[k]]}"
                if is_wrong:
                    title += f"\n(is {names[clean[k]]})"
                    for spine in ax.spines.values():
                        spine.set_visible(True)
                        spine.set_color(OKABE_ITO["vermillion"])
                        spine.set_linewidth(2.0)
                ax.set_title(title, fontsize=6, color=OKABE_ITO["vermillion"] if is_wrong else "black", pad=2)
            axes[r, 0].set_ylabel(f"{which}\n{score_name}", fontsize=7)
        wrong_note = "; vermillion: the given label is wrong (the right class in brackets)" if clean is not None else ""
        fig.suptitle(f"Training faces by {score_name}: score and given label{wrong_note}", fontsize=7)
        fig.get_layout_engine().set(w_pad=0.01, h_pad=0.02, wspace=0.02, hspace=0.02)
    return fig
