"""Self-describing weights files: the format, hashing, and loading a model back.

A ``.pt`` weights file written by ``tan export`` is a dict of tensors and JSON types, so
``torch.load(path, weights_only=True)`` reads it without running code::

    {"format": "tanlib-weights", "format_version": 1,
     "meta": {...JSON metadata: classes, transform, config, dataset, metrics, ...},
     "state_dict": {name: tensor, ...}}        # the TANNet weights, contiguous, CPU

Two hashes guard it. ``meta["state_dict_sha256"]`` is the SHA-256 of the tensors (name,
dtype, shape and bytes of each, in sorted name order), checked on every load. The
SHA-256 of the whole file is not inside the file (a file cannot hold its own hash): its
first 8 hex digits are in the file name, ``<name>-<hash8>.pt``, as torchvision and
mmpretrain name their weights, checked on load whenever the name carries one, and the
full value is in the model card.

An ``.onnx`` export carries the same metadata as JSON in the model's
``metadata_props`` (key ``tanlib``) and its hash in its name; ``load_model`` runs it
with onnxruntime behind the same call interface as the torch model.

``load_model(path)`` returns ``LoadedModel(model, transform, meta)``: the network in
eval mode with gradients off, the ``InferenceTransform`` that reproduces evaluation's
preprocessing, and the metadata dict exactly as stored.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import NamedTuple

import torch

from ..errors import CheckpointError, ConfigError
from ..models.pretrained import weights_sha256 as state_dict_sha256
from .transform import InferenceTransform

FORMAT = "tanlib-weights"
FORMAT_VERSION = 1
ONNX_METADATA_KEY = "tanlib"
OUTPUT_NAMES = ("logits", "attention", "embedding", "features")
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})$")


# ---------------------------------------------------------------------- hashing
def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def name_hash(path: str | Path) -> str | None:
    """The hex prefix of ``<name>-<hex>.<ext>``, or None."""
    m = _HASH_IN_NAME.search(Path(path).stem)
    return m.group(1) if m else None


def check_name_hash(path: str | Path, sha256: str) -> None:
    expected = name_hash(path)
    if expected is not None and not sha256.startswith(expected):
        raise CheckpointError(
            f"{path}: the file's SHA-256 starts with {sha256[: len(expected)]}, but its name says {expected}; "
            "the file is corrupt or was modified after export (export it again with `tan export`)"
        )


def hashed_path(stem_path: Path, sha256: str, suffix: str) -> Path:
    """``<stem>-<first 8 hex><suffix>`` beside ``stem_path``."""
    return stem_path.with_name(f"{stem_path.name}-{sha256[:8]}{suffix}")


def json_clean(obj):
    """``obj`` through JSON and back: only dict/list/str/int/float/bool/None remain."""
    return json.loads(json.dumps(obj, allow_nan=True, default=str))


# ---------------------------------------------------------------------- torch format
def stamp_meta(meta: dict, state_dict: dict[str, torch.Tensor]) -> dict:
    """``meta`` with the format, its version and the tensors' SHA-256, as JSON types."""
    return json_clean(
        {**meta, "format": FORMAT, "format_version": FORMAT_VERSION, "state_dict_sha256": state_dict_sha256(state_dict)}
    )


def weights_bytes(state_dict: dict[str, torch.Tensor], meta: dict) -> tuple[bytes, dict]:
    """(bytes of a weights file, the metadata stored in it); the file name then carries
    the bytes' SHA-256."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    meta = stamp_meta(meta, tensors)
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "meta": meta, "state_dict": tensors}, buf)
    return buf.getvalue(), meta


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict, metadata) of a weights file, both hashes checked."""
    from ..models.pretrained import safe_torch_load

    path = Path(path)
    obj = safe_torch_load(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        if isinstance(obj, dict) and "model" in obj and "config" in obj:
            raise CheckpointError(
                f"{path} is a training checkpoint of a run directory, not an exported model; export it first: "
                f"`tan export {path.parent} --out MODEL.pt`"
            )
        raise CheckpointError(
            f"{path} is not a tanlib weights file (no format={FORMAT!r} record); "
            "weights files are written by `tan export`"
        )
    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {version!r}; this tanlib reads versions up to {FORMAT_VERSION} (upgrade tanlib)"
        )
    meta, state = obj.get("meta"), obj.get("state_dict")
    if (
        not isinstance(meta, dict)
        or not isinstance(state, dict)
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise CheckpointError(f"{path} lacks its 'meta' dict or its 'state_dict' of tensors")
    check_name_hash(path, file_sha256(path))
    digest = state_dict_sha256(state)
    if meta.get("state_dict_sha256") != digest:
        raise CheckpointError(
            f"{path}: the tensors' SHA-256 is {digest[:16]}..., the metadata records "
            f"{str(meta.get('state_dict_sha256'))[:16]}...; the weights were modified"
        )
    return state, meta


def build_network(meta: dict, state_dict: dict[str, torch.Tensor] | None = None, source: str = "weights file"):
    """The TANNet described by ``meta['architecture']``, with ``state_dict`` loaded (strict)."""
    from ..models import TANNet

    try:
        arch = meta["architecture"]
        model = TANNet(
            int(meta["num_classes"]),
            backbone=arch["backbone"],
            embedding_dim=int(arch["embedding_dim"]),
            attention=bool(arch["attention"]),
            dropout=float(arch.get("dropout", 0.0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: malformed architecture record ({exc!r})") from None
    if state_dict is not None:
        try:
            model.load_state_dict(state_dict)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{source}: the weights do not match the architecture record "
                f"{meta['architecture']}: {str(exc).splitlines()[0]}"
            ) from None
    return model


# ---------------------------------------------------------------------- onnx format
def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("running an .onnx model needs onnxruntime: pip install 'tanlib[onnx]'") from None
    return onnxruntime


class OnnxModel:
    """An exported ONNX model run by onnxruntime; called like the torch model:
    float32 (N, 3, S, S) -> ``TANOutput`` of CPU tensors."""

    def __init__(self, path: str | Path, providers: list[str] | None = None):
        ort = require_onnxruntime()
        self.path = Path(path)
        try:
            self.session = ort.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidProtobuf, ...)
            raise CheckpointError(f"{path} is not a loadable ONNX model: {str(exc).splitlines()[0]}") from None
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        missing = set(OUTPUT_NAMES) - set(self.output_names)
        if missing:
            raise CheckpointError(f"{path}: ONNX outputs {self.output_names} lack {sorted(missing)}")

    def metadata(self) -> dict:
        raw = self.session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA_KEY)
        if raw is None:
            raise CheckpointError(
                f"{self.path} has no '{ONNX_METADATA_KEY}' metadata; it was not written by `tan export --format onnx`"
            )
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{self.path}: its '{ONNX_METADATA_KEY}' metadata is not JSON: {exc}") from None

    def __call__(self, x: torch.Tensor):
        from ..models import TANOutput

        arr = x.detach().to("cpu", torch.float32).contiguous().numpy()
        outs = dict(zip(self.output_names, self.session.run(None, {self.input_name: arr})))
        return TANOutput(*(torch.from_numpy(outs[k]) for k in OUTPUT_NAMES))

    def eval(self):
        return self

    def to(self, *args, **kwargs):
        return self

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r})"


# ---------------------------------------------------------------------- loading
class LoadedModel(NamedTuple):
    """What ``load_model`` returns; unpacks as ``model, transform, meta = load_model(path)``."""

    model: object  # TANNet (torch) or OnnxModel
    transform: InferenceTransform
    meta: dict

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    def predict(self, inputs, **kwargs):
        """``tanlib.inference.predict_inputs`` with this model; see there for the options."""
        from .predict import predict_inputs

        return predict_inputs(self, inputs, **kwargs)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load an exported model (``.pt`` or ``.onnx``): (model, transform, metadata).

    The torch model is in eval mode on ``device`` with ``requires_grad`` off, so
    ``model(transform("face.jpg")[None])`` needs no ``torch.no_grad()``. Every hash is
    checked; any problem raises ``CheckpointError`` naming the file."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise CheckpointError(f"{path} does not exist")
        check_name_hash(path, file_sha256(path))
        model = OnnxModel(path)
        meta = model.metadata()
    else:
        state, meta = read_weights(path)
        model = build_network(meta, state, source=str(path)).eval().to(device)
        model.requires_grad_(False)
    if not isinstance(meta.get("classes"), list) or len(meta["classes"]) != int(meta.get("num_classes", -1)):
        raise CheckpointError(f"{path}: metadata lacks a class list of num_classes names")
    transform = InferenceTransform.from_meta(meta.get("transform") or {}, source=str(path))
    return LoadedModel(model, transform, meta)


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LoadedModel",
    "OnnxModel",
    "build_network",
    "check_name_hash",
    "file_sha256",
    "hashed_path",
    "load_model",
    "name_hash",
    "read_weights",
    "stamp_meta",
    "state_dict_sha256",
    "weights_bytes",
]
