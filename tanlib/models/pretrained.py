"""Backbone weights: ``scratch``, torchvision ``imagenet`` weights, or a checkpoint file.

MS-Celeb-1M ResNet-18 weights, used by SCN, RAN and (most likely) TAN, circulate in two
layouts: ``{"state_dict": {"module.conv1.weight": ...}}`` (RAN/SCN's
``ijba_res18_naive.pth.tar``) and a plain torchvision state dict (DAN's
``resnet18_msceleb.pth``). SCN's published script loaded neither, because its keys never
matched and the mismatch was silent. Here keys are mapped (``module.``/``backbone.``/
``features.`` prefixes stripped, classifier ``fc.*`` ignored), the file is read with
``torch.load(..., weights_only=True)`` so it cannot run code, the loaded / missing /
unexpected counts are reported, and a file that fills under 90 % of the backbone's
tensors is refused.

A file may carry its provenance beside the state dict, ``{"state_dict": ...,
"provenance": {...}}``, as ``tan pretrain`` writes (docs/pretraining.md): the loader
ignores the extra key for the weights, checks the tensors against the provenance's
``weights_sha256`` (``weights_sha256``: a hash of names, dtypes, shapes and bytes) and keeps
the provenance on the ``LoadReport``. ``pretrained="synthface"`` names the cached
SynthFace-pretrained file of the backbone (``resolve_pretrained``).
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError

MIN_COVERAGE = 0.90
_PREFIXES = ("module.", "backbone.", "features.", "model.", "encoder.")


@dataclass
class LoadReport:
    """What a weight file contributed to a backbone."""

    source: str
    loaded: int
    missing: int
    unexpected: int
    total: int
    provenance: dict | None = None  # what the file says about how it was made, when it says

    @property
    def coverage(self) -> float:
        return self.loaded / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "loaded": self.loaded,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "total": self.total,
            "provenance": self.provenance,
        }

    def __str__(self) -> str:
        text = (
            f"{self.source}: loaded {self.loaded}/{self.total} backbone tensors "
            f"({100 * self.coverage:.1f} %), missing {self.missing}, unexpected {self.unexpected}"
        )
        p = self.provenance or {}
        if "heldout_identity_accuracy" in p:
            gen = p.get("generator", {})
            text += (
                f"; provenance: {p.get('made_by', 'unknown maker')}, {gen.get('identities', '?')} identities, "
                f"held-out identity accuracy {100 * p['heldout_identity_accuracy']:.1f} %, "
                f"weights sha256 {str(p.get('weights_sha256', '?'))[:16]}"
            )
        return text


SYNTHFACE = "synthface"


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's content: every tensor's name, dtype, shape and bytes, in
    name order. Independent of how the file was pickled, so a loader can recompute it."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}\t{t.dtype}\t{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def synthface_path(backbone: str = "resnet18", image_size: int = 64) -> Path:
    """Where ``tan pretrain`` caches its weights by default (under the project's ``data/``)."""
    from ..paths import project_path

    return project_path(f"data/pretrained/synthface-{backbone}-{image_size}px.pth")


def resolve_pretrained(value: str, backbone: str = "resnet18") -> str:
    """The file a ``pretrained`` value names: ``synthface`` is the cached default
    SynthFace-pretrained file of ``backbone`` (64 px, ``tan pretrain``'s default settings),
    refused with the command to run when it is missing or was made with other settings;
    any other value is returned as it is."""
    if value != SYNTHFACE:
        return value
    from ..engine.pretrain import check_default_synthface

    path = synthface_path(backbone)
    check_default_synthface(path, backbone)
    return str(path)


def safe_torch_load(path: str | Path, missing: str = "does not exist"):
    """``torch.load(path, weights_only=True)`` on the CPU, with every failure turned into a
    ``CheckpointError`` naming the file: missing, truncated or corrupt, or a pickle that
    would need code execution (always refused)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} {missing}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} was refused by torch.load(weights_only=True): loading it would execute code, "
            f"which the kit never allows ({str(exc).splitlines()[0]})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable torch checkpoint (truncated or corrupt?): {exc}") from None


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """Read a weight file safely: its tensor dict (unwrapping ``state_dict``) and its
    ``provenance`` dict (None when it has none). A provenance whose ``weights_sha256``
    does not match the tensors is refused: the file was altered after it was made."""
    obj = safe_torch_load(
        path,
        missing="does not exist; pass pretrained='scratch', 'imagenet', 'synthface' or the path of a ResNet state dict",
    )
    provenance = obj.get("provenance") if isinstance(obj, dict) and isinstance(obj.get("provenance"), dict) else None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    expected = (provenance or {}).get("weights_sha256")
    if expected is not None and expected != weights_sha256(obj):
        raise CheckpointError(
            f"{path}: its tensors hash to {weights_sha256(obj)[:16]}..., but its provenance "
            f"records weights_sha256 {str(expected)[:16]}...; the file was altered after it "
            "was made (make it again with `tan pretrain`)"
        )
    return obj, provenance


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weight file safely and return its tensor dict (unwrapping ``state_dict``)."""
    return read_weights(path)[0]


def map_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes so keys read like a torchvision ResNet's."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> LoadReport:
    """Load a checkpoint into ``backbone`` (a torchvision ResNet without its ``fc``).

    Only tensors whose mapped name and shape match are loaded; ``fc.*`` (the source
    model's classifier) is not counted as unexpected. Raises ``CheckpointError`` when
    fewer than 90 % of the backbone's tensors would be filled.
    """
    raw, provenance = read_weights(path)
    source = map_keys(raw)
    target = backbone.state_dict()
    usable = {k: v for k, v in source.items() if k in target and v.shape == target[k].shape}
    unexpected = [k for k in source if k not in usable and not k.startswith("fc.")]
    report = LoadReport(
        source=str(path),
        loaded=len(usable),
        missing=len(target) - len(usable),
        unexpected=len(unexpected),
        total=len(target),
        provenance=provenance,
    )
    if report.coverage < MIN_COVERAGE:
        example = ", ".join(sorted(unexpected)[:3]) or "none"
        raise CheckpointError(
            f"refusing {report}: under {100 * MIN_COVERAGE:.0f} % of the backbone would be "
            f"initialised (example unmatched keys: {example}); is it a checkpoint of another "
            "architecture?"
        )
    backbone.load_state_dict(usable, strict=False)
    return report


def imagenet_weights(arch: str):
    """torchvision's ImageNet weights enum for ``arch``, loaded from the local cache or the
    network; offline with an empty cache it fails with instructions."""
    import torchvision

    weights = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # URLError, socket errors, hash errors
        cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        raise CheckpointError(
            f"could not get torchvision's ImageNet weights for {arch} ({type(exc).__name__}: {exc}). "
            f"Offline, download {weights.url} on a connected machine and place it at {cache}, "
            "or pass pretrained=/path/to/weights.pth"
        ) from None
