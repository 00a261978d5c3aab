"""When a run's trained embedding has collapsed (docs/method.md, "Collapse"); how its
attention ends (``attention_verdict``) and whether it converged (``last_epochs_range``; its
signed counterpart ``last_epochs_change``).

Hardest-negative mining from a random start can pull every embedding to one point
(FaceNet, Schroff et al., CVPR 2015, section 3.2; Hermans et al. 2017): all distances are
then near 0, the batch-hard hinge equals the margin and its gradient cancels, so the
triplet loss sits flat at its margin while the classifier goes on learning. Nothing in
the accuracy shows it. This module owns the one criterion every report uses:

a run is **collapsed** when a metric term trains its embedding
(``Config.trains_embedding``) and the mean pairwise Euclidean distance of its test
embeddings (unit vectors; two random ones in 128-d are about 1.41 apart) is below
``COLLAPSE_SPREAD`` at the selected (best-validation) or the last checkpoint.
"""

from __future__ import annotations

import math

#: Converged (docs/protocol.md, issue 28's target): validation accuracy moves by at most
#: ``CONVERGED_POINTS`` points over the last ``CONVERGED_EPOCHS`` epochs (``last_epochs_range``).
CONVERGED_EPOCHS, CONVERGED_POINTS = 3, 1.0


def last_epochs_range(val_acc) -> float:
    """How far validation accuracy (fractions, one per epoch) moves over the last
    ``CONVERGED_EPOCHS`` epochs: max - min, in points, rounded to 1e-9 (a move of exactly 10
    faces in 1,000 is 1 point, not 1.0000000000000009)."""
    tail = [100 * float(v) for v in list(val_acc)[-CONVERGED_EPOCHS:]]
    return round(max(tail) - min(tail), 9) if tail else math.nan


def last_epochs_change(val_acc) -> float:
    """How much validation accuracy (fractions, one per epoch) gained from the first to the
    last of the last ``CONVERGED_EPOCHS`` epochs, in points (negative: it fell), rounded to
    1e-9: the direction ``last_epochs_range`` leaves out. A run still climbing has a
    positive change; one only jittering about its end has changes of either sign."""
    tail = [100 * float(v) for v in list(val_acc)[-CONVERGED_EPOCHS:]]
    return round(tail[-1] - tail[0], 9) if tail else math.nan


#: Mean pairwise distance of L2-normalised test embeddings below which a trained
#: embedding counts as collapsed (random unit vectors: sqrt(2) = 1.41; the collapsed
#: batch-hard runs of the kit measured 0.03, healthy ones 0.7-1.1).
COLLAPSE_SPREAD = 0.2


def collapse_verdict(config, metrics: dict, history: list[dict]) -> tuple[bool, str]:
    """``(collapsed, reason)`` of a finished run from its ``metrics.json`` content and history."""
    if not config.trains_embedding:
        return False, "no metric term: the embedding is not trained (geometry only in the feature space)"
    results = metrics.get("results") or {}
    spreads = {k: (results.get(k) or {}).get("geometry", {}) or {} for k in ("best_val", "last")}
    spreads = {k: g.get("mean_distance") for k, g in spreads.items() if g.get("mean_distance") is not None}
    if not spreads:
        return False, "no test embedding geometry to judge"
    which, spread = min(spreads.items(), key=lambda kv: kv[1])
    last = history[-1] if history else {}
    loss = []
    for term, margin in (("triplet", config.triplet_margin), ("mahalanobis", config.mahalanobis_margin)):
        value = last.get(f"loss_{term}")
        if value is not None and math.isfinite(value) and value > 0:
            loss.append(f"final {term} loss {value:.3f} against its margin {margin}")
    if spread < COLLAPSE_SPREAD:
        return True, (
            f"test embeddings of the {'best-validation' if which == 'best_val' else 'last'} checkpoint "
            f"have a mean pairwise distance of {spread:.3f} < {COLLAPSE_SPREAD} (random unit vectors: "
            f"1.41)" + (f"; {', '.join(loss)}" if loss else "")
        )
    return False, f"test embedding spread {spread:.3f} >= {COLLAPSE_SPREAD}"


#: Final-epoch mean attention above which the weights are saturated (every sample near
#: 1: the high-attention set H is then an arbitrary share of the batch), and below which
#: they are dead (every sample near 0: the attention-weighted logits a*z are flat, the CE
#: sits at ln K and the classifier stops learning).
ATTENTION_SATURATED, ATTENTION_DEAD = 0.9, 0.05


def attention_verdict(config, history: list[dict]) -> tuple[str, str]:
    """``(state, reason)`` of the attention weights at the end of training: ``none``
    (no attention module), ``saturated``, ``dead`` or ``ok``, from the history's
    ``attention_mean`` and ``attention_std`` (training batches of the last epoch)."""
    if not config.attention:
        return "none", "no attention module"
    last = history[-1] if history else {}
    mean, std = last.get("attention_mean"), last.get("attention_std", float("nan"))
    if mean is None or not math.isfinite(mean):
        return "ok", "no attention statistics in the history"
    where = f"last-epoch attention mean {mean:.3f} (std {std:.3f})"
    if mean > ATTENTION_SATURATED:
        return "saturated", f"{where} > {ATTENTION_SATURATED}: H is an arbitrary share of the batch"
    if mean < ATTENTION_DEAD:
        return "dead", f"{where} < {ATTENTION_DEAD}: the weighted logits are flat and the classifier stalls"
    return "ok", where
