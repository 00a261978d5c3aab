"""SCN's rank regularisation (Wang et al., CVPR 2020, eq. 3).

Sort the batch's attention weights, split them into a high group (the top ``beta``
fraction) and a low group, and ask the high group's mean to exceed the low group's by
``margin`` (delta_1): ``L_RR = max(0, margin - (mean_high - mean_low))``.
"""

from __future__ import annotations

import torch


def rank_regularization(attention: torch.Tensor, beta: float = 0.7, margin: float = 0.15) -> torch.Tensor:
    n = attention.shape[0]
    k = int(round(beta * n))
    if k < 1 or k >= n:
        return attention.sum() * 0.0
    ordered, _ = torch.sort(attention, descending=True)
    return torch.relu(margin - (ordered[:k].mean() - ordered[k:].mean()))
