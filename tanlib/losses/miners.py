"""Triplet miners of the metric terms (docs/method.md, steps 5, 6 and 8).

``build_miner(kind, distance, margin)`` gives the miner of one term, a reading of the
abstract's "hard triplets":

* ``batch_hard``: the hardest positive and hardest negative per anchor (Hermans et al.,
  "In Defense of the Triplet Loss", 2017; PML's ``BatchHardMiner``). Known to collapse
  the embedding to a point early in training from scratch (FaceNet, Schroff et al. 2015,
  section 3.2);
* ``semihard``: every triplet whose negative is farther than the positive but inside
  the margin (FaceNet's semi-hard negatives; PML's ``TripletMarginMiner``);
* ``all``: every valid triplet; the loss then averages over those with a non-zero hinge
  (PML's ``AvgNonZeroTripletsReducer``).

``AttentionThresholdMiner`` keeps the high-attention set H and runs an injected miner
(batch-hard by default) inside H only. It returns (anchor, positive, negative) index
tensors into the full batch, like every PML triplet miner.

Threshold modes:

* ``quantile`` (default): tau is the batch's ``threshold``-quantile of the attention, so
  ``threshold=0.3`` keeps the top 70 % (SCN's beta = 0.7);
* ``absolute``: tau = ``threshold``, a fixed attention value;
* ``none``: H is the whole batch (the ``tan-nothreshold`` ablation).

A batch where |H| < 3 or H has no anchor with both a positive and a negative gives empty
index tensors, which PML's losses turn into a zero loss.
"""

from __future__ import annotations

import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.miners import BaseMiner, BatchHardMiner, TripletMarginMiner
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from ..config import MINING
from ..config import THRESHOLD_MODES as MODES


class AllTripletsMiner(BaseMiner):
    """Every valid (anchor, positive, negative) triplet of the batch."""

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        return lmu.get_all_triplets_indices(labels, ref_labels)


def build_miner(kind: str, distance, margin: float) -> BaseMiner:
    """The miner of one metric term: ``batch_hard``, ``semihard`` or ``all`` (see above)."""
    if kind == "batch_hard":
        return BatchHardMiner(distance=distance)
    if kind == "semihard":
        return TripletMarginMiner(margin=margin, type_of_triplets="semihard", distance=distance)
    if kind == "all":
        return AllTripletsMiner(distance=distance)
    raise ValueError(f"mining={kind!r} is not allowed; choose one of {MINING}")


class AttentionThresholdMiner(BaseMiner):
    def __init__(self, mode: str = "quantile", threshold: float = 0.3, miner: BaseMiner | None = None, **kwargs):
        kwargs.setdefault("distance", LpDistance(normalize_embeddings=False))
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not allowed; choose one of {MODES}")
        if mode == "quantile" and not 0 <= threshold < 1:
            raise ValueError(f"threshold={threshold} must be in [0, 1) with mode='quantile'")
        self.mode, self.threshold = mode, threshold
        self.inner = miner if miner is not None else BatchHardMiner(distance=self.distance)
        self.add_to_recordable_attributes(list_of_names=["num_high", "tau"], is_stat=True)

    def high_mask(self, attention: torch.Tensor) -> torch.Tensor:
        """Boolean mask of H, the samples at or above the threshold."""
        a = attention.detach()
        if self.mode == "none":
            return torch.ones_like(a, dtype=torch.bool)
        if self.mode == "quantile":
            tau = torch.quantile(a.float(), self.threshold).to(a.dtype)
        else:
            tau = torch.as_tensor(self.threshold, dtype=a.dtype, device=a.device)
        self.tau = float(tau)
        return a >= tau

    def forward(self, embeddings, labels, attention=None, ref_emb=None, ref_labels=None):
        if ref_emb is not None or ref_labels is not None:
            raise ValueError("AttentionThresholdMiner mines within one batch; ref_emb is not supported")
        self.reset_stats()
        with torch.no_grad():
            labels = labels.to(embeddings.device)
            if attention is None:
                if self.mode != "none":
                    raise ValueError(f"mode={self.mode!r} needs the attention weights")
                attention = torch.ones(len(labels), device=embeddings.device)
            high = self.high_mask(attention)
            self.high = high  # H of the last call, for diagnostics that need it (no second quantile)
            idx = torch.nonzero(high).squeeze(1)
            self.num_high = int(idx.numel())
            if idx.numel() < 3:
                empty = idx.new_empty(0)
                out = (empty, empty, empty)
            else:
                a, p, n = self.inner(embeddings[idx], labels[idx])
                out = (idx[a], idx[p], idx[n])
        self.output_assertion(out)
        return out
