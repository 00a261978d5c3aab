"""What a training run reads (docs/training.md): its images, labels and batch order.

This module owns the training inputs: the run's manifest (``prepare_manifest``: SynthFER
generated on first use, validated, the seeded ``max_train_samples`` subset), its train,
val and test frames (``split_frames``), every split decoded once into uint8 tensors
(``decode_images``), the index batches of an epoch, a pure function of (seed, epoch)
(``epoch_batches``), and the reference-style per-sample PIL input pipeline
(``pil_loader``). ``engine/train.py`` trains on them.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import Config
from ..errors import DataError

DATA_SPLIT_SEED = 0  # the validation split and subsets are the same for every run seed


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
    from ..data import build_manifest
    from ..data.prepare import SYNTHFER_DEFAULTS, generate_atomically
    from ..paths import project_path

    root = Path(config.root)
    if config.dataset == "synthfer" and not root.exists():
        # the scale's own location (data/synthfer-calibrated) gets the scale's size, checked
        scale = dict(SYNTHFER_DEFAULTS.get(config.scale, SYNTHFER_DEFAULTS["quick"]))
        own = project_path(scale.pop("root")) == project_path(root)
        sizes = {k.removeprefix("synth_"): v for k, v in scale.items()} if own else {}
        log(f"SynthFER not found at {root}; generating it there ({sizes or 'the default dataset'}, seed 0)")
        generate_atomically(root, sizes, check=own)
    manifest = build_manifest(
        config.dataset,
        root,
        val_fraction=config.val_fraction,
        seed=DATA_SPLIT_SEED,
        protocol=config.protocol,
        skip_problems=config.skip_bad_data,
        class_names=config.class_names,
        cache_dir=config.cache_dir,
        train_label_file=config.noisy_train_labels,
    )
    if config.max_train_samples:
        frame = manifest.frame
        train = _subset(frame[frame["split"] == "train"], config.max_train_samples, DATA_SPLIT_SEED)
        manifest.frame = pd.concat([train, frame[frame["split"] != "train"]]).reset_index(drop=True)
    return manifest


def split_frames(manifest, config: Config) -> dict[str, pd.DataFrame]:
    """The train, val and test frames, refusing a class count the config cannot train or no training image."""
    config.check_classes(len(manifest.classes), f"{config.dataset} at {config.root}")
    frames = {s: manifest.split(s) for s in ("train", "val", "test")}
    if not len(frames["train"]):
        raise DataError(f"{config.dataset} at {config.root} has no training images")
    return frames


def decode_images(config: Config, frames: dict, device: torch.device, log) -> tuple[dict, torch.Tensor | None]:
    """Every split decoded once (uint8 tensors), and the training images on the training device
    (``None`` with ``data_pipeline='pil'``, which decodes the training split every epoch)."""
    from ..data import load_images

    t0 = time.time()
    pil = config.data_pipeline == "pil"  # per-sample PIL decode + transforms every epoch (reference style)
    images = {
        s: load_images(f, config.image_size, cache_dir=config.cache_dir)
        for s, f in frames.items()
        if len(f) and not (pil and s == "train")
    }
    log(f"decoded {sum(len(v) for v in images.values())} images at {config.image_size} px in {time.time() - t0:.1f} s")
    if pil:
        return images, None
    return images, images["train"].to(device) if device.type == "cuda" else images["train"]


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
    batches = [order[i : i + bs] for i in range(0, usable, bs)]
    if world > 1:
        batches = [b[: (len(b) // world) * world] for b in batches if len(b) >= world]
    return batches


def pil_loader(
    frame: pd.DataFrame, batches: list[torch.Tensor], config: Config, epoch: int, rank: int = 0, world: int = 1
):
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
    return DataLoader(
        ManifestDataset(frame, transform),
        batch_sampler=local,
        num_workers=config.num_workers,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=torch.cuda.is_available(),
    )
