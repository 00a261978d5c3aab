"""``tan export``: a run's checkpoint -> a self-describing weights file and its model card.

``export_run(run_dir, out, format="torch"|"onnx", checkpoint="best"|"last")`` reads the
run directory (``best.pt``/``last.pt``, ``config.json``, ``manifest.csv`` + ``.json``,
``metrics.json``, ``env.json``), builds the metadata record (classes in order, the
inference transform, the config, the dataset and protocol, the test metrics with the
epoch-selection rule, the parameter count, provenance) and writes

* ``format="torch"``: ``<name>-<hash8>.pt``, the weights format of
  ``tanlib.inference.weights`` (tensors and JSON only, ``weights_only``-loadable);
* ``format="onnx"``: ``<name>-<hash8>.onnx``, the network traced by ``torch.onnx``
  (dynamo exporter, opset 18+) with a dynamic batch dimension: input ``image`` float32
  (N, 3, S, S), already normalised; outputs ``logits``, ``attention``, ``embedding``,
  ``features``; the metadata as JSON in ``metadata_props['tanlib']``;

and beside it ``<name>-<hash8>.md``, the model card. ``hash8`` is the first 8 hex digits
of the file's SHA-256. ``out`` is a file path whose stem becomes ``<name>`` (any suffix
is replaced), or an existing folder (or one ending in ``/``), which gets the default
name ``<method>-<dataset>-<checkpoint>``. Exporting the same checkpoint twice gives the
same bytes, hence the same name.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import __version__
from ..errors import CheckpointError, ConfigError, RunDirError
from .card import model_card
from .transform import InferenceTransform
from .weights import ONNX_METADATA_KEY, OUTPUT_NAMES, hashed_path, json_clean, stamp_meta, weights_bytes

FORMATS = ("torch", "onnx")
SUFFIX = {"torch": ".pt", "onnx": ".onnx"}
ONNX_OPSET = 18


@dataclass
class ExportResult:
    """What ``export_run`` wrote."""

    path: Path  # the weights file
    card: Path  # the model card beside it
    sha256: str  # of the weights file
    meta: dict  # the metadata record stored in it


# ---------------------------------------------------------------------- metadata
def _selection_rule(metrics: dict, checkpoint: str, epoch: int, epochs: int) -> str:
    if checkpoint == "best":
        return f"epoch {epoch}, the epoch of {metrics.get('selection', 'best validation accuracy')}"
    return f"epoch {epoch}, the last epoch (of {epochs} configured)"


def build_metadata(run_dir: Path, checkpoint: str, name: str, fmt: str):
    """(model in eval mode, metadata dict) of a run's checkpoint."""
    from ..data import Manifest
    from ..engine.evaluate import CHECKPOINTS, load_model, read_metrics

    if checkpoint not in CHECKPOINTS:
        raise ConfigError(f"checkpoint={checkpoint!r} is not allowed; choose 'best' or 'last'")
    if not (run_dir / "config.json").is_file():
        raise RunDirError(f"{run_dir} is not a run directory (no config.json)")
    model, config, state = load_model(run_dir, checkpoint)
    manifest = Manifest.load(run_dir / "manifest.csv")
    classes = list(manifest.classes)
    if list(state.get("classes", classes)) != classes or int(state["num_classes"]) != len(classes):
        raise CheckpointError(
            f"{run_dir / CHECKPOINTS[checkpoint][0]} has classes {state.get('classes')}, the run's manifest {classes}"
        )
    metrics = read_metrics(run_dir)
    key = CHECKPOINTS[checkpoint][1]
    block = metrics.get("results", {}).get(key)
    epoch = int(state["epoch"])
    if block is None:
        raise RunDirError(
            f"{run_dir / 'metrics.json'} has no test results for checkpoint {checkpoint!r} "
            f"(results.{key}); evaluate it first: `tan evaluate {run_dir} --checkpoint {checkpoint}`"
        )
    if int(block.get("epoch", -1)) != epoch:
        raise RunDirError(
            f"{run_dir / 'metrics.json'}: results.{key} are of epoch {block.get('epoch')}, but "
            f"{CHECKPOINTS[checkpoint][0]} is epoch {epoch}; re-run `tan evaluate {run_dir} "
            f"--checkpoint {checkpoint}`"
        )
    env_path = run_dir / "env.json"
    env = json.loads(env_path.read_text()) if env_path.is_file() else {}
    frame = manifest.frame
    splits = {s: int((frame["split"] == s).sum()) for s in ("train", "val", "test")}
    counts = {
        s: {c: int(((frame["split"] == s) & (frame["class_name"] == c)).sum()) for c in classes}
        for s in ("train", "val", "test")
    }
    settings = Path(manifest.root) / "synthfer_settings.json"
    synth = json.loads(settings.read_text()) if manifest.dataset == "synthfer" and settings.is_file() else None
    rule = _selection_rule(metrics, checkpoint, epoch, config.epochs)
    dataset = {
        "name": manifest.dataset,
        "root": str(manifest.root),
        "protocol": config.protocol,
        "splits": splits,
        "class_counts": counts,
        "val_fraction": config.val_fraction,
        "max_train_samples": config.max_train_samples,
        "synthfer_settings": synth,
    }
    transform = InferenceTransform(config.image_size)
    meta = {
        "name": name,
        "task": "facial expression recognition: one face image -> one of the classes",
        "classes": classes,
        "num_classes": len(classes),
        "architecture": {
            "model": "tanlib.models.TANNet",
            "backbone": config.backbone,
            "embedding_dim": config.embedding_dim,
            "feature_dim": model.feature_dim,
            "attention": config.attention,
            "dropout": config.dropout,
            "outputs": {
                "logits": "(N, K) class scores; softmax gives the probabilities",
                "attention": "(N,) learned sample weight in (0, 1) (all 1 without attention)",
                "embedding": "(N, D) L2-normalised embedding",
                "features": "(N, F) pooled backbone features",
            },
        },
        "num_params": int(sum(p.numel() for p in model.parameters())),
        "transform": transform.to_meta(),
        "config": config.to_dict(),
        "dataset": dataset,
        "checkpoint": {
            "which": checkpoint,
            "source": CHECKPOINTS[checkpoint][0],
            "epoch": epoch,
            "epochs": config.epochs,
            "selection": rule,
        },
        "metrics": {
            "split": "test",
            "n": int(block["n"]),
            "accuracy": block["accuracy"],
            "mean_class_accuracy": block["mean_class_accuracy"],
            "macro_f1": block["macro_f1"],
            "per_class_recall": {c: v.get("recall") for c, v in block.get("per_class", {}).items()},
            "tta_flip": bool(block.get("tta_flip", False)),
            "selection": rule,
            "protocol": (
                f"{manifest.dataset} test split ({int(block['n'])} images, protocol {config.protocol}), "
                f"checkpoint `{checkpoint}` = {rule}; one centre view"
                + (" averaged with its mirror" if block.get("tta_flip") else ", no test-time augmentation")
            ),
            "test_selected": metrics.get("test_selected"),
        },
        "provenance": {
            "run_dir": str(run_dir.resolve()),
            "method": config.method,
            "seed": config.seed,
            "git_commit": env.get("git_commit"),
            "git_dirty": env.get("git_dirty"),
            "torch": env.get("torch"),
            "torchvision": env.get("torchvision"),
        },
        "export": {"format": fmt, "tanlib": __version__, "torch": torch.__version__.split("+")[0]},
    }
    return model, json_clean(meta)


def resolve_stem(out: str | Path, default_name: str) -> Path:
    """The path of the export without hash and suffix (see the module docstring)."""
    text = str(out)
    p = Path(text)
    if p.is_dir() or text.endswith(("/", os.sep)):
        return p / default_name
    return p.with_suffix("") if p.suffix.lower() in (".pt", ".pth", ".onnx") else p


# ---------------------------------------------------------------------- onnx
def onnx_bytes(model, meta: dict) -> bytes:
    """The ONNX export of ``model`` (dynamic batch) with ``meta`` in its metadata_props."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs both)
    except ImportError as exc:
        raise ConfigError(
            f"--format onnx needs the onnx and onnxscript packages ({exc}); pip install 'tanlib[onnx]'"
        ) from None

    size = meta["transform"]["size"]
    example = torch.zeros(2, 3, *size)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model.eval(),
                (example,),
                None,
                dynamo=True,
                external_data=False,
                opset_version=ONNX_OPSET,
                input_names=["image"],
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}},
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; report them as one user-facing error
        raise CheckpointError(
            f"ONNX export of {meta['name']} failed: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}\n{log.getvalue()[-2000:]}"
        ) from None
    proto = program.model_proto
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, json.dumps(meta, sort_keys=True)
    proto.doc_string = (
        f"tanlib export {meta['name']}: classes {meta['classes']}; preprocessing: {meta['transform']['rule']}"
    )
    return proto.SerializeToString()


# ---------------------------------------------------------------------- export
def export_run(run_dir: str | Path, out: str | Path, format: str = "torch", checkpoint: str = "best") -> ExportResult:
    """Export a run's checkpoint; see the module docstring."""
    from ..atomicio import atomic_write_bytes, atomic_write_text
    from ..config import Config

    if format not in FORMATS:
        raise ConfigError(f"format={format!r} is not allowed; choose one of {', '.join(FORMATS)}")
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise RunDirError(f"{run_dir} is not a run directory (no config.json)")
    config = Config.load(run_dir / "config.json")
    stem = resolve_stem(out, f"{config.method}-{config.dataset}-{checkpoint}")
    model, meta = build_metadata(run_dir, checkpoint, stem.name, format)
    if format == "torch":
        data, meta = weights_bytes(model.state_dict(), meta)
    else:
        meta = stamp_meta(
            {
                **meta,
                "onnx": {
                    "input": "image",
                    "input_shape": ["batch", 3, *meta["transform"]["size"]],
                    "outputs": list(OUTPUT_NAMES),
                    "opset": ONNX_OPSET,
                    "dynamic_axes": {"image": {"0": "batch"}},
                },
            },
            model.state_dict(),
        )
        data = onnx_bytes(model, meta)
    sha = hashlib.sha256(data).hexdigest()
    path = hashed_path(stem, sha, SUFFIX[format])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
    atomic_write_bytes(path, data)
    card = path.with_suffix(".md")
    atomic_write_text(card, model_card(meta, path.name, sha))
    return ExportResult(path, card, sha, meta)


__all__ = ["ExportResult", "FORMATS", "build_metadata", "export_run", "onnx_bytes", "resolve_stem"]
