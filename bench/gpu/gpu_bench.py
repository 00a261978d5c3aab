"""Benchmark 5: the GPU fast path against the reference-style loader (RAF-DB-sized data).

Run by ``bench/gpu/run_gpu_bench.sh`` on a machine with torch and torchvision (it carries
pytorch-metric-learning as a wheel). Stages, each timed, within ``--budget-s``:

1. data: a RAF-DB-sized SynthFER (12,271 train / 3,068 test images, 100 px, RAF-DB basic
   layout), generated with every core; decoded once at 224 px by ``load_images``;
2. throughput of the training step (TAN network, ResNet-18, ``tan`` objective, Adam),
   images/s, variants interleaved over ``--rounds`` rounds:
   ``reference`` (the engine's ``data_pipeline='pil'`` loader: per-sample PIL decode and
   torchvision transforms in DataLoader workers, float32), ``kit`` (decoded uint8 images
   resident on the GPU, ``BatchAugment`` on whole batches there, float32), ``fast`` (kit +
   bf16 autocast + channels_last) and ``fast_compile`` (fast + ``torch.compile``);
3. parity: the engine's ``train()`` for ``--parity-epochs`` epochs with the default
   options and with the fast ones (amp=bf16, channels_last); test accuracies and the
   engine's own images/s per epoch.

Goal: >= 8,000 training images/s on an H200 (the 70-epoch paper protocol in under two
minutes) with the same accuracy as the default path on the short run. ``--cpu --tiny``
runs every stage at toy size on CPU (tests).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from bench.common import interleave, machine, summary  # noqa: E402

GOAL_IMAGES_PER_S = 8000.0
PARITY_TOLERANCE = 0.03  # absolute test accuracy


def log(msg: str) -> None:
    print(f"[gpu-bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_data(workdir: Path, n_train: int, n_test: int, workers: int) -> tuple[Path, float]:
    from tanlib.data import generate_synthfer

    t = time.perf_counter()
    root = generate_synthfer(
        workdir / "synthfer", n_train=n_train, n_test=n_test, size=100, seed=0, workers=workers, overwrite=True
    )
    return root, time.perf_counter() - t


def throughput(root: Path, device: torch.device, args, cache_dir: Path) -> dict:
    """Images/s of the training step under each input path and option set."""
    from tanlib.config import preset
    from tanlib.data import BatchAugment, build_manifest, load_images
    from tanlib.engine.train import epoch_batches, pil_loader
    from tanlib.losses import TANObjective
    from tanlib.models import build_model

    manifest = build_manifest("synthfer", root, val_fraction=0.1, seed=0)
    frame = manifest.split("train")
    t = time.perf_counter()
    images_cpu = load_images(frame, args.size, cache_dir=cache_dir, workers=args.workers)
    decode_s = time.perf_counter() - t
    labels_cpu = torch.tensor(frame["label"].to_numpy(), dtype=torch.long)
    images = images_cpu.to(device)
    labels = labels_cpu.to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    out: dict = {"decode_seconds": round(decode_s, 2), "train_images": len(frame), "variants": {}}

    for bs in args.batch_sizes:
        config = preset(
            "tan", "paper", image_size=args.size, batch_size=bs, root=str(root), num_workers=args.loader_workers
        )
        torch.manual_seed(0)

        def build(channels_last=False, compile_=False):
            model = build_model(config, num_classes=len(manifest.classes), verbose=False).to(device).train()
            objective = TANObjective(config, embedding_dim=model.embedding_dim).to(device).train()
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            opt = torch.optim.Adam(list(model.parameters()) + list(objective.parameters()), lr=1e-3, weight_decay=1e-4)
            net = torch.compile(model) if compile_ else model
            return net, objective, opt

        def stepper(net, objective, opt, stream, amp: bool, channels_last: bool):
            ac = dict(device_type=device.type, dtype=torch.bfloat16, enabled=amp)

            def run():
                for _ in range(args.steps):
                    x, y = next(stream)
                    if channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    with torch.autocast(**ac):
                        o = net(x)
                    o = type(o)(*(v.float() for v in o))
                    total, _ = objective(o, y)
                    opt.zero_grad(set_to_none=True)
                    total.backward()
                    opt.step()

            return run

        aug = BatchAugment(flip=True, erasing_p=config.erasing_p)

        def kit_stream():
            epoch = 0
            while True:
                epoch += 1
                gen = torch.Generator(device=device).manual_seed(epoch)
                for idx in epoch_batches(labels_cpu, config, epoch):
                    idx = idx.to(device, non_blocking=True)
                    yield aug(images[idx], generator=gen), labels[idx]

        def ref_stream():
            epoch = 0
            while True:
                epoch += 1
                batches = epoch_batches(labels_cpu, config, epoch)
                for idx, (x, _, _) in zip(batches, pil_loader(frame, batches, config, epoch)):
                    yield x.to(device, non_blocking=True), labels_cpu[idx].to(device, non_blocking=True)

        variants = {}
        specs = [("kit", False, False, False), ("fast", True, True, False)]
        if bs == args.batch_sizes[0]:
            specs.insert(0, ("reference", False, False, False))
        if args.compile:
            specs.append(("fast_compile", True, True, True))
        for name, amp, cl, comp in specs:
            try:
                net, obj, opt = build(cl, comp)
                stream = ref_stream() if name == "reference" else kit_stream()
                fn = stepper(net, obj, opt, stream, amp, cl)
                t = time.perf_counter()
                for _ in range(args.warmup):  # compile, cudnn autotune, worker start-up
                    fn()
                if sync:
                    sync()
                variants[name] = fn
                out.setdefault("warmup_seconds", {})[f"{name}@{bs}"] = round(time.perf_counter() - t, 2)
            except Exception as exc:  # a failing optional variant (compile) is recorded, not fatal
                out.setdefault("errors", {})[f"{name}@{bs}"] = f"{type(exc).__name__}: {exc}"
                log(f"{name}@{bs} failed: {exc}")
                traceback.print_exc()
        times = interleave(variants, args.rounds, warmup=0, sync=sync)
        n = args.steps * bs
        for name, ts in times.items():
            rates = [n / s for s in ts]
            out["variants"][f"{name}@{bs}"] = {"batch_size": bs, "images_per_s": summary(rates, 1)}
            log(
                f"{name:>13} batch {bs:>4}: {summary(rates)['median']:9.1f} images/s "
                f"(min {min(rates):.1f}, max {max(rates):.1f})"
            )
        if "reference" in times:
            for name in times:
                if name != "reference":
                    r = [a / b for a, b in zip(times["reference"], times[name])]
                    out["variants"][f"{name}@{bs}"]["speedup_over_reference"] = summary(r, 2)
        del variants, times
        if device.type == "cuda":
            torch.cuda.empty_cache()
    best = max((v["images_per_s"]["median"], k) for k, v in out["variants"].items()) if out["variants"] else (0, None)
    out["best"] = {"variant": best[1], "images_per_s": best[0]}
    return out


def parity(root: Path, device: torch.device, args, workdir: Path, cache_dir: Path) -> dict:
    """Short engine runs: default options vs the fast ones, same seed."""
    from tanlib.config import preset
    from tanlib.engine.train import train

    res = {}
    for name, opts in (("default", {}), ("fast", {"amp": "bf16", "channels_last": True})):
        config = preset(
            "tan",
            "paper",
            image_size=args.size,
            epochs=args.parity_epochs,
            root=str(root),
            device=device.type,
            progress=False,
            cache_dir=str(cache_dir),
            batch_size=args.batch_sizes[0],
            **opts,
        )
        t = time.perf_counter()
        run_dir = train(config, workdir / f"parity-{name}", overwrite=True, log=lambda *a, **k: None)
        seconds = time.perf_counter() - t
        metrics = json.loads((run_dir / "metrics.json").read_text())
        import pandas as pd

        hist = pd.read_csv(run_dir / "history.csv")
        res[name] = {
            "options": opts,
            "seconds": round(seconds, 1),
            "test_accuracy_last": metrics.get("results", {}).get("last", {}).get("accuracy"),
            "test_accuracy_best_val": metrics.get("results", {}).get("best_val", {}).get("accuracy"),
            "test_acc_per_epoch": [round(v, 4) for v in hist["test_acc"]],
            "engine_images_per_s_per_epoch": [round(v, 1) for v in hist["images_per_s"]],
        }
        log(
            f"parity {name}: test acc per epoch {res[name]['test_acc_per_epoch']}, "
            f"engine images/s {res[name]['engine_images_per_s_per_epoch']}, {seconds:.1f} s"
        )
    a = res["default"]["test_acc_per_epoch"][-1]
    b = res["fast"]["test_acc_per_epoch"][-1]
    res["abs_difference_last_epoch"] = round(abs(a - b), 4)
    res["tolerance"] = PARITY_TOLERANCE
    res["same_accuracy"] = abs(a - b) <= PARITY_TOLERANCE
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="run on CPU (slow; use with --tiny)")
    ap.add_argument("--tiny", action="store_true", help="toy sizes: every stage in seconds (tests)")
    ap.add_argument("--n-train", type=int, default=12271)
    ap.add_argument("--n-test", type=int, default=3068)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=30, help="training steps per timed block")
    ap.add_argument("--warmup", type=int, default=1, help="untimed blocks before timing each variant")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--parity-epochs", type=int, default=3, help="0 skips the parity runs")
    ap.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes/threads for generation, decoding"
    )
    ap.add_argument(
        "--loader-workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="DataLoader workers of the reference loader",
    )
    ap.add_argument("--budget-s", type=float, default=270.0, help="skip later stages past this many seconds")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "gpu_bench.json"))
    args = ap.parse_args(argv)
    if args.tiny:
        args.n_train, args.n_test, args.size, args.batch_sizes = 120, 40, 32, [16]
        args.steps, args.rounds, args.loader_workers = 1, 1, 0
        args.parity_epochs = min(args.parity_epochs, 1)
        args.compile = False if args.cpu else args.compile
    start = time.perf_counter()
    if args.cpu:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        print("no CUDA device; rerun with --cpu (and --tiny) to exercise the script on CPU", file=sys.stderr)
        return 2
    result: dict = {
        "benchmark": "gpu_fast_path",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
        "device": str(device),
        "params": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "goal_images_per_s": GOAL_IMAGES_PER_S,
        "stages": {},
    }

    def save():
        result["total_seconds"] = round(time.perf_counter() - start, 1)
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        cache = work / "cache"
        root, gen_s = make_data(work, args.n_train, args.n_test, args.workers)
        result["stages"]["generate_seconds"] = round(gen_s, 1)
        log(f"SynthFER {args.n_train}+{args.n_test} generated in {gen_s:.1f} s")
        save()
        result["throughput"] = throughput(root, device, args, cache)
        result["stages"]["throughput_done_at"] = round(time.perf_counter() - start, 1)
        best = result["throughput"]["best"]["images_per_s"]
        result["met_throughput"] = bool(best >= GOAL_IMAGES_PER_S)
        save()
        if args.parity_epochs <= 0:
            result["parity"] = {"skipped": "--parity-epochs 0"}
        elif time.perf_counter() - start < args.budget_s:
            try:
                result["parity"] = parity(root, device, args, work, cache)
            except Exception as exc:
                result["parity"] = {"error": f"{type(exc).__name__}: {exc}"}
                traceback.print_exc()
        else:
            result["parity"] = {"skipped": f"over the {args.budget_s} s budget"}
        result["stages"]["parity_done_at"] = round(time.perf_counter() - start, 1)
    save()
    log(
        f"best {best:.1f} images/s ({result['throughput']['best']['variant']}); goal {GOAL_IMAGES_PER_S:.0f}; "
        f"parity {result['parity'].get('same_accuracy')}; total {result['total_seconds']} s; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
