"""Image decoding, loading, augmentation and the per-sample Dataset over a manifest.

``decode_rgb`` is the one place an image file becomes pixels, for the checker
(``problems.check_image``), ``load_images`` and ``ManifestDataset`` alike. Whatever is
wrong with a file becomes an ``ImageProblem`` (a ``DataError``) with a problem kind,
never a traceback: ``missing``, ``empty_file``, ``unreadable``, ``not_image`` (content
that is not JPEG, PNG, BMP or WebP, whatever the extension says), ``too_large`` (more
pixels than ``max_image_pixels()``: decompression bombs), ``truncated`` (corrupt data)
and ``unsupported_mode``. The format is read from the content, so a PNG named ``.jpg``
is read as PNG. ``to_rgb`` turns every pixel format into 8-bit RGB: grey, 1-bit,
palette and CMYK are converted; 16-bit images keep their high byte (value >> 8);
transparency (RGBA, LA, palette or grey with a transparent colour) is composited onto
white. EXIF orientation tags are not applied (the aligned face crops have none).

``load_images`` decodes and resizes every image of a manifest once into one uint8
tensor (optionally cached on disk as .npy); ``BatchAugment`` then applies the paper's
train augmentation (horizontal flip, normalisation, RandomErasing) to whole batches,
vectorised and deterministic given a torch Generator. ``ManifestDataset`` with
``train_transforms`` / ``eval_transforms`` is the plain per-sample alternative on
torchvision.transforms.v2. ``m_per_class_sampler`` wraps PML's MPerClassSampler.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Largest image accepted, in pixels (width x height), checked from the header before any
#: pixel is decoded: a bigger file is a ``too_large`` problem (a decompression bomb, or a
#: photo far larger than a face crop). The environment variable ``TAN_MAX_IMAGE_PIXELS``
#: overrides it; see data/README.md.
MAX_IMAGE_PIXELS = 40_000_000
MAX_PIXELS_ENV = "TAN_MAX_IMAGE_PIXELS"
#: Formats PIL may decode (by content, not extension); MPO is how PIL names many camera JPEGs.
#: Every other format PIL knows (GIF, TIFF, EPS, PDF, ...) is refused as ``not_image``.
IMAGE_FORMATS = ("JPEG", "MPO", "PNG", "BMP", "WEBP")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_WHITE = (255, 255, 255)


class ImageProblem(DataError):
    """An image file that cannot be used; ``kind`` is its problem kind (see PROBLEM_KINDS)."""

    def __init__(self, kind: str, message: str | None = None):
        if message is None:  # rebuilt from its text alone, as a DataLoader worker's error is
            kind, message = "unreadable", kind
        super().__init__(message)
        self.kind = kind

    def __reduce__(self):
        return type(self), (self.kind, str(self))


def max_image_pixels() -> int:
    """The pixel limit in force: ``TAN_MAX_IMAGE_PIXELS`` when set, else ``MAX_IMAGE_PIXELS``.
    PIL's own bomb limit is raised to it when it is lower, so that the kit's limit decides."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        limit = MAX_IMAGE_PIXELS
    else:
        try:
            limit = int(text.replace("_", ""))
        except ValueError:
            limit = 0
        if limit < 1:
            raise ConfigError(f"{MAX_PIXELS_ENV}={text!r} is not allowed; expected a positive whole number of "
                              f"pixels (width x height), e.g. {MAX_IMAGE_PIXELS}")
    if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit
    return limit


@functools.lru_cache(maxsize=None)
def _formats() -> tuple[str, ...]:
    Image.init()  # every plugin registered: Image.open(formats=...) fails on a format not loaded yet
    return tuple(f for f in IMAGE_FORMATS if f in Image.OPEN)


def _flatten_alpha(rgba: Image.Image) -> Image.Image:
    out = Image.new("RGB", rgba.size, _WHITE)
    out.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
    return out


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB of any decoded image (see the module docstring for each pixel format)."""
    mode = im.mode
    if mode in _SIXTEEN_BIT:
        high = np.clip(np.asarray(im).astype(np.int64) >> 8, 0, 255).astype(np.uint8)  # 0..65535 -> 0..255
        return Image.fromarray(high, "L").convert("RGB")
    if mode == "F":
        return Image.fromarray(np.clip(np.asarray(im), 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        return _flatten_alpha(im.convert("RGBA"))
    return im.convert("RGB")  # a copy also when already RGB: independent of the file


def decode_rgb(path: str | Path, size: int | None = None) -> Image.Image:
    """Decode the image file at ``path`` to 8-bit RGB, resized to size x size when given.

    Raises ``ImageProblem`` (kind and message naming the file) for anything that keeps
    the file from being used; see the module docstring for the kinds."""
    limit = max_image_pixels()
    try:
        nbytes = os.stat(path).st_size
    except FileNotFoundError:
        raise ImageProblem("missing", f"image file {path} does not exist") from None
    except OSError as exc:
        raise ImageProblem("unreadable", f"cannot read {path}: {exc.strerror or exc}") from None
    if nbytes == 0:
        raise ImageProblem("empty_file", f"image file {path} is empty (0 bytes)")
    try:
        with Image.open(path, formats=_formats()) as im:
            width, height = im.size
            if width * height > limit:
                raise ImageProblem("too_large", _too_large(path, im.format, width, height, limit))
            if size is not None and im.format in ("JPEG", "MPO"):
                im.draft("RGB", (size, size))  # DCT-domain downscale, never below size
            im.load()
            try:
                rgb = to_rgb(im)
            except (ValueError, TypeError) as exc:
                raise ImageProblem("unsupported_mode", f"image {path} has pixel format {im.mode!r}, which cannot "
                                                       f"be converted to RGB ({exc})") from None
            if size is not None and rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
            return rgb
    except ImageProblem:
        raise
    except Image.DecompressionBombError as exc:  # PIL's own check, at twice its limit (never below the kit's)
        raise ImageProblem("too_large", f"image {path} is over the limit of {limit:,} pixels ({exc}); raise "
                                        f"{MAX_PIXELS_ENV} if such images are wanted") from None
    except UnidentifiedImageError:
        raise ImageProblem("not_image", f"{path} is not an image file (expected JPEG, PNG, BMP or WebP content; "
                                        "the content decides, not the extension)") from None
    except PermissionError as exc:
        raise ImageProblem("unreadable", f"cannot read {path}: {exc.strerror or exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error) as exc:
        raise ImageProblem("truncated", f"image {path} is truncated or corrupt ({type(exc).__name__}: {exc})"
                           ) from None


def _too_large(path, fmt, width: int, height: int, limit: int) -> str:
    return (f"image {path} is {width} x {height} = {width * height:,} pixels ({fmt}), over the limit of "
            f"{limit:,} (a decompression bomb, or far larger than a face crop); raise {MAX_PIXELS_ENV} "
            "if such images are wanted")


def read_rgb(path: str, size: int | None = None) -> Image.Image:
    """Open an image as RGB (see ``decode_rgb``), resized to size x size when given;
    DataError naming the problem kind and the file otherwise."""
    try:
        return decode_rgb(path, size)
    except ImageProblem as exc:
        raise ImageProblem(exc.kind, f"cannot read image: [{exc.kind}] {exc} (run `tan data check` on the dataset)"
                           ) from None


def _cache_key(paths: list[str], size: int) -> str:
    h = hashlib.sha256(f"size={size}\n".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def load_images(frame: pd.DataFrame, size: int = 64, cache_dir: str | Path | None = None,
                workers: int = 4) -> torch.Tensor:
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
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)

    def one(i):
        out[i] = np.asarray(read_rgb(paths[i], size))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(len(paths))))
    arr = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
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

    def __init__(self, flip: bool = True, erasing_p: float = 0.5, erasing_scale=(0.02, 0.25),
                 erasing_ratio=(0.3, 3.3), mean=IMAGENET_MEAN, std=IMAGENET_STD, attempts: int = 10):
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

    return v2.Compose([v2.ToImage(), v2.Resize((size, size), antialias=True), v2.RandomHorizontalFlip(),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std)),
                       v2.RandomErasing(p=erasing_p, scale=(0.02, 0.25), value="random")])


def eval_transforms(size: int = 64, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Per-sample eval preset: resize and normalise."""
    from torchvision.transforms import v2

    return v2.Compose([v2.ToImage(), v2.Resize((size, size), antialias=True),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


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
