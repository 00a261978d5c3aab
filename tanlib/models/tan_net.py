"""The TAN network: ResNet backbone, SCN-style sample attention, classifier, embedding.

docs/method.md, steps 1-4 (Gou et al., ICAC 2023; attention as in Wang et al., "Suppressing
Uncertainties for Large-Scale Facial Expression Recognition", CVPR 2020):

* ``h = backbone(x)`` in R^512 (ResNet-18/34) or R^2048 (ResNet-50), classifier removed;
* ``a = sigmoid(w^T h + b)`` in (0, 1), one weight per sample (all ones when attention is off);
* ``z = W h + c``, the logits; training uses ``a * z`` in the cross-entropy (or
  ``(a / mean a) * z`` with ``attention_norm="batch_mean"``: ``losses.objective.weighted_logits``),
  prediction ``argmax z`` (a positive scale does not move the argmax);
* ``e = normalize(P h)`` with P a linear projection (``embedding_dim=0``: P = I).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class TANOutput(NamedTuple):
    """What one forward pass returns."""

    logits: torch.Tensor  # (N, K), unweighted
    attention: torch.Tensor  # (N,), in (0, 1)
    embedding: torch.Tensor  # (N, D), unit norm
    features: torch.Tensor  # (N, F), pooled backbone features


class TANNet(nn.Module):
    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet18",
        embedding_dim: int = 128,
        attention: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        import torchvision  # imported here: it pulls in torch._dynamo (seconds), needed only to build a model

        net = torchvision.models.get_model(backbone, weights=None)
        feat_dim = net.fc.in_features
        net.fc = nn.Identity()
        self.backbone = net
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.attention = nn.Linear(feat_dim, 1) if attention else None
        self.classifier = nn.Linear(feat_dim, num_classes)
        self.projection = nn.Linear(feat_dim, embedding_dim) if embedding_dim > 0 else None
        self.num_classes = num_classes
        self.feature_dim = feat_dim
        self.embedding_dim = embedding_dim or feat_dim

    def forward(self, x: torch.Tensor) -> TANOutput:
        h = self.backbone(x)
        hd = self.dropout(h)
        if self.attention is not None:
            a = torch.sigmoid(self.attention(hd)).squeeze(1)
        else:
            a = torch.ones(h.shape[0], device=h.device, dtype=h.dtype)
        z = self.classifier(hd)
        e = self.projection(h) if self.projection is not None else h
        return TANOutput(logits=z, attention=a, embedding=F.normalize(e, dim=1), features=h)
