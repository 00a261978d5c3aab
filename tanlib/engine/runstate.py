"""What a training run carries from one epoch to the next (docs/training.md, Exact resume).

This module owns an epoch's records and resuming from them: the ``history.csv`` row
(``history_row``, from the epoch's ``EpochStats``), the checkpoint dict (``checkpoint_dict``:
everything an exact resume needs), writing best.pt, last.pt and history.csv at the end of
an epoch (``save_epoch``), the epoch's log line (``log_epoch``), and on ``--resume`` the
checkpoint's config (``resumed_config``) and states (``restore``). ``engine/train.py``
calls them; ``engine/checkpoint.py`` writes and reads the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch

from ..analysis.collapse import COLLAPSE_SPREAD
from ..atomicio import atomic_write_text
from ..config import RUNTIME_KEYS, Config, config_differences
from ..errors import RunDirError
from .checkpoint import rng_state, save_checkpoint, set_rng_state

if TYPE_CHECKING:
    from .train import EpochStats


# ---------------------------------------------------------------------- an epoch's records
def history_row(epoch: int, stats: EpochStats, accuracy: dict, metric_weight: float, seconds: float) -> dict:
    """One ``history.csv`` row: batch means of the loss parts and diagnostics, accuracies, counts, timing."""
    row = {"epoch": epoch, "lr": stats.lr}
    nb = max(stats.batches, 1)
    for k in ("total", "ce", "triplet", "mahalanobis", "rr"):
        row[f"loss_{k}"] = stats.sums.get(k, 0.0) / nb
    row["train_acc"] = stats.correct / max(stats.seen, 1)
    row.update(accuracy)  # val_acc, test_acc
    for k in (
        "attention_mean",
        "attention_std",
        "embedding_spread",
        "active_triplet",
        "active_hard",
        "violating_triplet",
        "violating_hard",
        "n_high",
        "n_triplets",
        "n_hard_triplets",
    ):
        row[k] = stats.sums.get(k, 0.0) / nb
    for key in sorted((k for k in stats.sums if k.startswith("attention_sum_class")), key=lambda k: int(k[19:])):
        n = stats.sums.get("attention_n_class" + key[19:], 0.0)  # mean attention per class: the verdict's page
        row["attention_class" + key[19:]] = stats.sums[key] / n if n else float("nan")
    row["metric_weight"] = metric_weight
    row["empty_triplet"] = int(stats.sums.get("empty_triplet", 0))
    row["empty_hard"] = int(stats.sums.get("empty_hard", 0))
    row["relabelled"] = stats.relabelled
    row["seconds"] = seconds
    row["images_per_s"] = stats.seen / max(stats.seconds, 1e-9)  # training throughput, evaluation excluded
    return row


def checkpoint_dict(
    model,
    objective,
    optimizer,
    scheduler,
    epoch: int,
    config: Config,
    classes,
    train_labels: torch.Tensor,
    history: list[dict],
    best_val: float,
    ema=None,
) -> dict:
    """``last.pt``'s contents: everything an exact resume needs (the RNG states taken now).
    With a weight average (``ema``), ``model`` holds the average (what is evaluated) and
    ``train_model`` the weights the optimiser trains."""
    averaged = {} if ema is None else {"train_model": model.state_dict(), "ema_n_averaged": int(ema.n_averaged)}
    return {
        "model": (model if ema is None else ema.module).state_dict(),
        **averaged,
        "objective": objective.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "config": config.to_dict(),
        "num_classes": len(classes),
        "classes": list(classes),
        "train_labels": train_labels.clone(),
        "history": history,
        "best_val": best_val,
        "rng": rng_state(),
    }


def save_epoch(out: Path, ckpt: dict, history: list[dict], improved: bool) -> None:
    """best.pt (when improved; for evaluation: no optimiser state), last.pt, history.csv."""
    if improved:
        save_checkpoint(
            out / "best.pt", {k: v for k, v in ckpt.items() if k not in ("optimizer", "rng", "train_model")}
        )
    save_checkpoint(out / "last.pt", ckpt)
    atomic_write_text(out / "history.csv", pd.DataFrame(history).to_csv(index=False))


def log_epoch(log, config: Config, row: dict, improved: bool) -> None:
    """The epoch's line in the log, and a warning when the batch embeddings are collapsing."""
    log(
        f"epoch {row['epoch']}/{config.epochs}  loss {row['loss_total']:.4f}  train {row['train_acc']:.3f}  "
        f"val {row['val_acc']:.3f}  |H| {row['n_high']:.1f}  spread {row['embedding_spread']:.3f}  "
        f"{row['seconds']:.1f} s" + ("  *best*" if improved else "")
    )
    if config.trains_embedding and row["embedding_spread"] < COLLAPSE_SPREAD:
        log(
            f"warning: the embedding is collapsing: mean pairwise distance in the batch "
            f"{row['embedding_spread']:.3f} < {COLLAPSE_SPREAD} (see docs/method.md, Collapse)"
        )


# ---------------------------------------------------------------------- resuming
def resumed_config(config: Config, state: dict, out: Path) -> Config:
    """The checkpoint's config, refusing a different one; only the runtime keys follow ``config``."""
    saved = Config.from_dict(state["config"])
    changed = config_differences(saved.to_dict(), config.to_dict(), RUNTIME_KEYS | {"epochs"})
    if changed:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in sorted(changed.items()))
        raise RunDirError(f"cannot resume {out}: the config differs from the checkpoint's ({detail})")
    return saved.replace(
        epochs=config.epochs, progress=config.progress, num_threads=config.num_threads, tensorboard=config.tensorboard
    )


def restore(
    state: dict, model, objective, optimizer, scheduler, ema=None
) -> tuple[torch.Tensor, list[dict], int, float]:
    """Load a checkpoint's states and RNG; returns (train labels, history, first epoch to run, best score)."""
    if ema is None:
        model.load_state_dict(state["model"])
    else:
        model.load_state_dict(state["train_model"])
        ema.module.load_state_dict(state["model"])
        ema.n_averaged.fill_(state["ema_n_averaged"])
    objective.load_state_dict(state["objective"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    train_labels = state["train_labels"].clone()
    history = [dict(row) for row in state["history"]]
    start_epoch, best_val = int(state["epoch"]) + 1, float(state["best_val"])
    set_rng_state(state["rng"])
    return train_labels, history, start_epoch, best_val
