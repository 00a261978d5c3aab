"""Evaluation of a run: predictions, metrics, embedding geometry, robustness.

For a checkpoint (``best``: best validation accuracy, ``last``: last epoch) and a split it
computes accuracy, mean class accuracy, macro F1, the confusion matrix and per-class
report (``tanlib.analysis.classification_metrics``), the intra-/inter-class distance
statistics and silhouette of the test embeddings (``embedding_geometry``), metrics by
subgroup when the manifest has subgroup columns, and on SynthFER the ROC AUC of low
attention for finding the flipped training labels. Results go to ``metrics.json`` under
``results``; the test split with the best checkpoint also writes ``predictions.csv`` and
``embeddings.npz``. Cross-dataset evaluation (``dataset=``, ``root=``) maps classes by
name (case-insensitive) or an explicit ``class_map`` and stores its results under
``cross_dataset``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..analysis import classification_metrics, embedding_geometry, noise_detection, subgroup_metrics
from ..analysis.geometry import normalize_rows
from ..atomicio import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..config import Config
from ..errors import CheckpointError, DataError, RunDirError
from ..models import build_model
from .checkpoint import load_checkpoint
from .precision import resolve_amp
from .rundir import hold_run_lock, holds_run_locks

CHECKPOINTS = {"best": ("best.pt", "best_val"), "last": ("last.pt", "last")}


def primary_checkpoint(config: Config) -> str:
    """The checkpoint whose test predictions are the run's (``predictions.csv``, the noise
    detection, every record's accuracy): ``config.selection``, best validation or last."""
    return "last" if getattr(config, "selection", "best_val") == "last" else "best"  # older configs: best


def run_checkpoint(run_dir: str | Path, checkpoint: str | None = None) -> str:
    """``checkpoint``, or when None the run's primary one (``primary_checkpoint`` of its
    config.json): what ``tan evaluate`` and ``tan export`` read by default."""
    if checkpoint is not None:
        return checkpoint
    return primary_checkpoint(Config.load(Path(run_dir) / "config.json"))


def load_model(run_dir: str | Path, checkpoint: str = "best"):
    """(model in eval mode, config, checkpoint dict) of a run's checkpoint."""
    if checkpoint not in CHECKPOINTS:
        raise CheckpointError(f"checkpoint={checkpoint!r} is not allowed; choose 'best' or 'last'")
    state = load_checkpoint(Path(run_dir) / CHECKPOINTS[checkpoint][0])
    config = Config.from_dict(state["config"])
    with torch.device("meta"):  # no initialisation: every weight comes from the checkpoint
        model = build_model(config.replace(pretrained="scratch"), num_classes=int(state["num_classes"]), verbose=False)
    try:
        model.load_state_dict(state["model"], assign=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{Path(run_dir) / CHECKPOINTS[checkpoint][0]} does not match its config's architecture: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    return model.eval(), config, state


@torch.no_grad()
def predict(
    model,
    images: torch.Tensor,
    batch_size: int = 256,
    device="cpu",
    tta_flip: bool = False,
    channels_last: bool = False,
    amp: str = "none",
) -> dict[str, np.ndarray]:
    """Run ``model`` over uint8 images (N, 3, H, W); logits, probabilities, attention,
    embeddings and features as numpy arrays. ``tta_flip`` averages the logits of the image
    and its mirror."""
    from ..data import BatchAugment

    norm = BatchAugment(flip=False, erasing_p=0.0)
    model.eval()
    chunks: dict[str, list] = {k: [] for k in ("logits", "attention", "embedding", "features")}
    for start in range(0, len(images), batch_size):
        x = norm(images[start : start + batch_size].to(device), train=False)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            out = model(x)
            logits = out.logits
            if tta_flip:
                logits = (logits + model(x.flip(-1)).logits) / 2
        for key, value in (
            ("logits", logits),
            ("attention", out.attention),
            ("embedding", out.embedding),
            ("features", out.features),
        ):
            chunks[key].append(value.float().cpu())
    res = {k: torch.cat(v).numpy() if v else np.zeros((0,)) for k, v in chunks.items()}
    res["prob"] = torch.softmax(torch.from_numpy(res["logits"]), 1).numpy()
    res["pred"] = res["logits"].argmax(1)
    return res


def split_results(
    pred: dict, frame: pd.DataFrame, classes: list[str], subgroups: list[str], trained_embedding: bool = True
) -> dict:
    """The metrics block of metrics.json for one split.

    ``geometry_features`` is measured on the L2-normalised backbone features h, the one
    space every method has (the comparison of methods); ``geometry`` on the embedding e,
    only where a metric term trained it (``None`` otherwise: e is then a random projection)."""
    labels = frame["label"].to_numpy()
    res = classification_metrics(labels, pred["pred"], classes)
    res["geometry"] = embedding_geometry(pred["embedding"], labels, classes) if trained_embedding else None
    res["geometry_features"] = embedding_geometry(normalize_rows(pred["features"]), labels, classes)
    cols = [c for c in subgroups if c in frame.columns]
    res["subgroups"] = subgroup_metrics(frame, labels, pred["pred"], cols).to_dict("records") if cols else []
    res["n"] = int(len(frame))
    return res


def read_metrics(run_dir: Path) -> dict:
    path = run_dir / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _predictions_frame(frame: pd.DataFrame, pred: dict, classes: list[str]) -> pd.DataFrame:
    out = frame.copy()
    out.insert(0, "index", np.arange(len(frame)))
    out["pred"] = pred["pred"]
    out["pred_name"] = [classes[i] for i in pred["pred"]]
    out["correct"] = out["pred"] == out["label"]
    out["attention"] = pred["attention"]
    out["confidence"] = pred["prob"].max(1)
    return out


def _write_outputs(run_dir: Path, suffix: str, frame, pred, classes) -> None:
    csv = _predictions_frame(frame, pred, classes).to_csv(index=False)
    atomic_write_text(run_dir / f"predictions{suffix}.csv", csv)
    import io

    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        embedding=pred["embedding"],
        features=pred["features"],
        label=frame["label"].to_numpy(),
        pred=pred["pred"],
        attention=pred["attention"],
        logits=pred["logits"],
    )
    atomic_write_bytes(run_dir / f"embeddings{suffix}.npz", buf.getvalue())


def _map_classes(frame: pd.DataFrame, source: list[str], target: list[str], class_map: dict | None):
    """Relabel ``frame`` from ``source`` class names to ``target`` indices; drop unmapped."""
    lookup = {t.lower(): i for i, t in enumerate(target)}
    mapping = {}
    for i, name in enumerate(source):
        goal = (class_map or {}).get(name, name)
        if goal is not None and str(goal).lower() in lookup:
            mapping[i] = lookup[str(goal).lower()]
    if class_map:
        bad = [v for v in class_map.values() if v is not None and str(v).lower() not in lookup]
        if bad:
            raise DataError(f"class_map targets {bad} are not classes of the run; the run's classes are {target}")
    if not mapping:
        raise DataError(f"no class of {source} maps to the run's classes {target}; pass an explicit class_map")
    kept = frame[frame["label"].isin(list(mapping))].copy()
    kept["label"] = kept["label"].map(mapping).astype(int)
    kept["class_name"] = [target[i] for i in kept["label"]]
    dropped = sorted(set(source) - {source[i] for i in mapping})
    return kept.reset_index(drop=True), dropped


@holds_run_locks  # one writer per run directory: the lock is held until evaluate returns or raises
def evaluate(
    run_dir: str | Path,
    split: str = "test",
    checkpoint: str = "best",
    tta_flip: bool = False,
    dataset: str | None = None,
    root: str | None = None,
    class_map: dict | None = None,
    device: str | None = None,
    images: dict | None = None,
) -> dict:
    """Evaluate a run's checkpoint on a split; update metrics.json and return the block."""
    from ..data import Manifest, build_manifest, load_images

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise RunDirError(f"{run_dir} is not a run directory (no config.json)")
    hold_run_lock(run_dir)  # re-entrant: train() already holds it when it evaluates its own run
    model, config, state = load_model(run_dir, checkpoint)
    device = device or (
        "cuda"
        if config.device == "auto" and torch.cuda.is_available()
        else ("cpu" if config.device == "auto" else config.device)
    )
    model.to(device)
    manifest = Manifest.load(run_dir / "manifest.csv")
    classes = manifest.classes
    if int(state["num_classes"]) != len(classes) or list(state.get("classes", classes)) != list(classes):
        raise CheckpointError(
            f"{run_dir / CHECKPOINTS[checkpoint][0]} is a checkpoint of {state['num_classes']} classes "
            f"{list(state.get('classes', []))}, but the run's manifest has {len(classes)} classes {classes}"
        )
    cross = dataset is not None
    if cross:
        other = build_manifest(
            dataset, root, val_fraction=config.val_fraction, seed=0, skip_problems=config.skip_bad_data
        )
        frame, dropped = _map_classes(other.split(split), other.classes, classes, class_map)
        subgroups = other.subgroups
    else:
        frame, dropped, subgroups = manifest.split(split), [], manifest.subgroups
    if not len(frame):
        raise DataError(f"split {split!r} of {dataset or manifest.dataset} has no images to evaluate")
    key_images = images.get(split) if (images and not cross) else None
    x = key_images if key_images is not None else load_images(frame, config.image_size, cache_dir=config.cache_dir)
    amp = resolve_amp(config.amp, device)
    pred = predict(model, x, device=device, tta_flip=tta_flip, channels_last=config.channels_last, amp=amp)
    block = split_results(pred, frame, classes, subgroups, trained_embedding=config.trains_embedding)
    block.update(split=split, checkpoint=checkpoint, epoch=int(state["epoch"]), tta_flip=tta_flip)

    metrics = read_metrics(run_dir)
    key = CHECKPOINTS[checkpoint][1] + (f"@{split}" if split != "test" else "") + ("+flip" if tta_flip else "")
    if cross:
        block.update(dataset=dataset, root=str(root), dropped_classes=dropped)
        metrics.setdefault("cross_dataset", {})[f"{dataset}/{key}"] = block
        _write_outputs(run_dir, f"_{dataset}_{key}".replace("@", "_").replace("+", "_"), frame, pred, classes)
    else:
        metrics.setdefault("results", {})[key] = block
        canonical = split == "test" and checkpoint == primary_checkpoint(config) and not tta_flip
        _write_outputs(
            run_dir, "" if canonical else f"_{key}".replace("@", "_").replace("+", "_"), frame, pred, classes
        )
        if canonical and "noisy" in manifest.frame.columns:
            train = manifest.split("train")
            xt = images.get("train") if images else None
            xt = xt if xt is not None else load_images(train, config.image_size, cache_dir=config.cache_dir)
            pt = predict(model, xt, device=device, channels_last=config.channels_last, amp=amp)
            detection = noise_detection(
                pt, train["label"].to_numpy(), train["noisy"].astype(bool).to_numpy(), attention=config.attention
            )
            metrics["noise_detection"] = detection
            metrics["train_noisy_auc"] = detection["attention"]
    atomic_write_json(run_dir / "metrics.json", metrics)
    return block
