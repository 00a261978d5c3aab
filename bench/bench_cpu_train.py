"""Benchmark 8: CPU training throughput of the kit's own epoch, by numeric format and compiler.

What is timed is ``tanlib.engine.train.train_one_epoch`` (batch augmentation, forward,
the method's whole objective with its miners and running covariance, backward, Adam
step, running sums), not a bare model: the quick preset's shapes (64 px, batch 64,
ResNet-18 TAN network) on random uint8 faces, a few batches per timed block. Variants:

* ``fp32`` and ``bf16`` (``amp=bf16``: autocast to bfloat16 on the CPU),
* each with and without ``channels_last``,
* each with and without ``torch.compile`` (``--compile``; inductor compiles once per
  variant before the timed rounds, and the compile time is reported),
* ``bf16+cl+ema``: the same step followed by the update of a moving average of the
  weights (``ema_decay``, ``tanlib.engine.train.build_weight_average``), its cost per step,
* and ``before``: the quick preset's step as it was before issue 27 (float32,
  channels_last, torch's per-tensor Adam, the active-triplet share computed per triplet),
  rebuilt here so that the kit's speed-up is measured in the same run.

Each condition interleaves the variants in one process (A B C ..., then ... C B A), and
reports images/s as median and range over the rounds, and each variant's per-round ratio
to ``before``. Conditions: one
thread alone, two threads alone (``--threads 1,2``), and two processes side by side at
one thread each (``--pair``: what ``tan run`` and sweep shards do on 2 cores), whose
summed images/s is the machine's throughput.

Usage: ``python bench/bench_cpu_train.py [--rounds 5] [--threads 1,2] [--pair] [--compile]
[--method tan] [--batches 3] [--tiny]``
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import interleave, ratios, set_threads, summary, write_result  # noqa: E402

BASELINE = "before"  # the quick preset's step before issue 27: float32, channels_last, per-tensor Adam


def variant_names(compile_too: bool) -> list[str]:
    names = [f"{amp}{'+cl' if cl else ''}" for amp in ("fp32", "bf16") for cl in (False, True)]
    return [BASELINE, *names, "bf16+cl+ema", *([f"{n}+compile" for n in names] if compile_too else [])]


def _active_fraction_per_triplet(distance, emb, idx, margin):
    """The active-triplet share as the kit computed it before issue 27: two distances per
    mined triplet (``before`` only; the kit reads the batch's distance matrix now)."""
    import torch

    a, p, n = idx
    if not a.numel():
        return emb.new_zeros(())
    with torch.no_grad():
        hinge = distance.pairwise_distance(emb[a], emb[p]) - distance.pairwise_distance(emb[a], emb[n]) + margin
    return (hinge > 0).to(emb.dtype).mean()


def epoch_fn(name: str, method: str, batch: int, size: int, batches: int, seed: int = 0):
    """A closure running one kit epoch of ``batches`` batches for variant ``name``, and the
    seconds its first call took (where ``torch.compile`` compiles)."""
    import torch

    import tanlib.losses.objective as objective_module
    from tanlib.config import preset
    from tanlib.data import BatchAugment
    from tanlib.engine.train import (
        SINGLE_PROCESS,
        _build_networks,
        build_optimizer,
        build_weight_average,
        train_one_epoch,
    )

    before = name == BASELINE
    parts = {"fp32", "cl"} if before else set(name.split("+"))
    config = preset(
        method,
        "quick",
        image_size=size,
        batch_size=batch,
        amp="bf16" if "bf16" in parts else "none",
        channels_last="cl" in parts,
        compile="compile" in parts,
        ema_decay=0.998 if "ema" in parts else 0.0,
        progress=False,
        seed=seed,
    )
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    n = batch * batches
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 7, (n,), generator=g)
    device = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        model, objective = _build_networks(config, 7, device, Path(tmp), report=False)
    opt = build_optimizer(config, model, objective)
    if before:  # torch's default Adam on the CPU: the per-tensor loop
        opt = torch.optim.Adam(opt.param_groups[0]["params"], lr=config.lr, weight_decay=config.weight_decay)
    net = torch.compile(model) if config.compile else model
    ema = build_weight_average(config, model)
    aug = BatchAugment(flip=config.hflip, erasing_p=config.erasing_p)
    epoch = [0]

    def run():
        epoch[0] += 1
        kit_active = objective_module.active_fraction
        if before:
            objective_module.active_fraction = _active_fraction_per_triplet
        try:
            _epoch()
        finally:
            objective_module.active_fraction = kit_active

    def _epoch():
        train_one_epoch(
            net,
            objective,
            opt,
            labels.clone(),
            config,
            epoch[0],
            device,
            train_images=images,
            train_frame=None,
            aug=aug,
            ctx=SINGLE_PROCESS,
            after_step=None if ema is None else functools.partial(ema.update_parameters, model),
        )

    t = time.perf_counter()
    run()  # the first epoch: compilation, allocator warm-up
    return run, time.perf_counter() - t


def measure(names, threads, rounds, method, batch, size, batches) -> dict:
    set_threads(threads)
    fns, first = {}, {}
    for name in names:
        fns[name], first[name] = epoch_fn(name, method, batch, size, batches)
    t = interleave(fns, rounds, warmup=1)
    rate = {k: [batch * batches / s for s in v] for k, v in t.items()}
    base = BASELINE if BASELINE in rate else names[0]
    return {
        "threads": threads,
        "images_per_s": {k: summary(v, 1) for k, v in rate.items()},
        f"ratio_to_{base}": {k: summary(ratios(v, rate[base]), 3) for k, v in rate.items()},
        "first_epoch_seconds": {k: round(v, 1) for k, v in first.items()},
        "seconds_raw": t,
    }


def side_by_side(args) -> dict:
    """Two copies of this script at one thread each, started together; their images/s added."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--threads", "1", "--rounds", str(args.rounds), "--method", args.method]
        cmd += ["--batch-size", str(args.batch_size), "--size", str(args.size), "--batches", str(args.batches)]
        cmd += ["--compile"] if args.compile else []
        cmd += ["--variants", args.variants] if args.variants else []
        procs = [subprocess.Popen([*cmd, "--out", f"{tmp}/{i}.json"], stdout=subprocess.DEVNULL) for i in range(2)]
        if any(p.wait() for p in procs):
            raise SystemExit("a side-by-side copy failed")
        res = [json.loads(Path(f"{tmp}/{i}.json").read_text())["results"]["threads1"] for i in range(2)]
    names = list(res[0]["images_per_s"])
    total = {k: round(sum(r["images_per_s"][k]["median"] for r in res), 1) for k in names}
    return {
        "processes": 2,
        "threads_each": 1,
        "images_per_s_total_of_medians": total,
        f"ratio_to_{BASELINE}": {k: round(total[k] / total[BASELINE], 3) for k in names} if BASELINE in total else {},
        "per_process": res,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batches", type=int, default=3, help="batches per timed epoch")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--method", default="tan")
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts, each measured alone")
    ap.add_argument("--pair", action="store_true", help="also two processes side by side at one thread each")
    ap.add_argument("--compile", action="store_true", help="also each variant under torch.compile")
    ap.add_argument("--variants", default="", help="comma list of variants to time (default: all)")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long correctness run (tests)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.tiny:
        args.rounds, args.batches, args.batch_size, args.size, args.threads = 1, 1, 8, 32, "1"
    names = variant_names(args.compile)
    if args.variants:
        unknown = sorted(set(args.variants.split(",")) - set(variant_names(True)))
        if unknown:
            raise SystemExit(f"unknown variant(s) {unknown}; choose from {', '.join(variant_names(True))}")
        names = [n for n in variant_names(True) if n in args.variants.split(",")]
    params = {k: getattr(args, k) for k in ("rounds", "batches", "batch_size", "size", "method", "threads", "pair")}
    params |= {"compile": args.compile, "tiny": args.tiny, "baseline": BASELINE}
    res = {}
    for n in [t for t in str(args.threads).split(",") if t]:
        res[f"threads{n}"] = measure(names, int(n), args.rounds, args.method, args.batch_size, args.size, args.batches)
        print(f"threads{n}", {k: v["median"] for k, v in res[f"threads{n}"]["images_per_s"].items()}, flush=True)
        write_result("cpu_train", {"params": params, "results": res}, args.out)  # each condition as it ends
    if args.pair:
        res["pair"] = side_by_side(args)
        print("pair", res["pair"]["images_per_s_total_of_medians"], flush=True)
        write_result("cpu_train", {"params": params, "results": res}, args.out)
    return res


if __name__ == "__main__":
    main()
