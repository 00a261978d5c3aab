"""Benchmark 6: channels_last against contiguous (NCHW) for one CPU training step.

The ``quick`` preset turns ``channels_last`` on. This measures why: the same training step
(TAN network, ResNet-18, cross-entropy on the logits, Adam; batch 64 at 64 px by default)
with the model and the batch in the default contiguous layout and in channels_last,
interleaved in one process, at 1 thread (two runs sharing 2 cores, as ``tan run`` and
``tan sweep`` shards do) and at 2 threads (one run alone). The figure is the per-round
ratio of images/s, channels_last over contiguous.

Usage: ``python bench/bench_memory_format.py [--rounds 7] [--threads 1,2] [--size 64]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import interleave, ratios, set_threads, summary, write_result  # noqa: E402


def step_fn(channels_last: bool, batch: int, size: int, steps: int, backbone: str):
    import torch
    import torch.nn.functional as F

    from tanlib.models.tan_net import TANNet

    torch.manual_seed(0)
    model = TANNet(7, backbone=backbone)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 7, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def run():
        for _ in range(steps):
            loss = F.cross_entropy(model(x).logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def measure(threads: int, rounds: int, batch: int, size: int, steps: int, backbone: str) -> dict:
    set_threads(threads)
    t = interleave(
        {
            "contiguous": step_fn(False, batch, size, steps, backbone),
            "channels_last": step_fn(True, batch, size, steps, backbone),
        },
        rounds,
    )
    rate = {k: [batch * steps / s for s in v] for k, v in t.items()}
    return {
        "images_per_s": {k: summary(v, 1) for k, v in rate.items()},
        "channels_last_over_contiguous": summary(ratios(rate["channels_last"], rate["contiguous"])),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=2, help="training steps per timed block")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts, each measured in turn")
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long correctness run (tests)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.tiny:
        args.rounds, args.steps, args.batch_size, args.size, args.threads = 1, 1, 4, 32, "1"
    res = {
        f"threads{n}": measure(int(n), args.rounds, args.batch_size, args.size, args.steps, args.backbone)
        for n in str(args.threads).split(",")
    }
    for k, r in res.items():
        ips = r["images_per_s"]
        print(
            f"{k}: contiguous {ips['contiguous']['median']} img/s, channels_last {ips['channels_last']['median']} "
            f"img/s, ratio {r['channels_last_over_contiguous']['median']}"
        )
    params = {k: getattr(args, k) for k in ("rounds", "steps", "batch_size", "size", "threads", "backbone", "tiny")}
    write_result("memory_format", {"params": params, **res}, args.out)
    return res


if __name__ == "__main__":
    main()
