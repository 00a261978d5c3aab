"""The training loop: one protocol for every method (docs/method.md, docs/training.md).

``train(config, out)`` builds the manifest, decodes the images once, trains the network
with the ``TANObjective`` of the config, and writes a run directory: ``config.json``,
``env.json``, ``manifest.csv``, ``history.csv`` (one row per epoch), ``last.pt`` (every
epoch) and ``best.pt`` (best validation accuracy), then evaluates the test split with
both checkpoints into ``metrics.json``, ``predictions.csv`` and ``embeddings.npz``.

Exact resume: every epoch's shuffling and augmentation draw from generators seeded by
(seed, epoch), and the checkpoint holds model, objective (running covariance),
optimiser, scheduler, the (SCN-relabelled) training labels, the history and the RNG
states, so a run killed at any point and resumed from ``last.pt`` ends with the same
weights and history as one never interrupted (CPU, ``deterministic=true``).

Distributed: under ``torchrun`` each process takes its share of every global batch;
the outputs are gathered with the autograd-aware ``all_gather`` so that the miners, the
covariance and every loss term see the global batch (what PML's distributed wrappers do
for embeddings, extended to attention and logits), and DDP averages the gradients.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..analysis.collapse import COLLAPSE_SPREAD, attention_verdict, collapse_verdict
from ..config import RUNTIME_KEYS, Config, config_differences, parse_set
from ..errors import ConfigError, DataError, RunDirError, TANError
from ..losses import TANObjective
from ..models import TANOutput, build_model
from .checkpoint import atomic_write_json, atomic_write_text, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .rundir import environment, holds_run_locks, prepare_run_dir
from .tensorboard import TensorBoardLog

DATA_SPLIT_SEED = 0  # the validation split and subsets are the same for every run seed


# ---------------------------------------------------------------------- set-up
def resolve_device(config: Config) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={config.device!r} but CUDA is not available; use device=auto or cpu")
    return torch.device(config.device)


def seed_everything(seed: int, deterministic: bool) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=False)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def _subset(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """A seeded, stratified subset of ``n`` rows (every class keeps at least one)."""
    if n <= 0 or n >= len(frame):
        return frame
    rng = np.random.default_rng(seed)
    frac = n / len(frame)
    keep = []
    for _, group in frame.groupby("label", sort=True):
        k = max(1, int(round(len(group) * frac)))
        keep.extend(rng.choice(group.index.to_numpy(), size=min(k, len(group)), replace=False))
    return frame.loc[sorted(keep)]


def prepare_manifest(config: Config, log=print):
    """The run's manifest: read (SynthFER generated on first use), validated, subset."""
    from ..data import build_manifest, generate_synthfer

    root = Path(config.root)
    if config.dataset == "synthfer" and not root.exists():
        log(f"SynthFER not found at {root}; generating the default dataset there (seed 0)")
        generate_synthfer(root, seed=0)
    manifest = build_manifest(config.dataset, root, val_fraction=config.val_fraction, seed=DATA_SPLIT_SEED,
                              protocol=config.protocol, skip_problems=config.skip_bad_data,
                              class_names=config.class_names, cache_dir=config.cache_dir,
                              train_label_file=config.noisy_train_labels)
    if config.max_train_samples:
        frame = manifest.frame
        train = _subset(frame[frame["split"] == "train"], config.max_train_samples, DATA_SPLIT_SEED)
        manifest.frame = pd.concat([train, frame[frame["split"] != "train"]]).reset_index(drop=True)
    return manifest


def epoch_batches(labels: torch.Tensor, config: Config, epoch: int, world: int = 1) -> list[torch.Tensor]:
    """Index batches of one epoch, a pure function of (seed, epoch)."""
    n = len(labels)
    g = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    if config.sampler == "m_per_class":
        from pytorch_metric_learning.utils import common_functions as c_f

        from ..data import m_per_class_sampler

        c_f.NUMPY_RANDOM = np.random.RandomState(config.seed * 100_003 + epoch)
        order = torch.tensor(list(iter(m_per_class_sampler(labels.numpy(), config.m_per_class, config.batch_size))))
    else:
        order = torch.randperm(n, generator=g)
    bs = config.batch_size
    usable = (len(order) // bs) * bs if len(order) >= bs else len(order)  # drop the ragged last batch
    batches = [order[i:i + bs] for i in range(0, usable, bs)]
    if world > 1:
        batches = [b[: (len(b) // world) * world] for b in batches if len(b) >= world]
    return batches


def pil_loader(frame: pd.DataFrame, batches: list[torch.Tensor], config: Config, epoch: int, rank: int = 0,
               world: int = 1):
    """The reference-style input pipeline (``data_pipeline='pil'``, as SCN's script does):
    a DataLoader over ``ManifestDataset`` that decodes every image with PIL and applies the
    per-sample torchvision train transforms, every epoch. It follows ``batches`` (this
    process's share of each), and its random draws are seeded by (seed, epoch, rank):
    through the DataLoader's generator for workers, through the global RNG without."""
    from torch.utils.data import DataLoader

    from ..data import ManifestDataset, train_transforms

    seed = config.seed * 100_003 + epoch + 7 * rank
    transform = train_transforms(config.image_size, erasing_p=config.erasing_p)
    if not config.hflip:
        transform.transforms = [t for t in transform.transforms if type(t).__name__ != "RandomHorizontalFlip"]
    if config.num_workers == 0:
        torch.manual_seed(seed)
    local = [(b[rank::world] if world > 1 else b).tolist() for b in batches]
    return DataLoader(ManifestDataset(frame, transform), batch_sampler=local, num_workers=config.num_workers,
                      generator=torch.Generator().manual_seed(seed), pin_memory=torch.cuda.is_available())


def _gather(out: TANOutput, labels: torch.Tensor) -> tuple[TANOutput, torch.Tensor]:
    """All-gather outputs (with gradients) and labels across processes."""
    import torch.distributed as dist
    from torch.distributed.nn.functional import all_gather

    cat = [torch.cat(all_gather(t.contiguous())) for t in out]
    lab = [torch.empty_like(labels) for _ in range(dist.get_world_size())]
    dist.all_gather(lab, labels)
    return TANOutput(*cat), torch.cat(lab)


# ---------------------------------------------------------------------- training
@holds_run_locks  # the run directory's lock, taken by prepare_run_dir, is released when train returns or raises
def train(config: Config, out: str | Path, resume: bool = False, overwrite: bool = False, log=print) -> Path:
    """Train ``config`` into run directory ``out``; returns its path."""
    from ..data import BatchAugment, load_images
    from .evaluate import evaluate, predict

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() and config.device != "cpu" else "gloo")
    main_proc = rank == 0
    if not main_proc:
        log = lambda *a, **k: None  # noqa: E731

    out = Path(out)
    tb = TensorBoardLog.open(config, out) if main_proc else None  # ConfigError before anything is written
    if main_proc:
        out = prepare_run_dir(out, resume, overwrite)
    if distributed:
        torch.distributed.barrier()
    state = load_checkpoint(out / "last.pt") if resume else None
    if state is not None:
        saved = Config.from_dict(state["config"])
        changed = config_differences(saved.to_dict(), config.to_dict(), RUNTIME_KEYS | {"epochs"})
        if changed:
            detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in sorted(changed.items()))
            raise RunDirError(f"cannot resume {out}: the config differs from the checkpoint's ({detail})")
        config = saved.replace(epochs=config.epochs, progress=config.progress, num_threads=config.num_threads,
                               tensorboard=config.tensorboard)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    seed_everything(config.seed + rank, config.deterministic)
    device = resolve_device(config)
    if distributed and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)

    manifest = prepare_manifest(config, log)
    classes = manifest.classes
    config.check_classes(len(classes), f"{config.dataset} at {config.root}")
    frames = {s: manifest.split(s) for s in ("train", "val", "test")}
    if not len(frames["train"]):
        raise DataError(f"{config.dataset} at {config.root} has no training images")
    if main_proc and state is None:
        config.save(out / "config.json")
        atomic_write_json(out / "env.json", {**environment(), "world_size": world, "device": str(device)})
        manifest.save(out / "manifest.csv")
        if manifest.skipped:
            atomic_write_text(out / "skipped.csv", pd.DataFrame([p.to_dict() for p in manifest.skipped]).to_csv(index=False))
            log(f"skipped {len(manifest.skipped)} problem file(s); listed in {out / 'skipped.csv'}")

    t0 = time.time()
    pil = config.data_pipeline == "pil"  # per-sample PIL decode + transforms every epoch (reference style)
    images = {s: load_images(f, config.image_size, cache_dir=config.cache_dir) for s, f in frames.items()
              if len(f) and not (pil and s == "train")}
    log(f"decoded {sum(len(v) for v in images.values())} images at {config.image_size} px in {time.time() - t0:.1f} s")
    if pil:
        train_images = None
    else:
        train_images = images["train"].to(device) if device.type == "cuda" else images["train"]
    train_labels = torch.tensor(frames["train"]["label"].to_numpy(), dtype=torch.long)

    model = build_model(config, num_classes=len(classes), verbose=main_proc and state is None).to(device)
    if main_proc and state is None and model.load_report is not None:  # which weights, and their provenance
        atomic_write_json(out / "pretrained.json", model.load_report.to_dict())
    objective = TANObjective(config, embedding_dim=model.embedding_dim).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = list(model.parameters()) + list(objective.parameters())
    if config.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.scheduler == "exponential":
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_gamma)
    elif config.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)

    history: list[dict] = []
    start_epoch, best_val = 1, -math.inf
    if state is not None:
        model.load_state_dict(state["model"])
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        train_labels = state["train_labels"].clone()
        history = [dict(row) for row in state["history"]]
        start_epoch, best_val = int(state["epoch"]) + 1, float(state["best_val"])
        set_rng_state(state["rng"])
        log(f"resuming {out} after epoch {state['epoch']}")

    net = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    if config.compile:
        net = torch.compile(net)
    aug = BatchAugment(flip=config.hflip, erasing_p=config.erasing_p)
    gen_device = device if device.type == "cuda" else torch.device("cpu")
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=config.amp == "bf16")
    has_val = "val" in images

    from tqdm.auto import tqdm

    for epoch in range(start_epoch, config.epochs + 1):
        t_epoch = time.time()
        net.train()
        objective.train()
        objective.set_epoch(epoch)
        batches = epoch_batches(train_labels, config, epoch, world)
        aug_gen = torch.Generator(device=gen_device).manual_seed(config.seed * 100_003 + epoch + 7 * rank)
        sums: dict[str, float] = {}
        correct = seen = relabelled = 0
        lr = optimizer.param_groups[0]["lr"]
        loader = pil_loader(frames["train"], batches, config, epoch, rank, world) if pil else None
        bar = tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", disable=not (config.progress and main_proc),
                   leave=False, mininterval=2.0)
        for step, (idx, item) in enumerate(zip(bar, loader if pil else batches)):
            local = idx[rank::world] if distributed else idx
            if pil:
                x = item[0].to(device, non_blocking=True)
            else:
                x = aug(train_images[local.to(train_images.device)].to(device, non_blocking=True), generator=aug_gen)
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = train_labels[local].to(device)
            with torch.autocast(**autocast):
                out_local = net(x)
            out_local = TANOutput(*(t.float() for t in out_local))
            out_all, y_all = _gather(out_local, y) if distributed else (out_local, y)
            total, parts = objective(out_all, y_all, step=f"{step + 1} of epoch {epoch}")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            for k, v in parts.items():  # tensors stay on the device: no host sync per step
                sums[k] = sums.get(k, 0.0) + (v.detach().double() if torch.is_tensor(v) else v)
            with torch.no_grad():
                correct = correct + (out_all.logits.argmax(1) == y_all).sum()
                seen += len(y_all)
                if config.relabel and epoch >= config.relabel_epoch:
                    relabelled += _scn_relabel(config, out_all, y_all, idx, train_labels)
        scheduler.step()
        sums = {k: float(v) for k, v in sums.items()}
        correct = int(correct)
        train_seconds = time.time() - t_epoch

        row = {"epoch": epoch, "lr": lr}
        nb = max(len(batches), 1)
        for k in ("total", "ce", "triplet", "mahalanobis", "rr"):
            row[f"loss_{k}"] = sums.get(k, 0.0) / nb
        row["train_acc"] = correct / max(seen, 1)
        model.eval()
        epoch_attention = {}  # split -> attention weights, for TensorBoard's histograms
        for split in ("val", "test"):
            if split in images:
                p = predict(model, images[split], device=device, channels_last=config.channels_last, amp=config.amp)
                row[f"{split}_acc"] = float((p["pred"] == frames[split]["label"].to_numpy()).mean())
                epoch_attention[split] = p["attention"]
            else:
                row[f"{split}_acc"] = float("nan")
        for k in ("attention_mean", "attention_std", "embedding_spread", "active_triplet", "active_hard",
                  "violating_triplet", "violating_hard",
                  "n_high", "n_triplets", "n_hard_triplets"):
            row[k] = sums.get(k, 0.0) / nb
        row["metric_weight"] = objective.metric_weight
        row["empty_triplet"] = int(sums.get("empty_triplet", 0))
        row["empty_hard"] = int(sums.get("empty_hard", 0))
        row["relabelled"] = relabelled
        row["seconds"] = time.time() - t_epoch
        row["images_per_s"] = seen / max(train_seconds, 1e-9)  # training throughput, evaluation excluded
        history.append(row)
        if tb is not None:
            tb.epoch(row, epoch_attention)

        score = row["val_acc"] if has_val else row["train_acc"]
        improved = score > best_val
        best_val = max(best_val, score)
        if main_proc:
            ckpt = {
                "model": model.state_dict(), "objective": objective.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch, "config": config.to_dict(), "num_classes": len(classes), "classes": list(classes),
                "train_labels": train_labels.clone(), "history": history, "best_val": best_val,
                "rng": rng_state(),
            }
            if improved:  # best.pt is for evaluation: no optimiser state
                save_checkpoint(out / "best.pt", {k: v for k, v in ckpt.items() if k not in ("optimizer", "rng")})
            save_checkpoint(out / "last.pt", ckpt)
            atomic_write_text(out / "history.csv", pd.DataFrame(history).to_csv(index=False))
            log(f"epoch {epoch}/{config.epochs}  loss {row['loss_total']:.4f}  train {row['train_acc']:.3f}  "
                f"val {row['val_acc']:.3f}  |H| {row['n_high']:.1f}  spread {row['embedding_spread']:.3f}  "
                f"{row['seconds']:.1f} s" + ("  *best*" if improved else ""))
            if config.trains_embedding and row["embedding_spread"] < COLLAPSE_SPREAD:
                log(f"warning: the embedding is collapsing: mean pairwise distance in the batch "
                    f"{row['embedding_spread']:.3f} < {COLLAPSE_SPREAD} (see docs/method.md, Collapse)")
        if distributed:
            torch.distributed.barrier()

    if main_proc:
        for which in ("last", "best"):
            evaluate(out, "test", which, device=str(device), images=images)
        metrics = _finish_metrics(out, config, history, has_val)
        if metrics["collapsed"]:
            log(f"warning: collapsed run: {metrics['collapse_reason']}")
        if metrics["attention_state"] in ("saturated", "dead"):
            log(f"warning: {metrics['attention_state']} attention: {metrics['attention_reason']}")
        if tb is not None:
            tb.finish(images.get("test"))
        log(f"run written to {out}")
    if distributed:
        torch.distributed.barrier()
    return out


def _scn_relabel(config: Config, out: TANOutput, y: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor) -> int:
    """SCN relabelling: in the low-attention group, a sample whose top probability beats
    its given label's by more than delta_2 takes the predicted label."""
    prob = torch.softmax(out.attention[:, None] * out.logits, dim=1)
    pmax, pred = prob.max(1)
    pgt = prob.gather(1, y[:, None]).squeeze(1)
    k = int(round(config.rr_beta * len(y)))
    low = torch.zeros_like(y, dtype=torch.bool)
    low[torch.argsort(out.attention, descending=True)[k:]] = True
    change = low & (pmax - pgt > config.relabel_margin)
    if change.any():
        labels[idx[change.cpu()]] = pred[change].cpu()
    return int(change.sum())


def _finish_metrics(out: Path, config: Config, history: list[dict], has_val: bool) -> None:
    from .evaluate import read_metrics

    metrics = read_metrics(out)
    h = pd.DataFrame(history)
    best_row = h.loc[h["val_acc" if has_val else "train_acc"].idxmax()]
    test_row = h.loc[h["test_acc"].idxmax()]
    metrics.update(
        method=config.method, seed=config.seed, dataset=config.dataset, scale=config.scale,
        last_epoch=int(h["epoch"].iloc[-1]), best_epoch=int(best_row["epoch"]),
        selection="best validation accuracy" if has_val else "no validation split: best train accuracy",
        test_selected={"epoch": int(test_row["epoch"]), "accuracy": float(test_row["test_acc"]),
                       "label": "test-selected, for comparison with papers"},
        seconds=float(h["seconds"].sum()),
    )
    metrics.update(zip(("collapsed", "collapse_reason"), collapse_verdict(config, metrics, history)))
    metrics.update(zip(("attention_state", "attention_reason"), attention_verdict(config, history)))
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


# ---------------------------------------------------------------------- python -m
def main(argv: list[str] | None = None) -> int:
    """``python -m tanlib.engine.train --config run.json --out DIR`` (also under torchrun)."""
    parser = argparse.ArgumentParser(prog="python -m tanlib.engine.train")
    parser.add_argument("--config", required=True, help="a config JSON (e.g. a run's config.json)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        config = Config.load(args.config)
        config = config.replace(**parse_set(args.set))
        train(config, args.out, resume=args.resume, overwrite=args.overwrite)
    except TANError as exc:
        print(f"tan: error: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
