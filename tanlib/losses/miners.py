"""Attention-threshold miner (DESIGN section 2, step 6).

TAN forms "new hard triplets" from the samples whose attention weight is above a
threshold. This PML miner keeps the high-attention set H and mines batch-hard triplets
(hardest positive, hardest negative per anchor; Hermans et al. 2017) inside H only, using
PML's ``BatchHardMiner`` with the injected distance. It returns (anchor, positive,
negative) index tensors into the full batch, like every PML triplet miner.

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
from pytorch_metric_learning.miners import BaseMiner, BatchHardMiner

MODES = ("quantile", "absolute", "none")


class AttentionThresholdMiner(BaseMiner):
    def __init__(self, mode: str = "quantile", threshold: float = 0.3, **kwargs):
        kwargs.setdefault("distance", LpDistance(normalize_embeddings=False))
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not allowed; choose one of {MODES}")
        if mode == "quantile" and not 0 <= threshold < 1:
            raise ValueError(f"threshold={threshold} must be in [0, 1) with mode='quantile'")
        self.mode, self.threshold = mode, threshold
        self.batch_hard = BatchHardMiner(distance=self.distance)
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
            idx = torch.nonzero(high).squeeze(1)
            self.num_high = int(idx.numel())
            if idx.numel() < 3:
                empty = idx.new_empty(0)
                out = (empty, empty, empty)
            else:
                a, p, n = self.batch_hard(embeddings[idx], labels[idx])
                out = (idx[a], idx[p], idx[n])
        self.output_assertion(out)
        return out
