"""The inference transform of an exported model: image -> normalised float tensor.

It does to an image what evaluation does to a test image (``load_images`` +
``BatchAugment(train=False)`` in ``tanlib.data.images``), with the same functions where
the kit has one, so that an exported model gives the same predictions as
``tan evaluate`` on the same files:

1. decode with PIL through ``tanlib.data.decode.decode_rgb`` (JPEG, PNG, BMP or WebP by
   content); for a JPEG, ``draft("RGB", (S, S))`` (the DCT-domain downscale, never below
   S x S);
2. to 8-bit RGB (``to_rgb``): colour order RGB; grey, palette and CMYK converted;
   transparency composited onto white; 16-bit images keep their high byte;
3. resize to S x S with PIL ``BILINEAR``, ``reducing_gap=2.0`` (no crop, the aspect
   ratio is not kept; skipped when the image is already S x S);
4. uint8 (3, S, S) -> float32: divide by 255, subtract the ImageNet mean and divide by
   the ImageNet standard deviation, per channel.

``InferenceTransform.to_meta()`` writes these parameters into the weights file's
metadata and ``from_meta`` reads them back; ``describe()`` is the one-line rule the
model card prints. NumPy arrays are taken as RGB (H, W, 3) or grayscale (H, W) uint8:
convert OpenCV's BGR arrays with ``array[..., ::-1]`` first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.images import IMAGENET_MEAN, IMAGENET_STD  # what evaluation normalises with
from ..errors import CheckpointError, DataError

RESIZE_RULE = "pil-bilinear-jpeg-draft"  # the only resize rule of format version 1


class InferenceTransform:
    """Image file, PIL image or array -> normalised float32 tensor (3, S, S)."""

    def __init__(
        self, size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD, reducing_gap: float = 2.0, jpeg_draft: bool = True
    ):
        self.size = int(size)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.reducing_gap = float(reducing_gap)
        self.jpeg_draft = bool(jpeg_draft)
        self._mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        self._std = torch.tensor(self.std).view(1, 3, 1, 1)

    # ------------------------------------------------------------------ metadata
    def to_meta(self) -> dict:
        s = self.size
        return {
            "size": [s, s],
            "color_order": "RGB",
            "channels": 3,
            "layout": "NCHW",
            "dtype": "float32",
            "decode": "PIL; JPEG, PNG, BMP or WebP by content; RGB; transparency onto white; 16-bit -> high byte",
            "resize": RESIZE_RULE,
            "interpolation": "bilinear",
            "reducing_gap": self.reducing_gap,
            "jpeg_draft": self.jpeg_draft,
            "keep_aspect_ratio": False,
            "crop": None,
            "scale": 1 / 255,
            "mean": list(self.mean),
            "std": list(self.std),
            "rule": self.describe(),
        }

    @classmethod
    def from_meta(cls, meta: dict, source: str = "the weights file") -> InferenceTransform:
        try:
            if meta["resize"] != RESIZE_RULE or meta["color_order"] != "RGB":
                raise CheckpointError(
                    f"{source}: transform {meta['resize']!r} / {meta['color_order']!r} is not known to this "
                    f"version of tanlib (it knows {RESIZE_RULE!r} / 'RGB'); upgrade tanlib"
                )
            h, w = meta["size"]
            if h != w:
                raise CheckpointError(f"{source}: transform size {meta['size']} is not square")
            return cls(h, meta["mean"], meta["std"], meta.get("reducing_gap", 2.0), meta.get("jpeg_draft", True))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: malformed transform record {meta!r} ({exc})") from None

    def describe(self) -> str:
        s = self.size
        return (
            f"decode with PIL (JPEG: draft('RGB', ({s}, {s}))) to 8-bit RGB (transparency composited onto "
            f"white, 16-bit images by their high byte), resize to {s} x {s} with "
            f"BILINEAR and reducing_gap={self.reducing_gap:g} (no crop, aspect ratio not kept), "
            f"scale to [0, 1], normalise with mean {list(self.mean)} and std {list(self.std)}; "
            f"channel order RGB, layout NCHW, float32"
        )

    def __repr__(self) -> str:
        return f"InferenceTransform(size={self.size}, mean={self.mean}, std={self.std})"

    # ------------------------------------------------------------------ decoding
    def open(self, path: str | Path, draft: bool = True) -> Image.Image:
        """An image file as 8-bit RGB PIL image: resized to S x S (``draft``: with the
        JPEG draft, exactly as evaluation decodes) or at full resolution (``draft=False``,
        for face detection). Unusable files raise ``DataError`` naming the file, with the
        problem kind in ``.reason``."""
        from ..data.decode import decode_rgb

        try:
            return decode_rgb(path, self.size if (draft and self.jpeg_draft) else None)
        except DataError as exc:
            kind = getattr(exc, "kind", "unreadable")
            err = DataError(f"cannot read image {path}: {exc}")
            err.reason = f"{kind}: {exc}"
            raise err from None

    def resize(self, image: Image.Image) -> Image.Image:
        """8-bit RGB (``tanlib.data.decode.to_rgb``) resized to S x S."""
        from ..data.decode import to_rgb

        if image.mode != "RGB":
            try:
                image = to_rgb(image)
            except (ValueError, TypeError) as exc:
                raise DataError(f"cannot convert an image of pixel format {image.mode!r} to RGB: {exc}") from None
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.BILINEAR, reducing_gap=self.reducing_gap)
        return image

    def to_uint8(self, image) -> torch.Tensor:
        """uint8 (3, S, S) of an image path, PIL image, (H, W[, 3]) uint8 array or (3, H, W) uint8 tensor."""
        if isinstance(image, (str, Path)):
            image = self.open(image)
        elif isinstance(image, torch.Tensor):
            if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] != 3:
                raise DataError(f"expected a uint8 (3, H, W) tensor, got {image.dtype} {tuple(image.shape)}")
            image = Image.fromarray(image.permute(1, 2, 0).cpu().numpy())
        elif isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
                raise DataError(
                    f"expected a uint8 (H, W, 3) RGB or (H, W) grayscale array, got {image.dtype} {image.shape}"
                )
            image = Image.fromarray(np.ascontiguousarray(image))
        elif not isinstance(image, Image.Image):
            raise DataError(f"cannot make an image of {type(image).__name__}; pass a path, PIL image or array")
        arr = np.asarray(self.resize(image))
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (3, S, S) or (N, 3, S, S) -> float32 normalised, same shape."""
        single = x.dim() == 3
        x = x[None] if single else x
        x = x.float().div_(255)
        x = (x - self._mean.to(x.device)) / self._std.to(x.device)
        return x[0] if single else x

    def __call__(self, image) -> torch.Tensor:
        """The model input (3, S, S) of one image; stack several with ``torch.stack``."""
        return self.normalise(self.to_uint8(image))


__all__ = ["InferenceTransform", "IMAGENET_MEAN", "IMAGENET_STD", "RESIZE_RULE"]
