"""Mahalanobis distance as a pytorch-metric-learning distance (docs/method.md, step 7).

``d_M(u, v) = sqrt((u - v)^T M (u - v) + eps)`` computed as the Euclidean distance after
a linear map ``u -> A u`` with ``A^T A = M``. Three choices of M:

* ``"covariance"`` (default): M = s (S + lambda I)^-1, with S a running (EMA, detached)
  covariance of the embeddings, lambda = ``shrinkage * trace(S) / d`` so the inverse is
  never taken unregularised, and s = trace(S) / d, a positive scale that makes M = I for
  isotropic embeddings: distances then keep the Euclidean scale and the Mahalanobis
  margin is comparable with the triplet margin. Before the first update M = I.
* ``"learned"``: M = L L^T, L a trainable d x d matrix initialised to I.
* ``"identity"``: M = I, the Euclidean ablation (``tan-euclid``).

PML has no Mahalanobis distance; this class follows its ``BaseDistance`` contract
(``compute_mat`` gives the pairwise matrix, ``pairwise_distance`` the row-wise one), so
it plugs into PML's losses and miners. ``normalize_embeddings`` defaults to False: the
TAN network already L2-normalises its embeddings.
"""

from __future__ import annotations

import torch
from pytorch_metric_learning.distances import BaseDistance
from torch import nn

from ..config import METRICS


class MahalanobisDistance(BaseDistance):
    def __init__(
        self,
        metric: str = "covariance",
        dim: int | None = None,
        momentum: float = 0.1,
        shrinkage: float = 1e-3,
        eps: float = 1e-8,
        normalize_embeddings: bool = False,
        **kwargs,
    ):
        super().__init__(normalize_embeddings=normalize_embeddings, **kwargs)
        if metric not in METRICS:
            raise ValueError(f"metric={metric!r} is not allowed; choose one of {METRICS}")
        if metric != "identity" and not dim:
            raise ValueError(f"metric={metric!r} needs the embedding dimension dim")
        self.metric, self.momentum, self.shrinkage, self.eps = metric, momentum, shrinkage, eps
        if metric == "learned":
            self.L = nn.Parameter(torch.eye(dim))
        if metric == "covariance":
            self.register_buffer("running_mean", torch.zeros(dim))
            self.register_buffer("running_cov", torch.eye(dim))
            self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self._cached = None  # (version, transform) of the covariance inverse root
        self.inverse_computations = 0  # how often the inverse root was (re)computed

    # ------------------------------------------------------------------ state
    @torch.no_grad()
    def update(self, embeddings: torch.Tensor) -> None:
        """Fold a batch into the running covariance (no-op for other metrics)."""
        if self.metric != "covariance" or embeddings.shape[0] < 2:
            return
        x = embeddings.detach().to(self.running_cov.dtype)
        mean = x.mean(0)
        cov = torch.cov(x.T, correction=1)
        # the first batch replaces the initial state (weight 1), later ones are an EMA; the
        # weight is chosen on the device, so there is no host sync per step
        w = torch.where(self.num_updates == 0, 1.0, self.momentum).to(x.dtype)
        self.running_mean.lerp_(mean, w)
        self.running_cov.lerp_(cov, w)
        self.num_updates += 1

    def matrix(self) -> torch.Tensor | None:
        """M itself (None for the identity)."""
        if self.metric == "identity":
            return None
        a = self.transform()
        return a.T @ a

    def transform(self) -> torch.Tensor | None:
        """A with A^T A = M, so that d_M(u, v) = ||A u - A v|| (None for the identity).

        For ``covariance`` A is the inverse Cholesky factor of the regularised, scaled
        covariance, computed once per covariance update and cached."""
        if self.metric == "identity":
            return None
        if self.metric == "learned":
            return self.L.T
        # computed once per covariance state: every in-place update bumps the tensors'
        # version counters, so the key changes exactly when the inverse root must
        key = (self.running_cov.data_ptr(), self.running_cov._version, self.num_updates._version)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        self.inverse_computations += 1
        if int(self.num_updates) == 0:
            self._cached = (key, None)
        else:
            cov = self.running_cov.double()
            d = cov.shape[0]
            eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
            scale = torch.trace(cov).clamp_min(1e-12) / d
            reg = cov / scale + self.shrinkage * eye  # SPD: eigenvalues >= shrinkage
            # A = C^-1 with C C^T = reg (Cholesky) gives A^T A = reg^-1 = M; any such A gives
            # the same distances, and this is several times cheaper than an eigendecomposition
            chol, info = torch.linalg.cholesky_ex(reg)
            if int(info) == 0:
                root = torch.linalg.solve_triangular(chol, eye, upper=False)
            else:  # numerically indefinite (should not happen): clamp the spectrum instead
                eigval, eigvec = torch.linalg.eigh(reg)
                root = eigvec @ torch.diag(eigval.clamp_min(1e-12).rsqrt()) @ eigvec.T  # symmetric M^(1/2)
            self._cached = (key, root.to(self.running_cov.dtype))
        return self._cached[1]

    def _map(self, x: torch.Tensor) -> torch.Tensor:
        a = self.transform()
        return x if a is None else x @ a.to(x.dtype).T

    # ------------------------------------------------------------------ PML contract
    def compute_mat(self, query_emb, ref_emb):
        if ref_emb is None:
            ref_emb = query_emb
        q, r = self._map(query_emb), self._map(ref_emb)
        sq = (q * q).sum(1, keepdim=True) + (r * r).sum(1)[None, :] - 2 * q @ r.T
        return torch.sqrt(sq.clamp_min(0) + self.eps)

    def pairwise_distance(self, query_emb, ref_emb):
        diff = self._map(query_emb) - self._map(ref_emb)
        return torch.sqrt((diff * diff).sum(1) + self.eps)

    def _load_from_state_dict(self, *args, **kwargs):
        self._cached = None
        super()._load_from_state_dict(*args, **kwargs)
