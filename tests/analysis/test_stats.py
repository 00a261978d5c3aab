"""The verdict's statistics (``tanlib.analysis.stats``) against naive computations: the
mixed model against the balanced-design ANOVA variance components, the hierarchical
bootstrap against an explicit loop over the same draws, TOST and the combined test against
scipy's t distribution and statsmodels' paired TOST, Holm against a hand-computed example."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from tanlib.analysis import stats as S


def _design(n_seeds=6, methods=("ce", "tan", "scn"), effects=(0.0, 0.02, -0.01), repeats=1, rng_seed=1):
    """A balanced seeds x methods design: seed effect SD 0.03, interaction SD 0.015,
    within-cell (repeat) SD 0.01."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    seed_effect = rng.normal(0, 0.03, n_seeds)
    for s in range(n_seeds):
        for m, e in zip(methods, effects):
            cell = 0.6 + e + seed_effect[s] + rng.normal(0, 0.015)
            for _ in range(repeats):
                rows.append({"method": m, "seed": s, "accuracy": cell + (rng.normal(0, 0.01) if repeats > 1 else 0)})
    return pd.DataFrame(rows)


def test_mixed_model_matches_the_anova_components_of_a_balanced_design():
    frame = _design()
    model = S.fit_level(frame, "accuracy", ["ce", "tan", "scn"])
    cells = frame.groupby(["seed", "method"])["accuracy"].mean().unstack()[["ce", "tan", "scn"]]
    # naive ANOVA by hand: mean squares of seeds and of the seed x method residual
    x = cells.to_numpy()
    n, k = x.shape
    ms_seed = k * ((x.mean(1) - x.mean()) ** 2).sum() / (n - 1)
    r = x - x.mean(1, keepdims=True) - x.mean(0, keepdims=True) + x.mean()
    ms_res = (r**2).sum() / ((n - 1) * (k - 1))
    assert ms_seed > ms_res  # the seed variance is inside the parameter space: REML = ANOVA
    assert model.how == "mixedlm"
    assert model.var_resid == pytest.approx(ms_res, rel=1e-3)
    assert model.var_seed == pytest.approx((ms_seed - ms_res) / k, rel=1e-3)
    assert model.df == (n - 1) * (k - 1)
    est, se = model.contrast("tan", "ce")
    assert est == pytest.approx(x[:, 1].mean() - x[:, 0].mean())
    assert se == pytest.approx(math.sqrt(2 * ms_res / n), rel=1e-3)
    assert S.anova_components(cells) == pytest.approx((model.var_seed, model.var_resid), rel=1e-3)


def test_two_methods_give_the_paired_t_standard_error():
    frame = _design(methods=("ce", "tan"), effects=(0.0, 0.02))
    model = S.fit_level(frame, "accuracy", ["ce", "tan"])
    d = (
        frame[frame.method == "tan"].set_index("seed")["accuracy"]
        - frame[frame.method == "ce"].set_index("seed")["accuracy"]
    )
    est, se = model.contrast("tan", "ce")
    assert est == pytest.approx(d.mean())
    assert se == pytest.approx(d.std(ddof=1) / math.sqrt(len(d)), rel=1e-3)


def test_repeated_cells_separate_the_within_cell_variance():
    frame = _design(n_seeds=8, repeats=2, rng_seed=4)
    model = S.fit_level(frame, "accuracy", ["ce", "tan", "scn"])
    assert model.n_repeats == len(frame) // 2
    cells = frame.groupby(["seed", "method"])["accuracy"]
    within = ((frame["accuracy"] - cells.transform("mean")) ** 2).sum() / (len(frame) - cells.ngroups)
    _, ms_res_means = S.anova_components(cells.mean().unstack())
    # balanced, two runs per cell: the cell means' residual MS is var_resid + var_within / 2
    assert model.var_within == pytest.approx(within, rel=2e-3)
    assert model.var_resid == pytest.approx(ms_res_means - within / 2, rel=2e-3)


def test_the_model_needs_two_complete_seeds():
    frame = _design(n_seeds=2)
    assert S.fit_level(frame[~((frame.seed == 1) & (frame.method == "tan"))], "accuracy", ["ce", "tan"]) is None


def _naive_bootstrap(values, labels, statistic, n_boot, seed, resample_seeds=True):
    """The same draws as ``hierarchical_bootstrap`` (seeds, then images: one set, or each
    class in sorted order), the statistic recomputed with explicit loops."""
    rng = np.random.default_rng(seed)
    n_seeds, n_img = values.shape
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds)) if resample_seeds else None
    classes = sorted(set(labels.tolist()))
    if statistic == "accuracy":
        draws = {None: rng.integers(0, n_img, size=(n_boot, n_img))}
    else:
        draws = {}
        for c in classes:
            members = [i for i in range(n_img) if labels[i] == c]
            draws[c] = (members, rng.integers(0, len(members), size=(n_boot, len(members))))
    out = []
    for b in range(n_boot):
        chosen = list(seeds[b]) if resample_seeds else list(range(n_seeds))
        per_seed = []
        for s in chosen:
            if statistic == "accuracy":
                idx = draws[None][b]
                per_seed.append([sum(values[s][i] for i in idx) / len(idx)])
            else:
                rec = []
                for c in classes:
                    members, idx = draws[c]
                    rec.append(sum(values[s][members[i]] for i in idx[b]) / len(members))
                per_seed.append(rec)
        mean = [sum(col) / len(col) for col in zip(*per_seed)]
        out.append(mean if statistic == "per_class" else sum(mean) / len(mean))
    return np.array(out)


@pytest.mark.parametrize("statistic", ["accuracy", "mean_class_accuracy", "per_class"])
def test_hierarchical_bootstrap_matches_a_naive_loop(statistic):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 30)
    # paired per-image differences of two methods over 4 seeds
    values = (rng.random((4, 30)) < 0.6).astype(float) - (rng.random((4, 30)) < 0.5).astype(float)
    got = S.hierarchical_bootstrap(values, labels, statistic, n_boot=60, seed=11)
    want = _naive_bootstrap(values, labels, statistic, 60, 11)
    np.testing.assert_allclose(got, want)
    images_only = S.hierarchical_bootstrap(values, labels, statistic, n_boot=60, seed=11, resample_seeds=False)
    np.testing.assert_allclose(images_only, _naive_bootstrap(values, labels, statistic, 60, 11, False))


def test_the_cached_draws_are_those_of_each_call_and_cannot_be_changed():
    """The draws are made once per (seed, seeds, labels, statistic): calls that differ in any
    of them, made in between, leave each call's result equal to the naive loop's; fractional
    values (multiplied in float64) agree with it too; the cached counts are read-only."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, 30)
    values = (rng.random((4, 30)) < 0.6).astype(float)
    want = _naive_bootstrap(values, labels, "mean_class_accuracy", 60, 11)
    S.hierarchical_bootstrap(values[:3], labels, "mean_class_accuracy", n_boot=60, seed=11)  # other seeds
    S.hierarchical_bootstrap(values, labels.astype(np.int32), "mean_class_accuracy", n_boot=60, seed=11)
    S.hierarchical_bootstrap(values, labels[::-1].copy(), "mean_class_accuracy", n_boot=60, seed=11)
    np.testing.assert_allclose(S.hierarchical_bootstrap(values, labels, "mean_class_accuracy", 60, 11), want)
    fractions = rng.random((4, 30))
    got = S.hierarchical_bootstrap(fractions, labels, "accuracy", n_boot=60, seed=11)
    np.testing.assert_allclose(got, _naive_bootstrap(fractions, labels, "accuracy", 60, 11), rtol=1e-12)
    _, groups = S._resamples(11, 4, labels, 60, True)
    with pytest.raises(ValueError, match="read-only"):
        groups[0][1][0, 0] = 5
    # the same bytes in another dtype are other labels: int64 [1] and int32 [1, 0]
    one, two = np.array([1], dtype=np.int64), np.array([1, 0], dtype=np.int32)
    assert one.tobytes() == two.tobytes()
    for lab in (one, two):
        v = np.ones((3, lab.size))
        got = S.hierarchical_bootstrap(v, lab, "mean_class_accuracy", n_boot=20, seed=3)
        np.testing.assert_allclose(got, _naive_bootstrap(v, lab, "mean_class_accuracy", 20, 3))
    # a repeated call is served from the cache; an unseeded one and string labels are drawn anew
    S._cached_resamples.cache_clear()
    S.hierarchical_bootstrap(values, labels, "accuracy", n_boot=60, seed=11)
    S.hierarchical_bootstrap(values, labels, "accuracy", n_boot=60, seed=11)
    assert S._cached_resamples.cache_info().hits == 1
    names = np.array(["anger", "fear", "joy"])[labels].astype(object)
    got = S.hierarchical_bootstrap(values, names, "mean_class_accuracy", n_boot=60, seed=11)
    np.testing.assert_allclose(got, want)  # classes sorted by name keep the order of 0, 1, 2
    assert S.hierarchical_bootstrap(values, labels, "accuracy", n_boot=60, seed=None).shape == (60,)
    assert S._cached_resamples.cache_info().currsize == 1


def test_bootstrap_centres_on_the_statistic_and_widens_with_seed_spread():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    same = np.tile((rng.random(200) < 0.7).astype(float), (5, 1))
    spread = same.copy()
    for s in range(5):  # seeds that differ: each moves a different block of images
        spread[s, s * 30 : s * 30 + 30] = 1 - spread[s, s * 30 : s * 30 + 30]
    for statistic in ("accuracy", "mean_class_accuracy"):
        boots = S.hierarchical_bootstrap(spread, labels, statistic, n_boot=800, seed=2)
        assert np.mean(boots) == pytest.approx(S.statistic_of(spread, labels, statistic), abs=0.01)
        images_only = S.hierarchical_bootstrap(spread, labels, statistic, n_boot=800, seed=2, resample_seeds=False)
        assert np.var(boots) > np.var(images_only)  # the seeds' spread adds to the images'
    # identical seeds: resampling them adds nothing
    a = S.hierarchical_bootstrap(same, labels, "accuracy", n_boot=400, seed=3)
    b = S.hierarchical_bootstrap(same[:1], labels, "accuracy", n_boot=400, seed=3, resample_seeds=False)
    assert np.var(a) == pytest.approx(np.var(b), rel=0.25)


def test_tost_and_the_combined_test_follow_scipy_and_statsmodels():
    from statsmodels.stats.weightstats import ttost_paired

    rng = np.random.default_rng(8)
    a = rng.normal(0.6, 0.02, 9)
    b = a + rng.normal(0.001, 0.01, 9)
    d = a - b
    se, df = d.std(ddof=1) / math.sqrt(d.size), d.size - 1
    delta = 0.0137
    p_sm = ttost_paired(a, b, -delta, delta)[0]
    assert S.tost(d.mean(), se, df, delta) == pytest.approx(p_sm)
    res = S.combined_test(d.mean(), se, df, var_test=0.0, delta=delta)
    ref = sps.ttest_1samp(d, 0.0)
    assert res.p == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (res.lo, res.hi) == pytest.approx((ci.low, ci.high))
    assert res.p_equivalence == pytest.approx(p_sm)
    # the test images' variance adds to the seeds': a wider interval, a larger p
    wider = S.combined_test(d.mean(), se, df, var_test=se**2, delta=delta)
    assert wider.se == pytest.approx(math.sqrt(2) * se)
    assert wider.hi - wider.lo == pytest.approx(math.sqrt(2) * (res.hi - res.lo))
    # TOST below 0.05 exactly when the 90 % interval lies within +-delta
    ninety = S.combined_test(d.mean(), se, df, confidence=0.90)
    assert (res.p_equivalence < 0.05) == (-delta < ninety.lo and ninety.hi < delta)


def test_holm_matches_a_hand_computed_example():
    p = [0.01, 0.04, 0.03, 0.005, float("nan")]
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone 0.06
    np.testing.assert_allclose(S.holm(p)[:4], [0.03, 0.06, 0.06, 0.02])
    assert math.isnan(S.holm(p)[4])


def test_seeds_needed_follows_the_normal_approximation():
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    # an effect as large as delta: the difference decides first
    assert S.seeds_needed(0.02, 0.02, 0.0137) == math.ceil((z * 0.02 / 0.0137) ** 2)
    # an effect near 0: equivalence with the margin left decides first
    z1 = sps.norm.ppf(0.95) + sps.norm.ppf(0.8)
    assert S.seeds_needed(0.02, 0.001, 0.0137) == math.ceil((z1 * 0.02 / 0.0127) ** 2)
    # test images noisier than the margin allows: no number of seeds decides
    assert S.seeds_needed(0.02, 0.0, 0.0137, var_test=(0.0137 / z1) ** 2) is None


def test_image_variance_parts_split_the_shared_from_the_per_seed_part():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 3, 400)
    shared = (rng.random(400) < 0.3).astype(float)
    # identical seeds: all of it is shared
    same = np.tile(shared, (6, 1))
    s, i = S.image_variance_parts(same, labels, "accuracy", n_boot=500, seed=1)
    assert i == pytest.approx(0.0, abs=1e-12)
    assert s == pytest.approx(S.image_variance(same, labels, "accuracy", n_boot=500, seed=1))
    # independent seeds around 0: nothing shared beyond noise, the mean's variance ~ per seed / n
    indep = (rng.random((6, 400)) < 0.5).astype(float) - (rng.random((6, 400)) < 0.5).astype(float)
    s, i = S.image_variance_parts(indep, labels, "accuracy", n_boot=500, seed=1)
    whole = S.image_variance(indep, labels, "accuracy", n_boot=500, seed=1)
    assert s == pytest.approx(max(whole - i / 6, 0.0), abs=1e-12)  # shared + per seed / n, truncated at 0
    assert s < 0.3 * whole


# ---------------------------------------------------------------------------- class controls
def _naive_shares(preds, labels, n_classes, n_boot, seed):
    """The draws of ``prediction_share_bootstrap`` (seeds, then the images of each true
    class in sorted order), each resample's shares counted image by image."""
    rng = np.random.default_rng(seed)
    n_seeds, n_img = preds.shape
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    draws = []
    for c in sorted(set(labels.tolist())):
        members = [i for i in range(n_img) if labels[i] == c]
        draws.append((members, rng.integers(0, len(members), size=(n_boot, len(members)))))
    out = []
    for b in range(n_boot):
        counts = [0.0] * n_classes
        for s in seeds[b]:
            for members, idx in draws:
                for i in idx[b]:
                    counts[preds[s][members[i]]] += 1
        out.append([c / (n_seeds * n_img) for c in counts])
    return np.array(out)


def test_prediction_shares_match_a_naive_count_over_the_same_draws():
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 3, 40)
    preds = np.where(rng.random((4, 40)) < 0.6, labels, rng.integers(0, 4, (4, 40)))  # 4 classes, one never true
    got = S.prediction_share_bootstrap(preds, labels, 4, n_boot=50, seed=7)
    np.testing.assert_allclose(got, _naive_shares(preds, labels, 4, 50, 7))
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    table = S.prediction_share(preds, labels, 4, n_boot=50, seed=7)
    for k in range(4):
        assert table.loc[k, "true"] == pytest.approx(sum(int(v == k) for v in labels) / 40)
        want = sum(int(p == k) for row in preds for p in row) / preds.size
        assert table.loc[k, "predicted"] == pytest.approx(want)
        assert (table.loc[k, "lo"], table.loc[k, "hi"]) == pytest.approx(
            (np.quantile(got[:, k], 0.025), np.quantile(got[:, k], 0.975))
        )
    assert table.loc[3, "true"] == 0 and table.loc[3, "predicted"] > 0  # predicted, never true
    with pytest.raises(ValueError, match="0..3"):
        S.prediction_share_bootstrap(preds + 1, labels, 4)


def test_the_share_interval_keeps_the_test_composition_fixed():
    """Images are drawn within each true class: predicting the true label everywhere gives
    the true shares in every resample, whatever the seeds."""
    labels = np.repeat(np.arange(3), [10, 25, 5])
    boots = S.prediction_share_bootstrap(np.tile(labels, (3, 1)), labels, 3, n_boot=40, seed=1)
    np.testing.assert_allclose(boots, np.tile([0.25, 0.625, 0.125], (40, 1)))


def test_per_class_recall_is_the_bootstrap_per_class_with_a_loop_reference():
    rng = np.random.default_rng(12)
    labels = rng.integers(0, 3, 36)
    correct = (rng.random((3, 36)) < 0.7).astype(float)
    table = S.per_class_recall(correct, labels, n_boot=80, seed=4)
    boots = _naive_bootstrap(correct, labels, "per_class", 80, 4)
    for i, c in enumerate(sorted(set(labels.tolist()))):
        members = [j for j in range(36) if labels[j] == c]
        assert table.loc[c, "images"] == len(members)
        recall = sum(correct[s][j] for s in range(3) for j in members) / (3 * len(members))
        assert table.loc[c, "recall"] == pytest.approx(recall)
        assert table.loc[c, "lo"] == pytest.approx(np.quantile(boots[:, i], 0.025))
        assert table.loc[c, "hi"] == pytest.approx(np.quantile(boots[:, i], 0.975))
        assert table.loc[c, "lo"] <= recall <= table.loc[c, "hi"]
