"""tanlib.analysis.attention_scale against naive computations: the AUCs by counting pairs in
explicit loops, the line by numpy.polyfit, the groups by a loop over the faces; and a positive
control, faces whose attention carries both the inverse logit scale and a real mark of the
wrong labels, where the raw AUC is below chance and the residual's finds the mark."""

import numpy as np
import pytest

from tanlib.analysis.attention_scale import scale_diagnostics
from tanlib.errors import DataError


def _pair_auc(score, wrong):
    """AUC of a *low* score as a detector of the wrong labels, by counting every (wrong, right)
    pair: 1 when the wrong face scores lower, 1/2 for a tie."""
    total = 0.0
    pairs = 0
    for s_wrong in [s for s, w in zip(score, wrong) if w]:
        for s_right in [s for s, w in zip(score, wrong) if not w]:
            total += 1.0 if s_wrong < s_right else 0.5 if s_wrong == s_right else 0.0
            pairs += 1
    return total / pairs


def _faces(n=300, mark=0.0, seed=0):
    """Faces with 7 classes, 30 % wrong labels whose logits are smaller (the network is torn on
    them), an attention that follows -log ||z|| and, by ``mark``, is lower on the wrong labels."""
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, 7, n)
    wrong = rng.random(n) < 0.3
    given = np.where(wrong, (clean + rng.integers(1, 7, n)) % 7, clean)
    scale = np.exp(rng.normal(1.5, 0.4, n) - 0.6 * wrong)
    logits = rng.normal(0, 0.3, (n, 7))
    logits[np.arange(n), clean] += 2.0
    logits *= scale[:, None]
    attention = 0.9 - 0.15 * np.log(np.linalg.norm(logits, axis=1)) - mark * wrong + rng.normal(0, 0.02, n)
    return attention, logits, given, clean


def test_the_diagnostics_against_loops_and_polyfit():
    attention, logits, given, clean = _faces(n=120, mark=0.03, seed=1)
    got = scale_diagnostics(attention, logits, given, clean)
    wrong = given != clean
    log_norm = [np.log(np.sqrt(sum(v * v for v in row))) for row in logits]
    assert got["n"] == 120 and got["n_wrong"] == int(wrong.sum())
    assert got["auc_attention"] == pytest.approx(_pair_auc(attention, wrong))
    assert got["auc_low_norm"] == pytest.approx(_pair_auc(log_norm, wrong))
    slope, intercept = np.polyfit(log_norm, attention, 1)
    assert got["slope_log_norm"] == pytest.approx(slope)
    residual = [a - (intercept + slope * x) for a, x in zip(attention, log_norm)]
    assert got["auc_residual"] == pytest.approx(_pair_auc(residual, wrong))
    ma, mx = np.mean(attention), np.mean(log_norm)
    cov = sum((a - ma) * (x - mx) for a, x in zip(attention, log_norm))
    r = cov / np.sqrt(sum((a - ma) ** 2 for a in attention) * sum((x - mx) ** 2 for x in log_norm))
    assert got["r_log_norm"] == pytest.approx(r) and got["r2_log_norm"] == pytest.approx(r * r)
    for key, (want_wrong, want_fit) in {
        "right label, predicts given": (False, True),
        "right label, predicts another": (False, False),
        "wrong label, predicts given": (True, True),
        "wrong label, predicts another": (True, False),
    }.items():
        members = [
            a
            for a, z, g, w in zip(attention, logits, given, wrong)
            if w == want_wrong and (int(np.argmax(z)) == g) == want_fit
        ]
        assert got["groups"][key]["n"] == len(members)
        assert got["groups"][key]["attention"] == (pytest.approx(np.mean(members)) if members else None)
    assert sum(g["n"] for g in got["groups"].values()) == 120


def test_the_scale_hides_a_real_mark_and_the_residual_finds_it():
    """The positive control: the attention marks the wrong labels (0.05 lower), but follows
    -log ||z|| more strongly, and the wrong labels' logits are smaller; ranked raw, the wrong
    labels look *more* trusted (AUC below chance); off the line, the mark shows."""
    got = scale_diagnostics(*_faces(n=3000, mark=0.05, seed=2))
    assert got["auc_low_norm"] > 0.7  # the torn faces: a label-blind small norm finds them
    assert got["r_log_norm"] < -0.8
    assert got["auc_attention"] < 0.4
    assert got["auc_residual"] > 0.8
    # without the mark the residual is at chance, and the raw AUC still below it
    none = scale_diagnostics(*_faces(n=3000, mark=0.0, seed=2))
    assert none["auc_attention"] < 0.4 and abs(none["auc_residual"] - 0.5) < 0.04


def test_bad_input_is_named():
    attention, logits, given, clean = _faces(n=50)
    with pytest.raises(DataError, match="same faces"):
        scale_diagnostics(attention[:-1], logits, given, clean)
    with pytest.raises(DataError, match="logits \\(N, K\\)"):
        scale_diagnostics(attention, logits[:, 0], given, clean)
    with pytest.raises(DataError, match="both right and wrong"):
        scale_diagnostics(attention, logits, clean, clean)
    bad = attention.copy()
    bad[3] = np.nan
    with pytest.raises(DataError, match="finite"):
        scale_diagnostics(bad, logits, given, clean)
    zero = logits.copy()
    zero[0] = 0.0
    with pytest.raises(DataError, match="all-zero logits"):
        scale_diagnostics(attention, zero, given, clean)
