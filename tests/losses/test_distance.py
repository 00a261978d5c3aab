"""MahalanobisDistance against scipy.spatial.distance.mahalanobis, per metric mode."""

import numpy as np
import pytest
import torch
from pytorch_metric_learning.losses import TripletMarginLoss
from scipy.spatial.distance import mahalanobis

from tanlib.losses import MahalanobisDistance

torch.manual_seed(0)


def _scipy_matrix(x, y, m):
    return np.array([[mahalanobis(a, b, m) for b in y] for a in x])


def test_identity_is_euclidean():
    x, y = torch.randn(7, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    d = MahalanobisDistance(metric="identity", eps=0)(x, y)
    np.testing.assert_allclose(d.numpy(), _scipy_matrix(x.numpy(), y.numpy(), np.eye(5)), atol=1e-6)


def test_learned_matches_scipy_with_L_LT():
    dist = MahalanobisDistance(metric="learned", dim=5, eps=0).double()
    np.testing.assert_array_equal(dist.L.detach().numpy(), np.eye(5))  # starts at I
    with torch.no_grad():
        dist.L.copy_(torch.randn(5, 5, dtype=torch.float64))
    x, y = torch.randn(6, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    L = dist.L.detach().numpy()
    want = _scipy_matrix(x.numpy(), y.numpy(), L @ L.T)
    np.testing.assert_allclose(dist(x, y).detach().numpy(), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dist.pairwise_distance(x[:3], y).detach().numpy(), np.diag(want[:3]), rtol=1e-6)


def test_covariance_matches_scipy_with_regularised_inverse():
    d = 6
    dist = MahalanobisDistance(metric="covariance", dim=d, momentum=0.5, shrinkage=1e-3, eps=0).double()
    a = torch.randn(d, d, dtype=torch.float64)
    batches = [torch.randn(50, d, dtype=torch.float64) @ a for _ in range(3)]
    for b in batches:
        dist.update(b)
    # the EMA, by hand
    cov = np.cov(batches[0].numpy().T)
    for b in batches[1:]:
        cov = 0.5 * cov + 0.5 * np.cov(b.numpy().T)
    np.testing.assert_allclose(dist.running_cov.numpy(), cov, rtol=1e-10)
    s = np.trace(cov) / d
    m = s * np.linalg.inv(cov + 1e-3 * s * np.eye(d))  # docs/method.md: (S + lambda I)^-1, scaled by s
    x, y = torch.randn(5, d, dtype=torch.float64), torch.randn(4, d, dtype=torch.float64)
    np.testing.assert_allclose(dist(x, y).numpy(), _scipy_matrix(x.numpy(), y.numpy(), m), rtol=1e-6)
    np.testing.assert_allclose(dist.matrix().numpy(), m, rtol=1e-6)


def test_covariance_invertible_on_batch_smaller_than_dim():
    d = 32
    dist = MahalanobisDistance(metric="covariance", dim=d)
    dist.update(torch.nn.functional.normalize(torch.randn(5, d), dim=1))  # rank <= 4
    mat = dist(torch.randn(8, d))
    assert torch.isfinite(mat).all()
    assert torch.isfinite(dist.matrix()).all()
    assert torch.linalg.eigvalsh(dist.matrix().double()).min() > 0


def test_covariance_starts_as_identity_and_is_detached():
    dist = MahalanobisDistance(metric="covariance", dim=4, eps=0).double()
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    np.testing.assert_allclose(dist(x).numpy(), torch.cdist(x, x).numpy(), atol=1e-6)
    e = torch.randn(10, 4, requires_grad=True)
    dist.update(e)
    assert not dist.running_cov.requires_grad


def test_self_distance_has_finite_gradient():
    dist = MahalanobisDistance(metric="learned", dim=3)
    x = torch.randn(4, 3, requires_grad=True)
    dist(x).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(dist.L.grad).all()


def test_plugs_into_pml_loss():
    dist = MahalanobisDistance(metric="identity")
    loss = TripletMarginLoss(margin=0.2, distance=dist)
    e = torch.randn(12, 8, requires_grad=True)
    out = loss(e, torch.tensor([0, 1, 2] * 4))
    out.backward()
    assert torch.isfinite(out) and e.grad is not None


def test_rejects_bad_metric():
    with pytest.raises(ValueError, match="metric='cosine'"):
        MahalanobisDistance(metric="cosine")
