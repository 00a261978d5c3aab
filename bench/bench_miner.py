"""Benchmark 2: attention-threshold miner + Mahalanobis loss, vectorised vs a naive loop.

The vectorised path is the kit's own: ``AttentionThresholdMiner`` (batch-hard inside the
high-attention set H, on PML's ``BatchHardMiner``) with the ``MahalanobisDistance``
(running covariance, metric="covariance") and PML's ``TripletMarginLoss``. The naive
path is the tests' reference (tests/losses/test_miner_and_losses.py): for every anchor in
H, a Python loop over the explicit (anchor, positive) and (anchor, negative) pairs of H,
each distance ``sqrt((u - v)^T M (u - v) + eps)`` computed on its own, the hardest
positive and negative kept, the hinge averaged. Both must give the same loss and the
same triplet distances (asserted). At batch 1024 the naive loop runs on a sample of
anchors and its time is extrapolated linearly in the number of anchors (each anchor
costs the same |H| pair evaluations), which the JSON records.

Memory: the vectorised path's allocations are recorded with the torch profiler
(``profile_memory``); the peak of the running allocation total over its events and the
sum of all allocations (an upper bound on the peak) are reported per batch size with
their growth exponent: ~2 means O(N^2), O(N^3) would show as ~3.

Usage: ``python bench/bench_miner.py [--batch-sizes 64 256 1024] [--rounds 5] [--naive-anchors 64]``
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's start/stop chatter

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.common import set_threads, summary, write_result  # noqa: E402
from tanlib.config import preset  # noqa: E402
from tanlib.losses import TANObjective  # noqa: E402

GOAL_SPEEDUP_256 = 50.0


def make_batch(n: int, d: int = 128, k: int = 7, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    emb = F.normalize(torch.randn(n, d, generator=g) + 0.5 * torch.randn(k, d, generator=g)[torch.arange(n) % k], dim=1)
    labels = torch.arange(n) % k
    att = torch.rand(n, generator=g)
    return emb, labels, att


def build(d: int = 128, seed: int = 0):
    """The kit's objective pieces with a covariance fitted on a few batches."""
    config = preset("tan", "quick", embedding_dim=d, triplet_mining="batch_hard", mahalanobis_mining="batch_hard")
    obj = TANObjective(config, embedding_dim=d).train()
    for s in range(3):
        obj.distance.update(make_batch(256, d, seed=100 + s)[0])
    return obj, config


def vectorised(obj, emb, labels, att):
    idx = obj.hard_miner(emb, labels, att)
    loss = obj.mahalanobis_loss(emb, labels, idx) if idx[0].numel() else emb.sum() * 0
    return loss, idx


def naive(emb, labels, att, M, eps, margin, threshold, anchors=None):
    """The tests' reference: explicit loops over pairs, one distance at a time."""
    tau = float(np.quantile(att.numpy(), threshold))
    keep = [i for i in range(len(labels)) if att[i] >= tau]
    lab = labels.tolist()
    dist = lambda i, j: float(torch.sqrt((emb[i] - emb[j]) @ M @ (emb[i] - emb[j]) + eps))  # noqa: E731
    out = {}
    for i in keep if anchors is None else [a for a in keep if a in set(anchors)]:
        pos = [j for j in keep if j != i and lab[j] == lab[i]]
        neg = [j for j in keep if lab[j] != lab[i]]
        if pos and neg:
            out[i] = (max(dist(i, j) for j in pos), min(dist(i, j) for j in neg))
    loss = float(np.mean([max(0.0, hp - hn + margin) for hp, hn in out.values()])) if out else 0.0
    return loss, out, keep


def check_same(obj, config, emb, labels, att, loss_vec, idx, naive_out, naive_loss, full: bool) -> dict:
    """The vectorised triplets reach the naive hardest distances; the losses agree."""
    a, p, n = (t.tolist() for t in idx)
    dm = obj.distance
    d_ap = dm.pairwise_distance(emb[a], emb[p]).tolist()
    d_an = dm.pairwise_distance(emb[a], emb[n]).tolist()
    worst = 0.0
    for ai, x, z in zip(a, d_ap, d_an):
        if ai in naive_out:
            hp, hn = naive_out[ai]
            worst = max(worst, abs(x - hp), abs(z - hn))
    if full:
        assert sorted(a) == sorted(naive_out), "the vectorised miner and the naive loop chose different anchors"
        assert abs(float(loss_vec) - naive_loss) < 1e-4, (float(loss_vec), naive_loss)
    assert worst < 1e-4, f"triplet distances differ by {worst}"
    return {
        "max_abs_distance_difference": worst,
        "loss_vectorised": float(loss_vec),
        "loss_naive": naive_loss,
        "loss_compared": full,
    }


def memory_profile(obj, emb, labels, att) -> dict:
    """Allocations of one vectorised call, from the torch profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        vectorised(obj, emb, labels, att)
    # every event's *self* allocation (allocations minus frees inside it, and the raw
    # [memory] alloc/free records outside ops), in time order: the running sum is the
    # live allocation total, its maximum the peak
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start)
    running = peak = total = 0
    for e in events:
        running += e.self_cpu_memory_usage
        peak = max(peak, running)
        total += max(e.self_cpu_memory_usage, 0)
    return {"peak_bytes": int(peak), "total_allocated_bytes": int(total)}


def run(batch_sizes=(64, 256, 1024), rounds=5, naive_anchors=64, sample_above=512, d=128) -> dict:
    obj, config = build(d)
    M = obj.distance.matrix().detach()
    eps, margin, thr = config.mahalanobis_eps, config.mahalanobis_margin, config.threshold
    out = {}
    for n in batch_sizes:
        emb, labels, att = make_batch(n, d, seed=n)
        vectorised(obj, emb, labels, att)  # warm-up
        vec_times, naive_times = [], []
        sampled = n > sample_above
        anchors = None
        if sampled:
            g = torch.Generator().manual_seed(n)
            anchors = torch.randperm(n, generator=g)[:naive_anchors].tolist()
        check = None
        for r in range(rounds):  # interleaved: vectorised, naive, vectorised, ...
            t = time.perf_counter()
            loss_vec, idx = vectorised(obj, emb, labels, att)
            vec_times.append(time.perf_counter() - t)
            if r < (1 if sampled else rounds):
                t = time.perf_counter()
                naive_loss, naive_out, keep = naive(emb, labels, att, M, eps, margin, thr, anchors)
                elapsed = time.perf_counter() - t
                if sampled:  # every anchor of H costs the same 2 |H| distances
                    n_sampled = sum(1 for a in anchors if a in set(keep))
                    elapsed *= len(keep) / max(n_sampled, 1)
                naive_times.append(elapsed)
                if check is None:
                    check = check_same(
                        obj, config, emb, labels, att, loss_vec, idx, naive_out, naive_loss, full=not sampled
                    )
        mem = memory_profile(obj, emb, labels, att)
        speedups = [nv / vec_times[0 if sampled else i] for i, nv in enumerate(naive_times)]
        if sampled:
            speedups = [naive_times[0] / v for v in vec_times]
        out[str(n)] = {
            "batch_size": n,
            "high_set": int(obj.hard_miner.num_high),
            "vectorised_seconds": summary(vec_times, 6),
            "naive_seconds": summary(naive_times, 6),
            "naive_extrapolated_from_anchors": naive_anchors if sampled else None,
            "speedup": summary(speedups, 1),
            "check": check,
            "memory": mem,
        }
        print(
            f"batch {n}: vectorised {summary(vec_times)['median'] * 1e3:.2f} ms, naive "
            f"{summary(naive_times)['median']:.3f} s{' (extrapolated)' if sampled else ''}, "
            f"speedup {summary(speedups)['median']:.0f}x, peak {mem['peak_bytes'] / 2**20:.2f} MiB"
        )
    sizes = [int(k) for k in out]
    if len(sizes) >= 2:
        lo, hi = str(min(sizes)), str(max(sizes))
        f = math.log(int(hi) / int(lo))
        for key in ("peak_bytes", "total_allocated_bytes"):
            a, b = out[lo]["memory"][key], out[hi]["memory"][key]
            out.setdefault("memory_growth_exponent", {})[key] = round(math.log(b / a) / f, 2) if a and b else None
    res = {"results": out}
    if "256" in out:
        res["goal_speedup_at_256"] = GOAL_SPEEDUP_256
        res["met"] = out["256"]["speedup"]["median"] >= GOAL_SPEEDUP_256
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--naive-anchors", type=int, default=64, help="anchors the naive loop runs on above --sample-above")
    ap.add_argument("--sample-above", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tiny", action="store_true", help="a seconds-long correctness run (tests)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    if args.tiny:
        args.batch_sizes, args.rounds, args.naive_anchors, args.sample_above = [32, 96], 2, 16, 64
    res = run(args.batch_sizes, args.rounds, args.naive_anchors, args.sample_above)
    params = {
        k: getattr(args, k) for k in ("batch_sizes", "rounds", "naive_anchors", "sample_above", "threads", "tiny")
    }
    write_result("miner_mahalanobis", {"params": params, **res}, args.out)
    return res


if __name__ == "__main__":
    main()
