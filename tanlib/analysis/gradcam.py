"""Key-region heatmaps (Grad-CAM) of a trained TAN network, and the choice of examples.

What this module implements:

- ``LogitsOnly``: a wrapper ``nn.Module`` returning only the logits of a ``TANNet``
  (whose forward returns a ``TANOutput`` NamedTuple), the form pytorch-grad-cam needs.
- ``gradcam_overlays``: Grad-CAM (Selvaraju et al., ICCV 2017) with the ``grad-cam``
  package (``pytorch_grad_cam.GradCAM``) on the last block of the ResNet backbone,
  for given target classes, blended over the images (``show_cam_on_image``).
- ``gradcam_examples``: per class, up to k right and k wrong test predictions (the most
  confident ones), the rows the notebook 03_evaluate shows.
- ``hardest_mistakes``: the wrong predictions made with the highest confidence.

pytorch-grad-cam is imported inside ``gradcam_overlays`` only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from tanlib.errors import ConfigError, DataError

__all__ = ["LogitsOnly", "gradcam_examples", "gradcam_overlays", "hardest_mistakes", "target_layer"]


class LogitsOnly(nn.Module):
    """``model(x).logits`` as a module: Grad-CAM needs a tensor output."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out.logits if hasattr(out, "logits") else out


def target_layer(model: nn.Module) -> nn.Module:
    """The last residual block of the backbone (``backbone.layer4[-1]``)."""
    backbone = getattr(model, "backbone", None)
    layer4 = getattr(backbone, "layer4", None)
    if layer4 is None:
        raise ConfigError("Grad-CAM needs a ResNet backbone with .backbone.layer4 (a TANNet)")
    return layer4[-1]


def gradcam_overlays(model: nn.Module, images_uint8, targets, image_weight: float = 0.55) -> list[np.ndarray]:
    """Grad-CAM heatmaps for ``targets`` (one class index per image) blended over the
    images. ``images_uint8``: (N, 3, H, W) uint8 at the model's input size. Returns N
    HxWx3 uint8 overlays."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from tanlib.data import BatchAugment

    images = images_uint8 if isinstance(images_uint8, torch.Tensor) else torch.as_tensor(np.asarray(images_uint8))
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise DataError(f"images_uint8 must be a uint8 (N, 3, H, W) batch, got {images.dtype} {tuple(images.shape)}")
    targets = [int(t) for t in targets]
    if len(targets) != len(images):
        raise DataError(f"targets must have one class index per image ({len(images)}), got {len(targets)}")
    if not len(images):
        return []
    model.eval()
    device = next(model.parameters()).device
    x = BatchAugment(flip=False, erasing_p=0.0).normalise(images.to(device))
    with GradCAM(model=LogitsOnly(model), target_layers=[target_layer(model)]) as cam:
        maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
    rgb = images.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32) / 255.0
    return [show_cam_on_image(rgb[i], maps[i], use_rgb=True, image_weight=image_weight) for i in range(len(images))]


def _check_predictions(predictions: pd.DataFrame) -> None:
    missing = {"label", "pred", "confidence"} - set(predictions.columns)
    if missing:
        raise DataError(f"predictions lack columns {sorted(missing)} (read them from a run's predictions.csv)")


def gradcam_examples(predictions: pd.DataFrame, classes, per_class: int = 2) -> pd.DataFrame:
    """Per true class, the ``per_class`` most confident right and wrong predictions, in
    class order (right first). Adds a column ``kind`` ("right"/"wrong")."""
    _check_predictions(predictions)
    if not isinstance(per_class, int) or per_class < 1:
        raise ConfigError(f"per_class must be a positive int, got {per_class!r}")
    parts = []
    for c in range(len(classes)):
        rows = predictions[predictions["label"] == c]
        for kind, mask in (("right", rows["pred"] == c), ("wrong", rows["pred"] != c)):
            chosen = rows[mask].sort_values("confidence", ascending=False, kind="stable").head(per_class)
            parts.append(chosen.assign(kind=kind))
    return pd.concat(parts, ignore_index=True) if parts else predictions.head(0).assign(kind=[])


def hardest_mistakes(predictions: pd.DataFrame, n: int = 16) -> pd.DataFrame:
    """The ``n`` wrong predictions made with the highest confidence."""
    _check_predictions(predictions)
    wrong = predictions[predictions["pred"] != predictions["label"]]
    return wrong.sort_values("confidence", ascending=False, kind="stable").head(n).reset_index(drop=True)
