"""Embedding geometry: intra-class and inter-class distances, made measurable.

TAN's abstract (Gou et al., ICAC 2023) says the method "aims to address the problem of
large intra-class and inter-class distances" and "performs well in alleviating the
intra-class and inter-class distance problem". The abstract gives no measure; the kit
uses the plain one:

- intra-class mean distance: the mean Euclidean distance ||e_i - e_j|| over all
  unordered pairs i < j with y_i = y_j;
- inter-class mean distance: the same mean over all pairs with y_i != y_j;
- their ratio intra / inter (lower = tighter classes relative to their separation);
- per class c: intra over the pairs inside c, inter over the pairs with exactly one
  member in c;
- the silhouette score (Rousseeuw, J. Comput. Appl. Math. 20, 1987) via
  ``sklearn.metrics.silhouette_score`` with the Euclidean metric.

All pair statistics are computed exactly from block-wise distance matrices
(``torch.cdist`` in float64): for each block of rows the distances to every point are
summed per class through a one-hot matrix, giving the K x K matrix T[c, c'] of summed
distances between classes, from which every mean above follows. Memory stays
O(block x N) instead of O(N^2).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tanlib.errors import ConfigError, DataError

__all__ = ["class_distance_sums", "distance_samples", "embedding_geometry"]

_BLOCK = 1024


def _as_embeddings(embeddings) -> np.ndarray:
    if hasattr(embeddings, "detach"):
        embeddings = embeddings.detach().cpu().numpy()
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(f"embeddings must be a 2-D array (N samples x D dims), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DataError("embeddings must be finite; they hold NaN or infinite values")
    return x


def _as_labels(labels, n: int, n_classes: int | None = None) -> np.ndarray:
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    y = np.asarray(labels)
    if y.ndim != 1 or y.size != n:
        raise DataError(f"labels must be 1-D with one entry per embedding ({n}), got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"labels must be integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    upper = n_classes if n_classes is not None else (int(y.max()) + 1 if y.size else 0)
    if y.size and (y.min() < 0 or y.max() >= upper):
        raise DataError(
            f"labels must be class indices in 0..{upper - 1}"
            + (" (one per entry of classes)" if n_classes is not None else "")
            + f", got values from {int(y.min())} to {int(y.max())}"
        )
    return y


def _subsample(n: int, max_samples: int | None, seed: int) -> np.ndarray:
    if max_samples is None or n <= max_samples:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_samples, replace=False))


def class_distance_sums(x: np.ndarray, y: np.ndarray, n_classes: int, block: int = _BLOCK) -> np.ndarray:
    """K x K matrix T with T[c, c'] = sum of ||x_i - x_j|| over ordered pairs (i, j),
    y_i = c, y_j = c', i != j.

    The diagonal therefore counts each unordered intra-class pair twice. Computed in
    blocks of ``block`` rows with ``torch.cdist`` in float64.
    """
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    onehot = torch.zeros(len(y), n_classes, dtype=torch.float64)
    onehot[torch.arange(len(y)), torch.from_numpy(y)] = 1.0
    total = torch.zeros(n_classes, n_classes, dtype=torch.float64)
    for start in range(0, len(y), block):
        stop = min(start + block, len(y))
        d = torch.cdist(xt[start:stop], xt).clamp_min_(0.0)
        rows = torch.arange(stop - start)
        d[rows, rows + start] = 0.0  # exact zero self-distance despite matmul rounding
        total += onehot[start:stop].T @ (d @ onehot)
    return total.numpy()


#: The spaces whose geometry the kit measures: ``features``, the L2-normalised backbone
#: features h that every method has (the comparison of methods), and ``embedding``, the
#: embedding e that exists as a trained space only where a metric term trained it.
SPACES = ("features", "embedding")


def normalize_rows(x) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def check_space(space: str, config, name: str) -> None:
    """Refuse a geometry space that is not one of ``SPACES``, or ``embedding`` for a run
    (``config``, named ``name``) whose embedding no metric term trained."""
    if space not in SPACES:
        raise ConfigError(f"space={space!r} is not allowed; choose one of {', '.join(SPACES)}")
    if space == "embedding" and not config.trains_embedding:
        raise ConfigError(
            f"space='embedding': run {name} ({config.method}) has no metric term, "
            "so its embedding is an untrained projection; use space='features'"
        )


def space_vectors(raw, space: str) -> np.ndarray:
    """The vectors of ``space`` from a mapping with ``features`` and ``embedding`` (a run's
    embeddings.npz, ``predict``'s output): features L2-normalised, the embedding as it is."""
    return normalize_rows(np.asarray(raw["features"])) if space == "features" else np.asarray(raw["embedding"])


def _none_if_nan(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def embedding_geometry(embeddings, labels, classes, max_samples: int | None = 5000, seed: int = 0) -> dict:
    """Intra-/inter-class Euclidean distance statistics and silhouette of embeddings.

    Parameters
    ----------
    embeddings:
        N x D array (numpy or torch).
    labels:
        N integer class indices into ``classes``.
    classes:
        The K class names.
    max_samples:
        When N exceeds it, a uniformly random subset of this size (fixed by ``seed``)
        is used; ``None`` uses all samples.

    Returns
    -------
    dict of plain Python values (JSON-serialisable): ``intra_mean``, ``inter_mean``,
    ``ratio`` (intra / inter), ``mean_distance`` (over all pairs: the spread; near 0 for a
    collapsed embedding), ``silhouette``, ``n`` (samples used), ``n_total``,
    ``per_class`` ``{name: {intra, inter, n}}`` and ``class_distance`` (K x K mean
    distance between classes, diagonal = intra). A value that is undefined (a class
    with fewer than two samples has no intra pair; silhouette needs 2 <= #labels <= n-1)
    is ``None``.
    """
    if isinstance(classes, str):
        raise ConfigError(f"classes must be a sequence of class names, got the string {classes!r}")
    names = [str(c) for c in classes]
    if not names:
        raise ConfigError("classes must name at least one class")
    if max_samples is not None and (not isinstance(max_samples, (int, np.integer)) or max_samples < 2):
        raise ConfigError(f"max_samples must be an int >= 2 or None, got {max_samples!r}")
    x = _as_embeddings(embeddings)
    y = _as_labels(labels, x.shape[0], len(names))
    if x.shape[0] < 2:
        raise DataError(f"embedding_geometry needs at least 2 embeddings, got {x.shape[0]}")
    idx = _subsample(x.shape[0], max_samples, seed)
    xs, ys = x[idx], y[idx]
    k = len(names)
    sums = class_distance_sums(xs, ys, k)
    counts = np.bincount(ys, minlength=k).astype(np.float64)

    intra_pairs = counts * (counts - 1) / 2.0
    intra_sums = np.diag(sums) / 2.0
    cross_pairs = np.outer(counts, counts)
    np.fill_diagonal(cross_pairs, 0.0)
    offdiag = sums.copy()
    np.fill_diagonal(offdiag, 0.0)

    total_intra_pairs = intra_pairs.sum()
    total_inter_pairs = cross_pairs.sum() / 2.0
    intra_mean = intra_sums.sum() / total_intra_pairs if total_intra_pairs else math.nan
    inter_mean = offdiag.sum() / 2.0 / total_inter_pairs if total_inter_pairs else math.nan
    ratio = intra_mean / inter_mean if total_intra_pairs and total_inter_pairs and inter_mean > 0 else math.nan
    all_pairs = total_intra_pairs + total_inter_pairs
    mean_distance = (intra_sums.sum() + offdiag.sum() / 2.0) / all_pairs if all_pairs else math.nan

    per_class = {}
    class_distance = []
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_matrix = np.where(cross_pairs > 0, sums / np.where(cross_pairs > 0, cross_pairs, 1), np.nan)
        diag = np.where(intra_pairs > 0, intra_sums / np.where(intra_pairs > 0, intra_pairs, 1), np.nan)
    np.fill_diagonal(mean_matrix, diag)
    for c, name in enumerate(names):
        outside = counts[c] * (counts.sum() - counts[c])
        per_class[name] = {
            "intra": _none_if_nan(diag[c]),
            "inter": _none_if_nan(offdiag[c].sum() / outside) if outside else None,
            "n": int(counts[c]),
        }
        class_distance.append([_none_if_nan(v) for v in mean_matrix[c]])

    n_labels = np.unique(ys).size
    silhouette = float(_silhouette(xs, ys)) if 2 <= n_labels <= len(ys) - 1 else None
    return {
        "intra_mean": _none_if_nan(intra_mean),
        "inter_mean": _none_if_nan(inter_mean),
        "ratio": _none_if_nan(ratio),
        "mean_distance": _none_if_nan(mean_distance),
        "silhouette": silhouette,
        "n": int(len(ys)),
        "n_total": int(x.shape[0]),
        "per_class": per_class,
        "class_distance": class_distance,
    }


def distance_samples(embeddings, labels, max_pairs: int = 20000, seed: int = 0) -> dict:
    """Samples of intra-class and inter-class pair distances, for histograms.

    When a kind of pair has at most ``max_pairs`` pairs, all of them are returned
    (ordered as enumerated: by class, then index); otherwise ``max_pairs`` pairs drawn
    uniformly (with replacement) from all pairs of that kind, fixed by ``seed``.
    Returns ``{"intra": ndarray, "inter": ndarray}`` of float64 Euclidean distances
    (an empty array where no pair of that kind exists).
    """
    if not isinstance(max_pairs, (int, np.integer)) or max_pairs < 1:
        raise ConfigError(f"max_pairs must be a positive int, got {max_pairs!r}")
    x = _as_embeddings(embeddings)
    y = _as_labels(labels, x.shape[0])
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    members = [np.flatnonzero(y == c) for c in classes]
    sizes = np.array([len(m) for m in members], dtype=np.int64)

    # intra-class pairs
    intra_counts = sizes * (sizes - 1) // 2
    if intra_counts.sum() <= max_pairs:
        pairs = [np.stack(np.triu_indices(len(m), k=1)) for m in members]
        i = np.concatenate([m[p[0]] for m, p in zip(members, pairs)]) if pairs else np.zeros(0, int)
        j = np.concatenate([m[p[1]] for m, p in zip(members, pairs)]) if pairs else np.zeros(0, int)
    else:
        per = rng.multinomial(max_pairs, intra_counts / intra_counts.sum())
        i_parts, j_parts = [], []
        for m, count in zip(members, per):
            if count == 0:
                continue
            a = rng.integers(len(m), size=count)
            b = rng.integers(len(m) - 1, size=count)
            b = b + (b >= a)
            i_parts.append(m[a])
            j_parts.append(m[b])
        i, j = np.concatenate(i_parts), np.concatenate(j_parts)
    intra = np.linalg.norm(x[i] - x[j], axis=1) if len(i) else np.zeros(0)

    # inter-class pairs: class pair (c, c') with c < c', then one member of each
    ca, cb = np.triu_indices(len(classes), k=1)
    inter_counts = sizes[ca] * sizes[cb]
    if inter_counts.sum() <= max_pairs:
        i_parts, j_parts = [], []
        for a, b in zip(ca, cb):
            ii, jj = np.meshgrid(members[a], members[b], indexing="ij")
            i_parts.append(ii.ravel())
            j_parts.append(jj.ravel())
    else:
        per = rng.multinomial(max_pairs, inter_counts / inter_counts.sum())
        i_parts, j_parts = [], []
        for a, b, count in zip(ca, cb, per):
            if count == 0:
                continue
            i_parts.append(members[a][rng.integers(sizes[a], size=count)])
            j_parts.append(members[b][rng.integers(sizes[b], size=count)])
    if i_parts:
        i, j = np.concatenate(i_parts), np.concatenate(j_parts)
        inter = np.linalg.norm(x[i] - x[j], axis=1)
    else:
        inter = np.zeros(0)
    return {"intra": intra.astype(np.float64), "inter": inter.astype(np.float64)}


def _silhouette(x, y) -> float:
    from sklearn.metrics import silhouette_score  # imported on use: sklearn takes seconds to import

    return silhouette_score(x, y, metric="euclidean")
