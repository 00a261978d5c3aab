"""Tests of tanlib.analysis.geometry against naive double loops and scikit-learn."""

import itertools
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import silhouette_score

from tanlib.analysis.geometry import distance_samples, embedding_geometry
from tanlib.errors import ConfigError, DataError


def _naive(x, y, classes):
    """Explicit loops over all unordered pairs i < j."""
    intra, inter = [], []
    per_intra = {c: [] for c in range(len(classes))}
    per_inter = {c: [] for c in range(len(classes))}
    for i, j in itertools.combinations(range(len(y)), 2):
        d = float(np.sqrt(sum((x[i, k] - x[j, k]) ** 2 for k in range(x.shape[1]))))
        if y[i] == y[j]:
            intra.append(d)
            per_intra[y[i]].append(d)
        else:
            inter.append(d)
            per_inter[y[i]].append(d)
            per_inter[y[j]].append(d)
    return {
        "intra_mean": np.mean(intra),
        "inter_mean": np.mean(inter),
        "per_class": {
            classes[c]: {
                "intra": np.mean(per_intra[c]) if per_intra[c] else None,
                "inter": np.mean(per_inter[c]) if per_inter[c] else None,
            }
            for c in range(len(classes))
        },
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_embedding_geometry_matches_naive_loops(seed):
    rng = np.random.default_rng(seed)
    classes = ["a", "b", "c", "d", "e"]
    y = rng.integers(0, 4, 60)  # class "e" absent
    y[0] = 3
    y[1:] = np.where(y[1:] == 3, 0, y[1:])  # class "d" has exactly one sample
    x = rng.normal(size=(60, 5)) + y[:, None] * 0.7
    got = embedding_geometry(x, y, classes)
    ref = _naive(x, y, classes)
    assert got["intra_mean"] == pytest.approx(ref["intra_mean"], rel=1e-10)
    assert got["inter_mean"] == pytest.approx(ref["inter_mean"], rel=1e-10)
    assert got["ratio"] == pytest.approx(ref["intra_mean"] / ref["inter_mean"], rel=1e-10)
    assert got["silhouette"] == pytest.approx(silhouette_score(x, y), rel=1e-9)
    assert got["n"] == got["n_total"] == 60
    from scipy.spatial.distance import pdist

    assert got["mean_distance"] == pytest.approx(pdist(x).mean(), rel=1e-10)  # the spread, over all pairs
    for name in classes:
        for key in ("intra", "inter"):
            if ref["per_class"][name][key] is None:
                assert got["per_class"][name][key] is None
            else:
                assert got["per_class"][name][key] == pytest.approx(ref["per_class"][name][key], rel=1e-10)
    assert got["per_class"]["d"]["n"] == 1 and got["per_class"]["e"]["n"] == 0
    # class_distance: diagonal = intra, symmetric off-diagonal means
    cd = np.array([[np.nan if v is None else v for v in row] for row in got["class_distance"]])
    assert cd[0, 0] == pytest.approx(got["per_class"]["a"]["intra"])
    assert cd[0, 1] == pytest.approx(cd[1, 0])
    d01 = [np.linalg.norm(x[i] - x[j]) for i in np.flatnonzero(y == 0) for j in np.flatnonzero(y == 1)]
    assert cd[0, 1] == pytest.approx(np.mean(d01), rel=1e-10)
    json.dumps(got)


def test_embedding_geometry_small_blocks_and_torch_input():
    from tanlib.analysis.geometry import class_distance_sums

    rng = np.random.default_rng(5)
    x = rng.normal(size=(37, 3))
    y = rng.integers(0, 3, 37)
    full = class_distance_sums(x, y, 3)
    blocked = class_distance_sums(x, y, 3, block=8)
    np.testing.assert_allclose(full, blocked, rtol=1e-12)
    a = embedding_geometry(torch.from_numpy(x).float(), torch.from_numpy(y), ["p", "q", "r"])
    b = embedding_geometry(x.astype(np.float32), y, ["p", "q", "r"])
    assert a["intra_mean"] == pytest.approx(b["intra_mean"], rel=1e-12)


def test_embedding_geometry_subsampling_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    y = rng.integers(0, 3, 400)
    a = embedding_geometry(x, y, ["a", "b", "c"], max_samples=100, seed=7)
    b = embedding_geometry(x, y, ["a", "b", "c"], max_samples=100, seed=7)
    c = embedding_geometry(x, y, ["a", "b", "c"], max_samples=100, seed=8)
    assert a == b
    assert a["n"] == 100 and a["n_total"] == 400
    assert a["intra_mean"] != c["intra_mean"]
    # the subsample is the same one the naive reference would draw
    idx = np.sort(np.random.default_rng(7).choice(400, size=100, replace=False))
    ref = _naive(x[idx], y[idx], ["a", "b", "c"])
    assert a["intra_mean"] == pytest.approx(ref["intra_mean"], rel=1e-10)


def test_embedding_geometry_errors():
    x = np.zeros((4, 2))
    with pytest.raises(DataError, match="0..1"):
        embedding_geometry(x, [0, 1, 2, 0], ["a", "b"])
    with pytest.raises(DataError, match="one entry per embedding"):
        embedding_geometry(x, [0, 1], ["a", "b"])
    with pytest.raises(DataError, match="2-D"):
        embedding_geometry(np.zeros(4), [0, 1, 0, 1], ["a", "b"])
    with pytest.raises(ConfigError, match="max_samples"):
        embedding_geometry(x, [0, 1, 0, 1], ["a", "b"], max_samples=1)
    one_class = embedding_geometry(np.arange(6.0).reshape(3, 2), [0, 0, 0], ["a", "b"])
    assert one_class["inter_mean"] is None and one_class["ratio"] is None and one_class["silhouette"] is None


def test_distance_samples_all_pairs_when_few():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 3))
    y = rng.integers(0, 3, 20)
    s = distance_samples(x, y, max_pairs=10_000)
    ref_intra = sorted(np.linalg.norm(x[i] - x[j]) for i, j in itertools.combinations(range(20), 2) if y[i] == y[j])
    ref_inter = sorted(np.linalg.norm(x[i] - x[j]) for i, j in itertools.combinations(range(20), 2) if y[i] != y[j])
    np.testing.assert_allclose(np.sort(s["intra"]), ref_intra, rtol=1e-12)
    np.testing.assert_allclose(np.sort(s["inter"]), ref_inter, rtol=1e-12)


def test_distance_samples_sampled_pairs():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 4)) + rng.integers(0, 2, 300)[:, None] * 0
    y = rng.integers(0, 4, 300)
    a = distance_samples(x, y, max_pairs=2000, seed=3)
    b = distance_samples(x, y, max_pairs=2000, seed=3)
    np.testing.assert_array_equal(a["intra"], b["intra"])
    np.testing.assert_array_equal(a["inter"], b["inter"])
    assert a["intra"].shape == (2000,) and a["inter"].shape == (2000,)
    assert (a["intra"] > 0).all()  # never a self-pair
    # every sampled intra distance is a real intra-class pair distance
    same = y[:, None] == y[None, :]
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    intra_set = d[np.triu(same, 1)]
    inter_set = d[np.triu(~same, 1)]
    assert np.isin(np.round(a["intra"], 10), np.round(intra_set, 10)).all()
    assert np.isin(np.round(a["inter"], 10), np.round(inter_set, 10)).all()
    # the sample means estimate the exact means
    assert a["intra"].mean() == pytest.approx(intra_set.mean(), rel=0.05)
    assert a["inter"].mean() == pytest.approx(inter_set.mean(), rel=0.05)
    with pytest.raises(ConfigError, match="max_pairs"):
        distance_samples(x, y, max_pairs=0)


def test_normalize_rows():
    from tanlib.analysis.geometry import normalize_rows

    x = np.array([[3.0, 4.0], [0.0, 0.0], [-1.0, 0.0]])
    assert np.allclose(normalize_rows(x), [[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]])
