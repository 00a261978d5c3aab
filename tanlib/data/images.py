"""Image loading, augmentation and the per-sample Dataset over a manifest (torch).

Files become pixels in ``decode`` (``read_rgb``, ``decode_images``). ``load_images`` decodes and resizes
every image of a manifest once into one uint8 tensor (optionally cached on disk as
.npy); ``BatchAugment`` then applies the paper's train augmentation (horizontal flip,
normalisation, RandomErasing) to whole batches, vectorised and deterministic given a
torch Generator. ``ManifestDataset`` with ``train_transforms`` / ``eval_transforms`` is
the plain per-sample alternative on torchvision.transforms.v2. ``m_per_class_sampler``
wraps PML's MPerClassSampler.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .decode import decode_images, read_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _cache_key(paths: list[str], size: int) -> str:
    h = hashlib.sha256(f"size={size}\n".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def load_images(
    frame: pd.DataFrame, size: int = 64, cache_dir: str | Path | None = None, workers: int = 4
) -> torch.Tensor:
    """Decode the images of ``frame['path']`` once: uint8 tensor (N, 3, size, size).

    With ``cache_dir`` the array is stored as ``images_<hash>.npy``, the hash covering the
    paths, their sizes and modification times and ``size``, and reused when it matches.
    """
    paths = [str(p) for p in frame["path"]]
    cache = None
    if cache_dir is not None:
        try:
            cache = Path(cache_dir) / f"images_{_cache_key(paths, size)}.npy"
        except FileNotFoundError as exc:
            raise DataError(f"image listed in the manifest is missing: {exc.filename}") from None
        if cache.is_file():
            return torch.from_numpy(np.load(cache))
    arr = decode_images(paths, size, workers)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")  # one per process: concurrent runs may share a cache
        np.save(tmp, arr)
        tmp.replace(cache)
    return torch.from_numpy(arr)


class BatchAugment:
    """Batch version of flip + ToDtype + Normalize + RandomErasing (torchvision semantics).

    ``aug(x_uint8, generator, train)`` returns float32 normalised (N, 3, H, W) on ``x``'s
    device. All random draws come from ``generator`` (on its own device) in a fixed order,
    so the output is a function of the generator state alone.
    """

    def __init__(
        self,
        flip: bool = True,
        erasing_p: float = 0.5,
        erasing_scale=(0.02, 0.25),
        erasing_ratio=(0.3, 3.3),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        attempts: int = 10,
    ):
        self.flip, self.erasing_p, self.attempts = flip, erasing_p, attempts
        self.scale, self.ratio = tuple(erasing_scale), tuple(erasing_ratio)
        self.mean, self.std = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().div_(255)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None, train: bool = True) -> torch.Tensor:
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise DataError(f"BatchAugment expects a uint8 (N, 3, H, W) batch, got {x.dtype} {tuple(x.shape)}")
        out = self.normalise(x)
        if not train:
            return out
        n, _, h, w = x.shape
        gdev = generator.device if generator is not None else torch.device("cpu")

        def rand(*shape):
            return torch.rand(*shape, generator=generator, device=gdev).to(x.device)

        if self.flip:
            flip = rand(n) < 0.5
            out = torch.where(flip.view(n, 1, 1, 1), out.flip(-1), out)
        if self.erasing_p > 0:
            erase = rand(n) < self.erasing_p
            area = h * w * (self.scale[0] + (self.scale[1] - self.scale[0]) * rand(n, self.attempts))
            lo, hi = math.log(self.ratio[0]), math.log(self.ratio[1])
            aspect = torch.exp(lo + (hi - lo) * rand(n, self.attempts))
            eh = torch.round(torch.sqrt(area * aspect)).long()
            ew = torch.round(torch.sqrt(area / aspect)).long()
            valid = (eh < h) & (ew < w)
            first = torch.argmax(valid.int(), dim=1, keepdim=True)  # first valid attempt
            ok = erase & valid.gather(1, first).squeeze(1)
            eh, ew = eh.gather(1, first).squeeze(1), ew.gather(1, first).squeeze(1)
            top = (rand(n) * (h - eh + 1).clamp(min=1)).long()
            left = (rand(n) * (w - ew + 1).clamp(min=1)).long()
            rows = torch.arange(h, device=x.device).view(1, h)
            cols = torch.arange(w, device=x.device).view(1, w)
            in_r = (rows >= top[:, None]) & (rows < (top + eh)[:, None])
            in_c = (cols >= left[:, None]) & (cols < (left + ew)[:, None])
            mask = (in_r[:, :, None] & in_c[:, None, :] & ok.view(n, 1, 1)).unsqueeze(1)
            noise = torch.randn(n, 3, h, w, generator=generator, device=gdev).to(x.device)
            out = torch.where(mask, noise, out)
        return out


def train_transforms(size: int = 64, mean=IMAGENET_MEAN, std=IMAGENET_STD, erasing_p: float = 0.5):
    """Per-sample train preset: resize, random flip, normalise, RandomErasing(0.02-0.25)."""
    from torchvision.transforms import v2  # imported on use: torchvision takes seconds to import

    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((size, size), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
            v2.RandomErasing(p=erasing_p, scale=(0.02, 0.25), value="random"),
        ]
    )


def eval_transforms(size: int = 64, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Per-sample eval preset: resize and normalise."""
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((size, size), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


class ManifestDataset(Dataset):
    """Images of a manifest frame; ``__getitem__`` -> (image tensor, label, index)."""

    def __init__(self, frame: pd.DataFrame, transform=None, cache: bool = False):
        self.paths = [str(p) for p in frame["path"]]
        self.labels = [int(v) for v in frame["label"]]
        self.transform = transform if transform is not None else eval_transforms()
        self.cache = {} if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        if self.cache is not None and index in self.cache:
            img = self.cache[index]
        else:
            img = read_rgb(self.paths[index])
            if self.cache is not None:
                self.cache[index] = img
        return self.transform(img), self.labels[index], index


def m_per_class_sampler(labels, m: int, batch_size: int, length_before_new_iter: int | None = None):
    """PML's MPerClassSampler: every batch holds m samples of each class it contains."""
    from pytorch_metric_learning.samplers import MPerClassSampler

    labels = np.asarray(labels)
    if batch_size % m:
        raise DataError(f"batch_size {batch_size} must be a multiple of m={m} for m-per-class sampling")
    length = length_before_new_iter or len(labels)
    return MPerClassSampler(labels, m=m, batch_size=batch_size, length_before_new_iter=length)
