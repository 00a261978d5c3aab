"""Is the attention a logit scale? Why SCN's and TAN's attention can rank random label flips
below chance (docs/method.md, "What the attention learns instead of the wrong labels").

SCN (Wang et al., "Suppressing Uncertainties for Large-Scale Facial Expression Recognition",
CVPR 2020) and TAN (Gou et al., ICAC 2023) train the weighted cross-entropy CE(a z, y): the
attention a in (0, 1) multiplies the logits z (``tanlib.losses.objective.weighted_logits``). Only
the product a z reaches the loss, so a network can trade a against the norm of z face by face;
where it does, the attention follows the inverse of the logit scale, whatever the label.
Faces whose given label is wrong are the ones the network is torn on (their logits are
smaller), so an attention that follows 1 / ||z|| is *higher* on them: below chance as a detector
of wrong labels, though nothing in it is broken.

- ``scale_diagnostics``: from the training faces' attention, logits, given and clean labels:
  the noisy-label AUC of the attention (``tanlib.analysis.metrics.noisy_label_auc``: low weight
  suspect), how much of the attention the log logit norm explains (Pearson r and R^2 of the
  least-squares line), the AUC of the attention's residual off that line (the part of the
  attention that is not the scale), the AUC of the logit norm itself (a label-blind detector:
  a small norm suspect) and the mean attention of the faces by label (right or wrong) and fit
  (the prediction is the given label or not);
- ``training_predictions``: a finished run directory's predictions on its training faces, from
  the checkpoint its records read (``tanlib.engine.evaluate.primary_checkpoint``): what the
  run's ``noise_detection`` AUC was computed on (docs/make_attention_scale.py feeds them to
  ``scale_diagnostics``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError, RunDirError
from .metrics import noisy_label_auc


def scale_diagnostics(attention, logits, given, clean) -> dict:
    """How far the attention of a set of training faces is the inverse of their logit scale,
    and what that does to it as a detector of wrong labels (module docstring).

    ``attention``: (N,) weights; ``logits``: (N, K) unweighted logits z; ``given``: (N,) the
    training labels as given; ``clean``: (N,) the true labels. A face's label is wrong where
    ``given != clean``. Returns ``n``, ``n_wrong``, ``auc_attention``, ``r_log_norm`` (Pearson r
    of the attention and log ||z||), ``r2_log_norm`` (its square: the share of the attention's
    variance the line explains), ``auc_residual``, ``auc_low_norm`` and ``groups``: per (label,
    fit) the count and mean attention."""
    a = np.asarray(attention, dtype=np.float64).reshape(-1)
    z = np.asarray(logits, dtype=np.float64)
    given, clean = np.asarray(given).reshape(-1), np.asarray(clean).reshape(-1)
    if z.ndim != 2 or not (len(a) == len(z) == len(given) == len(clean)):
        raise DataError(
            f"attention (N,), logits (N, K), given and clean labels (N,) must describe the same faces; got "
            f"shapes {a.shape}, {z.shape}, {given.shape}, {clean.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(z).all()):
        raise DataError("attention and logits must be finite; they hold NaN or infinite values")
    wrong = given != clean
    if wrong.all() or not wrong.any():
        raise DataError(f"the faces need both right and wrong labels to rank; {int(wrong.sum())} of {len(a)} are wrong")
    norm = np.linalg.norm(z, axis=1)
    if (norm <= 0).any():
        raise DataError("a face has all-zero logits: its logit norm has no logarithm")
    from scipy.stats import linregress

    log_norm = np.log(norm)
    line = linregress(log_norm, a)  # the least-squares line of the attention on log ||z||, and r
    r, slope = float(line.rvalue), float(line.slope)
    fitted = z.argmax(1) == given
    groups = {}
    for label, is_wrong in (("right", False), ("wrong", True)):
        for fit, is_fitted in (("predicts given", True), ("predicts another", False)):
            mask = (wrong == is_wrong) & (fitted == is_fitted)
            groups[f"{label} label, {fit}"] = {
                "n": int(mask.sum()),
                "attention": float(a[mask].mean()) if mask.any() else None,
            }
    return {
        "n": len(a),
        "n_wrong": int(wrong.sum()),
        "auc_attention": noisy_label_auc(a, wrong),
        "r_log_norm": r,
        "r2_log_norm": r * r,
        "slope_log_norm": slope,
        "auc_residual": noisy_label_auc(a - (line.intercept + slope * log_norm), wrong),
        "auc_low_norm": noisy_label_auc(log_norm, wrong),
        "groups": groups,
    }


def training_predictions(run_dir: str | Path, device: str = "cpu") -> tuple[dict, object]:
    """(``predict``'s output on the training faces, the training split of the run's manifest)
    from the run's primary checkpoint: the predictions its ``noise_detection`` was computed on."""
    from ..config import Config
    from ..data import Manifest, load_images
    from ..engine.evaluate import CHECKPOINTS, load_model, predict, run_checkpoint
    from ..engine.precision import resolve_amp

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / "manifest.csv").is_file():
        raise RunDirError(f"{run_dir} is not a run directory (it needs config.json and manifest.csv)")
    config = Config.load(run_dir / "config.json")
    if not config.attention:
        raise RunDirError(f"{run_dir} trained method {config.method!r}, which has no attention")
    checkpoint = run_checkpoint(run_dir)
    if not (run_dir / CHECKPOINTS[checkpoint][0]).is_file():
        raise RunDirError(f"{run_dir / CHECKPOINTS[checkpoint][0]} is missing: the run's records read that checkpoint")
    manifest = Manifest.load(run_dir / "manifest.csv")
    train = manifest.split("train")
    if "clean_label" not in train.columns:
        raise DataError(
            f"{run_dir / 'manifest.csv'} has no clean_label column: only SynthFER knows which labels are wrong"
        )
    model, config, _ = load_model(run_dir, checkpoint)
    images = load_images(train, config.image_size, cache_dir=config.cache_dir)
    pred = predict(
        model, images, device=device, channels_last=config.channels_last, amp=resolve_amp(config.amp, device)
    )
    return pred, train


__all__ = ["scale_diagnostics", "training_predictions"]
