"""The joint TAN objective (DESIGN section 2, steps 3-9).

``L = L_CE + lambda_T L_T + lambda_M L_M (+ lambda_RR L_RR)`` where

* ``L_CE``: cross-entropy on attention-weighted logits ``a * z`` (SCN's weighting; plain
  logits when ``weighted_ce`` is off);
* ``L_T``: PML's ``TripletMarginLoss`` with an explicit margin ``m_T`` on batch-hard
  triplets of the whole batch, Euclidean distance on the embeddings, mean over triplets;
* ``L_M``: the same hinge ``[d_M(a,p) - d_M(a,n) + m_M]_+`` with the Mahalanobis distance,
  on hard triplets mined again inside the high-attention set H
  (``AttentionThresholdMiner``), mean over those triplets;
* ``L_RR``: SCN's rank regularisation on the attention weights (optional).

A term with no triplet is an exact zero that keeps the graph (PML's zero loss), and is
counted (``empty_triplet``/``empty_hard``) so the run log shows it. A non-finite total
raises ``NonFiniteLossError`` naming the non-finite parts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.miners import BatchHardMiner
from pytorch_metric_learning.reducers import MeanReducer
from torch import nn

from ..config import Config
from ..errors import NonFiniteLossError
from .distance import MahalanobisDistance
from .miners import AttentionThresholdMiner
from .rank import rank_regularization


class TANObjective(nn.Module):
    def __init__(self, config: Config, embedding_dim: int | None = None):
        super().__init__()
        self.config = config
        dim = embedding_dim or (config.embedding_dim or {"resnet50": 2048}.get(config.backbone, 512))
        euclid = LpDistance(normalize_embeddings=False)
        self.triplet_miner = BatchHardMiner(distance=euclid)
        self.triplet_loss = TripletMarginLoss(margin=config.triplet_margin, distance=euclid,
                                              reducer=MeanReducer())
        self.distance = MahalanobisDistance(metric=config.metric, dim=dim, momentum=config.cov_momentum,
                                            shrinkage=config.shrinkage, eps=config.mahalanobis_eps)
        self.hard_miner = AttentionThresholdMiner(mode=config.threshold_mode, threshold=config.threshold,
                                                  distance=self.distance)
        self.mahalanobis_loss = TripletMarginLoss(margin=config.mahalanobis_margin, distance=self.distance,
                                                  reducer=MeanReducer())

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
        logits = att.unsqueeze(1) * out.logits if c.weighted_ce else out.logits
        if logits.dtype in (torch.float16, torch.bfloat16):  # autocast: reduce in float32
            logits = logits.float()
        ce = F.cross_entropy(logits, labels)
        parts: dict = {"ce": ce}
        total = ce

        triplet = zero
        n_triplets = 0
        if c.lambda_triplet > 0:
            idx = self.triplet_miner(emb, labels)
            n_triplets = int(idx[0].numel())
            triplet = self.triplet_loss(emb, labels, idx) if n_triplets else zero
            total = total + c.lambda_triplet * triplet
        parts["triplet"] = triplet

        mahal = zero
        n_hard, n_high = 0, 0
        if c.lambda_mahalanobis > 0:
            if self.training:
                self.distance.update(emb)
            idx = self.hard_miner(emb, labels, att)
            n_high, n_hard = self.hard_miner.num_high, int(idx[0].numel())
            mahal = self.mahalanobis_loss(emb, labels, idx) if n_hard else zero
            total = total + c.lambda_mahalanobis * mahal
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
                f"non-finite loss{where}: total={float(total.detach())}, non-finite part(s): {', '.join(bad) or 'total'}; "
                "lower lr, check the inputs, or resume from the last good checkpoint"
            )
        parts = {k: v.detach() for k, v in parts.items()}
        parts.update(
            n_high=n_high,
            n_triplets=n_triplets,
            n_hard_triplets=n_hard,
            empty_triplet=int(c.lambda_triplet > 0 and n_triplets == 0),
            empty_hard=int(c.lambda_mahalanobis > 0 and n_hard == 0),
            attention_mean=att.detach().mean(),  # a tensor: no host sync per step
        )
        return total, parts
