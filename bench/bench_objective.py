"""Benchmark 1: the cost of the TAN objective over plain cross-entropy.

One training step (forward, loss, backward, Adam step) of the same TAN network (ResNet-18,
attention, 128-d embedding) at 64 px on CPU, with the ``tan`` objective (weighted CE +
batch-hard triplet loss + attention-threshold miner + Mahalanobis loss with the running
covariance) against plain ``F.cross_entropy`` on the logits. Variants are interleaved
in one process; the figure is the per-round time ratio tan / ce. Goal: at most 5 %
slower. Also times the objective alone (forward + backward of the loss on fixed network
outputs) to show where the overhead is.

Usage: ``python bench/bench_objective.py [--batch-sizes 64 256] [--rounds 7] [--threads 1] [--tiny]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.common import interleave, ratios, set_threads, summary, write_result  # noqa: E402
from tanlib.config import preset  # noqa: E402
from tanlib.losses import TANObjective  # noqa: E402
from tanlib.models import TANOutput, build_model  # noqa: E402

GOAL = 1.05


def run(batch_sizes=(64, 256), rounds=7, size=64, backbone="resnet18", steps=1, seed=0) -> dict:
    torch.manual_seed(seed)
    config = preset("tan", "quick", image_size=size, backbone=backbone)
    model = build_model(config, num_classes=7, verbose=False).train()
    objective = TANObjective(config, embedding_dim=model.embedding_dim).train()
    opt = torch.optim.Adam(list(model.parameters()) + list(objective.parameters()), lr=1e-4)
    results = {}
    for bs in batch_sizes:
        g = torch.Generator().manual_seed(seed + bs)
        x = torch.randn(bs, 3, size, size, generator=g)
        y = torch.randint(0, 7, (bs,), generator=g)

        def step_tan():
            for _ in range(steps):
                total, _ = objective(model(x), y)
                opt.zero_grad(set_to_none=True)
                total.backward()
                opt.step()

        def step_ce():
            for _ in range(steps):
                loss = F.cross_entropy(model(x).logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        with torch.no_grad():
            fixed = model(x)
        fixed = TANOutput(*(t.detach() for t in fixed))

        def loss_tan():
            out = TANOutput(*(t.clone().requires_grad_() for t in fixed))
            objective(out, y)[0].backward()

        def loss_ce():
            out = fixed.logits.clone().requires_grad_()
            F.cross_entropy(out, y).backward()

        t = interleave({"tan": step_tan, "ce": step_ce, "loss_tan": loss_tan, "loss_ce": loss_ce}, rounds)
        r = ratios(t["tan"], t["ce"])
        # the two steps differ only in the loss: its extra forward + backward over CE's,
        # timed on fixed network outputs, relative to the CE step of the same round
        extra = [a - b for a, b in zip(t["loss_tan"], t["loss_ce"])]
        decomposed = [1 + e / c for e, c in zip(extra, t["ce"])]
        results[str(bs)] = {
            "batch_size": bs,
            "step_seconds": {k: summary(t[k]) for k in ("tan", "ce")},
            "seconds_raw": {k: [round(x, 4) for x in v] for k, v in t.items()},
            "ratio_tan_over_ce": summary(r),
            "ratio_of_fastest_steps": round(min(t["tan"]) / min(t["ce"]), 4),
            "objective_extra_seconds": summary(extra),
            "ratio_decomposed": summary(decomposed),
            "goal_ratio_at_most": GOAL,
            "met": summary(decomposed)["median"] <= GOAL and summary(r)["median"] <= GOAL,
        }
        print(
            f"batch {bs}: tan/ce = {summary(r)['median']:.3f} (min {min(r):.3f}, max {max(r):.3f}), "
            f"fastest steps {results[str(bs)]['ratio_of_fastest_steps']:.3f}; objective alone adds "
            f"{summary(extra)['median'] * 1e3:.1f} ms per step = {summary(decomposed)['median']:.4f}x the CE step"
        )
    # the covariance inverse root is computed once per update, not per distance call
    return {
        "results": results,
        "inverse_computations": objective.distance.inverse_computations,
        "covariance_updates": int(objective.distance.num_updates),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=1, help="training steps per timed block")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: fair under contention)")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long correctness run (tests)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    if args.tiny:
        args.batch_sizes, args.rounds, args.size = [16], 2, 32
    res = run(args.batch_sizes, args.rounds, args.size, args.backbone, args.steps)
    params = {
        "batch_sizes": args.batch_sizes,
        "rounds": args.rounds,
        "steps_per_block": args.steps,
        "image_size": args.size,
        "backbone": args.backbone,
        "threads": args.threads,
        "tiny": args.tiny,
    }
    write_result("objective_overhead", {"params": params, **res}, args.out)
    return res


if __name__ == "__main__":
    main()
