"""The verdict's statistics against naive references (scipy, explicit loops) and its rule."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tanlib.analysis import verdict as V


def test_t_interval_matches_scipy():
    d = np.array([0.012, -0.004, 0.021, 0.008])
    mean, lo, hi = V.t_interval(d)
    ref = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert mean == pytest.approx(d.mean())
    assert (lo, hi) == pytest.approx((ref.low, ref.high))
    assert math.isnan(V.t_interval([0.3])[1])


def _records(rows):
    return pd.DataFrame(
        [
            {"run": f"{m}-seed{s}", "path": f"/x/{m}-{s}", "variant": "", **dict(method=m, seed=s), **kw}
            for m, s, kw in rows
        ]
    )


def test_paired_difference_pairs_by_seed_and_ignores_unpaired_seeds():
    rec = _records(
        [
            ("tan", 0, {"accuracy": 0.60}),
            ("tan", 1, {"accuracy": 0.55}),
            ("tan", 2, {"accuracy": 0.50}),
            ("ce", 0, {"accuracy": 0.58}),
            ("ce", 1, {"accuracy": 0.56}),
        ]
    )
    p = V.paired_difference(rec, "tan", "ce", "accuracy")
    assert p.seeds == [0, 1]
    assert p.diffs == pytest.approx([0.02, -0.01])
    one = V.paired_difference(rec, "tan", None, "accuracy", reference=0.5)
    assert one.diffs == pytest.approx([0.10, 0.05, 0.0])
    assert V.paired_difference(rec, "tan", "scn", "accuracy") is None


def test_a_duplicate_run_of_one_seed_is_refused_not_averaged():
    rec = _records([("tan", 0, {"accuracy": 0.6}), ("tan", 0, {"accuracy": 0.5}), ("ce", 0, {"accuracy": 0.5})])
    with pytest.raises(ValueError, match="more than one run for seed"):
        V.paired_difference(rec, "tan", "ce", "accuracy")


def _claim(
    key="acc", a="tan", b="ce", measure="accuracy", direction="greater", family="primary", levels=(0.1,), delta=0.0137
):
    from tanlib.analysis.claims import DIRECTIONS, Claim

    return Claim(key, key, a, b, measure, DIRECTIONS[direction], tuple(levels), delta, family)


def _result(effect, se, df, delta, direction=+1, learned=True, look=3):
    from tanlib.analysis.stats import combined_test

    test = combined_test(effect, se, df, 0.0, delta)
    return {
        "test": test,
        "look": look,
        "direction": direction,
        # a look where a run did not learn gives no p-value (claim_results' _judge_looks)
        "p_adjusted": test.p if learned else math.nan,
        "p_equivalence_adjusted": test.p_equivalence if learned else math.nan,
        "did_not_learn": [] if learned else ["/x/run"],
    }


@pytest.mark.parametrize(
    "effect, se, direction, learned, expected",
    [
        (0.05, 0.005, +1, True, "supported"),
        (0.05, 0.005, -1, True, "contradicted"),
        (0.001, 0.002, +1, True, "equivalent"),  # the 90 % interval inside +-1.37 points
        (0.010, 0.001, +1, True, "equivalent"),  # real but smaller than delta: not the claimed effect
        (0.01, 0.02, +1, True, "inconclusive"),  # neither test decides
        (0.05, 0.005, +1, False, "inconclusive"),  # a run did not learn
    ],
)
def test_the_rule_in_one_function(effect, se, direction, learned, expected):
    assert V.decide(_result(effect, se, 9, 0.0137, direction, learned)) == expected


def test_nothing_is_decided_before_the_first_look():
    """Two seeds give an interval, not a decision: a clear effect is "not judged" until the
    first look (3 seeds), where the same numbers decide."""
    assert V.decide(_result(0.05, 0.005, 9, 0.0137, look=None)) == "not judged"
    assert V.decide(_result(0.05, 0.005, 9, 0.0137, look=3)) == "supported"
    # read at a smaller level (several families together), the same cell need not hold
    clear = _result(0.05, 0.02, 9, 0.0137, look=3)
    assert 0.001 < clear["p_adjusted"] < V.ALPHA and V.decide(clear) == "supported"
    assert (
        V.decide(clear, alpha=0.001) == "inconclusive"
        and V.decide(clear, alpha=clear["p_adjusted"] * 1.01) == "supported"
    )
    assert V.decide({"test": None}) == "n/a"


def _level_rows(level, effects, seeds=range(6), noise=0.004, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    rows = []
    for s in seeds:
        base = 0.55 + rng.normal(0, 0.02)
        for m, e in effects.items():
            acc = base + e + rng.normal(0, noise)
            rows.append(
                (
                    m,
                    s,
                    {
                        "accuracy": acc,
                        "mean_class_accuracy": acc,
                        "feature_ratio": 0.7,
                        "noisy_auc": math.nan,
                        "synth_label_noise": level,
                    },
                )
            )
    return rows


def test_claim_results_holm_adjusts_the_primary_family_only():
    from tanlib.analysis.sequential import SequentialDesign

    claims = (
        _claim("big", levels=(0.1, 0.3)),
        _claim("scn", b="scn", levels=(0.1, 0.3, 0.5)),  # 0.5: pre-registered, no records yet
        _claim("side", b="scn", measure="mean_class_accuracy", family="secondary", levels=(0.1, 0.3)),
    )
    rows = _level_rows(0.1, {"tan": 0.03, "ce": 0.0, "scn": 0.02}, seeds=range(9)) + _level_rows(
        0.3, {"tan": 0.0, "ce": 0.0, "scn": 0.0}, seeds=range(9), rng_seed=1
    )
    rec = _records(rows)
    results = V.claim_results(rec, claims, bootstrap=False)
    assert len(results) == 6  # every claim at each level with records, once
    # 9 seeds recorded: the looks of 3 and 8 are reached (looks 3, 8, 13, 18, 20); shown: the look of 8,
    # on seeds 0-7; p over the looks: the smallest of p / share, each look's p on its own seeds
    assert all(r["look"] == 8 and r["diff"].seeds == list(range(8)) for r in results)
    d = SequentialDesign()
    raw = {}
    for size in (3, 8):  # each look alone: a design whose one look it is, on the seeds 0..size-1
        alone = V.claim_results(
            rec[rec["seed"] < size], claims, bootstrap=False, design=SequentialDesign(size, 1, size)
        )
        raw[size] = {(r["claim"].key, r["level"]): r["test"] for r in alone}
    shares = {3: math.log(1 + (math.e - 1) * 3 / 20), 8: math.log(1 + (math.e - 1) * 8 / 20)}
    shares[8] -= shares[3]
    assert shares == pytest.approx({k: d.weight(k) for k in (3, 8)})
    for r in results:
        key = (r["claim"].key, r["level"])
        assert r["p_look"] == pytest.approx(min(min(1.0, raw[k][key].p / shares[k]) for k in (3, 8)))
        want_eq = min(min(1.0, raw[k][key].p_equivalence / shares[k]) for k in (3, 8))
        assert r["p_equivalence_look"] == pytest.approx(want_eq)
    primary = [r for r in results if r["claim"].primary]
    from statsmodels.stats.multitest import multipletests

    # Holm over the 5 pre-registered primary cells: the one without records counts as p = 1
    want = multipletests([r["p_look"] for r in primary] + [1.0], method="holm")[1][: len(primary)]
    assert [r["p_adjusted"] for r in primary] == pytest.approx(list(want))
    side = [r for r in results if not r["claim"].primary]
    assert all(r["p_adjusted"] == r["p_look"] for r in side)
    got = {(r["claim"].key, r["level"]): r["verdict"] for r in results}
    assert got[("big", 0.1)] == "supported"
    table = V.claims_frame(results)
    assert list(table["p, look + Holm"])[2] == "(secondary)" and "equivalent" in set(table["verdict"])
    assert set(table["look"]) == {"8 seeds"}


def test_a_look_is_reached_on_seeds_0_to_L_minus_1_of_every_method_of_the_level():
    """Seeds 0, 1 and 3 recorded (seed 2 of one method missing): no look is reached, the claim is
    shown on its paired seeds and not decided, and in Holm's family it counts as p = 1."""
    claims = (_claim("big"), _claim("other", b="scn"))
    rows = [
        r for r in _level_rows(0.1, {"tan": 0.05, "ce": 0.0, "scn": 0.0}, seeds=range(4)) if (r[0], r[1]) != ("scn", 2)
    ]
    results = V.claim_results(_records(rows), claims, bootstrap=False)
    assert all(r["look"] is None and r["complete"] == 2 and r["verdict"] == "not judged" for r in results)
    assert results[0]["diff"].seeds == [0, 1, 2, 3] and math.isnan(results[0]["p_look"])
    assert V.claims_frame(results)["look"].tolist() == ["before the first"] * 2
    # seed 2 arrives: the look of 3 is reached, on seeds 0-2 whatever else is recorded
    full = V.claim_results(
        _records(_level_rows(0.1, {"tan": 0.05, "ce": 0.0, "scn": 0.0}, seeds=range(4))), claims, bootstrap=False
    )
    assert full[0]["look"] == 3 and full[0]["diff"].seeds == [0, 1, 2] and full[0]["verdict"] == "supported"


def test_a_decision_once_made_stays():
    """A clear effect on seeds 0-2 (decided at the look of 3) and none on seeds 3-7: at the look of 8
    the effect shown shrinks, the verdict stays, from the smaller look-adjusted p of the look of 3."""
    rows = _level_rows(0.1, {"tan": 0.05, "ce": 0.0}, seeds=range(3)) + _level_rows(
        0.1, {"tan": -0.05, "ce": 0.0}, seeds=range(3, 8), rng_seed=2
    )
    (r,) = V.claim_results(_records(rows), (_claim(),), bootstrap=False)
    (p3, q3), (p8, q8) = [(h[1], h[2]) for h in r["looks"]]
    assert r["look"] == 8 and r["p_look"] == p3 < p8 and r["verdict"] == "supported"


def test_a_contradicted_claim_turns_equivalent_when_the_equivalence_test_rejects_later():
    """How a decided verdict's label can move: an effect of -1.0 point, against a claim that
    predicts a gain, with a delta of 1.37. At the look of 3 the difference test rejects 0 (on the
    side against the claim) and the equivalence test does not: contradicted. At the look of 8 the
    equivalence test rejects too, and the rule checks equivalence first: equivalent, while the
    difference test's rejection stays (its look-adjusted p is still below 0.05)."""
    rows = _level_rows(0.1, {"tan": -0.010, "ce": 0.0}, seeds=range(8), noise=0.0008, rng_seed=0)
    rec = _records(rows)
    (r3,) = V.claim_results(rec[rec["seed"] < 3], (_claim(),), bootstrap=False)
    (r8,) = V.claim_results(rec, (_claim(),), bootstrap=False)
    assert (r3["look"], r3["verdict"]) == (3, "contradicted") and r3["p_equivalence_look"] >= V.ALPHA
    assert (r8["look"], r8["verdict"]) == (8, "equivalent")
    assert r8["looks"][0][1] == pytest.approx(r3["p_look"]) and r8["p_look"] <= r3["p_look"] < V.ALPHA


def test_seeds_to_decide_names_a_look_or_why_not():
    from tanlib.analysis.sequential import SequentialDesign

    d = SequentialDesign()

    def text(needed, look):
        return V._seeds_text(
            {
                "verdict": "inconclusive",
                "test": object(),
                "did_not_learn": [],
                "seeds_needed": needed,
                "design": d,
                "look": look,
            }
        )

    assert text((8, True), 3) == "look at 8"
    assert text((40, False), 3) == "no look up to 20 (at least 40 at the full 5 %)"
    assert text((15, False), 3) == "no look up to 20 (at least 15 at the full 5 %)"  # a lower bound, not a look
    assert text((None, False), 3) == "not by seeds (test set)"
    assert text((None, False), 20) == "budget spent"


def test_a_bf16_run_is_never_paired_with_a_float32_run():
    rows = _level_rows(0.1, {"tan": 0.03, "ce": 0.0}, seeds=range(4))
    rec = _records(rows).assign(precision="none")
    mixed = rec.copy()
    mixed.loc[(mixed["method"] == "tan") & (mixed["seed"] == 0), "precision"] = "bf16"
    with pytest.raises(ValueError, match="different numeric formats"):
        V.paired_difference(mixed, "tan", "ce", "accuracy")
    # claim_results splits the formats: each judged on its own runs
    both = pd.concat([rec, rec.assign(precision="bf16", path=rec["path"] + "-bf16")])
    results = V.claim_results(both, (_claim(),), bootstrap=False)
    assert sorted(r["precision"] for r in results) == ["bf16", "none"]
    assert all(r["diff"].seeds == [0, 1, 2] and r["complete"] == 4 for r in results)  # the look of 3
    assert "format" in V.claims_frame(results)


def test_runs_of_another_numeric_format_never_change_a_formats_decisions():
    """Holm runs over each format's own primary cells: float32 runs of a GPU beside the bf16
    ones leave every bf16 adjusted p-value as it was (a shared family would grow with them)."""
    rows = _level_rows(0.1, {"tan": 0.03, "ce": 0.0}, seeds=range(4))
    bf16 = _records(rows).assign(precision="bf16")
    alone = V.claim_results(bf16, (_claim(),), bootstrap=False)
    floats = bf16.assign(precision="none", path=bf16["path"] + "-f32", seed=bf16["seed"] + 3)
    both = V.claim_results(pd.concat([bf16, floats]), (_claim(),), bootstrap=False)
    mine = [r for r in both if r["precision"] == "bf16"]
    assert len(both) == 2 * len(alone) and len(mine) == len(alone)
    assert 0 < alone[0]["p_adjusted"] < 0.5  # a family of two would double it
    for a, b in zip(alone, mine):
        assert b["p_adjusted"] == pytest.approx(a["p_adjusted"])
        assert b["verdict"] == a["verdict"]
    # the float32 seeds 3-6 reach no look (a look needs seeds 0..n-1 in one format)
    assert all(r["look"] is None for r in both if r["precision"] == "none")


def test_committed_records_carry_data_settings_and_test_predictions():
    """A fresh clone has no data/: the label noise and the bootstrap come from the record."""
    from pathlib import Path

    from tanlib.report import RECORD_EXTRAS, RECORD_FILES, run_record
    from tanlib.report.records import read_index

    results = Path(__file__).resolve().parents[2] / "results"
    runs = [results / key for key in read_index(results)["records"]]  # verdict records sit a level deeper
    assert runs and any(key.parent.parent.name == "verdict" for key in runs)
    for run in runs:
        names = {p.name for p in run.iterdir()}
        assert set(RECORD_FILES) <= names and names <= set(RECORD_FILES) | set(RECORD_EXTRAS), run
        assert {"data.json", "test_predictions.csv"} <= names, run
        assert run_record(run)["synth_label_noise"] is not None
        assert len(V.test_correct(run)) > 0


def test_ablation_charts_show_a_variant_as_its_own_bar():
    from tanlib.report import ablation_groups

    summary = pd.DataFrame(
        {
            "method": ["tan", "tan", "ce", "tan", "ce"],
            "variant": ["", "lambda_rr=1.0", "", "", ""],
            "synth_label_noise": [0.1, 0.1, 0.1, 0.3, 0.3],
            "n_runs": 3,
            "accuracy_mean": [0.5, 0.4, 0.45, 0.3, 0.35],
        }
    )
    groups = dict(ablation_groups(summary))
    assert set(groups) == {"-synth_label_noise=0.1", "-synth_label_noise=0.3"}
    assert list(groups["-synth_label_noise=0.1"]["method"]) == ["tan", "tan (lambda_rr=1.0)", "ce"]


def test_claims_figure_has_one_panel_per_claim():
    from tanlib.analysis import plot_claims

    claims = (_claim("a"), _claim("b", b="scn", family="secondary"))
    rows = _level_rows(0.1, {"tan": 0.03, "ce": 0.0, "scn": 0.0}, seeds=range(3))
    results = V.claim_results(_records(rows), claims, bootstrap=False)
    fig = plot_claims(results)
    assert sum(ax.get_visible() for ax in fig.axes) == len(claims)
    # each effect's bar holds its 90 % interval, the one TOST reads, as its thick middle (scipy's t)
    from scipy import stats

    t = results[0]["test"]
    half = 100 * stats.t.ppf(0.95, t.df) * t.se
    thick = [ln for ln in fig.axes[0].lines if ln.get_linewidth() == 2.5]
    assert len(thick) == 1
    np.testing.assert_allclose(np.diff(thick[0].get_ydata()), [2 * half])
    np.testing.assert_allclose(np.mean(thick[0].get_ydata()), 100 * t.effect)
    # a level on two seeds (t with 1 degree of freedom): its interval runs off the panel, which the points,
    # the band and the other level's interval set, and ends in triangles at the edges
    two = _level_rows(0.3, {"tan": 0.0, "ce": 0.0}, seeds=range(2))
    for m, seed, kw in two:  # paired differences of +10 and -8 points
        kw["accuracy"] += (0.10 if seed == 0 else -0.08) if m == "tan" else 0.0
    wide = V.claim_results(_records(rows + two), (_claim("a", levels=(0.1, 0.3)),), bootstrap=False)
    (t10, t30) = [r["test"] for r in wide]
    assert t30.df == 1 and t30.hi - t30.lo > 10 * (t10.hi - t10.lo)
    ax = plot_claims(wide).axes[0]
    bottom, top = ax.get_ylim()
    assert bottom <= 100 * t10.lo and top >= 100 * t10.hi  # the narrow interval whole
    assert bottom > 100 * t30.lo and top < 100 * t30.hi  # the wide one clipped
    markers = {ln.get_marker(): ln.get_ydata()[0] for ln in ax.lines if ln.get_marker() in ("^", "v")}
    assert markers == {"^": top, "v": bottom}
    # no claim to judge (every run a variant of its method, as a smoke run at 32 px): one panel that says so
    empty = plot_claims([])
    assert [t.get_text() for t in empty.axes[0].texts] == ["no claim has runs of the methods' presets to compare"]


def test_a_regime_is_judged_on_its_own_runs():
    rows = _level_rows(0.1, {"tan": -0.05, "ce": 0.0})
    scratch = _records(rows)
    pretrained = scratch.assign(
        variant='pretrained="synthface"',
        accuracy=scratch["accuracy"] + np.where(scratch["method"] == "tan", 0.10, 0.0),
    )
    both = pd.concat([scratch, pretrained])
    first = V.claim_results(both, (_claim(),), bootstrap=False)[0]["verdict"]
    second = V.claim_results(both, (_claim(),), bootstrap=False, variant='pretrained="synthface"')[0]["verdict"]
    assert first == "contradicted" and second == "supported"


def test_repeats_enter_the_model_as_replicates():
    rows = _level_rows(0.1, {"tan": 0.03, "ce": 0.0}, seeds=range(5))
    rec = _records(rows)
    repeat = rec[rec["seed"] < 3].copy()
    identical = repeat.iloc[:1].copy()  # the same computation again: no information
    repeat["accuracy"] = repeat["accuracy"] + np.array([0.01, -0.01, 0.012, -0.008, 0.005, -0.004])
    res = V.claim_results(rec, (_claim(),), bootstrap=False, repeats=pd.concat([repeat, identical]))[0]
    assert res["model"].n_repeats == 6 and res["model"].var_within > 0


def _write_preds(path, labels, preds):
    path.mkdir(parents=True)
    pd.DataFrame({"epoch": [1, 2], "train_acc": [0.3, 0.4]}).to_csv(path / "history.csv", index=False)
    pd.DataFrame({"image": [f"i{k}" for k in range(len(labels))], "label": labels, "pred": preds}).to_csv(
        path / "test_predictions.csv", index=False
    )
    return str(path)


def test_did_not_learn_compares_the_test_accuracy_with_always_predicting_one_class(tmp_path):
    labels = [0] * 6 + [1] * 3 + [2]  # class 0: 60 % of the test labels, class 2: 10 %
    one_class = _write_preds(tmp_path / "flat", labels, [0] * 10)
    assert V.learning_check(one_class) == pytest.approx((0.6, 0.6))
    assert V.did_not_learn(one_class)
    # a run predicting the rare class for most faces and scoring no better than that
    rare = _write_preds(tmp_path / "rare", labels, [2] * 10)
    assert V.learning_check(rare) == pytest.approx((0.1, 0.1)) and V.did_not_learn(rare)
    learned = _write_preds(tmp_path / "learned", labels, [0] * 5 + [1] * 4 + [2])
    assert not V.did_not_learn(learned)  # 0.9 against 0.6


def test_a_claim_whose_baseline_did_not_learn_is_inconclusive(tmp_path):
    """A large, clean effect against runs that never learned is a failed optimisation:
    the verdict says inconclusive and names the runs."""
    labels = [0] * 4 + [1] * 3 + [2] * 3
    rows = []
    for s in (0, 1, 2):
        for m, acc in (("tan", 0.6 + 0.01 * s), ("tan-euclid", 0.38)):
            path = _write_preds(tmp_path / f"{m}-{s}", labels, [0] * 10 if m == "tan-euclid" else labels)
            rows.append(
                {
                    "run": f"{m}-seed{s}",
                    "path": path,
                    "variant": "",
                    "method": m,
                    "seed": s,
                    "accuracy": acc,
                    "mean_class_accuracy": acc,
                    "feature_ratio": 0.7,
                    "noisy_auc": math.nan,
                    "synth_label_noise": 0.1,
                }
            )
    results = V.claim_results(pd.DataFrame(rows), (_claim(b="tan-euclid"),), bootstrap=False)
    euclid = results[0]
    assert euclid["test"].lo > 0  # the interval alone would say supported
    assert euclid["verdict"] == "inconclusive"
    assert sorted(euclid["did_not_learn"]) == sorted(str(tmp_path / f"tan-euclid-{s}") for s in (0, 1, 2))


def test_class_controls_match_a_loop_over_the_predictions(tmp_path):
    """Per level, method and class: recall and predicted share counted image by image, the
    intervals those of tanlib.analysis.stats on the same runs, a run that did not learn counted."""
    from tanlib.analysis import stats as S

    rng = np.random.default_rng(3)
    labels = [0] * 8 + [1] * 5 + [2] * 3  # class 3 never true
    rows, preds = [], {}
    for level in (0.0, 0.3):
        for method in ("ce", "tan"):
            for s in (0, 1, 2):
                p = [y if rng.random() < 0.7 else int(rng.integers(0, 4)) for y in labels]
                if method == "tan" and level == 0.3 and s == 2:
                    p = [0] * len(labels)  # did not learn
                preds[(level, method, s)] = p
                path = _write_preds(tmp_path / f"{method}-{s}-{level}", labels, p)
                rows.append({"path": path, "method": method, "seed": s, "synth_label_noise": level})
    table = V.class_controls(pd.DataFrame(rows), 4, n_boot=60)
    assert len(table) == 2 * 2 * 4
    for (level, method), cell in table.groupby(["level", "method"]):
        runs = [preds[(level, method, s)] for s in (0, 1, 2)]
        assert (cell["seeds"] == 3).all()
        assert (cell["did_not_learn"] == int(level == 0.3 and method == "tan")).all()
        for k in range(4):
            row = cell[cell["class"] == k].iloc[0]
            members = [i for i, y in enumerate(labels) if y == k]
            assert row["images"] == len(members)
            assert row["true_share"] == pytest.approx(len(members) / len(labels))
            assert row["share"] == pytest.approx(sum(p.count(k) for p in runs) / (3 * len(labels)))
            if members:
                hits = sum(int(p[i] == k) for p in runs for i in members)
                assert row["recall"] == pytest.approx(hits / (3 * len(members)))
            else:
                assert math.isnan(row["recall"])
        pm = np.array(runs)
        share = S.prediction_share(pm, np.array(labels), 4, n_boot=60)
        recall = S.per_class_recall((pm == np.array(labels)).astype(float), np.array(labels), n_boot=60)
        np.testing.assert_allclose(cell["share_lo"], share["lo"])
        np.testing.assert_allclose(cell["share_hi"], share["hi"])
        np.testing.assert_allclose(cell["recall_lo"].iloc[:3], recall["lo"])


def test_prediction_matrix_refuses_runs_tested_on_other_images(tmp_path):
    from tanlib.errors import RecordError

    a = _write_preds(tmp_path / "a", [0, 1, 2], [0, 1, 1])
    b = _write_preds(tmp_path / "b", [0, 1, 2], [2, 1, 0])
    preds, labels = V.prediction_matrix([a, b])
    np.testing.assert_array_equal(preds, [[0, 1, 1], [2, 1, 0]])
    np.testing.assert_array_equal(labels, [0, 1, 2])
    c = _write_preds(tmp_path / "c", [0, 2, 1], [0, 1, 1])  # the same images, other labels
    with pytest.raises(RecordError, match="other images"):
        V.prediction_matrix([a, c])


def test_the_residual_variance_is_pooled_unless_levene_rejects_and_the_page_says_which():
    """Five methods with equal spread: pooled over the five. One method's runs about 25 times as
    noisy: Levene rejects, each claim is fitted on its own two methods, and its pooling names the
    p. The reference: the Brown-Forsythe form of Levene's test written out (a one-way ANOVA, by
    hand, of each residual's distance from its method's median), on the seeds x methods residuals
    of the look's seeds after removing the seed and method means."""
    seeds, methods = range(8), ["attention", "ce", "scn", "tan", "triplet"]  # 8 seeds: the look of 8

    def levene_p(rows):
        value = {(m, s): kw["accuracy"] for m, s, kw in rows}
        x = np.array([[value[m, s] for m in methods] for s in seeds])
        resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
        z = np.abs(resid - np.median(resid, axis=0))  # column j: method j's distances from its median
        k, n = z.shape[1], z.size
        between = sum(len(z[:, j]) * (z[:, j].mean() - z.mean()) ** 2 for j in range(k)) / (k - 1)
        within = sum(((z[:, j] - z[:, j].mean()) ** 2).sum() for j in range(k)) / (n - k)
        return stats.f.sf(between / within, k - 1, n - k)

    claims = (_claim("big"), _claim("other", b="scn"), _claim("att", a="attention"), _claim("tri", a="triplet"))
    equal = _level_rows(0.1, {"tan": 0.01} | dict.fromkeys(methods[:3] + methods[4:], 0.0), seeds=seeds, rng_seed=2)
    p_equal = levene_p(equal)
    assert p_equal >= V.ALPHA
    for r in V.claim_results(_records(equal), claims, bootstrap=False):
        assert r["pooling"] == f"pooled over 5 methods (Levene p = {p_equal:.3f})"
        assert set(r["model"].methods) == set(methods)
    rng = np.random.default_rng(0)
    noisy = [
        (m, s, kw | {"accuracy": kw["accuracy"] + rng.normal(0, 0.1)}) if m == "scn" else (m, s, kw)
        for m, s, kw in equal
    ]
    p_noisy = levene_p(noisy)
    assert p_noisy < V.ALPHA
    for r in V.claim_results(_records(noisy), claims, bootstrap=False):
        assert r["pooling"] == f"the two methods (Levene p = {p_noisy:.3f} over 5 methods)"
        assert set(r["model"].methods) == {r["claim"].method, r["claim"].baseline}
