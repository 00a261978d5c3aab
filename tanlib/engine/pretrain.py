"""Identity pretraining on SynthFace, the offline MS-Celeb-1M stand-in: ``tan pretrain``.

TAN, SCN and RAN fine-tune a ResNet-18 that was first trained to recognise the identities
of MS-Celeb-1M. ``pretrain`` does the same offline: it trains the backbone to classify the
identities of SynthFace (``tanlib.data.synthface``, identities disjoint from every SynthFER
dataset) and writes the backbone's weights in the plain torchvision layout (no ``fc``),
the layout of DAN's ``resnet18_msceleb.pth``, so the file goes through the same loader as
an MS-Celeb file (``tanlib.models.pretrained``: key mapping, the 90 % rule,
``weights_only``). The file is ``{"state_dict": ..., "provenance": ...}``: the generator
settings, this config, the per-epoch history, the held-out identity accuracy and the
SHA-256 of the weights (``weights_sha256``), also written beside it as ``<file>.json``
with the SHA-256 of the file itself.

Network: backbone -> pooled h -> ``Linear + BatchNorm1d`` (the embedding, as ArcFace's
output block) -> the identity loss (``loss``):

* ``ce`` (default): a linear classifier and softmax cross-entropy; in the calibration of
  docs/pretraining.md it learnt the identities fastest within the 15-minute budget;
* ``cosface``: CosFace, Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face
  Recognition", CVPR 2018: softmax over ``s * (cos(theta_j) - m [j = y])``, m = 0.35,
  s = 64 (the paper's values), pytorch-metric-learning's ``CosFaceLoss``;
* ``arcface``: ArcFace, Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face
  Recognition", CVPR 2019: ``s * cos(theta_y + m)``, m = 28.6 degrees (0.5 rad), s = 64,
  pytorch-metric-learning's ``ArcFaceLoss``.

The margin losses hold their class weights W inside the loss module; they are optimised
with the network.

Held-out identity accuracy: the last ``heldout_per_identity`` images of every identity are
never trained on; each is assigned the class with the largest logit (the cosine to W for
the margin losses, whose argmax is the margin-free decision) and compared with its identity.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import _choice, _coerce, _range, parse_set
from ..errors import CheckpointError, ConfigError, NonFiniteLossError, RunDirError
from .train import resolve_device, restores_torch_threads

LOSSES = ("ce", "cosface", "arcface")
#: The papers' margins: CosFace's cosine margin, ArcFace's angular margin in degrees (PML's unit).
DEFAULT_MARGIN = {"cosface": 0.35, "arcface": 28.6}
#: How the pretraining executes, not what it computes: not part of "the default settings".
RUNTIME_KEYS = frozenset({"device", "num_threads", "render_workers", "progress"})
MADE_BY = "tan pretrain (SynthFace identity pretraining)"


@dataclass
class PretrainConfig:
    """Every setting of a pretraining. The defaults fit 15 minutes on 2 CPU cores at the
    quick preset's 64 px (the arithmetic: docs/pretraining.md, "Cost")."""

    backbone: str = "resnet18"
    # --- the SynthFace set (tanlib.data.synthface)
    identities: int = 1000
    images_per_identity: int = 10
    heldout_per_identity: int = 2
    image_size: int = 64
    render_size: int = 100
    occluder_fraction: float = 0.2
    intensity_floor: float = 0.35
    resting_bias: float = 0.05
    blend_fraction: float = 0.25
    # --- the identity loss
    loss: str = "ce"
    margin: float | None = None  # None: the paper's (DEFAULT_MARGIN)
    scale: float = 64.0  # the margin losses' s; ignored by ce
    embedding_dim: int = 256
    # --- optimisation: Adam with a per-step cosine schedule, the kit's flip + RandomErasing
    seed: int = 0
    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    hflip: bool = True
    erasing_p: float = 0.5
    channels_last: bool = True
    # --- execution
    device: str = "auto"
    num_threads: int = 0
    render_workers: int = 0  # 0: one per core (up to 8)
    progress: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown pretraining key(s) {unknown}; known keys are: {', '.join(sorted(known))}")
        config = cls(**{k: _coerce(k, v, known[k]) for k, v in data.items()})
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def resolved_margin(self) -> float | None:
        return None if self.loss == "ce" else (self.margin if self.margin is not None else DEFAULT_MARGIN[self.loss])

    def validate(self) -> None:
        from ..config import BACKBONES

        _choice("backbone", self.backbone, BACKBONES)
        _choice("loss", self.loss, LOSSES)
        for name, low in (
            ("identities", 2),
            ("images_per_identity", 2),
            ("heldout_per_identity", 1),
            ("image_size", 32),
            ("render_size", 32),
            ("embedding_dim", 2),
            ("epochs", 1),
            ("batch_size", 2),
            ("seed", 0),
            ("num_threads", 0),
            ("render_workers", 0),
        ):
            _range(name, getattr(self, name), low=low)
        if self.heldout_per_identity >= self.images_per_identity:
            raise ConfigError(
                f"heldout_per_identity={self.heldout_per_identity} must be below "
                f"images_per_identity={self.images_per_identity}: every identity needs training images"
            )
        _range(
            "seed",
            self.seed,
            low=0,
            high=2**32,
            high_open=True,
            why="SynthFace keys must stay three 32-bit words (tanlib/data/synthface.py)",
        )
        for name in ("occluder_fraction", "erasing_p", "blend_fraction", "resting_bias"):
            _range(name, getattr(self, name), low=0, high=1)
        _range("intensity_floor", self.intensity_floor, low=0, high=1, high_open=True)
        _range("lr", self.lr, low=0, low_open=True)
        _range("weight_decay", self.weight_decay, low=0)
        _range("scale", self.scale, low=0, low_open=True)
        if self.margin is not None:
            _range("margin", self.margin, low=0)
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"device={self.device!r} is not allowed; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


class IdentityHead(nn.Module):
    """Embedding -> identity loss and logits; the margin losses are pytorch-metric-learning's,
    which keep the class weights W (embedding_dim x classes) as their own parameter."""

    def __init__(self, loss: str, num_classes: int, embedding_dim: int, margin: float | None, scale: float):
        super().__init__()
        from pytorch_metric_learning.losses import ArcFaceLoss, CosFaceLoss

        self.kind = loss
        if loss == "ce":
            self.fc = nn.Linear(embedding_dim, num_classes)
            self.criterion = nn.CrossEntropyLoss()
        else:
            cls = CosFaceLoss if loss == "cosface" else ArcFaceLoss
            self.criterion = cls(num_classes=num_classes, embedding_size=embedding_dim, margin=margin, scale=scale)

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.kind == "ce":
            return self.criterion(self.fc(embedding), labels)
        return self.criterion(embedding, labels)

    def logits(self, embedding: torch.Tensor) -> torch.Tensor:
        """Class scores without the margin (the margin is for training only)."""
        return self.fc(embedding) if self.kind == "ce" else self.criterion.get_logits(embedding)


def build_pretrain_network(config: PretrainConfig, num_classes: int) -> tuple[nn.Module, nn.Module, IdentityHead]:
    """The backbone (exactly ``TANNet``'s, so its keys are the loader's), the embedding
    block and the identity head."""
    from ..models import TANNet

    model = TANNet(1, backbone=config.backbone, embedding_dim=0, attention=False)
    backbone = model.backbone
    neck = nn.Sequential(nn.Linear(model.feature_dim, config.embedding_dim), nn.BatchNorm1d(config.embedding_dim))
    head = IdentityHead(config.loss, num_classes, config.embedding_dim, config.resolved_margin, config.scale)
    return backbone, neck, head


@torch.no_grad()
def identity_accuracy(
    net: nn.Module,
    head: IdentityHead,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    channels_last: bool = False,
    batch_size: int = 256,
) -> float:
    """Share of ``images`` (uint8) whose largest class score is their identity."""
    from ..data import BatchAugment

    norm = BatchAugment(flip=False, erasing_p=0.0)
    net.eval()
    head.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        x = norm(images[i : i + batch_size].to(device), train=False)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        correct += int((head.logits(net(x)).argmax(1).cpu() == labels[i : i + batch_size]).sum())
    return correct / max(len(images), 1)


@restores_torch_threads
def pretrain(config: PretrainConfig, out: str | Path, overwrite: bool = False, log=print) -> dict:
    """Render SynthFace, train the backbone on its identities, write the weights file
    ``out`` (and ``<out>.json``); return the provenance."""
    from tqdm.auto import tqdm

    from ..atomicio import atomic_write_json
    from ..data import BatchAugment
    from ..data.synthface import plan_synthface, render_synthface, synthface_settings
    from ..models.pretrained import weights_sha256
    from .checkpoint import save_checkpoint
    from .rundir import environment

    out = Path(out)
    if out.exists() and not overwrite:
        raise RunDirError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
    started = time.perf_counter()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    device = resolve_device(config)

    c = config
    plan = plan_synthface(c.identities, c.images_per_identity, c.heldout_per_identity, c.seed)
    n_train = int((plan["split"] == "train").sum())
    log(
        f"[pretrain] SynthFace: {c.identities} identities x {c.images_per_identity} images "
        f"({c.heldout_per_identity} held out each), {c.epochs} epochs over {n_train} images = "
        f"{c.epochs * n_train} training images at {c.image_size} px, loss {c.loss}"
    )
    t0 = time.perf_counter()
    images, meta = render_synthface(
        plan,
        c.seed,
        c.image_size,
        c.render_size,
        c.occluder_fraction,
        c.intensity_floor,
        c.resting_bias,
        c.blend_fraction,
        workers=c.render_workers or None,
    )
    render_seconds = time.perf_counter() - t0
    log(f"[pretrain] rendered {len(images)} images in {render_seconds:.1f} s")
    train_rows = torch.tensor((meta["split"] == "train").to_numpy())
    identity = torch.tensor(meta["identity"].to_numpy(), dtype=torch.long)
    x_train, y_train = images[train_rows], identity[train_rows]
    x_held, y_held = images[~train_rows], identity[~train_rows]
    if device.type == "cuda":
        x_train = x_train.to(device)

    backbone, neck, head = build_pretrain_network(c, c.identities)
    net = nn.Sequential(backbone, neck).to(device)
    head = head.to(device)
    if c.channels_last:
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(list(net.parameters()) + list(head.parameters()), lr=c.lr, weight_decay=c.weight_decay)
    steps_per_epoch = len(x_train) // c.batch_size if len(x_train) >= c.batch_size else 1
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(c.epochs * steps_per_epoch, 1))
    aug = BatchAugment(flip=c.hflip, erasing_p=c.erasing_p)
    gen_device = device if device.type == "cuda" else torch.device("cpu")

    history = []
    for epoch in range(1, c.epochs + 1):
        t_epoch = time.perf_counter()
        net.train()
        head.train()
        g = torch.Generator().manual_seed(c.seed * 100_003 + epoch)
        order = torch.randperm(len(x_train), generator=g)
        batches = [order[i : i + c.batch_size] for i in range(0, steps_per_epoch * c.batch_size, c.batch_size)]
        aug_gen = torch.Generator(device=gen_device).manual_seed(c.seed * 100_003 + epoch)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)  # sums stay on the device: no sync per step
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        bar = tqdm(
            batches, desc=f"pretrain epoch {epoch}/{c.epochs}", disable=not c.progress, leave=False, mininterval=2.0
        )
        for idx in bar:
            x = aug(x_train[idx.to(x_train.device)].to(device), generator=aug_gen)
            if c.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = y_train[idx].to(device)
            emb = net(x)
            loss = head(emb, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                loss_sum += loss.detach().double()
                correct += (head.logits(emb).argmax(1) == y).sum()
                seen += len(y)
        seconds = time.perf_counter() - t_epoch
        if not torch.isfinite(loss_sum):
            raise NonFiniteLossError(
                f"the pretraining loss became {float(loss_sum)} in epoch {epoch}; lower lr "
                f"(now {c.lr}) or scale (now {c.scale})"
            )
        row = {
            "epoch": epoch,
            "loss": float(loss_sum) / max(len(batches), 1),
            "train_acc": int(correct) / max(seen, 1),
            "seconds": round(seconds, 2),
            "images_per_s": round(seen / max(seconds, 1e-9), 1),
        }
        history.append(row)
        log(
            f"[pretrain] epoch {epoch}/{c.epochs}  loss {row['loss']:.4f}  train identity acc "
            f"{row['train_acc']:.3f}  {seconds:.1f} s ({row['images_per_s']:.0f} images/s)"
        )

    held_acc = identity_accuracy(net, head, x_held, y_held, device, c.channels_last)
    log(
        f"[pretrain] held-out identity accuracy {100 * held_acc:.1f} % on {len(x_held)} images of the "
        f"{c.identities} identities (chance {100 / c.identities:.2f} %)"
    )

    state = {k: v.detach().cpu().contiguous().clone() for k, v in backbone.state_dict().items()}
    provenance = {
        "made_by": MADE_BY,
        "generator": synthface_settings(
            c.identities,
            c.images_per_identity,
            c.heldout_per_identity,
            c.seed,
            c.image_size,
            c.render_size,
            c.occluder_fraction,
            c.intensity_floor,
            c.resting_bias,
            c.blend_fraction,
        ),
        "training": c.to_dict(),
        "loss": {"name": c.loss, "margin": c.resolved_margin, "scale": None if c.loss == "ce" else c.scale},
        "heldout_identity_accuracy": held_acc,
        "heldout_images": len(x_held),
        "chance": 1 / c.identities,
        "history": history,
        "render_seconds": round(render_seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
        "layout": "state_dict: torchvision ResNet keys without fc (the keys of DAN's resnet18_msceleb.pth)",
        "weights_sha256": weights_sha256(state),
        "environment": {**environment(), "device": str(device)},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    provenance = json.loads(json.dumps(provenance))  # plain JSON types only: weights_only loads them
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, {"state_dict": state, "provenance": provenance})
    sidecar = {**provenance, "file": out.name, "file_sha256": hashlib.sha256(out.read_bytes()).hexdigest()}
    atomic_write_json(sidecar_path(out), sidecar)
    log(
        f"[pretrain] wrote {out} (weights sha256 {provenance['weights_sha256'][:16]}..., provenance in "
        f"{sidecar_path(out).name}) in {provenance['seconds']:.0f} s"
    )
    return provenance


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def default_out(backbone: str = "resnet18", image_size: int = 64) -> Path:
    from ..models.pretrained import synthface_path

    return synthface_path(backbone, image_size)


def check_default_synthface(path: str | Path, backbone: str = "resnet18") -> None:
    """Refuse ``path`` as the ``synthface`` weights unless it exists and was made by
    ``tan pretrain`` with the default settings for ``backbone`` (runtime keys aside)."""
    from ..models.pretrained import read_weights

    path = Path(path)
    command = "tan pretrain" + (f" --set backbone={backbone}" if backbone != "resnet18" else "")
    if not path.is_file():
        raise CheckpointError(
            f"pretrained='synthface' names {path}, which does not exist yet; make it with `{command}` (default "
            "settings, about 9 minutes on 2 idle CPU cores; docs/pretraining.md), or let `tan run ... --set "
            "pretrained=synthface` make it first, or pass pretrained=<path of a weights file>"
        )
    provenance = read_weights(path)[1]
    if not provenance or provenance.get("made_by") != MADE_BY:
        raise CheckpointError(
            f"{path} has no `tan pretrain` provenance, so it is not the synthface weights; "
            f"remove it and run `{command}`, or pass it as pretrained={path}"
        )
    wanted = PretrainConfig(backbone=backbone).to_dict()
    made = provenance.get("training", {})
    diff = {k: (made.get(k), v) for k, v in wanted.items() if k not in RUNTIME_KEYS and made.get(k) != v}
    if diff:
        shown = ", ".join(f"{k}: {a!r} there vs {b!r} by default" for k, (a, b) in sorted(diff.items()))
        raise CheckpointError(
            f"{path} was made with other settings than the default synthface pretraining "
            f"({shown}); pass it as pretrained={path}, or make the default file with "
            f"`{command} --overwrite`"
        )


def ensure_synthface(backbone: str = "resnet18", log=print) -> Path:
    """The default ``synthface`` weights of ``backbone``: checked when cached, made (with a
    log line saying so) when missing."""
    path = default_out(backbone)
    if not path.is_file():
        log(
            f"[pretrain] pretrained=synthface: {path} is missing; making it now with the default `tan pretrain` "
            "(about 9 minutes on 2 idle CPU cores; docs/pretraining.md)"
        )
        pretrain(PretrainConfig(backbone=backbone), path, log=log)
    check_default_synthface(path, backbone)
    return path


def _cmd_pretrain(args) -> int:
    config = PretrainConfig.from_dict(parse_set(args.set))
    out = Path(args.out) if args.out else default_out(config.backbone, config.image_size)
    provenance = pretrain(config, out, overwrite=args.overwrite)
    print(
        f"{out}: held-out identity accuracy {100 * provenance['heldout_identity_accuracy']:.1f} % "
        f"({provenance['heldout_images']} images, chance {100 * provenance['chance']:.2f} %); "
        f"use it with --set pretrained={out}"
        + (" or pretrained=synthface" if out == default_out(config.backbone) and _is_default(config) else "")
    )
    return 0


def _is_default(config: PretrainConfig) -> bool:
    wanted = PretrainConfig(backbone=config.backbone).to_dict()
    return all(v == wanted[k] for k, v in config.to_dict().items() if k not in RUNTIME_KEYS)


def register(subparsers) -> None:
    """Add ``tan pretrain`` to the ``tan`` command."""
    keys = ", ".join(f.name for f in fields(PretrainConfig))
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain the backbone on SynthFace identities (the offline MS-Celeb-1M stand-in)",
        description="Train the backbone to recognise SynthFace identities (disjoint from every SynthFER "
        "dataset) with softmax cross-entropy (default), CosFace or ArcFace, and write its weights with their "
        "provenance; "
        "load them with --set pretrained=FILE, or pretrained=synthface for the default file "
        "(docs/pretraining.md).",
    )
    p.add_argument(
        "--out",
        default=None,
        help="weights file to write (default: data/pretrained/"
        "synthface-<backbone>-<image_size>px.pth, which pretrained=synthface loads)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a pretraining setting (repeatable); keys: {keys}",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=_cmd_pretrain)


__all__ = [
    "PretrainConfig",
    "IdentityHead",
    "pretrain",
    "identity_accuracy",
    "check_default_synthface",
    "ensure_synthface",
    "sidecar_path",
    "default_out",
    "register",
    "LOSSES",
]
