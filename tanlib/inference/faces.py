"""Optional face detection and cropping for ``tan predict --detect-faces``.

Models of the kit are trained on cropped, roughly aligned faces; a photo must be cropped
to its face first. ``FaceDetector`` uses OpenCV's frontal-face Haar cascade
(``haarcascade_frontalface_default.xml``), which ships inside the
``opencv-python-headless`` wheel (``cv2.data.haarcascades``), so it works offline and
downloads nothing. OpenCV 5 moved the cascades out of the main package, hence the
``tanlib[detect]`` extra pins ``opencv-python-headless<5``.

Detection runs on the equalised grayscale image (downscaled so that its longer side is
at most ``max_side`` px, boxes scaled back); the largest face is kept, its square box
widened by ``margin`` times its size on every side (clamped at the image border), and
that crop goes through the model's transform. No face: ``crop`` returns None and
``tan predict`` lists the image as skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError

CASCADE = "haarcascade_frontalface_default.xml"


def require_opencv():
    """The ``cv2`` module with its Haar cascades, or ``ConfigError`` saying what to install."""
    try:
        import cv2
    except ImportError:
        raise ConfigError(
            "--detect-faces needs OpenCV with its bundled Haar cascades, which is not installed: "
            "pip install 'tanlib[detect]' (opencv-python-headless<5)"
        ) from None
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise ConfigError(
            f"--detect-faces needs OpenCV's Haar cascades, which OpenCV {cv2.__version__} does not "
            "ship (OpenCV 5 moved them out); pip install 'opencv-python-headless<5' "
            "or 'tanlib[detect]'"
        )
    return cv2


class FaceDetector:
    """Largest-face detection and cropping; see the module docstring."""

    def __init__(
        self,
        margin: float = 0.2,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 24,
        max_side: int = 1024,
        cascade: str = CASCADE,
    ):
        if margin < 0 or scale_factor <= 1 or min_neighbors < 0 or min_size < 1 or max_side < min_size:
            raise ConfigError(
                f"face detector settings out of range: margin={margin} (>= 0), scale_factor="
                f"{scale_factor} (> 1), min_neighbors={min_neighbors} (>= 0), min_size={min_size} "
                f"(>= 1), max_side={max_side} (>= min_size)"
            )
        cv2 = require_opencv()
        self.cv2 = cv2
        self.path = Path(cv2.data.haarcascades) / cascade
        if not self.path.is_file():
            raise ConfigError(
                f"OpenCV's Haar cascade {self.path} is missing from the installed opencv package; "
                "reinstall it: pip install --force-reinstall 'opencv-python-headless<5'"
            )
        self.classifier = cv2.CascadeClassifier(str(self.path))
        if self.classifier.empty():
            raise ConfigError(f"OpenCV could not load the Haar cascade {self.path}")
        self.margin, self.scale_factor, self.min_neighbors = float(margin), float(scale_factor), int(min_neighbors)
        self.min_size, self.max_side = int(min_size), int(max_side)

    def detect(self, image: Image.Image) -> list[tuple[int, int, int, int]]:
        """Face boxes (x, y, w, h) in ``image``'s pixels, largest first."""
        gray = image.convert("L")
        scale = min(1.0, self.max_side / max(gray.size))
        if scale < 1.0:
            gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))), Image.BILINEAR)
        arr = self.cv2.equalizeHist(np.ascontiguousarray(np.asarray(gray)))
        side = max(1, round(self.min_size * scale))
        found = self.classifier.detectMultiScale(
            arr, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(side, side)
        )
        boxes = [tuple(int(round(v / scale)) for v in box) for box in (found if len(found) else [])]
        return sorted(boxes, key=lambda b: -b[2] * b[3])

    def crop(self, image: Image.Image):
        """(face crop, its box (x, y, w, h), number of faces found), or None without a face."""
        boxes = self.detect(image)
        if not boxes:
            return None
        x, y, w, h = boxes[0]
        left, top = max(0, round(x - self.margin * w)), max(0, round(y - self.margin * h))
        right = min(image.width, round(x + w + self.margin * w))
        bottom = min(image.height, round(y + h + self.margin * h))
        return image.crop((left, top, right, bottom)), (x, y, w, h), len(boxes)

    def describe(self) -> str:
        return (
            f"OpenCV {self.cv2.__version__} Haar cascade {self.path.name} (scaleFactor {self.scale_factor}, "
            f"minNeighbors {self.min_neighbors}, min face {self.min_size} px), largest face, margin {self.margin}"
        )


__all__ = ["CASCADE", "FaceDetector", "require_opencv"]
