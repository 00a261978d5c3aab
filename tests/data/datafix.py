"""Builders of the data-layer test fixtures: tiny images and RAF-DB trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tanlib.data.rafdb import IMAGE_DIR, LABEL_FILE


def tiny_image(path: Path, seed: int = 0, size: int = 12, mode: str = "RGB") -> Path:
    """Write a small random image (format from the suffix)."""
    rng = np.random.default_rng(seed)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path)
    return path


def write_rafdb(root: Path, entries: list[tuple[str, int]], images: bool = True, extra_lines=()) -> Path:
    """A RAF-DB basic tree: label file lines ``name label`` and (optionally) their images."""
    (root / LABEL_FILE).parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{n} {lab}" for n, lab in entries] + list(extra_lines)
    (root / LABEL_FILE).write_text("\n".join(lines) + "\n")
    if images:
        for i, (name, _) in enumerate(entries):
            tiny_image(root / IMAGE_DIR / f"{Path(name).stem}_aligned.jpg", seed=i)
    return root


def small_entries(per_class_train: int = 3, per_class_test: int = 1) -> list[tuple[str, int]]:
    entries, k = [], 0
    for split, per in (("train", per_class_train), ("test", per_class_test)):
        k = 0
        for label in range(1, 8):
            for _ in range(per):
                k += 1
                entries.append((f"{split}_{k:05d}.jpg", label))
    return entries
