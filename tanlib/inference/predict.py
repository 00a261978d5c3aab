"""``tan predict``: an exported model on new images -> one row of results per image.

Inputs (``collect_inputs``): an image file; a folder, searched recursively for files
ending in .jpg, .jpeg, .png, .bmp, .webp (any case; hidden files ignored), in sorted
order; or a text list (``.txt``, ``.lst``, ``.list``) of image paths, one per line,
blank lines and ``#`` comments ignored, relative paths taken from the list's folder.
A missing path, an empty folder, an unreadable or corrupt file, or (with face
detection) an image without a face is *skipped*: named with its reason, never fatal.

``predict_inputs(loaded, inputs, ...)`` decodes each image with the model's
``InferenceTransform`` (optionally after ``FaceDetector`` cropped its largest face),
runs the model in batches, and returns ``Predictions``: a table with ``path``, ``pred``
(class index in the output order), ``pred_name``, one ``prob_<class>`` column per output
class, ``attention``, then ``mapped_mass`` (with a class mapping), ``face_x``,
``face_y``, ``face_w``, ``face_h``, ``n_faces`` (with detection) and ``emb_<i>`` (with
``embedding=True``), plus the skipped list. ``write_results`` writes it as CSV (skipped
files in ``<stem>.skipped.csv`` beside it) or JSON (a ``skipped`` section).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError, DataError
from .classmap import ClassMapping, class_mapping

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
LIST_SUFFIXES = (".txt", ".lst", ".list")


@dataclass
class Skipped:
    """An input that gave no prediction, and why."""

    path: str
    reason: str


@dataclass
class Predictions:
    """The results of ``predict_inputs``."""

    frame: pd.DataFrame
    skipped: list[Skipped]
    classes: list[str]  # the output label order (the model's unless mapped)
    mapping: ClassMapping
    detector: str | None = None
    notes: list[str] = field(default_factory=list)

    def skipped_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"path": s.path, "reason": s.reason} for s in self.skipped], columns=["path", "reason"])


# ---------------------------------------------------------------------- inputs
def _list_folder(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def collect_inputs(inputs) -> tuple[list[str], list[Skipped]]:
    """(image paths in order, skipped inputs) of image files, folders and text lists."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    paths: list[str] = []
    skipped: list[Skipped] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = _list_folder(p)
            if not found:
                skipped.append(Skipped(str(p), f"folder holds no image files ({', '.join(IMAGE_SUFFIXES)})"))
            paths.extend(str(f) for f in found)
        elif p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
            try:
                lines = p.read_text().splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                skipped.append(Skipped(str(p), f"cannot read the list: {exc}"))
                continue
            for number, line in enumerate(lines, 1):
                entry = line.strip()
                if not entry or entry.startswith("#"):
                    continue
                q = Path(entry) if Path(entry).is_absolute() else p.parent / entry
                if q.is_file():
                    paths.append(str(q))
                else:
                    what = "is a folder (a list names image files)" if q.is_dir() else "does not exist"
                    skipped.append(Skipped(str(q), f"listed in {p}:{number}, {what}"))
        elif p.is_file():
            paths.append(str(p))
        else:
            skipped.append(Skipped(str(p), "does not exist"))
    return paths, skipped


# ---------------------------------------------------------------------- prediction
def predict_inputs(
    loaded,
    inputs,
    batch_size: int = 64,
    device: str | None = None,
    detect_faces=False,
    classes=None,
    class_map: dict | None = None,
    embedding: bool = False,
    tta_flip: bool = False,
    progress: bool | None = False,
) -> Predictions:
    """Predict every image of ``inputs`` (see the module docstring).

    ``loaded``: ``load_model``'s result. ``detect_faces``: True (default detector) or a
    ``FaceDetector``. ``classes``/``class_map``: the output label order and renames (see
    ``tanlib.inference.classmap``). ``tta_flip``: average the logits of each image and its
    mirror. ``progress``: a tqdm bar on stderr (None: only on a terminal)."""
    from tqdm.auto import tqdm

    from .faces import FaceDetector

    model, transform, meta = loaded
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be >= 1")
    mapping = class_mapping(list(meta["classes"]), classes, class_map)
    detector = FaceDetector() if detect_faces is True else (detect_faces or None)
    if device is None:
        device = next(iter(model.parameters())).device if isinstance(model, torch.nn.Module) else "cpu"
    model = model.to(device) if isinstance(model, torch.nn.Module) else model

    paths, skipped = collect_inputs(inputs)
    chunks: dict[str, list] = {k: [] for k in ("path", "logits", "attention", "embedding", "face")}
    batch: list[tuple[str, torch.Tensor, tuple | None]] = []

    def flush():
        if not batch:
            return
        x = transform.normalise(torch.stack([b[1] for b in batch])).to(device)
        with torch.no_grad():
            out = model(x)
            logits = out.logits
            if tta_flip:
                logits = (logits + model(x.flip(-1)).logits) / 2
        chunks["path"] += [b[0] for b in batch]
        chunks["face"] += [b[2] for b in batch]
        chunks["logits"].append(logits.float().cpu())
        chunks["attention"].append(out.attention.float().cpu())
        chunks["embedding"].append(out.embedding.float().cpu())
        batch.clear()

    bar = tqdm(
        total=len(paths),
        desc="predict",
        unit="img",
        disable=(None if progress is None else not progress),
        file=sys.stderr,
        mininterval=1.0,
    )
    try:
        for path in paths:
            bar.update(1)
            try:
                if detector is not None:
                    found = detector.crop(transform.open(path, draft=False))
                    if found is None:
                        skipped.append(Skipped(path, f"no face found ({detector.describe()})"))
                        continue
                    crop, box, n_faces = found
                    batch.append((path, transform.to_uint8(crop), (*box, n_faces)))
                else:
                    batch.append((path, transform.to_uint8(path), None))
            except DataError as exc:
                skipped.append(Skipped(path, getattr(exc, "reason", str(exc))))
                continue
            if len(batch) >= batch_size:
                flush()
        flush()
    finally:
        bar.close()

    frame = _results_frame(chunks, mapping, detector is not None, embedding)
    notes = [mapping.describe()] if mapping.describe() else []
    return Predictions(
        frame, skipped, list(mapping.target), mapping, detector.describe() if detector is not None else None, notes
    )


def _results_frame(chunks: dict, mapping: ClassMapping, faces: bool, embedding: bool) -> pd.DataFrame:
    k = len(mapping.source)
    logits = torch.cat(chunks["logits"]).numpy() if chunks["logits"] else np.zeros((0, k), np.float32)
    attention = torch.cat(chunks["attention"]).numpy() if chunks["attention"] else np.zeros(0, np.float32)
    prob = torch.softmax(torch.from_numpy(logits), 1).numpy()
    mass = None
    if not mapping.identity:
        prob, mass = mapping.apply(prob)
    pred = prob.argmax(1) if len(prob) else np.zeros(0, dtype=np.int64)
    data = {"path": chunks["path"], "pred": pred.astype(np.int64), "pred_name": [mapping.target[i] for i in pred]}
    for j, name in enumerate(mapping.target):
        data[f"prob_{name}"] = prob[:, j]
    data["attention"] = attention
    if mass is not None:
        data["mapped_mass"] = mass
    if faces:
        boxes = np.array([f for f in chunks["face"]], dtype=np.int64).reshape(-1, 5)
        for j, col in enumerate(("face_x", "face_y", "face_w", "face_h", "n_faces")):
            data[col] = boxes[:, j]
    if embedding:
        emb = torch.cat(chunks["embedding"]).numpy() if chunks["embedding"] else np.zeros((0, 0), np.float32)
        width = len(str(max(emb.shape[1] - 1, 0)))
        for j in range(emb.shape[1]):
            data[f"emb_{j:0{width}d}"] = emb[:, j]
    return pd.DataFrame(data)


# ---------------------------------------------------------------------- output
def skipped_path(out: Path) -> Path:
    """Where the skipped list of a CSV result goes: ``<stem>.skipped.csv``."""
    return out.with_name(f"{out.stem}.skipped.csv")


def to_json(pred: Predictions, model_info: dict | None = None) -> dict:
    frame = pred.frame
    prob_cols = [f"prob_{c}" for c in pred.classes]
    results = []
    for row in frame.to_dict("records"):
        item = {
            "path": row["path"],
            "pred": int(row["pred"]),
            "pred_name": row["pred_name"],
            "probabilities": {c: float(row[col]) for c, col in zip(pred.classes, prob_cols)},
            "attention": float(row["attention"]),
        }
        if "mapped_mass" in row:
            item["mapped_mass"] = float(row["mapped_mass"])
        if "face_x" in row:
            item["face"] = {k: int(row[f"face_{k}"]) for k in ("x", "y", "w", "h")} | {"n_faces": int(row["n_faces"])}
        emb = [float(row[c]) for c in frame.columns if c.startswith("emb_")]
        if emb:
            item["embedding"] = emb
        results.append(item)
    mapping = (
        None
        if pred.mapping.identity
        else {
            "model_classes": pred.mapping.source,
            "classes": pred.mapping.target,
            "dropped": pred.mapping.dropped,
            "unreachable": pred.mapping.unreachable,
        }
    )
    return {
        "model": model_info or {},
        "classes": pred.classes,
        "class_mapping": mapping,
        "detector": pred.detector,
        "n_predicted": len(frame),
        "n_skipped": len(pred.skipped),
        "results": results,
        "skipped": [{"path": s.path, "reason": s.reason} for s in pred.skipped],
    }


def write_results(pred: Predictions, out: str | Path | None, model_info: dict | None = None, stream=None) -> list[Path]:
    """Write ``pred`` to ``out`` (.csv or .json; None: CSV on ``stream``, default stdout);
    returns the files written."""
    from ..atomicio import atomic_write_text

    if out is None:
        (stream or sys.stdout).write(pred.frame.to_csv(index=False))
        return []
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ConfigError(f"--out {out}: expected a .csv or .json file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from ..errors import RunDirError

        raise RunDirError(f"cannot create {out.parent}: {exc.strerror or exc}") from None
    if suffix == ".json":
        atomic_write_text(out, json.dumps(to_json(pred, model_info), indent=2, allow_nan=True) + "\n")
        return [out]
    atomic_write_text(out, pred.frame.to_csv(index=False))
    side = skipped_path(out)
    if pred.skipped:
        atomic_write_text(side, pred.skipped_frame().to_csv(index=False))
        return [out, side]
    side.unlink(missing_ok=True)  # a stale list from an earlier run would mislead
    return [out]


__all__ = [
    "IMAGE_SUFFIXES",
    "LIST_SUFFIXES",
    "Predictions",
    "Skipped",
    "collect_inputs",
    "predict_inputs",
    "skipped_path",
    "to_json",
    "write_results",
]
