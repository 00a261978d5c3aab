"""How far a trained embedding is from isotropic, and what TAN's covariance Mahalanobis
distance changes on it (docs/method.md, "Is a trained embedding isotropic?").

The covariance metric (``tanlib.losses.distance``, docs/method.md step 7) is
M = s (S + lambda I)^-1, S the running covariance of the training embeddings: for an
isotropic S it is the identity, and TAN's distance is the Euclidean one of ``tan-euclid``.
The positive control (tests/losses/test_mahalanobis_control.py) shows the distance helps
where nuisance directions dominate; this module measures, on a finished run, whether its
embedding has such directions:

- ``spectrum``: the eigenvalues of a covariance scaled to mean 1, its effective rank
  (the participation ratio (sum l)^2 / sum l^2: d for an isotropic covariance, 1 for a
  single direction), the share of the variance in the top 10 directions, the condition number;
- ``loo_1nn``: leave-one-out 1-nearest-neighbour accuracy of a set of embeddings, the
  readout the control uses, and which faces' nearest neighbour a linear map changes;
- ``run_isotropy``: both for a run directory (``last.pt``'s running covariance, the test
  embeddings of ``embeddings.npz``), Euclidean against the run's own M, and 1-NN on the
  leading directions of the running covariance alone and on the others (where the classes are).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import RunDirError

#: How many leading directions ``spectrum`` reports the variance share of.
TOP = 10


def spectrum(cov) -> dict:
    """Summary of the eigenvalues of a covariance matrix (d x d, symmetric PSD), scaled to
    mean 1: ``effective_rank`` (participation ratio), its share of d, the share of the
    variance in the top ``TOP`` directions, ``condition`` (largest / smallest) and the
    eigenvalues themselves (descending)."""
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"a covariance is a square matrix; got shape {cov.shape}")
    eig = np.clip(np.linalg.eigvalsh((cov + cov.T) / 2)[::-1], 0, None)
    if eig.sum() <= 0:
        raise ValueError("the covariance is zero: every embedding is the same point")
    eig = eig * eig.size / eig.sum()
    rank = float(eig.sum() ** 2 / (eig**2).sum())
    return {
        "d": int(eig.size),
        "effective_rank": rank,
        "effective_rank_share": rank / eig.size,
        "top_share": float(eig[:TOP].sum() / eig.sum()),
        "condition": float(eig[0] / eig[-1]) if eig[-1] > 0 else float("inf"),
        "eigenvalues": eig.tolist(),
    }


def within_class_cov(x, labels) -> np.ndarray:
    """The pooled within-class covariance of ``x`` (n x d): each class centred on its mean."""
    x, labels = np.asarray(x, dtype=np.float64), np.asarray(labels)
    centred = np.concatenate([x[labels == c] - x[labels == c].mean(0) for c in np.unique(labels)])
    return centred.T @ centred / (len(centred) - len(np.unique(labels)))


def nearest_neighbours(x, chunk: int = 1024) -> np.ndarray:
    """For each row of ``x`` the index of its nearest other row (Euclidean; the lowest index
    among ties)."""
    x = np.asarray(x, dtype=np.float64)
    sq = (x * x).sum(1)
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), chunk):
        block = x[start : start + chunk]
        d = sq[start : start + chunk, None] + sq[None, :] - 2 * block @ x.T
        d[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        out[start : start + chunk] = d.argmin(1)
    return out


def loo_1nn(x, labels, transform=None) -> tuple[float, np.ndarray]:
    """(leave-one-out 1-NN accuracy, each row's nearest other row) of ``x`` (n x d) under the
    Euclidean distance after the linear map ``u -> A u`` (``transform`` A, d x d; None: the
    identity), i.e. under the metric A^T A."""
    x = np.asarray(x, dtype=np.float64)
    if transform is not None:
        x = x @ np.asarray(transform, dtype=np.float64).T
    nn = nearest_neighbours(x)
    return float((np.asarray(labels)[nn] == np.asarray(labels)).mean()), nn


def run_isotropy(run_dir: str | Path, max_faces: int = 3000, seed: int = 0) -> dict:
    """The isotropy of a finished run's embedding and what its metric changes: the spectrum
    of the running covariance its metric was built from (``last.pt``) and of its test
    embeddings' pooled within-class covariance (``embeddings.npz``, the last epoch), and
    leave-one-out 1-NN accuracy of ``max_faces`` test faces (a seeded draw) under the
    Euclidean distance and under the run's M, with the share of faces whose nearest
    neighbour M changes, and on the ``TOP`` leading directions of the running covariance
    alone and on the others (``loo_1nn_top``, ``loo_1nn_rest``). A run without a covariance
    metric (``tan-euclid``; ``ce``, whose metric never saw a batch) gets the test embeddings'
    spectrum and the Euclidean readout only."""
    from ..engine.checkpoint import load_checkpoint
    from ..losses.distance import MahalanobisDistance

    run_dir = Path(run_dir)
    for name in ("last.pt", "embeddings.npz"):
        if not (run_dir / name).is_file():
            raise RunDirError(f"{run_dir / name} is missing: the isotropy reads a finished run's {name}")
    state = load_checkpoint(run_dir / "last.pt")
    objective, config = state.get("objective", {}), state.get("config", {})
    with np.load(run_dir / "embeddings.npz", allow_pickle=False) as data:
        emb, labels = data["embedding"], data["label"]
    out = {
        "method": config.get("method"),
        "metric": config.get("metric"),
        "seed": config.get("seed"),
        "shrinkage": config.get("shrinkage"),
        "test_within_class": {k: v for k, v in spectrum(within_class_cov(emb, labels)).items() if k != "eigenvalues"},
    }
    cov = objective.get("distance.running_cov")
    # a covariance metric that never saw a batch (a method without the Mahalanobis term keeps
    # the default metric, untouched) is the identity: no metric to measure
    transform = None
    if cov is not None and int(objective.get("distance.num_updates", 0)) > 0:
        out["running_cov"] = spectrum(cov.numpy())
        dist = MahalanobisDistance("covariance", dim=cov.shape[0], shrinkage=config.get("shrinkage", 1e-3))
        dist.load_state_dict({k.split(".", 1)[1]: v for k, v in objective.items() if k.startswith("distance.")})
        transform = dist.transform().double().numpy()
    pick = np.sort(np.random.default_rng(seed).permutation(len(emb))[:max_faces])
    x, y = emb[pick], labels[pick]
    euclid, nn_e = loo_1nn(x, y)
    out["faces"] = len(pick)
    out["loo_1nn_euclidean"] = euclid
    if transform is not None:
        mahal, nn_m = loo_1nn(x, y, transform)
        out["loo_1nn_mahalanobis"] = mahal
        out["neighbour_changed"] = float((nn_e != nn_m).mean())
        if cov.shape[0] > TOP:  # where the classes are: 1-NN on the TOP leading directions of
            # the running covariance alone, and on all the others (Euclidean within each)
            vectors = np.linalg.eigh(cov.double().numpy())[1][:, ::-1]
            out["loo_1nn_top"] = loo_1nn(x @ vectors[:, :TOP], y)[0]
            out["loo_1nn_rest"] = loo_1nn(x @ vectors[:, TOP:], y)[0]
    return out


__all__ = ["TOP", "loo_1nn", "nearest_neighbours", "run_isotropy", "spectrum", "within_class_cov"]
