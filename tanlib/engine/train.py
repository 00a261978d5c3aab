"""The training loop: one protocol for every method (docs/method.md, docs/training.md).

``train(config, out)`` builds the manifest, decodes the images once, trains the network
with the ``TANObjective`` of the config, and writes a run directory: ``config.json``,
``env.json``, ``manifest.csv``, ``history.csv`` (one row per epoch), ``last.pt`` (every
epoch) and ``best.pt`` (best validation accuracy), then evaluates the test split with
both checkpoints into ``metrics.json``, ``predictions.csv`` and ``embeddings.npz``.

This module owns the training protocol, in the shape of torchvision's
references/classification: ``train`` orchestrates the run; ``train_one_epoch`` runs one
epoch's batches (forward, objective, backward, optimiser step, running sums) and returns
its ``EpochStats``; ``build_optimizer`` and ``build_scheduler`` make the optimiser and the
learning-rate schedule; the end of a run evaluates the test split and completes
``metrics.json``. Around it: ``engine/inputs.py`` (manifest, decoding, batch order),
``engine/runstate.py`` (history row, checkpoint dict, resume), ``engine/distributed.py``
(``torchrun``), ``engine/evaluate.py``, and the command line ``tan train`` (``engine/cli.py``).

Exact resume: every epoch's shuffling and augmentation draw from generators seeded by
(seed, epoch), and the checkpoint holds model, objective (running covariance),
optimiser, scheduler, the (SCN-relabelled) training labels, the history and the RNG
states, so a run killed at any point and resumed from ``last.pt`` ends with the same
weights and history as one never interrupted (CPU, ``deterministic=true``).

Distributed: under ``torchrun`` each process takes its share of every global batch;
the outputs are gathered with gradients so that the miners, the covariance and every
loss term see the global batch, and DDP averages the gradients.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..analysis.collapse import attention_verdict, collapse_verdict
from ..atomicio import atomic_write_json, atomic_write_text
from ..config import Config
from ..errors import ConfigError
from ..losses import TANObjective
from ..models import TANOutput, build_model
from . import distributed
from .checkpoint import load_checkpoint
from .distributed import DistContext
from .inputs import decode_images, epoch_batches, pil_loader, prepare_manifest, split_frames
from .precision import resolve_amp
from .rundir import environment, holds_run_locks, prepare_run_dir
from .runstate import checkpoint_dict, history_row, log_epoch, restore, resumed_config, save_epoch
from .tensorboard import TensorBoardLog

# ``on_step(epoch, step, out, labels)``: see ``train``
StepHook = Callable[[int, int, TANOutput, torch.Tensor], TANOutput | None]

SINGLE_PROCESS = DistContext()  # rank 0 of 1: training without torchrun


# ---------------------------------------------------------------------- set-up
def resolve_device(config: Config) -> torch.device:
    """The config's device (``auto``: CUDA when available), refusing CUDA where there is none."""
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={config.device!r} but CUDA is not available; use device=auto or cpu")
    return torch.device(config.device)


def restores_torch_threads(fn):
    """Decorator: ``fn`` may set torch's thread count (``config.num_threads``) for its run;
    the process's count is restored when it returns or raises, so a notebook or test that
    trains once does not keep that many threads for everything after."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        threads = torch.get_num_threads()
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapper


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, numpy and torch; ``deterministic``: deterministic kernels only."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=False)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def _write_run_files(out: Path, config: Config, manifest, world: int, device: torch.device, log) -> None:
    """A new run's config.json, env.json, manifest and skipped.csv."""
    config.save(out / "config.json")
    env = {**environment(), "world_size": world, "device": str(device), "amp": resolve_amp(config.amp, device)}
    atomic_write_json(out / "env.json", env)
    manifest.save(out / "manifest.csv")
    if manifest.skipped:
        atomic_write_text(
            out / "skipped.csv", pd.DataFrame([p.to_dict() for p in manifest.skipped]).to_csv(index=False)
        )
        log(f"skipped {len(manifest.skipped)} problem file(s); listed in {out / 'skipped.csv'}")


# ---------------------------------------------------------------------- model and optimisation
def _build_networks(
    config: Config, num_classes: int, device: torch.device, out: Path, report: bool
) -> tuple[torch.nn.Module, TANObjective]:
    """The model and the objective on ``device``; ``report``: print and write the pretrained-weights report."""
    model = build_model(config, num_classes=num_classes, verbose=report).to(device)
    if report and model.load_report is not None:  # which weights, and their provenance
        atomic_write_json(out / "pretrained.json", model.load_report.to_dict())
    objective = TANObjective(config, embedding_dim=model.embedding_dim).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, objective


def build_optimizer(config: Config, model: torch.nn.Module, objective: TANObjective) -> torch.optim.Optimizer:
    """Adam or SGD over the model's and the objective's parameters (a learned metric trains too).
    Adam is torch's fused implementation (one kernel over all parameters, CPU and CUDA): on
    the CPU the default per-tensor loop took about 7 % of a ResNet-18 training step and the
    fused one a tenth of that (bench/bench_cpu_train.py, docs/benchmarks.md section 8)."""
    params = list(model.parameters()) + list(objective.parameters())
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def build_scheduler(config: Config, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-epoch learning-rate schedule: exponential, cosine over ``epochs``, or constant."""
    if config.scheduler == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_gamma)
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)


def build_weight_average(config: Config, model: torch.nn.Module) -> torch.optim.swa_utils.AveragedModel | None:
    """The exponential moving average of ``model``'s weights and BatchNorm statistics
    (torch's ``AveragedModel``, ``use_buffers=True``), or ``None`` when ``ema_decay`` is 0.
    Updated after every optimiser step, it is what each epoch evaluates and what the
    checkpoints hold: a run's number does not depend on where the last steps happened to
    leave the weights (Polyak and Juditsky 1992; Izmailov et al., "Averaging Weights Leads
    to Wider Optima and Better Generalization", UAI 2018). The training itself is unchanged."""
    if not config.ema_decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)


# ---------------------------------------------------------------------- one epoch
@dataclass
class EpochStats:
    """One epoch's training statistics: the learning rate it ran at, the sums of the
    objective's parts over its batches, correct/seen predictions on the augmented batches,
    SCN's relabelled count, the number of batches and the seconds spent training."""

    lr: float
    sums: dict[str, float]
    correct: int
    seen: int
    relabelled: int
    batches: int
    seconds: float


def train_one_epoch(
    net: torch.nn.Module,
    objective: TANObjective,
    optimizer: torch.optim.Optimizer,
    train_labels: torch.Tensor,
    config: Config,
    epoch: int,
    device: torch.device,
    *,
    train_images: torch.Tensor | None,
    train_frame: pd.DataFrame,
    aug,
    ctx: DistContext = SINGLE_PROCESS,
    on_step: StepHook | None = None,
    after_step: Callable[[], None] | None = None,
) -> EpochStats:
    """One epoch's batches: forward, objective, backward, optimiser step, running sums.

    ``train_images`` are the decoded training images (``None``: the 'pil' pipeline reads
    ``train_frame``); ``train_labels`` is updated in place by SCN's relabelling. The
    scheduler is not stepped here. ``on_step``: see ``train``; ``after_step`` is called after
    every optimiser step (the weight average's update)."""
    from tqdm.auto import tqdm

    t0 = time.time()
    rank, world, pil = ctx.rank, ctx.world, config.data_pipeline == "pil"
    gen_device = device if device.type == "cuda" else torch.device("cpu")
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=resolve_amp(config.amp, device) == "bf16")
    net.train()
    objective.train()
    objective.set_epoch(epoch)
    batches = epoch_batches(train_labels, config, epoch, world)
    aug_gen = torch.Generator(device=gen_device).manual_seed(config.seed * 100_003 + epoch + 7 * rank)
    sums: dict[str, float] = {}
    correct = seen = relabelled = 0
    lr = optimizer.param_groups[0]["lr"]
    loader = pil_loader(train_frame, batches, config, epoch, rank, world) if pil else None
    bar = tqdm(
        batches,
        desc=f"epoch {epoch}/{config.epochs}",
        disable=not (config.progress and ctx.main),
        leave=False,
        mininterval=2.0,
    )
    for step, (idx, item) in enumerate(zip(bar, loader if pil else batches)):
        local = idx[rank::world] if ctx.distributed else idx
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
        out_all, y_all = distributed.gather(out_local, y) if ctx.distributed else (out_local, y)
        if on_step is not None and (replaced := on_step(epoch, step + 1, out_all, y_all)) is not None:
            out_all = replaced
        total, parts = objective(out_all, y_all, step=f"{step + 1} of epoch {epoch}")
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        for k, v in parts.items():  # tensors stay on the device: no host sync per step
            sums[k] = sums.get(k, 0.0) + (v.detach().double() if torch.is_tensor(v) else v)
        with torch.no_grad():
            correct = correct + (out_all.logits.argmax(1) == y_all).sum()
            seen += len(y_all)
            if config.relabel and epoch >= config.relabel_epoch:
                relabelled += _scn_relabel(config, out_all, y_all, idx, train_labels)
    return EpochStats(
        lr=lr,
        sums={k: float(v) for k, v in sums.items()},
        correct=int(correct),
        seen=seen,
        relabelled=relabelled,
        batches=len(batches),
        seconds=time.time() - t0,
    )


def _scn_relabel(config: Config, out: TANOutput, y: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor) -> int:
    """SCN relabelling: in the low-attention group, a sample whose top probability beats
    its given label's by more than delta_2 takes the predicted label. The probabilities are
    those of the logits the CE trains (``ce_logits``: weighting and ``attention_norm`` included)."""
    from ..losses.objective import ce_logits

    prob = torch.softmax(ce_logits(out, config), dim=1)
    pmax, pred = prob.max(1)
    pgt = prob.gather(1, y[:, None]).squeeze(1)
    k = int(round(config.rr_beta * len(y)))
    low = torch.zeros_like(y, dtype=torch.bool)
    low[torch.argsort(out.attention, descending=True)[k:]] = True
    change = low & (pmax - pgt > config.relabel_margin)
    if change.any():
        labels[idx[change.cpu()]] = pred[change].cpu()
    return int(change.sum())


def _epoch_accuracy(model, images: dict, frames: dict, device: torch.device, config: Config) -> tuple[dict, dict]:
    """Validation and test accuracy after an epoch (NaN for a missing split), and each split's attention."""
    from .evaluate import predict

    model.eval()
    accuracy, attention = {}, {}  # attention: split -> weights, for TensorBoard's histograms
    for split in ("val", "test"):
        if split in images and (split == "val" or config.test_every_epoch):
            amp = resolve_amp(config.amp, device)
            p = predict(model, images[split], device=device, channels_last=config.channels_last, amp=amp)
            accuracy[f"{split}_acc"] = float((p["pred"] == frames[split]["label"].to_numpy()).mean())
            attention[split] = p["attention"]
        else:
            accuracy[f"{split}_acc"] = float("nan")
    return accuracy, attention


# ---------------------------------------------------------------------- training
@restores_torch_threads
@holds_run_locks  # the run directory's lock, taken by prepare_run_dir, is released when train returns or raises
def train(
    config: Config,
    out: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    log=print,
    on_step: StepHook | None = None,
) -> Path:
    """Train ``config`` into run directory ``out``; returns its path.

    ``on_step(epoch, step, out, labels)``, a hook for tests and instrumentation, is called at
    every training step (``step`` counts from 1 within ``epoch``) with the step's network
    outputs (``TANOutput``, gathered over all processes under ``torchrun``) and labels, after
    the forward pass and before the objective, the backward pass and the optimiser step; it
    may return replacement outputs (e.g. to inject a fault) or ``None`` to keep them."""
    from ..data import BatchAugment

    ctx = distributed.setup(config)
    if not ctx.main:
        log = lambda *a, **k: None  # noqa: E731

    out = Path(out)
    tb = TensorBoardLog.open(config, out) if ctx.main else None  # ConfigError before anything is written
    if ctx.main:
        out = prepare_run_dir(out, resume, overwrite)
    ctx.barrier()
    state = load_checkpoint(out / "last.pt") if resume else None
    if state is not None:
        config = resumed_config(config, state, out)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    seed_everything(config.seed + ctx.rank, config.deterministic)
    device = distributed.local_device(resolve_device(config), ctx)

    manifest = prepare_manifest(config, log)
    classes = manifest.classes
    frames = split_frames(manifest, config)
    if ctx.main and state is None:
        _write_run_files(out, config, manifest, ctx.world, device, log)
    images, train_images = decode_images(config, frames, device, log)
    train_labels = torch.tensor(frames["train"]["label"].to_numpy(), dtype=torch.long)

    model, objective = _build_networks(config, len(classes), device, out, report=ctx.main and state is None)
    optimizer = build_optimizer(config, model, objective)
    scheduler = build_scheduler(config, optimizer)
    ema = build_weight_average(config, model)
    evaluated = model if ema is None else ema.module  # what each epoch evaluates and the checkpoints hold
    history: list[dict] = []
    start_epoch, best_val = 1, -math.inf
    if state is not None:
        train_labels, history, start_epoch, best_val = restore(state, model, objective, optimizer, scheduler, ema)
        log(f"resuming {out} after epoch {state['epoch']}")

    net = distributed.wrap(model, ctx)
    if config.compile:
        net = torch.compile(net)
    aug = BatchAugment(flip=config.hflip, erasing_p=config.erasing_p)
    has_val = "val" in images

    for epoch in range(start_epoch, config.epochs + 1):
        t_epoch = time.time()
        stats = train_one_epoch(
            net,
            objective,
            optimizer,
            train_labels,
            config,
            epoch,
            device,
            train_images=train_images,
            train_frame=frames["train"],
            aug=aug,
            ctx=ctx,
            on_step=on_step,
            after_step=None if ema is None else functools.partial(ema.update_parameters, model),
        )
        scheduler.step()
        accuracy, epoch_attention = _epoch_accuracy(evaluated, images, frames, device, config)
        row = history_row(epoch, stats, accuracy, objective.metric_weight, seconds=time.time() - t_epoch)
        history.append(row)
        if tb is not None:
            tb.epoch(row, epoch_attention)

        score = row["val_acc"] if has_val else row["train_acc"]
        improved = score > best_val
        best_val = max(best_val, score)
        if ctx.main:
            ckpt = checkpoint_dict(
                model, objective, optimizer, scheduler, epoch, config, classes, train_labels, history, best_val, ema
            )
            save_epoch(out, ckpt, history, improved)
            log_epoch(log, config, row, improved)
        ctx.barrier()

    if ctx.main:
        _finish_run(out, config, history, has_val, images, device, tb, log)
    ctx.barrier()
    return out


# ---------------------------------------------------------------------- the end of a run
def _finish_run(
    out: Path,
    config: Config,
    history: list[dict],
    has_val: bool,
    images: dict,
    device: torch.device,
    tb: TensorBoardLog | None,
    log,
) -> None:
    """The test split evaluated with last.pt and best.pt, metrics.json completed, warnings logged."""
    from .evaluate import evaluate

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


def _finish_metrics(out: Path, config: Config, history: list[dict], has_val: bool) -> dict:
    """metrics.json's run summary: selection, test-selected epoch, timing, collapse and attention verdicts."""
    from .evaluate import read_metrics

    metrics = read_metrics(out)
    h = pd.DataFrame(history)
    best_row = h.loc[h["val_acc" if has_val else "train_acc"].idxmax()]
    tested = h["test_acc"].notna()
    test_row = h.loc[h.loc[tested, "test_acc"].idxmax()] if tested.any() else None
    metrics.update(
        method=config.method,
        seed=config.seed,
        dataset=config.dataset,
        scale=config.scale,
        last_epoch=int(h["epoch"].iloc[-1]),
        best_epoch=int(best_row["epoch"]),
        selection="best validation accuracy" if has_val else "no validation split: best train accuracy",
        primary=config.selection,  # the checkpoint behind predictions.csv and every record's accuracy
        test_selected=None
        if test_row is None  # test_every_epoch=false: the test split was evaluated at the end only
        else {
            "epoch": int(test_row["epoch"]),
            "accuracy": float(test_row["test_acc"]),
            "label": "test-selected, for comparison with papers",
        },
        seconds=float(h["seconds"].sum()),
        amp=resolve_amp(config.amp, resolve_device(config)),  # what "auto" resolved to: bf16 or none (float32)
    )
    metrics.update(zip(("collapsed", "collapse_reason"), collapse_verdict(config, metrics, history)))
    metrics.update(zip(("attention_state", "attention_reason"), attention_verdict(config, history)))
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


if __name__ == "__main__":  # ``python -m tanlib.engine.train ...`` (what torchrun launches) is ``tan train ...``
    import sys

    from .cli import main

    sys.exit(main())
