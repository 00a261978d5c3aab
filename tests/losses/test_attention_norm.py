"""The weighted CE's attention normalisation (``attention_norm``; docs/method.md, "The
from-scratch stall"): checked against a naive reference written with explicit loops."""

import math

import pytest
import torch

from tanlib.config import preset
from tanlib.errors import ConfigError
from tanlib.losses import TANObjective
from tanlib.losses.objective import weighted_logits
from tanlib.models import TANOutput


def naive_weighted_ce(logits, attention, labels, norm):
    """Cross-entropy of the weighted logits, one sample and one class at a time."""
    n, k = logits.shape
    mean = sum(float(attention[j]) for j in range(n)) / n
    total = 0.0
    for i in range(n):
        w = float(attention[i]) / mean if norm == "batch_mean" else float(attention[i])
        row = [w * float(logits[i, c]) for c in range(k)]
        top = max(row)
        log_z = top + math.log(sum(math.exp(v - top) for v in row))
        total += log_z - row[int(labels[i])]
    return total / n


def naive_attention_grad(logits, attention, labels, norm):
    """dL/da_i of the batch-mean CE, by hand: with w_i = a_i / m, m = mean_j a_j,
    dL/dw_i = (E_p[z_i] - z_iy) / N and dL/da_i = dL/dw_i / m - sum_j dL/dw_j a_j / (N m^2)."""
    n, k = logits.shape
    a = [float(x) for x in attention]
    m = sum(a) / n if norm == "batch_mean" else 1.0
    dw = []
    for i in range(n):
        w = a[i] / m
        row = [w * float(logits[i, c]) for c in range(k)]
        top = max(row)
        ex = [math.exp(v - top) for v in row]
        s = sum(ex)
        expected = sum(ex[c] / s * float(logits[i, c]) for c in range(k))
        dw.append((expected - float(logits[i, int(labels[i])])) / n)
    if norm != "batch_mean":
        return dw
    cross = sum(dw[j] * a[j] for j in range(n)) / (n * m * m)
    return [dw[i] / m - cross for i in range(n)]


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(3)
    n, k = 10, 4
    logits = torch.randn(n, k, generator=g, dtype=torch.float64) * 2
    attention = torch.rand(n, generator=g, dtype=torch.float64) * 0.9 + 0.05
    labels = torch.randint(0, k, (n,), generator=g)
    return logits, attention, labels


@pytest.mark.parametrize("norm", ["none", "batch_mean"])
def test_weighted_ce_and_attention_gradient_match_the_loops(batch, norm):
    logits, attention, labels = batch
    a = attention.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(weighted_logits(logits, a, norm), labels)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(naive_weighted_ce(logits, attention, labels, norm), rel=1e-12)
    assert a.grad.tolist() == pytest.approx(naive_attention_grad(logits, attention, labels, norm), rel=1e-9, abs=1e-15)


def test_batch_mean_removes_the_common_scale(batch):
    """Scaling every weight by c changes nothing, so the CE's gradient has no component along
    a: sum_i a_i dL/da_i = 0 (Euler), and the attention can only re-distribute weight."""
    logits, attention, labels = batch
    ce = lambda a: torch.nn.functional.cross_entropy(weighted_logits(logits, a, "batch_mean"), labels)  # noqa: E731
    for c in (0.1, 0.5, 3.0):
        assert float(ce(attention * c)) == pytest.approx(float(ce(attention)), rel=1e-12)
    a = attention.clone().requires_grad_(True)
    ce(a).backward()
    assert float((a.grad * attention).sum()) == pytest.approx(0.0, abs=1e-14)
    # the unnormalised CE does feel the scale: a common shrink flattens every softmax
    plain = lambda a: torch.nn.functional.cross_entropy(weighted_logits(logits, a, "none"), labels)  # noqa: E731
    assert float(plain(attention * 0.01)) == pytest.approx(math.log(4), abs=0.02)


def test_weights_average_one_and_keep_their_order(batch):
    logits, attention, _ = batch
    ones = torch.ones_like(logits)
    w = weighted_logits(ones, attention, "batch_mean")[:, 0]
    assert float(w.mean()) == pytest.approx(1.0, rel=1e-12)
    assert torch.equal(torch.argsort(w), torch.argsort(attention))
    assert torch.equal(weighted_logits(logits, attention, "none"), attention[:, None] * logits)


def test_objective_uses_the_option(batch):
    logits, attention, labels = batch
    emb = torch.nn.functional.normalize(torch.randn(len(labels), 8, dtype=torch.float64), dim=1)
    out = TANOutput(logits.float(), attention.float(), emb.float(), emb.float())
    for norm in ("none", "batch_mean"):
        c = preset("attention", "smoke", attention_norm=norm)
        _, parts = TANObjective(c, embedding_dim=8).train()(out, labels)
        assert float(parts["ce"]) == pytest.approx(naive_weighted_ce(logits, attention, labels, norm), rel=1e-5)
    # weighted_ce=false ignores the option: plain logits
    c = preset("triplet", "smoke", attention_norm="batch_mean", lambda_triplet=0.0)
    _, parts = TANObjective(c, embedding_dim=8).train()(out, labels)
    assert float(parts["ce"]) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, labels)), rel=1e-5)


def test_default_keeps_the_scn_weighting_and_bad_values_are_refused():
    assert preset("tan").attention_norm == "none"
    with pytest.raises(ConfigError, match="attention_norm"):
        preset("tan", attention_norm="softmax")
    with pytest.raises(ValueError, match="attention_norm"):
        weighted_logits(torch.zeros(2, 3), torch.ones(2), "softmax")


def test_scn_relabelling_reads_the_logits_the_weighted_ce_trains():
    """SCN's relabelling compares probabilities of the weighted logits: with every weight
    at 0.1 the unnormalised softmax is nearly flat (no margin reaches 0.2), while the
    batch-mean weights are 1 and the same logits relabel the low-attention group."""
    from tanlib.engine.train import _scn_relabel

    n = 10
    logits = torch.zeros(n, 7)
    logits[:, 3] = 4.0  # every sample predicts class 3 confidently at weight 1
    attention = torch.full((n,), 0.1)
    attention[:7] += 0.01  # the top 70 % (rr_beta 0.7) are the high-attention group
    out = TANOutput(logits, attention, torch.zeros(n, 2), torch.zeros(n, 2))
    y = torch.zeros(n, dtype=torch.long)
    changed = {}
    for norm in ("none", "batch_mean"):
        labels = torch.zeros(n, dtype=torch.long)
        config = preset("scn", "smoke", attention_norm=norm)
        changed[norm] = (_scn_relabel(config, out, y, torch.arange(n), labels), labels.tolist())
    assert changed["none"] == (0, [0] * n)
    assert changed["batch_mean"] == (3, [0] * 7 + [3] * 3)


def test_relabelling_without_weighted_ce_reads_the_plain_logits():
    """attention on, weighted CE off: the CE trains the plain logits, and so the relabelling
    reads them (weights of 0.1 do not flatten them)."""
    from tanlib.engine.train import _scn_relabel

    n = 10
    logits = torch.zeros(n, 7)
    logits[:, 3] = 4.0
    attention = torch.full((n,), 0.1)
    attention[:7] += 0.01
    out = TANOutput(logits, attention, torch.zeros(n, 2), torch.zeros(n, 2))
    labels = torch.zeros(n, dtype=torch.long)
    config = preset("scn", "smoke", weighted_ce=False)
    assert _scn_relabel(config, out, torch.zeros(n, dtype=torch.long), torch.arange(n), labels) == 3
