"""Miner and losses against naive loops over explicit triplets."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tanlib.config import preset
from tanlib.losses import AttentionThresholdMiner, MahalanobisDistance, TANObjective, rank_regularization
from tanlib.models import TANOutput


def _batch(n=24, d=8, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    labels = torch.randint(0, k, (n,), generator=g)
    att = torch.rand(n, generator=g, dtype=torch.float64)
    return emb, labels, att


def _naive_batch_hard(emb, labels, keep, dist):
    """For each kept anchor: hardest kept positive, hardest kept negative (loops)."""
    out = {}
    for i in keep:
        pos = [j for j in keep if j != i and labels[j] == labels[i]]
        neg = [j for j in keep if labels[j] != labels[i]]
        if pos and neg:
            out[i] = (max(dist(i, j) for j in pos), min(dist(i, j) for j in neg))
    return out


@pytest.mark.parametrize("mode,threshold", [("quantile", 0.3), ("absolute", 0.5), ("none", 0.0), ("quantile", 0.0)])
def test_miner_against_naive_loop(mode, threshold):
    emb, labels, att = _batch()
    miner = AttentionThresholdMiner(mode=mode, threshold=threshold)
    a, p, n = miner(emb, labels, att)
    if mode == "quantile":
        tau = np.quantile(att.numpy(), threshold)
    else:
        tau = threshold if mode == "absolute" else -1
    keep = [i for i in range(len(labels)) if att[i] >= tau]
    assert miner.num_high == len(keep)
    dist = lambda i, j: float(torch.dist(emb[i], emb[j]))
    naive = _naive_batch_hard(emb, labels, keep, dist)
    assert sorted(a.tolist()) == sorted(naive)  # every eligible anchor, once
    for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist()):
        assert labels[ai] == labels[pi] and labels[ai] != labels[ni] and ai != pi
        assert att[ai] >= tau and att[pi] >= tau and att[ni] >= tau
        hp, hn = naive[ai]
        assert dist(ai, pi) == pytest.approx(hp) and dist(ai, ni) == pytest.approx(hn)


def test_miner_uses_injected_distance():
    emb, labels, att = _batch(d=4)
    dist = MahalanobisDistance(metric="learned", dim=4, eps=0).double()
    with torch.no_grad():
        dist.L.copy_(torch.diag(torch.tensor([5.0, 0.1, 1.0, 2.0], dtype=torch.float64)))
    miner = AttentionThresholdMiner(mode="none", distance=dist)
    a, p, n = miner(emb, labels)
    M = (dist.L @ dist.L.T).detach()
    dm = lambda i, j: float(torch.sqrt((emb[i] - emb[j]) @ M @ (emb[i] - emb[j])))
    naive = _naive_batch_hard(emb, labels, list(range(len(labels))), dm)
    for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist()):
        assert dm(ai, pi) == pytest.approx(naive[ai][0]) and dm(ai, ni) == pytest.approx(naive[ai][1])


def test_miner_degenerate_batches_return_empty():
    emb, _, att = _batch(n=6)
    for labels in (torch.zeros(6, dtype=torch.long), torch.arange(6)):  # a class alone / no positives
        a, p, n = AttentionThresholdMiner(mode="none")(emb, labels, att)
        assert a.numel() == p.numel() == n.numel() == 0
    miner = AttentionThresholdMiner(mode="absolute", threshold=0.99)  # |H| < 3
    a, _, _ = miner(emb, torch.tensor([0, 0, 1, 1, 2, 2]), att.clamp(max=0.5))
    assert a.numel() == 0 and miner.num_high == 0


def _out(emb, att, logits):
    return TANOutput(logits=logits, attention=att, embedding=emb, features=emb)


def test_objective_terms_against_explicit_loops():
    emb, labels, att = _batch(n=32, d=8, k=4, seed=3)
    logits = torch.randn(32, 4, dtype=torch.float64)
    c = preset(
        "tan",
        embedding_dim=8,
        metric="identity",
        triplet_margin=0.3,
        mahalanobis_margin=0.1,
        triplet_mining="batch_hard",
        mahalanobis_mining="batch_hard",
        lambda_triplet=0.7,
        lambda_mahalanobis=1.3,
    )
    obj = TANObjective(c).double().train()
    total, parts = obj(_out(emb, att, logits), labels)
    d = lambda i, j: float(torch.dist(emb[i], emb[j]))
    # L_T: batch-hard over the whole batch
    naive = _naive_batch_hard(emb, labels, range(32), d)
    lt = np.mean([max(0.0, hp - hn + 0.3) for hp, hn in naive.values()])
    # L_M: batch-hard inside H (top 70 % attention), Euclidean here (metric identity)
    tau = np.quantile(att.numpy(), 0.3)
    keep = [i for i in range(32) if att[i] >= tau]
    naive_h = _naive_batch_hard(emb, labels, keep, d)
    lm = np.mean([max(0.0, hp - hn + 0.1) for hp, hn in naive_h.values()])
    ce = float(F.cross_entropy(att[:, None] * logits, labels))
    assert float(parts["triplet"]) == pytest.approx(lt, abs=1e-6)
    assert float(parts["mahalanobis"]) == pytest.approx(lm, abs=1e-6)
    assert float(parts["ce"]) == pytest.approx(ce, abs=1e-6)
    assert float(total) == pytest.approx(ce + 0.7 * lt + 1.3 * lm, abs=1e-6)
    assert parts["n_triplets"] == len(naive) and parts["n_hard_triplets"] == len(naive_h)
    assert parts["n_high"] == len(keep)


def test_mahalanobis_loss_with_covariance_against_loop():
    emb, labels, att = _batch(n=20, d=4, k=3, seed=5)
    c = preset(
        "tan",
        embedding_dim=4,
        lambda_triplet=0.0,
        mahalanobis_margin=0.2,
        mahalanobis_eps=1e-12,
        mahalanobis_mining="batch_hard",
    )
    obj = TANObjective(c).double().train()
    _, parts = obj(_out(emb, att, torch.zeros(20, 3, dtype=torch.float64)), labels)
    M = obj.distance.matrix().detach()
    # the first update sets the covariance to this batch's
    s = torch.cov(emb.T)
    s = s / (torch.trace(s) / 4)
    np.testing.assert_allclose(M.numpy(), torch.linalg.inv(s + 1e-3 * torch.eye(4, dtype=s.dtype)).numpy(), rtol=1e-6)
    dm = lambda i, j: float(torch.sqrt((emb[i] - emb[j]) @ M @ (emb[i] - emb[j])))
    tau = np.quantile(att.numpy(), 0.3)
    keep = [i for i in range(20) if att[i] >= tau]
    naive = _naive_batch_hard(emb, labels, keep, dm)
    want = np.mean([max(0.0, hp - hn + 0.2) for hp, hn in naive.values()])
    assert float(parts["mahalanobis"]) == pytest.approx(want, abs=1e-6)


def test_zero_lambdas_and_unit_attention_equal_plain_ce():
    emb, labels, _ = _batch(n=16, d=8, k=4)
    logits = torch.randn(16, 4, dtype=torch.float64)
    c = preset("tan", embedding_dim=8, lambda_triplet=0.0, lambda_mahalanobis=0.0)
    total, parts = TANObjective(c).double()(_out(emb, torch.ones(16, dtype=torch.float64), logits), labels)
    assert float(total) == pytest.approx(float(F.cross_entropy(logits, labels)), abs=1e-12)


def test_rank_regularization_against_hand_computation():
    att = torch.tensor([0.9, 0.1, 0.8, 0.5, 0.7, 0.2, 0.6, 0.3, 0.4, 0.55])
    ordered = sorted(att.tolist(), reverse=True)
    gap = np.mean(ordered[:7]) - np.mean(ordered[7:])
    assert float(rank_regularization(att, beta=0.7, margin=0.5)) == pytest.approx(max(0, 0.5 - gap), abs=1e-6)
    assert float(rank_regularization(att, beta=0.7, margin=0.01)) == 0.0


def test_explicit_triplet_enumeration_upper_bounds_batch_hard():
    """Sanity of the batch-hard choice: its violation is the max over all valid triplets of an anchor."""
    emb, labels, _ = _batch(n=12, d=4, k=3, seed=9)
    c = preset("triplet", embedding_dim=4, triplet_margin=0.2, triplet_mining="batch_hard")
    _, parts = TANObjective(c).double()(
        _out(emb, torch.ones(12, dtype=torch.float64), torch.zeros(12, 3, dtype=torch.float64)), labels
    )
    per_anchor = {}
    for a, p, n in itertools.permutations(range(12), 3):
        if labels[a] == labels[p] and labels[a] != labels[n]:
            v = max(0.0, float(torch.dist(emb[a], emb[p]) - torch.dist(emb[a], emb[n])) + 0.2)
            per_anchor[a] = max(per_anchor.get(a, 0.0), v)
    assert float(parts["triplet"]) == pytest.approx(np.mean(list(per_anchor.values())), abs=1e-6)


def _valid_triplets(labels, keep):
    return [
        (a, p, n) for a, p, n in itertools.permutations(keep, 3) if labels[a] == labels[p] and labels[a] != labels[n]
    ]


@pytest.mark.parametrize("mode", ["quantile", "none"])
def test_semihard_and_all_miners_inside_h_against_naive_loops(mode):
    from tanlib.losses.miners import build_miner

    emb, labels, att = _batch(n=20, d=6, k=3, seed=4)
    dist = lambda i, j: float(torch.dist(emb[i], emb[j]))  # noqa: E731
    tau = np.quantile(att.numpy(), 0.3) if mode == "quantile" else -1
    keep = [i for i in range(20) if att[i] >= tau]
    valid = _valid_triplets(labels, keep)
    for kind, want in (
        ("all", set(valid)),
        ("semihard", {t for t in valid if dist(t[0], t[1]) < dist(t[0], t[2]) < dist(t[0], t[1]) + 0.2}),
    ):
        miner = AttentionThresholdMiner(mode=mode, threshold=0.3, miner=build_miner(kind, None, 0.2))
        got = set(zip(*(x.tolist() for x in miner(emb, labels, att))))
        assert got == want and (kind == "all" or 0 < len(got) < len(valid))


@pytest.mark.parametrize("mining", ["batch_hard", "semihard", "all"])
def test_triplet_term_of_each_mining_against_naive_loop(mining):
    emb, labels, _ = _batch(n=14, d=4, k=3, seed=2)
    c = preset("triplet", embedding_dim=4, triplet_margin=0.3, triplet_mining=mining)
    out = _out(emb, torch.ones(14, dtype=torch.float64), torch.zeros(14, 3, dtype=torch.float64))
    _, parts = TANObjective(c).double()(out, labels)
    dist = lambda i, j: float(torch.dist(emb[i], emb[j]))  # noqa: E731
    valid = _valid_triplets(labels, list(range(14)))
    hinge = {t: max(0.0, dist(t[0], t[1]) - dist(t[0], t[2]) + 0.3) for t in valid}
    if mining == "all":  # mean over the triplets with a non-zero hinge
        mined = valid
        want = np.mean([v for v in hinge.values() if v > 0])
    elif mining == "semihard":
        mined = [t for t in valid if dist(t[0], t[1]) < dist(t[0], t[2]) < dist(t[0], t[1]) + 0.3]
        want = np.mean([hinge[t] for t in mined])
    else:
        per_anchor = {}
        for t in valid:
            per_anchor[t[0]] = max(per_anchor.get(t[0], 0.0), hinge[t])
        mined, want = list(per_anchor), np.mean(list(per_anchor.values()))
    assert float(parts["triplet"]) == pytest.approx(want, abs=1e-6)
    active = [hinge[t] > 0 for t in mined] if mining != "batch_hard" else [v > 0 for v in per_anchor.values()]
    assert float(parts["active_triplet"]) == pytest.approx(np.mean(active), abs=1e-9)
    assert float(parts["violating_triplet"]) == pytest.approx(np.mean([v > 0 for v in hinge.values()]), abs=1e-9)
    spread = np.mean([dist(i, j) for i, j in itertools.combinations(range(14), 2)])
    assert float(parts["embedding_spread"]) == pytest.approx(spread, abs=1e-6)


def test_metric_warmup_scales_the_metric_terms_only():
    emb, labels, att = _batch(n=16, d=8, k=3, seed=5)
    logits = torch.randn(16, 3, dtype=torch.float64)
    objective = TANObjective(preset("tan", embedding_dim=8, metric="identity", metric_warmup_epochs=3)).double()
    weights = []
    for epoch in (1, 2, 4, 9):
        objective.set_epoch(epoch)
        total, parts = objective(_out(emb, att, logits), labels)
        weights.append(objective.metric_weight)
        want = parts["ce"] + objective.metric_weight * (parts["triplet"] + parts["mahalanobis"])
        assert float(total) == pytest.approx(float(want), abs=1e-12)
    assert weights == [0.25, 0.5, 1.0, 1.0]


def test_violating_hard_counts_all_triplets_inside_h():
    emb, labels, att = _batch(n=18, d=5, k=3, seed=8)
    c = preset("tan", embedding_dim=5, metric="identity", mahalanobis_margin=0.4, threshold=0.5)
    _, parts = TANObjective(c).double()(_out(emb, att, torch.zeros(18, 3, dtype=torch.float64)), labels)
    keep = [i for i in range(18) if att[i] >= np.quantile(att.numpy(), 0.5)]
    dist = lambda i, j: float(torch.dist(emb[i], emb[j]))  # noqa: E731
    hinge = [dist(a, p) - dist(a, n) + 0.4 for a, p, n in _valid_triplets(labels, keep)]
    assert float(parts["violating_hard"]) == pytest.approx(np.mean([h > 0 for h in hinge]), abs=1e-9)
