"""Losses in pytorch-metric-learning's contracts: the attention-threshold miner, the
Mahalanobis distance, SCN's rank regularisation and the joint TAN objective."""

from .distance import MahalanobisDistance
from .miners import AttentionThresholdMiner
from .objective import TANObjective
from .rank import rank_regularization

__all__ = ["AttentionThresholdMiner", "MahalanobisDistance", "TANObjective", "rank_regularization"]
