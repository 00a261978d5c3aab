"""The TAN network: named outputs, attention and embedding per method, other backbones."""

import pytest
import torch

from tanlib.config import preset
from tanlib.models import TANOutput, build_model


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 3] * 3)


def test_forward_returns_named_parts(batch):
    x, _ = batch
    model = build_model(preset("tan", embedding_dim=16), num_classes=4)
    out = model(x)
    assert isinstance(out, TANOutput)
    assert out.logits.shape == (12, 4) and out.attention.shape == (12,)
    assert out.embedding.shape == (12, 16) and out.features.shape == (12, 512)
    assert ((out.attention > 0) & (out.attention < 1)).all()
    torch.testing.assert_close(out.embedding.norm(dim=1), torch.ones(12))


def test_ce_model_has_unit_attention_and_embedding_dim_zero_uses_features(batch):
    x, _ = batch
    out = build_model(preset("ce", embedding_dim=0), num_classes=4)(x)
    assert torch.equal(out.attention, torch.ones(12))
    torch.testing.assert_close(out.embedding, torch.nn.functional.normalize(out.features, dim=1))


@pytest.mark.parametrize("backbone,dim", [("resnet34", 512), ("resnet50", 2048)])
def test_other_backbones(backbone, dim):
    out = build_model(preset("ce", backbone=backbone), num_classes=3)(torch.randn(2, 3, 32, 32))
    assert out.features.shape == (2, dim)
