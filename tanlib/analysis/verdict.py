"""The verdict: each claim of TAN's abstract, tested by paired differences over seeds.

What this module implements (the rule is written here once; docs/results.md, notebook
05 and REPORT.md all call it):

- ``CLAIMS``: one row per claim of the abstract (Gou et al., "Facial Expression
  Recognition Based on Triplet Loss and Attention Mechanism", ICAC 2023): the method
  compared, the baseline, the measure and the direction the claim predicts.
- ``t_interval``: mean and 95 % Student-t interval of per-seed paired differences.
- ``paired_difference``: the per-seed difference ``a - b`` of a measure between two
  methods trained with the same seed (same data order, same initial weights).
- ``bootstrap_accuracy_difference``: a percentile interval of the mean (over seeds)
  accuracy difference obtained by resampling the *test images* (the same resample for
  every seed): the test-set sampling noise alone, narrower than the t interval.
- ``noise_floor``: the largest difference between two runs of the same config and
  seed (a run repeated, or repeated with another thread count: what changes from one
  machine to another); ``mean_floor`` scales it to a mean over n seeds. An effect
  below it is not a finding.
- ``verdict``: supported / contradicted / inconclusive / n/a by ``VERDICT_RULE``.
- ``claims_table``: every claim at every label-noise level present in the records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import RecordError

#: Column of a record holding the SynthFER label-noise level (``tanlib.report.records.run_record``).
NOISE_COLUMN = "synth_label_noise"

VERDICT_RULE = (
    "**supported** when the 95 % t interval of the per-seed paired differences excludes 0 on the side "
    "the claim predicts and the mean effect is larger than the noise floor of a mean over that many seeds "
    "(the floor of one run over the square root of the number of seeds); **contradicted** when the interval "
    "excludes 0 on the other side and the effect is larger than that floor; **inconclusive** otherwise (the "
    "interval contains 0, or the effect is within the floor, or a run of either side did not learn: its best "
    "training accuracy stayed within 2 points of its most frequent test class's share, so the difference "
    "measures a failed optimisation, not the mechanism); **n/a** when fewer than two seeds have both "
    "runs, or the measure does not exist at that level (no wrong labels to find at 0 % noise)."
)

#: A run did not learn when its best training accuracy stays below the share of its
#: most frequent test class plus this margin (``did_not_learn``).
LEARNING_MARGIN = 0.02


@dataclass(frozen=True)
class Claim:
    key: str
    text: str
    method: str
    baseline: str | None  # None: one-sample claim against ``reference``
    measure: str  # a column of the records
    direction: int  # +1: the claim predicts method > baseline (or > reference); -1: smaller
    reference: float = 0.0


#: The abstract's claims, in the order of the page. Measures are record columns
#: (``tanlib.report.records.run_record``); accuracies are fractions.
CLAIMS = (
    Claim("acc_ce", "TAN is more accurate than CE (test accuracy)", "tan", "ce", "accuracy", +1),
    Claim("mca_ce", "TAN is more accurate than CE (mean class accuracy)", "tan", "ce", "mean_class_accuracy", +1),
    Claim("acc_scn", "TAN is more accurate than SCN (test accuracy)", "tan", "scn", "accuracy", +1),
    Claim("mca_scn", "TAN is more accurate than SCN (mean class accuracy)", "tan", "scn", "mean_class_accuracy", +1),
    Claim(
        "geometry",
        "TAN's classes are tighter and further apart than CE's (intra/inter of the features h)",
        "tan",
        "ce",
        "feature_ratio",
        -1,
    ),
    Claim(
        "attention",
        "TAN's attention finds the unreliable samples (noisy-label AUC above 0.5)",
        "tan",
        None,
        "noisy_auc",
        +1,
        reference=0.5,
    ),
    Claim(
        "threshold",
        "The attention threshold helps (tan vs tan-nothreshold, accuracy)",
        "tan",
        "tan-nothreshold",
        "accuracy",
        +1,
    ),
    Claim(
        "mahalanobis",
        "The Mahalanobis distance helps (tan vs tan-euclid, accuracy)",
        "tan",
        "tan-euclid",
        "accuracy",
        +1,
    ),
    Claim("triplet", "The triplet terms help (tan vs scn, attention alone; accuracy)", "tan", "scn", "accuracy", +1),
)

#: How a measure is shown: (scale, digits, unit).
MEASURE_FORMAT = {
    "accuracy": (100, 2, " points"),
    "mean_class_accuracy": (100, 2, " points"),
    "feature_ratio": (1, 3, ""),
    "noisy_auc": (1, 3, ""),
}


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


def paired_difference(
    records: pd.DataFrame, a: str, b: str | None, measure: str, reference: float = 0.0
) -> PairedDifference | None:
    """Per-seed ``a - b`` of ``measure`` over the seeds where both methods have a run
    (``b`` None: ``a - reference``); None when no seed has both. Records must hold one
    run per method and seed (raise otherwise: a duplicate would be counted twice)."""

    def by_seed(method):
        rows = records[records["method"] == method]
        dup = rows["seed"][rows["seed"].duplicated()]
        if len(dup):
            raise ValueError(
                f"method {method!r} has more than one run for seed(s) {sorted(set(dup))}: "
                + ", ".join(map(str, rows[rows["seed"].isin(dup)]["path"]))
            )
        return rows.set_index("seed")

    x = by_seed(a)
    x = x[np.isfinite(x[measure].astype(float))]
    if b is None:
        seeds = sorted(x.index)
        diffs = x.loc[seeds, measure].to_numpy(float) - reference
        paths = [(x.loc[s, "path"], None) for s in seeds]
    else:
        y = by_seed(b)
        y = y[np.isfinite(y[measure].astype(float))]
        seeds = sorted(set(x.index) & set(y.index))
        diffs = x.loc[seeds, measure].to_numpy(float) - y.loc[seeds, measure].to_numpy(float)
        paths = [(x.loc[s, "path"], y.loc[s, "path"]) for s in seeds]
    if not seeds:
        return None
    mean, lo, hi = t_interval(diffs)
    return PairedDifference(list(seeds), diffs, mean, lo, hi, paths)


def _read_table(path: Path, columns: tuple, integer: tuple = ()) -> pd.DataFrame:
    """``columns`` of a run's or record's CSV table; ``RecordError`` naming the file and
    what was expected when it does not parse, lacks a column or has a damaged row
    (``tanlib.report.records.read_record_csv``, imported on use like every name
    ``tanlib.analysis`` takes from ``tanlib.report``)."""
    from ..report.records import read_record_csv

    return read_record_csv(path, columns, integer=integer)


def _predictions_file(run_path: Path) -> Path:
    for name in ("test_predictions.csv", "predictions.csv"):
        if (run_path / name).is_file():
            return run_path / name
    what = "has neither test_predictions.csv nor predictions.csv (the test predictions the verdict reads)"
    raise RecordError(f"{run_path} {what}", [(run_path / "test_predictions.csv", "is missing")], [run_path])


def test_correct(run_path: str | Path) -> pd.Series:
    """Whether each test image was classified correctly (best-validation checkpoint),
    indexed by image name: from a record's ``test_predictions.csv`` or a run
    directory's ``predictions.csv``. ``RecordError`` naming the file when it is missing
    or damaged."""
    run_path = Path(run_path)
    frame = _read_table(_predictions_file(run_path), ("image", "label", "pred"), integer=("label", "pred"))
    return pd.Series((frame["label"] == frame["pred"]).to_numpy(), index=frame["image"].to_numpy())


def learning_check(run_path: str | Path) -> tuple[float, float]:
    """(best training accuracy over the epochs, share of the most frequent class among
    the test labels) of a run directory or record: a classifier that learned nothing
    reaches about the second by predicting one class. ``RecordError`` naming the file
    when ``history.csv`` or the test predictions are missing or damaged."""
    run_path = Path(run_path)
    best = float(_read_table(run_path / "history.csv", ("epoch", "train_acc"))["train_acc"].max())
    labels = _read_table(_predictions_file(run_path), ("image", "label", "pred"), integer=("label", "pred"))["label"]
    return best, float(labels.value_counts(normalize=True).max())


def did_not_learn(run_path: str | Path) -> bool:
    """Whether a run's best training accuracy stayed within ``LEARNING_MARGIN`` of its
    majority class's share (``learning_check``): flat curves, not a mechanism."""
    best, majority = learning_check(run_path)
    return best < majority + LEARNING_MARGIN


def bootstrap_accuracy_difference(
    pairs, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float] | None:
    """Percentile interval of the mean over seeds of ``accuracy(a) - accuracy(b)`` when
    the test images are resampled with replacement (one resample shared by every seed,
    since every run is tested on the same images). ``pairs``: one (correct_a, correct_b)
    pair of boolean Series indexed by image per seed. None when a run's predictions
    are missing or the runs were tested on different images."""
    if not pairs:
        return None
    per_image = []
    images = None
    for ca, cb in pairs:
        if images is None:
            images = ca.index
        if not (ca.index.equals(images) and cb.index.equals(images)):
            return None
        per_image.append(ca.to_numpy(float) - cb.to_numpy(float))
    d = np.mean(per_image, axis=0)  # mean over seeds, per image: the statistic is its mean
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    boots = d[idx].mean(axis=1)
    tail = (1 - confidence) / 2
    return float(np.quantile(boots, tail)), float(np.quantile(boots, 1 - tail))


def noise_floor(groups) -> dict[str, float]:
    """The largest absolute difference of each measure between two runs of one config
    and seed. ``groups``: lists of records (dicts or Series), each list the runs of one
    config and seed. Measures absent or NaN are skipped; {} when no group has two runs."""
    floor: dict[str, float] = {}
    for runs in groups:
        for measure in MEASURE_FORMAT:
            values = [float(r[measure]) for r in runs if measure in r and np.isfinite(float(r[measure]))]
            if len(values) >= 2:
                floor[measure] = max(floor.get(measure, 0.0), max(values) - min(values))
    return floor


#: What makes two runs "the same config and seed" for the noise floor.
REPEAT_KEYS = ("dataset", "scale", "method", "variant", NOISE_COLUMN, "seed")


def repeat_groups(records: pd.DataFrame) -> list[list[dict]]:
    """Runs of one config and seed (``REPEAT_KEYS``), for ``noise_floor``: only groups
    of two runs or more."""
    records = records.reset_index(drop=True)
    keys = [records[k].astype(str) for k in REPEAT_KEYS if k in records]  # NaN and None group too
    return [[records.loc[i] for i in index] for index in records.groupby(keys).groups.values() if len(index) >= 2]


def mean_floor(floor: float | None, n: int) -> float | None:
    """The noise floor of a mean over ``n`` seeds: that of one run over sqrt(n) (the
    perturbations of independent runs average out like any other noise)."""
    return None if floor is None or n < 1 else floor / math.sqrt(n)


def verdict(diff: PairedDifference | None, direction: int, floor: float = 0.0, learned: bool = True) -> str:
    """The verdict of one claim at one level, by ``VERDICT_RULE``; ``floor`` is that of
    one run (``noise_floor``), scaled here to the mean over the diff's seeds; ``learned``
    False when a run of either side did not learn (``did_not_learn``)."""
    if diff is None or not math.isfinite(diff.lo):
        return "n/a"
    if not learned or abs(diff.mean) <= mean_floor(floor, len(diff.diffs)):
        return "inconclusive"
    if diff.lo > 0 or diff.hi < 0:
        side = 1 if diff.lo > 0 else -1
        return "supported" if side == direction else "contradicted"
    return "inconclusive"


def _fmt(value: float, measure: str, signed: bool = True) -> str:
    scale, digits, _ = MEASURE_FORMAT.get(measure, (1, 3, ""))
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{scale * value:+.{digits}f}" if signed else f"{scale * value:.{digits}f}"


def noise_levels(records: pd.DataFrame) -> list:
    """The label-noise levels of the records, sorted; [None] when the column is absent."""
    if NOISE_COLUMN not in records or records[NOISE_COLUMN].isna().all():
        return [None]
    return sorted(records[NOISE_COLUMN].dropna().unique().tolist())


def _at_level(records: pd.DataFrame, level) -> pd.DataFrame:
    if level is None:
        return records
    return records[records[NOISE_COLUMN] == level]


def claim_results(
    records: pd.DataFrame, floor: dict | None = None, bootstrap: bool = True, variant: str = ""
) -> list[dict]:
    """One dict per claim and noise level: the paired difference, its intervals and the
    verdict. ``floor``: per-measure noise floor (``noise_floor``); a measure without one
    is judged by its interval alone and shown with floor "n/a". Only runs of ``variant``
    are compared (``tanlib.config.preset_variant``; "" the methods' presets: tan with
    lambda_rr=1 is not tan), so a regime such as ``pretrained="synthface"`` gets its own
    table."""
    floor = floor or {}
    if "variant" in records:
        records = records[records["variant"].fillna("") == variant]
    out = []
    for level in noise_levels(records):
        part = _at_level(records, level)
        for claim in CLAIMS:
            diff = paired_difference(part, claim.method, claim.baseline, claim.measure, claim.reference)
            boot = None
            if bootstrap and diff is not None and claim.measure == "accuracy" and claim.baseline is not None:
                # records built in memory have no folder, hence no test predictions; a folder
                # on disk without them, or with damaged ones, raises RecordError (never skipped)
                if all(_on_disk(p) for pair in diff.paths for p in pair):
                    boot = bootstrap_accuracy_difference(
                        [(test_correct(pa), test_correct(pb)) for pa, pb in diff.paths]
                    )
            stuck = [] if diff is None else [p for pair in diff.paths for p in pair if p and _did_not_learn(p)]
            out.append(
                {
                    "claim": claim,
                    "level": level,
                    "diff": diff,
                    "bootstrap": boot,
                    "floor": None if diff is None else mean_floor(floor.get(claim.measure), len(diff.diffs)),
                    "did_not_learn": stuck,
                    "verdict": verdict(diff, claim.direction, floor.get(claim.measure) or 0.0, learned=not stuck),
                }
            )
    return out


def _on_disk(path) -> bool:
    """Whether a record's path is a folder on disk (records built in memory have none)."""
    return bool(path) and Path(path).is_dir()


def _did_not_learn(path) -> bool:
    """``did_not_learn`` for a record on disk (``RecordError`` when its history or test
    predictions are missing or damaged); False for a record built in memory (no folder)."""
    return _on_disk(path) and did_not_learn(path)


def claims_table(
    records: pd.DataFrame, floor: dict | None = None, bootstrap: bool = True, variant: str = ""
) -> pd.DataFrame:
    """The claims table: one row per claim and label-noise level, strings ready for
    Markdown or LaTeX ("n/a" where a comparison lacks runs). Accuracy effects are in
    percentage points, ratios and AUCs as they are."""
    return claims_frame(claim_results(records, floor, bootstrap, variant))


def claims_frame(results: list[dict]) -> pd.DataFrame:
    """``claims_table`` of already computed ``claim_results``."""
    rows = []
    for r in results:
        c, d, boot = r["claim"], r["diff"], r["bootstrap"]
        rows.append(
            {
                "claim": c.text,
                "label noise": "n/a" if r["level"] is None else f"{100 * r['level']:.0f} %",
                "comparison": f"{c.method} - {c.baseline}" if c.baseline else f"{c.method} - {c.reference:g}",
                "seeds": 0 if d is None else len(d.seeds),
                "per seed": "n/a" if d is None else ", ".join(_fmt(v, c.measure) for v in d.diffs),
                "effect": "n/a" if d is None else _fmt(d.mean, c.measure),
                "95 % t interval": (
                    "n/a"
                    if d is None or not math.isfinite(d.lo)
                    else f"[{_fmt(d.lo, c.measure)}, {_fmt(d.hi, c.measure)}]"
                ),
                "test-image bootstrap": "n/a"
                if boot is None
                else f"[{_fmt(boot[0], c.measure)}, {_fmt(boot[1], c.measure)}]",
                "noise floor of the mean": "n/a" if r["floor"] is None else _fmt(r["floor"], c.measure, signed=False),
                "verdict": r["verdict"],
            }
        )
    return pd.DataFrame(rows)


__all__ = [
    "CLAIMS",
    "Claim",
    "LEARNING_MARGIN",
    "did_not_learn",
    "learning_check",
    "MEASURE_FORMAT",
    "NOISE_COLUMN",
    "PairedDifference",
    "REPEAT_KEYS",
    "VERDICT_RULE",
    "bootstrap_accuracy_difference",
    "claim_results",
    "mean_floor",
    "claims_frame",
    "claims_table",
    "noise_floor",
    "noise_levels",
    "paired_difference",
    "repeat_groups",
    "t_interval",
    "test_correct",
    "verdict",
]
