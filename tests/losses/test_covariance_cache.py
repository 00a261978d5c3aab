"""The Mahalanobis distance's covariance inverse: computed once per update, regularised, and
its running estimate (first update replaces the initial state, then EMA)."""

import torch
import torch.nn.functional as F

from tanlib.losses import MahalanobisDistance


# ------------------------------------------------------------------ covariance cache
def test_covariance_inverse_is_computed_once_per_update():
    d = MahalanobisDistance("covariance", dim=8)
    x = F.normalize(torch.randn(32, 8), dim=1)
    d(x)
    assert d.inverse_computations == 1  # the identity before any update, once
    d.update(x)
    for _ in range(5):
        d(x)
        d.pairwise_distance(x[:4], x[4:8])
    assert d.inverse_computations == 2
    m1 = d.matrix()
    d.update(F.normalize(torch.randn(32, 8), dim=1))
    d(x)
    assert d.inverse_computations == 3
    assert not torch.allclose(d.matrix(), m1)
    state = d.state_dict()
    e = MahalanobisDistance("covariance", dim=8)
    e.load_state_dict(state)
    torch.testing.assert_close(e.matrix(), d.matrix())


def test_cached_transform_gives_the_regularised_inverse():
    d = MahalanobisDistance("covariance", dim=6, shrinkage=1e-3).double()
    x = torch.randn(50, 6, dtype=torch.float64) @ torch.randn(6, 6, dtype=torch.float64)
    d.update(x)
    s = torch.cov(x.T)
    s = s / (torch.trace(s) / 6)
    want = torch.linalg.inv(s + 1e-3 * torch.eye(6, dtype=s.dtype))
    torch.testing.assert_close(d.matrix(), want, rtol=1e-8, atol=1e-8)
    u, v = x[:5], x[5:10]
    diff = u - v
    torch.testing.assert_close(
        d.pairwise_distance(u, v), torch.sqrt(torch.einsum("ni,ij,nj->n", diff, want, diff) + d.eps)
    )


def test_first_update_replaces_initial_state_then_ema():
    d = MahalanobisDistance("covariance", dim=4, momentum=0.25).double()
    a, b = torch.randn(20, 4, dtype=torch.float64), torch.randn(20, 4, dtype=torch.float64)
    d.update(a)
    torch.testing.assert_close(d.running_cov, torch.cov(a.T))
    d.update(b)
    torch.testing.assert_close(d.running_cov, 0.75 * torch.cov(a.T) + 0.25 * torch.cov(b.T))
    assert int(d.num_updates) == 2
