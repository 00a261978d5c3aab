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
"""

from __future__ import annotations

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

    @property
    def coverage(self) -> float:
        return self.loaded / self.total if self.total else 0.0

    def __str__(self) -> str:
        return (
            f"{self.source}: loaded {self.loaded}/{self.total} backbone tensors "
            f"({100 * self.coverage:.1f} %), missing {self.missing}, unexpected {self.unexpected}"
        )


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


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weight file safely and return its tensor dict (unwrapping ``state_dict``)."""
    obj = safe_torch_load(path, missing="does not exist; pass pretrained='scratch', 'imagenet', "
                                        "or the path of a ResNet state dict")
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return obj


def map_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes so keys read like a torchvision ResNet's."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> LoadReport:
    """Load a checkpoint into ``backbone`` (a torchvision ResNet without its ``fc``).

    Only tensors whose mapped name and shape match are loaded; ``fc.*`` (the source
    model's classifier) is not counted as unexpected. Raises ``CheckpointError`` when
    fewer than 90 % of the backbone's tensors would be filled.
    """
    source = map_keys(read_state_dict(path))
    target = backbone.state_dict()
    usable = {k: v for k, v in source.items() if k in target and v.shape == target[k].shape}
    unexpected = [k for k in source if k not in usable and not k.startswith("fc.")]
    report = LoadReport(
        source=str(path),
        loaded=len(usable),
        missing=len(target) - len(usable),
        unexpected=len(unexpected),
        total=len(target),
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
