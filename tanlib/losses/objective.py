"""The joint TAN objective (docs/method.md, steps 3-9).

``L = L_CE + lambda_T L_T + lambda_M L_M (+ lambda_RR L_RR)`` where

* ``L_CE``: cross-entropy on attention-weighted logits ``a * z`` (SCN's weighting; plain
  logits when ``weighted_ce`` is off; ``attention_norm="batch_mean"`` divides the weights
  by their batch mean, ``weighted_logits``);
* ``L_T``: PML's ``TripletMarginLoss`` with an explicit margin ``m_T`` on the triplets of
  the whole batch chosen by ``triplet_mining`` (``build_miner``), Euclidean distance on
  the embeddings;
* ``L_M``: the same hinge ``[d_M(a,p) - d_M(a,n) + m_M]_+`` with the Mahalanobis distance,
  on triplets mined again (``mahalanobis_mining``) inside the high-attention set H
  (``AttentionThresholdMiner``);
* ``L_RR``: SCN's rank regularisation on the attention weights (optional).

Mined triplets (``batch_hard``, ``semihard``) are averaged; ``all`` averages over the
triplets with a non-zero hinge. ``metric_weight`` (set per epoch by the training loop
for ``metric_warmup_epochs``) scales lambda_T and lambda_M.

Diagnostics for the run log (docs/method.md, "Collapse"): ``embedding_spread`` (mean
pairwise distance of the batch's embeddings; near 0 is a collapsed embedding),
``active_triplet``/``active_hard`` (share of the term's mined triplets with a non-zero
hinge), ``violating_triplet``/``violating_hard`` (share of all valid triplets of the
batch, of H for L_M, with a non-zero hinge: comparable across minings) and ``attention_std``.

A term with no triplet is an exact zero that keeps the graph (PML's zero loss), and is
counted (``empty_triplet``/``empty_hard``) so the run log shows it. A non-finite total
raises ``NonFiniteLossError`` naming the non-finite parts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.reducers import AvgNonZeroReducer, MeanReducer
from torch import nn

from ..config import Config
from ..errors import NonFiniteLossError
from .distance import MahalanobisDistance
from .miners import AttentionThresholdMiner, build_miner
from .rank import rank_regularization


def ce_logits(out, config) -> torch.Tensor:
    """The logits the training CE reads for a ``TANOutput``: ``weighted_logits`` (with the
    config's ``attention_norm``) when ``weighted_ce`` is on, else the plain logits. SCN's
    relabelling reads the same ones."""
    return weighted_logits(out.logits, out.attention, config.attention_norm) if config.weighted_ce else out.logits


def weighted_logits(logits: torch.Tensor, attention: torch.Tensor, norm: str = "none") -> torch.Tensor:
    """The logits of the weighted CE: ``a_i z_i`` (``norm="none"``, SCN) or
    ``(a_i / mean_j a_j) z_i`` (``"batch_mean"``). The batch-mean weights average 1, so the
    CE is invariant to a common scale of the attention: the attention can only move weight
    from some samples to others, not flatten every sample's softmax at once. The mean is
    part of the graph (its gradient is what removes the common scale)."""
    if norm == "none":
        return attention.unsqueeze(1) * logits
    if norm == "batch_mean":
        w = attention / attention.mean().clamp_min(torch.finfo(attention.dtype).tiny)
        return w.unsqueeze(1) * logits
    raise ValueError(f"attention_norm={norm!r} is not allowed; choose 'none' or 'batch_mean'")


def _reducer(mining: str):
    return AvgNonZeroReducer() if mining == "all" else MeanReducer()


@torch.no_grad()
def active_fraction(distance, emb: torch.Tensor, idx, margin: float) -> torch.Tensor:
    """Share of the triplets ``idx`` whose hinge d(a,p) - d(a,n) + margin is positive, read
    from the batch's distance matrix (the one the miners use): N x N distances once, not
    two distances per triplet (thousands of triplets per batch: 6 % of a CPU training step
    before, bench/bench_cpu_train.py)."""
    a, p, n = idx
    if not a.numel():
        return emb.new_zeros(())
    d = distance(emb)
    hinge = d[a, p] - d[a, n] + margin
    return (hinge > 0).to(emb.dtype).mean()


@torch.no_grad()
def violating_fraction(
    distance, emb: torch.Tensor, labels: torch.Tensor, margin: float, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """Share of *all* valid triplets (of the samples in ``keep``) whose hinge
    d(a,p) - d(a,n) + margin is positive: independent of the mining, 1.0 for an embedding
    collapsed to a point, falling as classes separate by the margin."""
    if keep is not None:
        emb, labels = emb[keep], labels[keep]
    if len(labels) < 3:
        return emb.new_zeros(())
    d = distance(emb)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool, device=emb.device)
    valid = pos[:, :, None] & ~same[:, None, :]  # (anchor, positive, negative)
    if not valid.any():
        return emb.new_zeros(())
    hinge = d[:, :, None] - d[:, None, :] + margin
    return ((hinge > 0) & valid).sum().to(emb.dtype) / valid.sum()


class TANObjective(nn.Module):
    def __init__(self, config: Config, embedding_dim: int | None = None):
        super().__init__()
        self.config = config
        dim = embedding_dim or (config.embedding_dim or {"resnet50": 2048}.get(config.backbone, 512))
        self.euclid = LpDistance(normalize_embeddings=False)
        self.triplet_miner = build_miner(config.triplet_mining, self.euclid, config.triplet_margin)
        self.triplet_loss = TripletMarginLoss(
            margin=config.triplet_margin, distance=self.euclid, reducer=_reducer(config.triplet_mining)
        )
        self.distance = MahalanobisDistance(
            metric=config.metric,
            dim=dim,
            momentum=config.cov_momentum,
            shrinkage=config.shrinkage,
            eps=config.mahalanobis_eps,
        )
        self.hard_miner = AttentionThresholdMiner(
            mode=config.threshold_mode,
            threshold=config.threshold,
            distance=self.distance,
            miner=build_miner(config.mahalanobis_mining, self.distance, config.mahalanobis_margin),
        )
        self.mahalanobis_loss = TripletMarginLoss(
            margin=config.mahalanobis_margin, distance=self.distance, reducer=_reducer(config.mahalanobis_mining)
        )
        self.metric_weight = 1.0  # the warm-up factor of lambda_T and lambda_M (``set_epoch``)

    def set_epoch(self, epoch: int) -> None:
        """Warm-up of the metric terms: their weights rise linearly from 1/(W+1) at epoch 1
        to full weight at epoch W+1 (W = ``metric_warmup_epochs``; 0: full from the start)."""
        w = self.config.metric_warmup_epochs
        self.metric_weight = 1.0 if w <= 0 else min(1.0, epoch / (w + 1))

    def forward(self, out, labels: torch.Tensor, step: str | int | None = None):
        """``out`` is a ``TANOutput`` (or anything with logits, attention, embedding).

        Returns ``(total, parts)``: parts holds each term (detached tensors), the total,
        and the counts ``n_high`` (|H|), ``n_triplets`` (batch-hard triplets for L_T),
        ``n_hard_triplets`` (triplets inside H for L_M), ``empty_triplet``/``empty_hard``
        (1 when that term had no triplet) and ``attention_mean``.
        """
        c = self.config
        emb, att = out.embedding, out.attention
        zero = emb.sum() * 0.0
        logits = ce_logits(out, c)
        if logits.dtype in (torch.float16, torch.bfloat16):  # autocast: reduce in float32
            logits = logits.float()
        ce = F.cross_entropy(logits, labels)
        parts: dict = {"ce": ce}
        total = ce

        triplet = zero
        n_triplets = 0
        active_t = active_h = viol_t = viol_h = zero.detach()
        if c.lambda_triplet > 0:
            idx = self.triplet_miner(emb, labels)
            n_triplets = int(idx[0].numel())
            triplet = self.triplet_loss(emb, labels, idx) if n_triplets else zero
            active_t = active_fraction(self.euclid, emb, idx, c.triplet_margin)
            viol_t = violating_fraction(self.euclid, emb, labels, c.triplet_margin)
            total = total + self.metric_weight * c.lambda_triplet * triplet
        parts["triplet"] = triplet

        mahal = zero
        n_hard, n_high = 0, 0
        if c.lambda_mahalanobis > 0:
            if self.training:
                self.distance.update(emb)
            idx = self.hard_miner(emb, labels, att)
            n_high, n_hard = self.hard_miner.num_high, int(idx[0].numel())
            mahal = self.mahalanobis_loss(emb, labels, idx) if n_hard else zero
            active_h = active_fraction(self.distance, emb, idx, c.mahalanobis_margin)
            viol_h = violating_fraction(self.distance, emb, labels, c.mahalanobis_margin, keep=self.hard_miner.high)
            total = total + self.metric_weight * c.lambda_mahalanobis * mahal
        elif c.attention and c.threshold_mode != "none":
            n_high = int(self.hard_miner.high_mask(att).sum())
        parts["mahalanobis"] = mahal

        rr = zero
        if c.lambda_rr > 0:
            rr = rank_regularization(att, beta=c.rr_beta, margin=c.rr_margin)
            total = total + c.lambda_rr * rr
        parts["rr"] = rr
        parts["total"] = total

        if not torch.isfinite(total):
            bad = [k for k in ("ce", "triplet", "mahalanobis", "rr") if not torch.isfinite(parts[k])]
            where = f" at step {step}" if step is not None else ""
            raise NonFiniteLossError(
                f"non-finite loss{where}: total={float(total.detach())}, "
                f"non-finite part(s): {', '.join(bad) or 'total'}; "
                "lower lr, check the inputs, or resume from the last good checkpoint"
            )
        parts = {k: v.detach() for k, v in parts.items()}
        parts.update(
            n_high=n_high,
            n_triplets=n_triplets,
            n_hard_triplets=n_hard,
            empty_triplet=int(c.lambda_triplet > 0 and n_triplets == 0),
            empty_hard=int(c.lambda_mahalanobis > 0 and n_hard == 0),
            attention_mean=att.detach().mean(),  # tensors: no host sync per step
            attention_std=att.detach().std() if att.numel() > 1 else zero.detach(),
            embedding_spread=torch.pdist(emb.detach().float()).mean() if len(emb) > 1 else zero.detach(),
            active_triplet=active_t,
            active_hard=active_h,
            violating_triplet=viol_t,
            violating_hard=viol_h,
        )
        if c.attention:  # the mean attention per (given) class over the epoch: runstate.history_row
            k = out.logits.shape[1]
            a = att.detach().float()
            class_sum = torch.zeros(k, device=a.device).index_add_(0, labels, a)
            class_n = torch.bincount(labels, minlength=k).float()
            for j in range(k):
                parts[f"attention_sum_class{j}"] = class_sum[j]
                parts[f"attention_n_class{j}"] = class_n[j]
        return total, parts
