"""Figures of embeddings: 2-D projections and intra- vs inter-class distances.

What this module owns: the embedding figures of notebook 04: ``umap_2d`` (a
deterministic 2-D UMAP; McInnes et al., "UMAP", arXiv:1802.03426),
``plot_embeddings_2d`` (one panel per run, points coloured by class) and
``plot_distance_distributions`` (intra- vs inter-class distance distributions of
``tanlib.analysis.geometry.distance_samples``).

umap-learn is imported inside ``umap_2d`` only.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from tanlib.analysis.figures.style import DOUBLE_COLUMN_IN, OKABE_ITO, SINGLE_COLUMN_IN, class_colors, paper_style
from tanlib.errors import ConfigError, DataError


def exact_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances), each N x k: every row's k nearest rows by Euclidean distance,
    itself first (scikit-learn's brute-force search; a duplicate row never displaces it)."""
    from sklearn.neighbors import NearestNeighbors

    idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x).kneighbors(x, return_distance=False)
    for i in np.flatnonzero(idx[:, 0] != np.arange(len(x))):  # a duplicate came first: put the row itself there
        idx[i] = [i, *[j for j in idx[i] if j != i][: k - 1]]
    dist = np.linalg.norm(x[idx] - x[:, None, :], axis=2)  # recomputed: exactly 0 for itself
    return idx, dist


def umap_2d(embeddings, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """2-D UMAP of N x D embeddings (umap-learn, Euclidean, deterministic for a seed:
    ``random_state`` set, which also makes it single-threaded). Returns N x 2 float.

    The exact neighbours come from ``exact_knn`` (``precomputed_knn``): umap-learn's own
    small-data search compiles its numba distance and calls it once per pair from Python.
    In a fresh process the fit takes 0.69x the CPU time (docs/benchmarks.md, section 7)."""
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
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=n_neighbors,
        min_dist=float(min_dist),
        random_state=seed,
        n_jobs=1,
        metric="euclidean",
        precomputed_knn=exact_knn(x, n_neighbors),
    )
    with warnings.catch_warnings():  # "no NNDescent search index: transform unavailable"; only fit is used
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
        return np.asarray(reducer.fit_transform(x), dtype=np.float64)


def plot_embeddings_2d(coords_by_run: Mapping, classes, point_size: float = 3.0, title: str | None = None) -> Figure:
    """Side-by-side 2-D embedding panels, one per run, points coloured by class.

    ``coords_by_run``: ``{run name: (xy N x 2 array, labels N class indices)}`` (e.g.
    from ``umap_2d``). One shared legend of the classes below the panels; ``title`` above
    them. The figure uses matplotlib's constrained layout, which places the panels at
    every draw, so a ``fig.suptitle`` added afterwards also gets its own room.
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
            raise DataError(
                f"coords_by_run[{run!r}] labels must have one entry per point ({xy.shape[0]}), got {labels.shape}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
            raise DataError(f"coords_by_run[{run!r}] labels must be class indices in 0..{len(names) - 1}")
        panels.append((run, xy, labels))
    n = len(panels)
    width = SINGLE_COLUMN_IN if n == 1 else DOUBLE_COLUMN_IN
    panel = min(width / n, 3.3)
    with paper_style():
        fig, axes = plt.subplots(1, n, figsize=(width, panel + 0.75), squeeze=False, layout="constrained")
        for ax, (run, xy, labels) in zip(axes[0], panels):
            for c, name in enumerate(names):
                mask = labels == c
                ax.scatter(
                    xy[mask, 0],
                    xy[mask, 1],
                    s=point_size,
                    c=colors[c],
                    label=name,
                    linewidths=0,
                    alpha=0.85,
                    rasterized=True,
                )
            ax.set_title(str(run))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal", adjustable="datalim")
        handles = [
            matplotlib.lines.Line2D([], [], ls="", marker="o", ms=4, color=colors[c], label=name)
            for c, name in enumerate(names)
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(names), 4 if n == 1 else 8))
        if title:
            fig.suptitle(title)
    return fig


def plot_distance_distributions(samples_by_run: Mapping, bins: int = 50, title: str | None = None) -> Figure:
    """Intra- vs inter-class distance distributions, one panel per run.

    ``samples_by_run``: ``{run name: distance_samples(...) dict}`` (keys ``intra``,
    ``inter``). Each panel shows density histograms, a Gaussian KDE line
    (``scipy.stats.gaussian_kde``), dashed lines at the means and their ratio; ``title``
    goes above the panels (constrained layout: a later ``fig.suptitle`` gets room too).
    """
    from scipy.stats import gaussian_kde

    if not isinstance(samples_by_run, Mapping) or not samples_by_run:
        raise DataError("samples_by_run must be a non-empty dict {run name: {'intra': ..., 'inter': ...}}")
    prepared = []
    for run, samples in samples_by_run.items():
        if not isinstance(samples, Mapping) or "intra" not in samples or "inter" not in samples:
            raise DataError(f"samples_by_run[{run!r}] must be a dict with 'intra' and 'inter' arrays")
        prepared.append(
            (run, np.asarray(samples["intra"], dtype=np.float64), np.asarray(samples["inter"], dtype=np.float64))
        )
    all_values = np.concatenate([np.concatenate([i, e]) for _, i, e in prepared])
    if all_values.size == 0:
        raise DataError("samples_by_run holds no distances")
    edges = np.linspace(0.0, float(all_values.max()) * 1.02 + 1e-12, bins + 1)
    grid = np.linspace(edges[0], edges[-1], 200)
    n = len(prepared)
    with paper_style():
        fig, axes = plt.subplots(
            1,
            n,
            figsize=(SINGLE_COLUMN_IN if n == 1 else DOUBLE_COLUMN_IN, 2.4),
            sharey=True,
            squeeze=False,
            layout="constrained",
        )
        for ax, (run, intra, inter) in zip(axes[0], prepared):
            for values, label, color in (
                (intra, "intra-class", OKABE_ITO["blue"]),
                (inter, "inter-class", OKABE_ITO["vermillion"]),
            ):
                if values.size == 0:
                    continue
                ax.hist(
                    values,
                    bins=edges,
                    density=True,
                    alpha=0.4,
                    color=color,
                    label=f"{label} (mean {values.mean():.3f})",
                )
                if values.size > 1 and np.ptp(values) > 0:
                    ax.plot(grid, gaussian_kde(values)(grid), color=color, lw=1.0)
                ax.axvline(values.mean(), color=color, ls="--", lw=0.8)
            ratio = intra.mean() / inter.mean() if intra.size and inter.size and inter.mean() > 0 else float("nan")
            ax.set_title(f"{run} (intra/inter {ratio:.3f})")
            ax.set_xlabel("Euclidean distance")
            ax.legend(loc="upper left")
        axes[0, 0].set_ylabel("density")
        if title:
            fig.suptitle(title)
    return fig
