"""The verdict's statistics: a model of the variance, intervals that include test sampling,
equivalence, multiplicity and the seeds a claim still needs.

What this module owns (``tanlib.analysis.verdict`` applies it to the claims; numbers are
tested against naive computations in ``tests/analysis/test_stats.py``):

- ``fit_level``: per label-noise level, a measure ~ method + (1 | seed) linear mixed
  model (statsmodels ``MixedLM``, REML). Runs with the same seed share the data order and
  the initial weights (the seed effect); the residual is the method x seed interaction,
  the seed-to-seed noise of a comparison. Where a (method, seed) cell was trained more
  than once (the ``results/noise_floor`` thread-count repeats), a variance component per
  cell separates that interaction from the within-cell ("chaotic") part that repeating
  the same config and seed shows. The contrast ``a - b`` of two methods, its standard
  error and its degrees of freedom ((seeds - 1) x (methods - 1), the balanced design's)
  come from the fitted fixed effects. ``equal_variances``: Levene's test on the
  per-method residuals, which says whether the residual variance may be pooled across
  methods (with few seeds it has little power; the verdict says which it used).
- ``hierarchical_bootstrap``: a bootstrap over seeds and test images together: each
  resample draws seeds with replacement, then test images with replacement (within each
  class for the mean class accuracy and per-class recall, so every class stays present),
  the same images for every drawn seed and, through per-image paired differences, for
  both methods of a seed (paired by image identity). ``image_variance``: the
  variance of the seed-mean statistic when only the test images are resampled: the
  test-set sampling that no number of seeds averages away.
  ``image_variance_parts`` splits it into the part shared by the seeds (the same images)
  and the part each run adds, which the seeds' spread already holds.
- ``per_class_recall`` and ``prediction_share``: the class-accuracy controls, each class's
  test recall and the share of the test images a method predicts as each class (against
  the class's true share), mean over seeds, with the same hierarchical bootstrap (images
  resampled within each true class, so the test split's composition stays fixed).
- ``combined_test``: the interval and p-value of an effect whose variance is the
  model's (seeds) plus the test images', on the model's degrees of freedom; ``tost``:
  two one-sided tests against +-delta (equivalence).
- ``holm``: Holm's step-down adjustment (statsmodels ``multipletests``).
- ``seeds_needed``: the paired seeds that give 80 % power for the smaller of delta and
  the effect (a difference) or for the equivalence margin left (``delta - |effect|``),
  with the test images' variance, which seeds cannot remove.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


# ---------------------------------------------------------------------------- the model
@dataclass
class LevelModel:
    """A fitted measure ~ method + (1 | seed) model of one label-noise level."""

    measure: str
    methods: list
    seeds: list
    means: pd.Series  # the fixed effects: each method's mean
    cov: pd.DataFrame  # their covariance
    var_seed: float  # between seeds, shared by the methods of a seed
    var_resid: float  # method x seed: what a paired comparison sees
    var_within: float | None  # a (method, seed) cell repeated (None: no repeats)
    df: int  # (seeds - 1) x (methods - 1)
    n_runs: int
    n_repeats: int  # runs beyond the first of their cell
    how: str  # "mixedlm" or "anova" (statsmodels failed to converge: the ANOVA moments)
    notes: list = field(default_factory=list)

    def contrast(self, a: str, b: str) -> tuple[float, float]:
        """(estimate, standard error) of ``mean(a) - mean(b)``."""
        est = float(self.means[a] - self.means[b])
        var = float(self.cov.loc[a, a] + self.cov.loc[b, b] - 2 * self.cov.loc[a, b])
        return est, math.sqrt(max(var, 0.0))


def _complete_seeds(frame: pd.DataFrame, methods) -> list:
    """Seeds with a run of every method (a balanced design)."""
    have = frame.groupby("seed")["method"].agg(lambda m: set(m))
    return sorted(s for s, ms in have.items() if set(methods) <= ms)


def anova_components(cells: pd.DataFrame) -> tuple[float, float]:
    """(seed variance, residual variance) by the two-way ANOVA moments of a balanced
    seeds x methods table of cell means (rows seeds, columns methods): the naive reference
    of the mixed model, and its fallback. The seed variance is truncated at 0."""
    x = cells.to_numpy(float)
    n, k = x.shape
    grand = x.mean()
    ms_seed = k * ((x.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + grand
    ms_resid = (resid**2).sum() / ((n - 1) * (k - 1))
    return max((ms_seed - ms_resid) / k, 0.0), float(ms_resid)


def fit_level(frame: pd.DataFrame, measure: str, methods=None) -> LevelModel | None:
    """Fit ``measure ~ 0 + method + (1 | seed)`` (REML) on the runs of ``methods`` (all in
    ``frame`` when None) at the seeds where every one of them has a run; repeats of a
    (method, seed) cell add a variance component per cell (``LevelModel.var_within`` is
    then the repeat variance). None with fewer than two such seeds or two methods.

    ``frame``: one row per run with ``method``, ``seed`` and ``measure``."""
    import statsmodels.formula.api as smf

    data = frame[["method", "seed", measure]].rename(columns={measure: "y"})
    data = data[np.isfinite(data["y"].astype(float))]
    methods = sorted(set(data["method"])) if methods is None else list(methods)
    seeds = _complete_seeds(data, methods)
    if len(seeds) < 2 or len(methods) < 2:
        return None
    data = data[data["method"].isin(methods) & data["seed"].isin(seeds)].copy()
    data["y"] = data["y"].astype(float)
    data["seed"] = data["seed"].astype(str)
    data["method"] = pd.Categorical(data["method"], categories=methods)
    cells = data.groupby(["seed", "method"], observed=True)["y"]
    n_repeats = int((cells.size() - 1).sum())
    k, n = len(methods), len(seeds)
    df = (n - 1) * (k - 1)
    cell_means = cells.mean().unstack("method")[methods]
    notes: list = []
    fitted = None
    # standardised for the optimiser (accuracies vary by ~1e-3 in variance), rescaled after
    centre, unit = float(data["y"].mean()), float(data["y"].std(ddof=1)) or 1.0
    data["z"] = (data["y"] - centre) / unit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; a failed fit falls back below
        try:
            vc = {"cell": "0 + C(method)"} if n_repeats else None
            model = smf.mixedlm("z ~ C(method)", data, groups=data["seed"], re_formula="1", vc_formula=vc)
            fitted = model.fit(reml=True, method=["lbfgs", "powell"])
            if not fitted.converged:
                fitted = None
        except (ValueError, np.linalg.LinAlgError):
            fitted = None
    if fitted is not None:
        # each method's mean: the intercept plus its treatment coefficient (the first method: the intercept)
        fe = fitted.fe_params
        lmat = np.zeros((k, len(fe)))
        lmat[:, 0] = 1.0
        for i, m in enumerate(methods[1:], 1):
            lmat[i, list(fe.index).index(f"C(method)[T.{m}]")] = 1.0
        fe_cov = fitted.cov_params().loc[fe.index, fe.index].to_numpy()
        means = pd.Series(centre + unit * (lmat @ fe.to_numpy()), index=methods)
        cov = pd.DataFrame(unit**2 * (lmat @ fe_cov @ lmat.T), index=methods, columns=methods)
        contrast_var = np.diag(cov.to_numpy())[:, None] + np.diag(cov.to_numpy())[None, :] - 2 * cov.to_numpy()
        if not (np.all(np.isfinite(cov.to_numpy())) and np.all(contrast_var[~np.eye(k, dtype=bool)] > 0)):
            fitted = None  # a singular fit at the boundary: no usable covariance
    if fitted is not None:
        var_seed = unit**2 * float(np.asarray(fitted.cov_re).ravel()[0])
        if n_repeats:
            var_resid = unit**2 * float(fitted.vcomp[0])
            var_within = unit**2 * float(fitted.scale)
        else:
            var_resid, var_within = unit**2 * float(fitted.scale), None
        how = "mixedlm"
    else:
        var_seed, var_resid = anova_components(cell_means)
        var_within = None
        if n_repeats:
            dev = data["y"] - cells.transform("mean")
            var_within = float((dev**2).sum() / n_repeats)
        means = cell_means.mean(axis=0)
        # cell means of a balanced design: Var(mean_a) = (var_seed + var_resid) / n, shared seed part var_seed / n
        cov = pd.DataFrame(var_seed / n, index=methods, columns=methods)
        for m in methods:
            cov.loc[m, m] = (var_seed + var_resid) / n
        how = "anova"
        notes.append("statsmodels' MixedLM did not converge: ANOVA moment estimates")
    return LevelModel(
        measure, methods, seeds, means, cov, var_seed, var_resid, var_within, df, len(data), n_repeats, how, notes
    )


def equal_variances(frame: pd.DataFrame, measure: str, methods) -> float:
    """Levene's p-value (median-centred) for equal residual variances across ``methods``:
    the residuals of the seeds x methods table of cell means after removing the seed and
    method means. NaN with fewer than three complete seeds."""
    from scipy import stats

    seeds = _complete_seeds(frame, methods)
    if len(seeds) < 3:
        return math.nan
    part = frame[frame["method"].isin(methods) & frame["seed"].isin(seeds)]
    x = part.groupby(["seed", "method"])[measure].mean().unstack("method")[list(methods)].to_numpy(float)
    resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    if np.allclose(resid, 0):
        return 1.0
    return float(stats.levene(*resid.T, center="median").pvalue)


# ---------------------------------------------------------------------------- bootstrap
STATISTICS = ("accuracy", "mean_class_accuracy", "per_class")


def _draws(rng, n_seeds: int, labels: np.ndarray, n_boot: int, stratified: bool):
    """The resamples, in a fixed order (a naive loop can repeat them): seeds (n_boot x
    n_seeds), then the images: one array of all images, or one per class in sorted order."""
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds)) if n_seeds else None
    if not stratified:
        return seeds, [(np.arange(labels.size), rng.integers(0, labels.size, size=(n_boot, labels.size)))]
    groups = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        groups.append((members, rng.integers(0, members.size, size=(n_boot, members.size))))
    return seeds, groups


def _draw_counts(idx: np.ndarray, size: int) -> np.ndarray:
    """(n_boot, size): how often each of ``size`` images is drawn in each resample ``idx``
    (n_boot x draws of positions 0..size-1), in the smallest unsigned type that holds them
    (uint8 in practice: 2,000 x 6,300 counts are 13 MB)."""
    n_boot = idx.shape[0]
    offsets = (np.arange(n_boot) * size)[:, None]
    counts = np.bincount((idx + offsets).ravel(), minlength=n_boot * size).reshape(n_boot, size)
    return counts.astype(np.min_scalar_type(int(counts.max(initial=0))))


def _counted(rng, n_seeds: int, labels: np.ndarray, n_boot: int, stratified: bool):
    """``_draws`` as draw counts: (seeds, ((members, counts n_boot x members), ...)), read-only."""
    seeds, groups = _draws(rng, n_seeds, labels, n_boot, stratified)
    groups = tuple((members, _draw_counts(idx, members.size)) for members, idx in groups)
    for array in [seeds] + [a for g in groups for a in g]:
        if array is not None:
            array.flags.writeable = False
    return seeds, groups


@functools.lru_cache(maxsize=8)
def _cached_resamples(seed: int, n_seeds: int, labels: bytes, dtype: str, n_boot: int, stratified: bool):
    """``_counted`` of a fresh ``default_rng(seed)``. Every bootstrap of the verdict draws with
    seed 0 on the same test labels, so the draws are made once per (seeds, labels, statistic)."""
    return _counted(np.random.default_rng(seed), n_seeds, np.frombuffer(labels, dtype=dtype), n_boot, stratified)


def _resamples(seed, n_seeds: int, labels: np.ndarray, n_boot: int, stratified: bool):
    """The draws of ``default_rng(seed)`` as counts; cached for an integer seed and numeric labels
    (an unseeded or a Generator's draws are new every call)."""
    labels = np.ascontiguousarray(labels)
    if isinstance(seed, (int, np.integer)) and labels.dtype.kind in "biuf":
        return _cached_resamples(int(seed), n_seeds, labels.tobytes(), labels.dtype.str, n_boot, stratified)
    return _counted(np.random.default_rng(seed), n_seeds, labels, n_boot, stratified)


def _per_seed(values: np.ndarray, groups) -> np.ndarray:
    """(n_seeds, n_boot, n_groups): each seed's per-image mean within each group's resample,
    as the values times the draw counts (one product, where indexing the draws would build
    seeds x resamples x images). ``groups``: (members, counts) of ``_resamples``. Whole-number
    values (correctness, paired differences) are multiplied in float32, exactly; others in
    float64."""
    whole = values.size == 0 or (np.array_equal(values, np.round(values)) and np.abs(values).max() <= 1)
    dtype = np.float32 if whole else np.float64
    out = np.empty((values.shape[0], groups[0][1].shape[0], len(groups)))
    for g, (members, counts) in enumerate(groups):
        # counts (resamples x images) times values.T: the faster order for BLAS here (measured)
        out[:, :, g] = (counts.astype(dtype) @ values[:, members].T.astype(dtype)).T
        out[:, :, g] /= members.size
    return out


def hierarchical_bootstrap(
    values,
    labels,
    statistic: str = "accuracy",
    n_boot: int = 2000,
    seed: int = 0,
    resample_seeds: bool = True,
) -> np.ndarray:
    """Bootstrap distribution of the mean over seeds of a test-set statistic.

    ``values``: (seeds, test images) per-image numbers of each seed, the images in the
    same order for every seed: 1/0 correctness of one method, or the paired difference
    ``correct_a - correct_b`` of two methods of that seed. ``labels``: the images' true
    classes. ``statistic``: ``accuracy`` (the mean over images; images resampled as one
    set), ``mean_class_accuracy`` (the mean over classes of the per-class mean; images
    resampled within each class) or ``per_class`` (one column per class, sorted).

    Each resample draws the seeds with replacement (unless ``resample_seeds`` is False:
    the test images alone), then the images, one draw shared by every drawn seed (seeds and
    images are crossed: every run is tested on the same images). Returns (n_boot,) or
    (n_boot, classes) for ``per_class``."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic {statistic!r}: choose one of {', '.join(STATISTICS)}")
    values = np.atleast_2d(np.asarray(values, dtype=float))
    labels = np.asarray(labels)
    if values.shape[1] != labels.size:
        raise ValueError(f"values has {values.shape[1]} images per seed, labels {labels.size}")
    n_seeds = values.shape[0]
    seeds, groups = _resamples(seed, n_seeds if resample_seeds else 0, labels, n_boot, statistic != "accuracy")
    per_seed = _per_seed(values, groups)  # (n_seeds, n_boot, n_groups)
    if seeds is None:
        drawn = per_seed.mean(axis=0)
    else:
        drawn = per_seed[seeds, np.arange(n_boot)[:, None], :].mean(axis=1)  # (n_boot, n_groups)
    if statistic == "per_class":
        return drawn
    return drawn.mean(axis=1) if statistic == "mean_class_accuracy" else drawn[:, 0]


def percentile_interval(boots, confidence: float = 0.95) -> tuple[float, float]:
    tail = (1 - confidence) / 2
    return float(np.quantile(boots, tail)), float(np.quantile(boots, 1 - tail))


def image_variance(values, labels, statistic: str = "accuracy", n_boot: int = 2000, seed: int = 0) -> float:
    """Variance of the seed-mean statistic when only the test images are resampled
    (``hierarchical_bootstrap`` with the seeds kept)."""
    return float(np.var(hierarchical_bootstrap(values, labels, statistic, n_boot, seed, resample_seeds=False), ddof=1))


def image_variance_parts(values, labels, statistic: str = "accuracy", n_boot: int = 2000, seed: int = 0):
    """(shared, per seed) parts of the test images' variance of the seed-mean statistic:
    with the images alone resampled, one seed's statistic varies by shared + per seed, the
    mean of n seeds by shared + per seed / n. The per-seed part is already in the seeds'
    spread (each run's accuracy is measured on the test images), so only the shared part is
    added to the model's variance (``combined_test``): it is the one no number of seeds
    averages away. With one seed everything is counted as shared."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    labels = np.asarray(labels)
    _, groups = _resamples(seed, 0, labels, n_boot, statistic != "accuracy")
    per_seed = _per_seed(values, groups)  # (n_seeds, n_boot, n_groups)
    stat = per_seed.mean(axis=2) if statistic != "per_class" else per_seed[:, :, 0]
    n = stat.shape[0]
    var_mean = float(np.var(stat.mean(axis=0), ddof=1))
    if n < 2:
        return var_mean, 0.0
    mean_var = float(np.mean(np.var(stat, axis=1, ddof=1)))
    individual = max((mean_var - var_mean) * n / (n - 1), 0.0)
    return max(var_mean - individual / n, 0.0), individual


def statistic_of(values, labels, statistic: str = "accuracy"):
    """The statistic of ``hierarchical_bootstrap`` on the data as they are (mean over seeds)."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    labels = np.asarray(labels)
    if statistic == "accuracy":
        return float(values.mean())
    per_class = np.array([values[:, labels == c].mean() for c in np.unique(labels)])
    return per_class if statistic == "per_class" else float(per_class.mean())


# ---------------------------------------------------------------------------- class controls
def per_class_recall(
    correct, labels, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95, resample_seeds: bool = True
) -> pd.DataFrame:
    """Test recall of each class, mean over seeds, with its hierarchical-bootstrap interval.

    ``correct``: (seeds, test images) 1/0 correctness of one method's runs, the images in
    the same order for every seed; ``labels``: the images' true classes. The interval is
    the percentile interval of ``hierarchical_bootstrap(..., "per_class")``: seeds drawn with
    replacement, then the images of each class (so every class keeps its size), one image
    draw shared by the drawn seeds. One row per class present in ``labels`` (sorted):
    ``images`` (its test images), ``recall``, ``lo``, ``hi``."""
    correct = np.atleast_2d(np.asarray(correct, dtype=float))
    labels = np.asarray(labels)
    classes = np.unique(labels)
    boots = hierarchical_bootstrap(correct, labels, "per_class", n_boot, seed, resample_seeds)
    tail = (1 - confidence) / 2
    return pd.DataFrame(
        {
            "images": [int((labels == c).sum()) for c in classes],
            "recall": statistic_of(correct, labels, "per_class"),
            "lo": np.quantile(boots, tail, axis=0),
            "hi": np.quantile(boots, 1 - tail, axis=0),
        },
        index=pd.Index(classes, name="class"),
    )


def prediction_share_bootstrap(
    preds, labels, n_classes: int, n_boot: int = 2000, seed: int = 0, resample_seeds: bool = True
) -> np.ndarray:
    """Bootstrap distribution of the share of the test images predicted as each class
    (mean over seeds): (n_boot, n_classes), each row summing to 1.

    ``preds``: (seeds, test images) predicted classes (0..n_classes-1), the images in the
    same order for every seed; ``labels``: their true classes. The draws are those of
    ``hierarchical_bootstrap`` with a per-class statistic: seeds with replacement, then the
    images within each true class, so the test split's class composition (the true share
    the predicted share is read against) stays fixed and the interval holds the seeds' and
    the images' sampling. A resample's share of class k is sum over true classes c of
    (images of c / images) x (share of c's drawn images predicted as k)."""
    preds = np.atleast_2d(np.asarray(preds))
    labels = np.asarray(labels)
    if preds.shape[1] != labels.size:
        raise ValueError(f"preds has {preds.shape[1]} images per seed, labels {labels.size}")
    if preds.size and (preds.min() < 0 or preds.max() >= n_classes):
        raise ValueError(f"predicted classes must lie in 0..{n_classes - 1}")
    n_seeds = preds.shape[0]
    seeds, groups = _resamples(seed, n_seeds if resample_seeds else 0, labels, n_boot, True)
    # each seed's share per class in each resample: per true class, its images predicted as k
    # (one-hot, seeds x classes rows) times how often each is drawn
    per_seed = np.zeros((n_seeds, n_boot, n_classes))
    for members, counts in groups:
        onehot = (preds[:, members][:, None, :] == np.arange(n_classes)[None, :, None]).astype(np.float32)
        drawn = onehot.reshape(n_seeds * n_classes, members.size) @ counts.T.astype(np.float32)  # exact: counts
        per_seed += drawn.reshape(n_seeds, n_classes, n_boot).transpose(0, 2, 1).astype(float) / labels.size
    if seeds is None:
        return per_seed.mean(axis=0)
    return per_seed[seeds, np.arange(n_boot)[:, None], :].mean(axis=1)


def prediction_share(
    preds, labels, n_classes: int, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> pd.DataFrame:
    """How often a method predicts each class against how often the class is the true one.

    ``preds``: (seeds, test images) predicted classes of one method's runs (the same images
    in the same order); ``labels``: the true classes. One row per class 0..n_classes-1:
    ``true`` (the class's share of the test images), ``predicted`` (the share of the test
    images predicted as it, mean over seeds), ``lo`` and ``hi`` (the percentile interval of
    ``prediction_share_bootstrap``). A predicted share above the true one with ``lo`` above
    it: the method over-predicts the class (e.g. a fallback class for hard faces); below,
    with ``hi`` below it: the class is given up."""
    preds = np.atleast_2d(np.asarray(preds))
    labels = np.asarray(labels)
    boots = prediction_share_bootstrap(preds, labels, n_classes, n_boot, seed)
    tail = (1 - confidence) / 2
    classes = np.arange(n_classes)
    return pd.DataFrame(
        {
            "true": [float((labels == k).mean()) for k in classes],
            "predicted": [float((preds == k).mean()) for k in classes],
            "lo": np.quantile(boots, tail, axis=0),
            "hi": np.quantile(boots, 1 - tail, axis=0),
        },
        index=pd.Index(classes, name="class"),
    )


# ---------------------------------------------------------------------------- tests
@dataclass
class EffectTest:
    """One comparison's effect with its combined standard error, interval and tests."""

    effect: float
    se: float
    df: int
    lo: float
    hi: float
    p: float  # two-sided, H0: effect = 0
    p_equivalence: float  # TOST against +-delta (NaN without delta)
    delta: float | None


def combined_test(
    effect: float, se_model: float, df: int, var_test: float = 0.0, delta: float | None = None, confidence=0.95
) -> EffectTest:
    """The effect's test with its variance from the seeds (``se_model``, the model's
    contrast) plus the test images (``var_test``), on ``df`` degrees of freedom: the
    two-sided t interval and p-value, and TOST against ``delta`` (``tost``)."""
    from scipy import stats

    se = math.sqrt(se_model**2 + max(var_test, 0.0))
    if df < 1 or not math.isfinite(se) or se == 0:
        nan = math.nan
        return EffectTest(effect, se, df, nan, nan, nan, nan, delta)
    q = float(stats.t.ppf(0.5 + confidence / 2, df))
    p = float(2 * stats.t.sf(abs(effect) / se, df))
    p_eq = tost(effect, se, df, delta) if delta else math.nan
    return EffectTest(effect, se, df, effect - q * se, effect + q * se, p, p_eq, delta)


def tost(effect: float, se: float, df: int, delta: float) -> float:
    """Two one-sided t tests of |effect| < delta: the larger of the p-values of
    H0: effect <= -delta and H0: effect >= +delta. Below alpha exactly when the
    (1 - 2 alpha) t interval lies within (-delta, +delta)."""
    from scipy import stats

    p_low = float(stats.t.sf((effect + delta) / se, df))
    p_high = float(stats.t.cdf((effect - delta) / se, df))
    return max(p_low, p_high)


def holm(pvalues, alpha: float = 0.05) -> np.ndarray:
    """Holm's step-down adjusted p-values (statsmodels ``multipletests``); NaN stays NaN
    and is not counted in the family."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=alpha, method="holm")[1]
    return out


# ---------------------------------------------------------------------------- planning
def seeds_needed(
    sd_diff: float,
    effect: float,
    delta: float,
    var_test: float = 0.0,
    alpha: float = 0.05,
    power: float = 0.8,
    cap: int = 10_000,
) -> int | None:
    """Paired seeds that decide a comparison with ``power`` (normal approximation):
    the fewer of those that detect a difference of min(delta, |effect|) (two-sided
    ``alpha``) and those that show equivalence with the margin left, delta - |effect|
    (one-sided ``alpha`` per side). ``sd_diff``: the SD of one seed's paired difference;
    ``var_test``: the test images' variance of the effect, which seeds do not reduce.
    None when neither is reachable (the test set alone is too noisy) or above ``cap``."""
    from scipy import stats

    z_b = stats.norm.ppf(power)

    def n_for(margin: float, z_a: float) -> float:
        if margin <= 0:
            return math.inf
        room = (margin / (z_a + z_b)) ** 2 - var_test
        if room <= 0:
            return math.inf
        return max(2.0, math.ceil(sd_diff**2 / room)) if sd_diff > 0 else 2.0

    n_diff = n_for(min(delta, abs(effect)), stats.norm.ppf(1 - alpha / 2))
    n_equiv = n_for(delta - abs(effect), stats.norm.ppf(1 - alpha))
    n = min(n_diff, n_equiv)
    return None if not math.isfinite(n) or n > cap else int(n)


__all__ = [
    "EffectTest",
    "LevelModel",
    "STATISTICS",
    "anova_components",
    "combined_test",
    "equal_variances",
    "fit_level",
    "hierarchical_bootstrap",
    "holm",
    "per_class_recall",
    "percentile_interval",
    "prediction_share",
    "prediction_share_bootstrap",
    "seeds_needed",
    "statistic_of",
    "image_variance",
    "image_variance_parts",
    "tost",
]
