"""Image decoding: the one place an image file becomes pixels (PIL and numpy, no torch).

``decode_rgb`` serves the checker (``problems.check_image``), ``images.load_images``,
``images.ManifestDataset`` and ``tan predict`` alike. Whatever is wrong with a file
becomes an ``ImageProblem`` (a ``DataError``) with a problem kind, never a traceback:
``missing``, ``empty_file``, ``unreadable``, ``not_image`` (content that is not JPEG,
PNG, BMP or WebP, whatever the extension says), ``too_large`` (more pixels than
``max_image_pixels()``: decompression bombs), ``truncated`` (corrupt data) and
``unsupported_mode``. The format is read from the content, so a PNG named ``.jpg`` is
read as PNG. ``to_rgb`` turns every pixel format into 8-bit RGB: grey, 1-bit, palette
and CMYK are converted; 16-bit images keep their high byte (value >> 8); transparency
(RGBA, LA, palette or grey with a transparent colour) is composited onto white. EXIF
orientation tags are not applied (the aligned face crops have none).
"""

from __future__ import annotations

import functools
import os
import struct
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, DataError

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
            raise ConfigError(
                f"{MAX_PIXELS_ENV}={text!r} is not allowed; expected a positive whole number of "
                f"pixels (width x height), e.g. {MAX_IMAGE_PIXELS}"
            )
    if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit
    return limit


@functools.cache
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
                raise ImageProblem(
                    "unsupported_mode",
                    f"image {path} has pixel format {im.mode!r}, which cannot be converted to RGB ({exc})",
                ) from None
            if size is not None and rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
            return rgb
    except ImageProblem:
        raise
    except Image.DecompressionBombError as exc:  # PIL's own check, at twice its limit (never below the kit's)
        raise ImageProblem(
            "too_large",
            f"image {path} is over the limit of {limit:,} pixels ({exc}); raise "
            f"{MAX_PIXELS_ENV} if such images are wanted",
        ) from None
    except UnidentifiedImageError:
        raise ImageProblem(
            "not_image",
            f"{path} is not an image file (expected JPEG, PNG, BMP or WebP content; "
            "the content decides, not the extension)",
        ) from None
    except PermissionError as exc:
        raise ImageProblem("unreadable", f"cannot read {path}: {exc.strerror or exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error) as exc:
        raise ImageProblem("truncated", f"image {path} is truncated or corrupt ({type(exc).__name__}: {exc})") from None


def _too_large(path, fmt, width: int, height: int, limit: int) -> str:
    return (
        f"image {path} is {width} x {height} = {width * height:,} pixels ({fmt}), over the limit of "
        f"{limit:,} (a decompression bomb, or far larger than a face crop); raise {MAX_PIXELS_ENV} "
        "if such images are wanted"
    )


def read_rgb(path: str, size: int | None = None) -> Image.Image:
    """Open an image as RGB (see ``decode_rgb``), resized to size x size when given;
    DataError naming the problem kind and the file otherwise."""
    try:
        return decode_rgb(path, size)
    except ImageProblem as exc:
        raise ImageProblem(
            exc.kind, f"cannot read image: [{exc.kind}] {exc} (run `tan data check` on the dataset)"
        ) from None


def decode_images(paths: Iterable, size: int = 64, workers: int = 4) -> np.ndarray:
    """Decode and resize every image of ``paths`` (``read_rgb``, ``workers`` threads):
    uint8 array N x 3 x size x size."""
    paths = [str(p) for p in paths]
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)

    def one(i):
        out[i] = np.asarray(read_rgb(paths[i], size))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(len(paths))))
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))
