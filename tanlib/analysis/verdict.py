"""The verdict: each pre-registered claim (``claims.yaml``, ``tanlib.analysis.claims``)
judged at each label-noise level from the run records, with a model of the variance.

What this module owns (the rule is written here once, in ``decide``; docs/results.md,
notebook 05, REPORT.md and ``tan verdict`` all call it):

- ``paired_difference``: the per-seed ``a - b`` of a measure between two methods
  trained with the same seed (same data order, same initial weights); it refuses a pair
  whose runs differ in numeric format (``precision``: float32 ``none`` or ``bf16``).
- ``claim_results``: per claim, level and numeric format, the effect and its test.
  Comparisons of two methods take their effect and seed standard error from the mixed
  model of the level (``tanlib.analysis.stats.fit_level``: measure ~ method + (1 | seed),
  the residual variance pooled over the methods that learned when Levene's test does not
  reject equal variances, else the two methods alone; repeats of a (method, seed) cell
  enter as replicates), and add the test images' variance of the effect (accuracy and
  mean class accuracy: resampling the test images, paired by identity); a one-sample claim
  (against a number, or the label-blind difficulty baseline) uses its runs' t. A claim is
  judged at each look of the sequential design its level has reached (``complete_seeds``,
  ``tanlib.analysis.sequential``), each p-value divided by the look's share of the error
  rate, the smallest kept. The primary family's look-adjusted p-values are Holm-adjusted over
  every pre-registered primary cell (``family_size``; difference and equivalence separately);
  secondary claims keep their look-adjusted p-values, as secondary. The hierarchical
  bootstrap over seeds and test images gives a second, non-parametric interval.
- ``decide``: supported / contradicted / equivalent / inconclusive / not judged / n/a by ``VERDICT_RULE``.
- ``did_not_learn``: a run whose test accuracy is no better than always predicting the
  class it predicts most (like with like: the test predictions against the test labels).
- ``claims_frame``: the claims table, strings ready for Markdown or LaTeX.
- ``class_controls``: per level, method and class, the test recall and the share of the
  test images predicted as the class (against its true share), with hierarchical-bootstrap
  intervals (``tanlib.analysis.stats.per_class_recall`` and ``prediction_share``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..engine.precision import precision_name
from ..errors import RecordError
from . import stats as S
from .claims import DIFFICULTY, Claim, load_claims, load_design
from .sequential import SequentialDesign

#: Column of a record holding the label-noise level (``tanlib.report.records.run_record``).
NOISE_COLUMN = "synth_label_noise"
#: Column of a record holding the numeric format its run trained in (``none`` or ``bf16``).
PRECISION_COLUMN = "precision"
ALPHA = 0.05
#: The verdicts that decide a claim, and every verdict ``decide`` gives, in the page's order.
DECISIONS = ("supported", "contradicted", "equivalent")
VERDICTS = DECISIONS + ("inconclusive", "not judged", "n/a")
N_BOOT = 2000


def verdict_rule(design: SequentialDesign | None = None) -> str:
    """The rule of ``decide`` in words, with the looks of ``design`` (default: claims.yaml's)."""
    d = load_design() if design is None else design
    looks = ", ".join(map(str, d.looks()))
    return (
        "each claim of `claims.yaml` is tested at each label-noise level at each of its looks, with its effect's "
        "variance from the seeds (a mixed model, accuracy ~ method + (1 | seed) per level) plus the test images "
        "(resampled, paired by image), on the model's degrees of freedom. Seeds are added in batches until a "
        f"claim is decided, so a claim is judged only at its looks ({looks} seeds, `claims.yaml`'s `design`; "
        "`tanlib.analysis.sequential`), a look being reached at a level when every method of the level's "
        "claims has seeds 0 to L-1, and judged on those seeds; each look's p-value is divided by the look's "
        f"share of the {100 * ALPHA:.0f} % error rate (Pocock-type alpha spending; the shares sum to 1 over the "
        "looks, so by the union bound no claim is wrongly decided at any look with more than that chance) and "
        "the smallest over the looks so far is kept, so a test that has rejected stays rejected and a decided "
        "claim stays decided (its label can still change at a later look: from supported or contradicted to "
        "equivalent where the two one-sided tests reject as well, as the rule checks equivalence first); a look "
        "where a run did not learn (its test accuracy no better than always predicting the class it predicts "
        "most, plus 2 points: a failed optimisation, not the mechanism) gives no p-value. Below the first look "
        "a claim is shown, never decided. The primary claims' p-values are then Holm-adjusted over the whole "
        f"pre-registered primary family ({100 * ALPHA:.0f} % family-wise; a cell not yet judged counts as p = 1), "
        "the secondary ones are not. **equivalent** when the two one-sided tests put the effect within +-delta, "
        f"the claim's smallest effect that matters (adjusted p < {ALPHA}): no effect as large as claimed; "
        f"otherwise **supported** when the difference test rejects 0 (adjusted p < {ALPHA}) on the side the "
        "claim predicts, **contradicted** on the other side; **inconclusive** when neither test decides at a "
        "look; **not judged** below the first look (the effect and its interval shown, no test made); "
        "**n/a** when fewer than two seeds have both runs or the measure does not exist at that level."
    )


#: A run did not learn when its test accuracy is below the test share of the class it
#: predicts most plus this margin (``did_not_learn``).
LEARNING_MARGIN = 0.02

#: How a measure is shown: (scale, digits, unit).
MEASURE_FORMAT = {
    "accuracy": (100, 2, " points"),
    "mean_class_accuracy": (100, 2, " points"),
    "feature_ratio": (1, 3, ""),
    "noisy_auc": (1, 3, ""),
}
#: Test-set statistics of a measure (``tanlib.analysis.stats.hierarchical_bootstrap``).
_TEST_STATISTIC = {"accuracy": "accuracy", "mean_class_accuracy": "mean_class_accuracy"}


def _claims():
    return load_claims()


def __getattr__(name):
    if name == "CLAIMS":  # the claims of claims.yaml, read on use
        return _claims()
    if name == "VERDICT_RULE":  # the rule with claims.yaml's looks, read on use
        return verdict_rule()
    raise AttributeError(name)


def t_interval(diffs, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of ``diffs`` with the Student-t interval on n - 1 degrees of
    freedom; low and high are NaN with fewer than two values."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    if d.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if d.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))
    return mean, mean - half, mean + half


@dataclass
class PairedDifference:
    seeds: list
    diffs: np.ndarray
    mean: float
    lo: float
    hi: float
    paths: list  # (path of a's run, path of b's run or None) per seed


def _by_seed(records: pd.DataFrame, method: str) -> pd.DataFrame:
    rows = records[records["method"] == method]
    dup = rows["seed"][rows["seed"].duplicated()]
    if len(dup):
        raise ValueError(
            f"method {method!r} has more than one run for seed(s) {sorted(set(dup))}: "
            + ", ".join(map(str, rows[rows["seed"].isin(dup)]["path"]))
        )
    return rows.set_index("seed")


def paired_difference(
    records: pd.DataFrame, a: str, b: str | None, measure: str, reference: float = 0.0
) -> PairedDifference | None:
    """Per-seed ``a - b`` of ``measure`` over the seeds where both methods have a run
    (``b`` None: ``a - reference``); None when no seed has both. Records must hold one
    run per method and seed (raise otherwise: a duplicate would be counted twice), and the
    two runs of a seed one numeric format (``precision``; raise otherwise)."""
    x = _by_seed(records, a)
    x = x[np.isfinite(x[measure].astype(float))]
    if b is None:
        seeds = sorted(x.index)
        diffs = x.loc[seeds, measure].to_numpy(float) - reference
        paths = [(x.loc[s, "path"], None) for s in seeds]
    else:
        y = _by_seed(records, b)
        y = y[np.isfinite(y[measure].astype(float))]
        seeds = sorted(set(x.index) & set(y.index))
        if PRECISION_COLUMN in records:
            mixed = [s for s in seeds if _precision(x.loc[s]) != _precision(y.loc[s])]
            if mixed:
                raise ValueError(
                    f"{a} and {b} of seed(s) {mixed} ran in different numeric formats "
                    f"({_precision(x.loc[mixed[0]])} and {_precision(y.loc[mixed[0]])}): a bf16 run is never "
                    "paired with a float32 one; compare each format on its own (claim_results splits them)"
                )
        diffs = x.loc[seeds, measure].to_numpy(float) - y.loc[seeds, measure].to_numpy(float)
        paths = [(x.loc[s, "path"], y.loc[s, "path"]) for s in seeds]
    if not seeds:
        return None
    mean, lo, hi = t_interval(diffs)
    return PairedDifference(list(seeds), diffs, mean, lo, hi, paths)


def _precision(row) -> str:
    value = row.get(PRECISION_COLUMN) if hasattr(row, "get") else None
    return "none" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


# ---------------------------------------------------------------------------- records on disk
def _read_table(path: Path, columns: tuple, integer: tuple = ()) -> pd.DataFrame:
    """``columns`` of a run's or record's CSV table; ``RecordError`` naming the file
    (``tanlib.report.records.read_record_csv``, imported on use)."""
    from ..report.records import read_record_csv

    return read_record_csv(path, columns, integer=integer)


def _predictions_file(run_path: Path) -> Path:
    for name in ("test_predictions.csv", "predictions.csv"):
        if (run_path / name).is_file():
            return run_path / name
    what = "has neither test_predictions.csv nor predictions.csv (the test predictions the verdict reads)"
    raise RecordError(f"{run_path} {what}", [(run_path / "test_predictions.csv", "is missing")], [run_path])


def test_predictions(run_path: str | Path) -> pd.DataFrame:
    """A run's test predictions (image, label, pred), indexed by image."""
    run_path = Path(run_path)
    frame = _read_table(_predictions_file(run_path), ("image", "label", "pred"), integer=("label", "pred"))
    return frame.set_index("image")


def test_correct(run_path: str | Path) -> pd.Series:
    """Whether each test image was classified correctly (best-validation checkpoint),
    indexed by image name. ``RecordError`` naming the file when it is missing or damaged."""
    frame = test_predictions(run_path)
    return pd.Series((frame["label"] == frame["pred"]).to_numpy(), index=frame.index)


def learning_check(run_path: str | Path) -> tuple[float, float]:
    """(test accuracy, the test share of the class the run predicts most) of a run
    directory or record: a classifier that learned nothing predicts one class and scores
    about that share. ``RecordError`` naming the file when the predictions are missing or damaged.
    A settled predictions file (``settled_key``) is checked once per process."""
    from ..report.records import settled_key

    path = _predictions_file(Path(run_path))
    key = settled_key(path)
    return _settled_learning_check(key) if key is not None else _learning_check(path)


@functools.lru_cache(maxsize=4096)
def _settled_learning_check(key: tuple) -> tuple[float, float]:
    return _learning_check(Path(key[0]))


def _learning_check(path: Path) -> tuple[float, float]:
    frame = _read_table(path, ("image", "label", "pred"), integer=("label", "pred"))
    top = frame["pred"].value_counts().index[0]
    return float((frame["label"] == frame["pred"]).mean()), float((frame["label"] == top).mean())


def did_not_learn(run_path: str | Path) -> bool:
    """Whether a run's test accuracy stays within ``LEARNING_MARGIN`` of always predicting
    the class it predicts most (``learning_check``)."""
    accuracy, share = learning_check(run_path)
    return accuracy < share + LEARNING_MARGIN


def _on_disk(path) -> bool:
    return bool(path) and Path(path).is_dir()


def _did_not_learn(path) -> bool:
    return _on_disk(path) and did_not_learn(path)


def paired_image_values(paths: list) -> tuple[np.ndarray, np.ndarray] | None:
    """(per seed x image ``correct_a - correct_b`` (or ``correct_a`` for a one-sample
    pair), the images' true labels), the images in one order; None when a record has no
    folder (records built in memory). ``RecordError`` when the runs were tested on
    different images."""
    if not all(_on_disk(p) for pair in paths for p in pair if p is not None):
        return None
    rows, labels, images = [], None, None
    for pa, pb in paths:
        fa = test_predictions(pa)
        if images is None:
            images, labels = fa.index, fa["label"].to_numpy()
        for f, p in ((fa, pa),) + (((test_predictions(pb), pb),) if pb else ()):
            if not f.index.equals(images):
                what = "was tested on other images than the run it is paired with"
                raise RecordError(f"{p}: {what}", [(Path(p) / "test_predictions.csv", what)], [p])
        ca = (fa["label"] == fa["pred"]).to_numpy(float)
        cb = 0.0 if pb is None else (lambda f: (f["label"] == f["pred"]).to_numpy(float))(test_predictions(pb))
        rows.append(ca - cb)
    return np.vstack(rows), labels


def prediction_matrix(paths: list) -> tuple[np.ndarray, np.ndarray]:
    """(runs x test images predicted classes, the images' true labels) of run directories or
    records, the images in the first run's order. ``RecordError`` when a run was tested on
    other images than the first, or its predictions are missing or damaged."""
    preds, labels, images = [], None, None
    for p in paths:
        frame = test_predictions(p)
        if images is None:
            images, labels = frame.index, frame["label"].to_numpy()
        elif not frame.index.equals(images) or not np.array_equal(frame["label"].to_numpy(), labels):
            what = "was tested on other images (or labels) than the runs it is pooled with"
            raise RecordError(f"{p}: {what}", [(Path(p) / "test_predictions.csv", what)], [p])
        preds.append(frame["pred"].to_numpy())
    if not preds:
        raise ValueError("prediction_matrix needs at least one run")
    return np.vstack(preds), labels


def class_controls(records: pd.DataFrame, n_classes: int, methods=None, n_boot: int = N_BOOT) -> pd.DataFrame:
    """The class-accuracy controls of the verdict's records: per label-noise level and
    method (``methods``: all in the records, in the records' order, when None), each
    class's test recall and the share of the test images predicted as it, mean over the
    seeds, with hierarchical-bootstrap intervals over seeds and test images
    (``stats.per_class_recall``, ``stats.prediction_share``), beside the class's true share.

    ``records``: one row per run (``path``, ``method``, ``seed``, the noise level), the
    runs of one protocol (filter variants first). Long format, one row per level, method
    and class: ``level``, ``method``, ``seeds``, ``did_not_learn`` (runs of the cell that did
    not learn), ``class``, ``images``, ``recall``, ``recall_lo``, ``recall_hi``, ``true_share``,
    ``share``, ``share_lo``, ``share_hi``. Recall is NaN for a class without test images."""
    methods = list(dict.fromkeys(records["method"])) if methods is None else list(methods)
    rows = []
    for level in noise_levels(records):
        part = _at_level(records, level)
        for method in methods:
            runs = part[part["method"] == method].sort_values("seed")
            if runs.empty:
                continue
            preds, labels = prediction_matrix(list(runs["path"]))
            correct = (preds == labels[None, :]).astype(float)
            recall = S.per_class_recall(correct, labels, n_boot=n_boot)
            share = S.prediction_share(preds, labels, n_classes, n_boot=n_boot)
            stuck = sum(did_not_learn(p) for p in runs["path"])
            for k in range(n_classes):
                has = k in recall.index
                rows.append(
                    {
                        "level": level,
                        "method": method,
                        "seeds": len(runs),
                        "did_not_learn": int(stuck),
                        "class": k,
                        "images": int(recall.loc[k, "images"]) if has else 0,
                        "recall": float(recall.loc[k, "recall"]) if has else math.nan,
                        "recall_lo": float(recall.loc[k, "lo"]) if has else math.nan,
                        "recall_hi": float(recall.loc[k, "hi"]) if has else math.nan,
                        "true_share": float(share.loc[k, "true"]),
                        "share": float(share.loc[k, "predicted"]),
                        "share_lo": float(share.loc[k, "lo"]),
                        "share_hi": float(share.loc[k, "hi"]),
                    }
                )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- levels and formats
def noise_levels(records: pd.DataFrame) -> list:
    """The label-noise levels of the records, sorted; [None] when the column is absent."""
    if NOISE_COLUMN not in records or records[NOISE_COLUMN].isna().all():
        return [None]
    return sorted(records[NOISE_COLUMN].dropna().unique().tolist())


def _at_level(records: pd.DataFrame, level) -> pd.DataFrame:
    if level is None:
        return records
    return records[np.isclose(records[NOISE_COLUMN].astype(float), level)]


def precisions(records: pd.DataFrame) -> list[str]:
    if PRECISION_COLUMN not in records:
        return ["none"]
    return sorted(records[PRECISION_COLUMN].fillna("none").astype(str).unique().tolist())


# ---------------------------------------------------------------------------- the rule
def decide(result: dict, alpha: float = ALPHA) -> str:
    """The verdict of one claim at one level by ``VERDICT_RULE``: ``result`` holds
    ``test`` (``stats.EffectTest`` or None), ``direction``, ``look`` (the last look reached, None
    below the first look: "not judged"), ``p_adjusted`` and ``p_equivalence_adjusted`` (look- and
    Holm-adjusted; a look where a run did not learn gives none) and ``sign`` (the sign of the
    effect at the look of the smallest difference p). ``alpha``: the level the adjusted
    p-values are read at (the rule's 5 %; a smaller one asks what holds for several families)."""
    test = result.get("test")
    if test is None or not math.isfinite(test.p):
        return "n/a"
    if result.get("look") is None:
        return "not judged"
    if math.isfinite(result["p_equivalence_adjusted"]) and result["p_equivalence_adjusted"] < alpha:
        return "equivalent"
    if result["p_adjusted"] < alpha:
        sign = result.get("sign", np.sign(test.effect))
        return "supported" if sign == result["direction"] else "contradicted"
    return "inconclusive"


def _pooled_methods(part: pd.DataFrame, claims, measure: str) -> list[str]:
    """The methods the residual variance of ``measure`` may be pooled over at one level:
    those of the claims on it whose runs all learned."""
    names = {m for c in claims if c.measure == measure for m in c.methods}
    ok = []
    for m in sorted(names):
        paths = part[part["method"] == m]["path"]
        if len(paths) and not any(_did_not_learn(p) for p in paths):
            ok.append(m)
    return ok


def _informative(reps: pd.DataFrame, part: pd.DataFrame, measure: str) -> pd.DataFrame:
    """The repeats that carry information: a repeat with exactly its cell's value (the same
    computation again: a CPU run repeated on the same thread count is bit-identical) adds a
    zero that is not a draw of the within-cell variance."""
    reps = reps[reps["method"].isin(set(part["method"]))]
    if PRECISION_COLUMN in part and PRECISION_COLUMN in reps:
        reps = reps[reps[PRECISION_COLUMN].fillna("none").isin(set(part[PRECISION_COLUMN].fillna("none")))]
    keep = []
    for _, r in reps.iterrows():
        same = part[(part["method"] == r["method"]) & (part["seed"] == r["seed"])][measure].astype(float)
        keep.append(not (same == float(r[measure])).any())
    return reps[np.array(keep, dtype=bool)] if len(reps) else reps


def _two_method_test(part, claim, pooled, measure):
    """(model, how, Levene's p) of a two-method claim at one level: the residual variance pooled
    over ``pooled`` unless Levene's test rejects equal variances (p NaN: not tested, too few
    methods or complete seeds), else the two methods alone; ``how`` says which, in words."""
    pair = [claim.method, claim.baseline]
    model, why, p_eq = None, "", math.nan
    if set(pair) <= set(pooled) and len(pooled) > 2:
        p_eq = S.equal_variances(part, measure, pooled)
        if math.isfinite(p_eq) and p_eq >= ALPHA:
            model = S.fit_level(part, measure, pooled)
            how = f"pooled over {len(pooled)} methods (Levene p = {p_eq:.3f})"
        elif math.isfinite(p_eq):
            why = f" (Levene p = {p_eq:.3f} over {len(pooled)} methods)"
    if model is None or not set(pair) <= set(model.methods):
        model = S.fit_level(part, measure, pair)
        how = "the two methods" + why
    return model, how, p_eq


def claim_results(
    records: pd.DataFrame,
    claims=None,
    variant: str = "",
    bootstrap: bool = True,
    difficulty: dict | None = None,
    repeats: pd.DataFrame | None = None,
    n_boot: int = N_BOOT,
    design: SequentialDesign | None = None,
) -> list[dict]:
    """One dict per claim, label-noise level and numeric format: the effect, its test,
    intervals, the Holm-adjusted p-values (primary family) and the verdict (``decide``).
    Each numeric format is a verdict of its own: never paired with another, and Holm over its
    own primary cells, so runs of another format never change a format's decisions.

    ``records``: one row per run (``tanlib.report.records.collect_records``); only the
    runs of ``variant`` (``tanlib.config.preset_variant``; "" the methods' presets) are
    compared. ``repeats``: runs that repeat a (method, seed) cell of ``records`` (the
    replicates of the model). ``difficulty``: level -> AUC of the label-blind difficulty
    baseline (claims against ``difficulty``). ``bootstrap``: False skips the test images
    (records built in memory have none). ``design``: the looks (``tanlib.analysis.sequential``;
    default: claims.yaml's design when ``claims`` is None, else ``SequentialDesign()``)."""
    if design is None:
        design = load_design() if claims is None else SequentialDesign()
    claims = _claims() if claims is None else tuple(claims)
    difficulty = difficulty or {}
    if "variant" in records:
        records = records[records["variant"].fillna("") == variant]
    if repeats is not None and len(repeats):
        repeats = repeats[repeats["variant"].fillna("") == variant] if "variant" in repeats else repeats
    out = []
    for level in noise_levels(records):
        level_part = _at_level(records, level)
        level_claims = [c for c in claims if level is None or any(np.isclose(level, c.levels))]
        for precision in precisions(level_part):
            part = (
                level_part
                if PRECISION_COLUMN not in level_part
                else level_part[level_part[PRECISION_COLUMN].fillna("none") == precision]
            )
            reps = None if repeats is None or not len(repeats) else _at_level(repeats, level)
            complete = complete_seeds(part, level_claims)
            for claim in level_claims:
                args = (claims, level, precision, difficulty, bootstrap, n_boot)
                out.append(_judge_looks(part, reps, claim, complete, design, args))
    for precision in dict.fromkeys(r["precision"] for r in out):  # each numeric format: its own verdict
        arm = [r for r in out if r["precision"] == precision]
        _adjust(arm, family_size(claims, arm))
    for r in out:
        r["verdict"] = decide(r)
    return out


def complete_seeds(part: pd.DataFrame, claims) -> int:
    """The seeds 0..n-1 that every method of ``claims`` with a run in ``part`` (one level and
    numeric format) has a run for: a look of n seeds is reached at that level when n <= this."""
    have = part.groupby("method")["seed"].agg(set) if len(part) else {}
    methods = sorted({m for c in claims for m in c.methods if m in have})
    n = 0
    while methods and all(n in have[m] for m in methods):
        n += 1
    return n


def family_size(claims, results: list[dict]) -> int:
    """The primary family's size: every pre-registered primary claim at each of its levels (one
    test each on records without label-noise levels), at least the primary cells judged."""
    levels = {r["level"] for r in results}
    registered = sum(1 if levels == {None} else len(c.levels) for c in claims if c.primary)
    return max(registered, sum(r["claim"].primary for r in results))


def _judge_looks(part, reps, claim: Claim, complete: int, design: SequentialDesign, args) -> dict:
    """A claim judged at every look its level has reached, each on the seeds 0..L-1 of that look
    (every method of the level's claims has them: the same records give the same look, whatever
    order they arrived in). The result shown is the last look's; ``p_look`` and
    ``p_equivalence_look`` are the smallest over the looks of p divided by the look's share of
    the error rate (``SequentialDesign.adjust``; a look where a run did not learn takes no part),
    so a test that has rejected stays rejected and a decided claim stays decided (its label can
    still change at a later look: from supported or contradicted to equivalent where the
    equivalence test rejects too, as ``decide`` checks equivalence first). Below the first look:
    judged on all paired seeds, shown only. The hierarchical bootstrap interval is drawn for the
    look shown only."""
    reached = [size for size in design.looks() if size <= complete]
    if not reached:
        r = _judge(part, reps, claim, *args, design)
        r.update(look=None, complete=complete, p_look=math.nan, p_equivalence_look=math.nan)
        return r
    history = []
    for size in reached:
        cut = part[part["seed"].isin(range(size))]
        cut_reps = None if reps is None else reps[reps["seed"].isin(range(size))]
        r = _judge(cut, cut_reps, claim, *args, design, interval=size == reached[-1])
        t = r["test"]
        usable = t is not None and not r["did_not_learn"]
        p = design.adjust(t.p, size) if usable else math.nan
        q = design.adjust(t.p_equivalence, size) if usable else math.nan
        history.append((size, p, q, math.nan if t is None else t.effect))
    r.update(look=reached[-1], complete=complete, looks=history)
    ps = [h for h in history if math.isfinite(h[1])]
    best = min(ps, key=lambda h: h[1]) if ps else None
    r["p_look"] = best[1] if best else math.nan
    r["sign"] = np.sign(best[3]) if best else None
    qs = [h[2] for h in history if math.isfinite(h[2])]
    r["p_equivalence_look"] = min(qs) if qs else math.nan
    return r


def _judge(
    part, reps, claim: Claim, claims, level, precision, difficulty, bootstrap, n_boot, design, interval: bool = True
) -> dict:
    measure = claim.measure
    result = {
        "claim": claim,
        "level": level,
        "precision": precision,
        "direction": claim.direction,
        "diff": None,
        "test": None,
        "model": None,
        "pooling": "",
        "levene_p": math.nan,  # Levene's p of the pooled methods (NaN: not tested)
        "bootstrap": None,
        "var_test": None,
        "did_not_learn": [],
        "seeds_needed": (None, False),
        "design": design,
    }
    reference = 0.0
    if claim.baseline is None:
        reference = difficulty.get(level) if claim.reference == DIFFICULTY else claim.reference
        if reference is None:
            return result
        reference = float(reference)
    diff = paired_difference(part, claim.method, claim.baseline, measure, reference)
    result["diff"] = diff
    if diff is None or len(diff.diffs) < 2:
        return result
    n = len(diff.diffs)
    if claim.baseline is None:
        se, df = float(np.std(diff.diffs, ddof=1) / math.sqrt(n)), n - 1
        effect, values, how = diff.mean, None, "one sample"
    else:
        pooled = _pooled_methods(part, claims, measure)
        data = part if reps is None else pd.concat([part, _informative(reps, part, measure)])
        model, how, result["levene_p"] = _two_method_test(data, claim, pooled, measure)
        if model is None:
            return result
        effect, se = model.contrast(claim.method, claim.baseline)
        df = model.df
        result["model"] = model
        values = None
        if bootstrap and measure in _TEST_STATISTIC:
            paths = [(diff.paths[i][0], diff.paths[i][1]) for i, s in enumerate(diff.seeds) if s in model.seeds]
            values = paired_image_values(paths)
    result["pooling"] = how
    var_test = 0.0
    if values is not None:
        stat = _TEST_STATISTIC[measure]
        var_test, _ = S.image_variance_parts(values[0], values[1], stat, n_boot=n_boot)
        if interval:
            boots = S.hierarchical_bootstrap(values[0], values[1], stat, n_boot=n_boot)
            result["bootstrap"] = S.percentile_interval(boots)
        result["var_test"] = var_test
    result["test"] = S.combined_test(effect, se, df, var_test, claim.delta)
    stuck = [p for pair in diff.paths for p in pair if p and _did_not_learn(p)]
    result["did_not_learn"] = stuck
    sd_diff = se * math.sqrt(n)
    result["seeds_needed"] = design.seeds_to_decide(
        lambda alpha: S.seeds_needed(sd_diff, effect, claim.delta, var_test, alpha=alpha), n, ALPHA
    )
    return result


def _adjust(results: list[dict], family: int) -> None:
    """Holm over the primary family of ``family`` pre-registered cells (difference and
    equivalence p-values separately), on the look-adjusted p-values (``_judge_looks``); a cell
    below its first look, without a test or not judged counts as p = 1, so the family does not
    shrink with the data. Secondary claims keep their look-adjusted p-values."""
    primary = [r for r in results if r["claim"].primary]
    pad = [1.0] * max(0, family - len(primary))
    p = S.holm([_or_one(r["p_look"]) for r in primary] + pad)
    q = S.holm([_or_one(r["p_equivalence_look"]) for r in primary] + pad)
    for r, pa, qa in zip(primary, p, q):
        r["p_adjusted"], r["p_equivalence_adjusted"] = float(pa), float(qa)
    for r in results:
        if r["test"] is None:
            r["p_adjusted"] = r["p_equivalence_adjusted"] = math.nan
        elif not r["claim"].primary:
            r["p_adjusted"], r["p_equivalence_adjusted"] = r["p_look"], r["p_equivalence_look"]


def _or_one(p: float) -> float:
    return p if math.isfinite(p) else 1.0


# ---------------------------------------------------------------------------- tables
def _fmt(value: float, measure: str, signed: bool = True) -> str:
    scale, digits, _ = MEASURE_FORMAT.get(measure, (1, 3, ""))
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{scale * value:+.{digits}f}" if signed else f"{scale * value:.{digits}f}"


def format_p(value: float) -> str:
    """A p-value as the claims table prints it: "< 0.001", three decimals, or "n/a" when missing."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def claims_frame(results: list[dict], precision_column: bool | None = None) -> pd.DataFrame:
    """The claims table of ``claim_results``: one row per claim and level (and numeric
    format, when the records hold more than one)."""
    if precision_column is None:
        precision_column = len({r["precision"] for r in results}) > 1
    rows = []
    for r in results:
        c, d, t, boot = r["claim"], r["diff"], r["test"], r["bootstrap"]
        row = {
            "claim": c.text,
            "family": c.family,
            "label noise": "n/a" if r["level"] is None else f"{100 * r['level']:.0f} %",
        }
        if precision_column:
            row["format"] = precision_name(r["precision"])
        row.update(
            {
                "comparison": c.comparison,
                "measure": c.measure.replace("_", " "),
                "seeds": 0 if d is None else len(d.seeds),
                "look": "n/a" if t is None else ("before the first" if r["look"] is None else f"{r['look']} seeds"),
                "effect": "n/a" if t is None else _fmt(t.effect, c.measure),
                "95 % interval (seeds + test images)": "n/a"
                if t is None or not math.isfinite(t.lo)
                else f"[{_fmt(t.lo, c.measure)}, {_fmt(t.hi, c.measure)}]",
                "hierarchical bootstrap": "n/a"
                if boot is None
                else f"[{_fmt(boot[0], c.measure)}, {_fmt(boot[1], c.measure)}]",
                "delta": _fmt(c.delta, c.measure, signed=False),
                "p": "n/a" if t is None else format_p(t.p),
                "p, looks": format_p(r["p_look"]),
                "p, look + Holm": format_p(r["p_adjusted"]) if c.primary else "(secondary)",
                "p equivalence (TOST), adjusted": format_p(r["p_equivalence_adjusted"]),
                "verdict": r["verdict"],
                "seeds to decide": _seeds_text(r),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _seeds_text(r: dict) -> str:
    if r["verdict"] in DECISIONS:
        return "decided"
    if r["test"] is None:
        return "n/a"
    if r["did_not_learn"]:
        return "a run did not learn"
    (n, within), design = r["seeds_needed"], r["design"]
    if within:
        return f"look at {n}"
    if design.next_look(r["look"] or 0) is None:
        return "budget spent"
    if n is None:
        return "not by seeds (test set)"
    return f"no look up to {design.max_seeds} (at least {n} at the full {100 * ALPHA:.0f} %)"


def claims_table(records: pd.DataFrame, claims=None, variant: str = "", bootstrap: bool = True, **kw) -> pd.DataFrame:
    """``claims_frame`` of ``claim_results``."""
    return claims_frame(claim_results(records, claims, variant, bootstrap, **kw))


def repeat_groups(records: pd.DataFrame) -> list[list[dict]]:
    """Runs of one config and seed (``REPEAT_KEYS``): only groups of two runs or more."""
    records = records.reset_index(drop=True)
    keys = [records[k].astype(str) for k in REPEAT_KEYS if k in records]
    return [[records.loc[i] for i in index] for index in records.groupby(keys).groups.values() if len(index) >= 2]


#: What makes two runs "the same config and seed".
REPEAT_KEYS = ("dataset", "scale", "method", "variant", NOISE_COLUMN, PRECISION_COLUMN, "seed")


__all__ = [
    "ALPHA",
    "DECISIONS",
    "VERDICTS",
    "LEARNING_MARGIN",
    "MEASURE_FORMAT",
    "NOISE_COLUMN",
    "PRECISION_COLUMN",
    "PairedDifference",
    "REPEAT_KEYS",
    "complete_seeds",
    "format_p",
    "family_size",
    "verdict_rule",
    "claim_results",
    "claims_frame",
    "class_controls",
    "claims_table",
    "decide",
    "did_not_learn",
    "learning_check",
    "noise_levels",
    "paired_difference",
    "paired_image_values",
    "precisions",
    "prediction_matrix",
    "repeat_groups",
    "t_interval",
    "test_correct",
    "test_predictions",
]
