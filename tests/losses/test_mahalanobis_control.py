"""The positive control of the Mahalanobis distance (docs/method.md, "Does the Mahalanobis
distance do anything?"): the kit's ``MahalanobisDistance`` with its default metric (the
scaled inverse of the running covariance, updated batch by batch as in training) separates
classes that the Euclidean distance cannot, where nuisance directions with no class in
them are of a larger scale than the class's directions; on embeddings already whitened it
equals the Euclidean distance (M = I by its scaling). The verdict's `tan - tan-euclid`
reading ("equivalent") is read against these two cases."""

import torch

from tanlib.config import preset
from tanlib.losses.distance import MahalanobisDistance
from tanlib.losses.objective import violating_fraction


def embeddings(nuisance_sd: float, n: int = 700, k: int = 7, signal: int = 3, noise: int = 5):
    """n embeddings of k classes: ``signal`` directions hold the class (means of sd 1, within
    sd 0.2), ``noise`` directions hold none (sd ``nuisance_sd``)."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, k, (n,), generator=g)
    means = torch.randn(k, signal, generator=g)
    x = means[labels] + 0.2 * torch.randn(n, signal, generator=g)
    return torch.cat([x, nuisance_sd * torch.randn(n, noise, generator=g)], 1), labels


def nearest_neighbour_accuracy(distance, x, labels) -> float:
    """Leave-one-out 1-NN accuracy under ``distance`` (its pairwise matrix), by an explicit
    loop over the queries."""
    d = distance(x)
    hits = 0
    for i in range(len(labels)):
        row = d[i].clone()
        row[i] = float("inf")
        hits += int(labels[int(row.argmin())] == labels[i])
    return hits / len(labels)


def whitened(x: torch.Tensor) -> torch.Tensor:
    """``x`` centred and mapped to identity covariance (its sample covariance's inverse root)."""
    x = x - x.mean(0)
    eigval, eigvec = torch.linalg.eigh(torch.cov(x.T))
    return x @ eigvec @ torch.diag(eigval.rsqrt()) @ eigvec.T


def compare(nuisance_sd: float, whiten: bool = False) -> dict:
    """1-NN accuracy and the share of violating triplets (the calibrated preset's Mahalanobis
    margin) under the Euclidean and the covariance metric, the latter after one pass of
    batches of 64 through its running covariance; ``whiten``: the embeddings whitened first."""
    x, labels = embeddings(nuisance_sd)
    x = whitened(x) if whiten else x
    config = preset("tan", "calibrated")
    euclid = MahalanobisDistance("identity")
    maha = MahalanobisDistance("covariance", dim=x.shape[1], momentum=config.cov_momentum, shrinkage=config.shrinkage)
    for batch in x.split(64):
        maha.update(batch)
    margin = config.mahalanobis_margin
    return {
        "nn_euclid": nearest_neighbour_accuracy(euclid, x, labels),
        "nn_maha": nearest_neighbour_accuracy(maha, x, labels),
        "viol_euclid": float(violating_fraction(euclid, x[:200], labels[:200], margin)),
        "viol_maha": float(violating_fraction(maha, x[:200], labels[:200], margin)),
    }


def test_the_covariance_metric_undoes_nuisance_directions_of_large_scale():
    """Positive control: nuisance directions 5x the class's scale decide the Euclidean
    neighbours (1-NN near chance, 1/7); the covariance metric, invariant to the directions'
    scale, gives what the Euclidean distance gets with every direction at unit scale."""
    large, unit = compare(nuisance_sd=5.0), compare(nuisance_sd=1.0)
    assert large["nn_euclid"] < 0.3
    assert large["nn_maha"] - large["nn_euclid"] > 0.3 and large["viol_maha"] < large["viol_euclid"] - 0.15
    assert abs(large["nn_maha"] - unit["nn_maha"]) < 0.03 and abs(large["nn_maha"] - unit["nn_euclid"]) < 0.05


def test_on_whitened_embeddings_the_covariance_metric_is_the_euclidean_distance():
    """Negative control: embeddings already of identity covariance (a trained projection can
    learn such a map) leave the metric nothing to correct: M is about I."""
    got = compare(nuisance_sd=5.0, whiten=True)
    assert abs(got["nn_maha"] - got["nn_euclid"]) < 0.02
    assert abs(got["viol_maha"] - got["viol_euclid"]) < 0.02
