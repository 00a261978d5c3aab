"""The joint objective on a model's output: gradients through every part, degenerate batches, non-finite losses."""

import pytest
import torch

from tanlib.config import preset
from tanlib.errors import NonFiniteLossError
from tanlib.losses import TANObjective
from tanlib.models import TANOutput, build_model


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 3] * 3)


def test_gradients_reach_every_part(batch):
    x, y = batch
    c = preset("tan", metric="learned", embedding_dim=16, threshold_mode="none")
    model = build_model(c, num_classes=4)
    obj = TANObjective(c).train()
    total, parts = obj(model(x), y)
    total.backward()
    assert parts["n_hard_triplets"] > 0
    for name, p in [
        ("backbone", model.backbone.conv1.weight),
        ("attention", model.attention.weight),
        ("projection", model.projection.weight),
        ("classifier", model.classifier.weight),
        ("L", obj.distance.L),
    ]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("labels", [torch.zeros(12, dtype=torch.long), torch.arange(12) % 12])
def test_degenerate_batch_gives_zero_terms_with_graph(labels):
    c = preset("tan", embedding_dim=16)
    model = build_model(c, num_classes=12)
    obj = TANObjective(c).train()
    total, parts = obj(model(torch.randn(12, 3, 32, 32)), labels)
    assert float(parts["triplet"]) == 0.0 and float(parts["mahalanobis"]) == 0.0
    assert parts["empty_triplet"] == 1 and parts["empty_hard"] == 1
    assert torch.isfinite(total) and total.requires_grad
    total.backward()  # the graph is intact


def test_tiny_high_set_gives_zero_term():
    c = preset("tan", embedding_dim=4, threshold_mode="absolute", threshold=0.9)
    obj = TANObjective(c).train()
    emb = torch.nn.functional.normalize(torch.randn(8, 4), dim=1).requires_grad_()
    out = TANOutput(torch.randn(8, 2), torch.full((8,), 0.5), emb, emb)
    total, parts = obj(out, torch.tensor([0, 1] * 4))
    assert parts["n_high"] == 0 and float(parts["mahalanobis"]) == 0.0 and torch.isfinite(total)


def test_non_finite_total_raises_naming_the_part():
    c = preset("tan", embedding_dim=4)
    obj = TANObjective(c).train()
    emb = torch.nn.functional.normalize(torch.randn(8, 4), dim=1)
    logits = torch.randn(8, 2)
    logits[0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"step 17.*ce"):
        obj(TANOutput(logits, torch.rand(8), emb, emb), torch.tensor([0, 1] * 4), step=17)
