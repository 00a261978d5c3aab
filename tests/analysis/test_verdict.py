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


def test_bootstrap_matches_a_naive_loop():
    rng = np.random.default_rng(3)
    images = [f"img{i}" for i in range(40)]
    pairs = [
        (pd.Series(rng.random(40) < 0.6, index=images), pd.Series(rng.random(40) < 0.5, index=images)) for _ in range(3)
    ]
    lo, hi = V.bootstrap_accuracy_difference(pairs, n_boot=300, seed=7)
    # naive: draw the same index sets, recompute every run's accuracy on them, average the differences
    idx = np.random.default_rng(7).integers(0, 40, size=(300, 40))
    boots = []
    for b in range(300):
        diffs = []
        for ca, cb in pairs:
            xa, xb = ca.tolist(), cb.tolist()
            a = sum(xa[i] for i in idx[b]) / 40
            c = sum(xb[i] for i in idx[b]) / 40
            diffs.append(a - c)
        boots.append(sum(diffs) / len(diffs))
    assert (lo, hi) == pytest.approx((np.quantile(boots, 0.025), np.quantile(boots, 0.975)))
    point = np.mean([ca.mean() - cb.mean() for ca, cb in pairs])
    assert lo < point < hi


def test_bootstrap_refuses_runs_tested_on_different_images():
    a = pd.Series([True, False], index=["x", "y"])
    b = pd.Series([True, False], index=["x", "z"])
    assert V.bootstrap_accuracy_difference([(a, b)]) is None


@pytest.mark.parametrize(
    "diffs, direction, floor, expected",
    [
        ([0.03, 0.04, 0.05], +1, 0.0, "supported"),
        ([0.03, 0.04, 0.05], -1, 0.0, "contradicted"),
        ([0.03, 0.04, 0.05], +1, 0.05, "supported"),  # 0.04 > 0.05 / sqrt(3): the floor of a mean of 3
        ([0.03, 0.04, 0.05], +1, 0.08, "inconclusive"),  # 0.04 < 0.08 / sqrt(3): within the noise floor
        ([0.03, -0.04, 0.05], +1, 0.0, "inconclusive"),  # the interval contains 0
        ([0.03], +1, 0.0, "n/a"),  # one seed: no interval
    ],
)
def test_verdict_rule(diffs, direction, floor, expected):
    mean, lo, hi = V.t_interval(diffs)
    d = V.PairedDifference(list(range(len(diffs))), np.array(diffs), mean, lo, hi, [])
    assert V.verdict(d, direction, floor) == expected
    assert V.verdict(None, direction) == "n/a"


def test_noise_floor_is_the_largest_gap_between_identical_runs():
    groups = [
        [{"accuracy": 0.55, "feature_ratio": 0.8}, {"accuracy": 0.57, "feature_ratio": 0.79}],
        [{"accuracy": 0.50}, {"accuracy": 0.51}, {"accuracy": 0.535}],
        [{"accuracy": 0.9}],
    ]
    floor = V.noise_floor(groups)
    assert floor["accuracy"] == pytest.approx(0.035)
    assert floor["feature_ratio"] == pytest.approx(0.01)
    assert "noisy_auc" not in floor


def test_claims_table_has_every_claim_at_every_level_and_skips_variants():
    rows = []
    for level in (0.0, 0.3):
        for s in (0, 1, 2):
            for m, acc in (("tan", 0.6 + 0.01 * s), ("ce", 0.5), ("scn", 0.55)):
                rows.append(
                    (
                        m,
                        s,
                        {
                            "accuracy": acc,
                            "mean_class_accuracy": acc,
                            "feature_ratio": 0.7,
                            "noisy_auc": 0.6 + 0.01 * s if level else math.nan,
                            "synth_label_noise": level,
                        },
                    )
                )
    rec = _records(rows)
    variant = rec[rec["method"] == "tan"].copy()
    variant["variant"], variant["accuracy"] = "lambda_rr=1.0", 0.1
    table = V.claims_table(pd.concat([rec, variant]), floor={"accuracy": 0.02}, bootstrap=False)
    assert len(table) == 2 * len(V.CLAIMS)
    got = table.set_index(["label noise", "comparison", "claim"])["verdict"]
    assert got[("30 %", "tan - ce", V.CLAIMS[0].text)] == "supported"  # +10 points, floor 2
    assert got[("0 %", "tan - 0.5", V.CLAIMS[5].text)] == "n/a"  # no wrong labels at 0 %
    assert got[("30 %", "tan - 0.5", V.CLAIMS[5].text)] == "supported"
    assert got[("0 %", "tan - tan-euclid", V.CLAIMS[7].text)] == "n/a"  # no tan-euclid runs
    assert set(table["noise floor of the mean"]) >= {"1.15", "n/a"}  # 2 points / sqrt(3 seeds)


def test_committed_records_carry_data_settings_and_test_predictions():
    """A fresh clone has no data/: the label noise and the bootstrap come from the record."""
    from pathlib import Path

    from tanlib.report import RECORD_EXTRAS, RECORD_FILES, run_record

    results = Path(__file__).resolve().parents[2] / "results"
    runs = [p for p in results.glob("*/*") if p.is_dir()]
    assert runs
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

    rows = [
        (
            m,
            s,
            {
                "accuracy": 0.5 + 0.01 * s * (m == "tan"),
                "mean_class_accuracy": 0.4,
                "feature_ratio": 0.7,
                "noisy_auc": 0.55 + 0.01 * s,
                "synth_label_noise": 0.1,
            },
        )
        for m in ("tan", "ce")
        for s in (0, 1)
    ]
    results = V.claim_results(_records(rows), bootstrap=False)
    fig = plot_claims(results)
    assert sum(ax.get_visible() for ax in fig.axes) == len(V.CLAIMS)
    assert "inconclusive" in fig.axes[0].get_xticklabels()[0].get_text()


def test_a_regime_is_judged_on_its_own_runs():
    rows = [
        (
            m,
            s,
            {
                "accuracy": acc + 0.01 * s,
                "mean_class_accuracy": acc,
                "feature_ratio": 0.7,
                "noisy_auc": math.nan,
                "synth_label_noise": 0.1,
            },
        )
        for s in (0, 1, 2)
        for m, acc in (("tan", 0.5), ("ce", 0.6))
    ]
    scratch = _records(rows)
    pretrained = scratch.assign(
        variant='pretrained="synthface"',
        accuracy=np.where(scratch["method"] == "tan", 0.7, 0.6) + 0.01 * scratch["seed"],
    )
    both = pd.concat([scratch, pretrained])
    first = {r["claim"].key: r["verdict"] for r in V.claim_results(both, bootstrap=False)}
    second = {
        r["claim"].key: r["verdict"] for r in V.claim_results(both, bootstrap=False, variant='pretrained="synthface"')
    }
    assert first["acc_ce"] == "contradicted" and second["acc_ce"] == "supported"


def test_repeat_groups_are_runs_of_one_config_and_seed():
    rec = _records(
        [
            ("ce", 0, {"accuracy": 0.5, "synth_label_noise": 0.1}),
            ("ce", 0, {"accuracy": 0.52, "synth_label_noise": 0.1}),
            ("ce", 0, {"accuracy": 0.4, "synth_label_noise": 0.3}),
            ("ce", 1, {"accuracy": 0.6, "synth_label_noise": 0.1}),
        ]
    )
    rec.loc[3, "variant"] = ""
    groups = V.repeat_groups(rec)
    assert len(groups) == 1 and [r["accuracy"] for r in groups[0]] == [0.5, 0.52]
    assert groups[0][0]["synth_label_noise"] == 0.1  # the records themselves, types kept
    assert V.noise_floor(groups)["accuracy"] == pytest.approx(0.02)


def _write_run(path, train_acc, labels):
    """A record on disk: its history's training accuracy and its test labels."""
    path.mkdir(parents=True)
    pd.DataFrame({"epoch": range(1, len(train_acc) + 1), "train_acc": train_acc}).to_csv(path / "history.csv")
    pd.DataFrame({"image": [f"i{k}" for k in range(len(labels))], "label": labels, "pred": labels}).to_csv(
        path / "test_predictions.csv", index=False
    )
    return str(path)


def test_did_not_learn_against_the_majority_share(tmp_path):
    labels = [0] * 6 + [1] * 3 + [2]  # majority share 0.6
    flat = _write_run(tmp_path / "flat", [0.55, 0.61, 0.58], labels)
    learned = _write_run(tmp_path / "learned", [0.5, 0.63, 0.7], labels)
    assert V.learning_check(flat) == pytest.approx((0.61, 0.6))
    best, majority = V.learning_check(learned)
    assert (best, majority) == pytest.approx((max([0.5, 0.63, 0.7]), 6 / 10))
    assert V.did_not_learn(flat)  # 0.61 < 0.6 + 0.02
    assert not V.did_not_learn(learned)


def test_a_claim_whose_baseline_did_not_learn_is_inconclusive(tmp_path):
    """A large, clean effect against runs that never learned is a failed optimisation:
    the verdict says inconclusive and names the runs."""
    labels = [0] * 4 + [1] * 3 + [2] * 3
    rows = []
    for s in (0, 1, 2):
        for m, acc in (("tan", 0.6 + 0.01 * s), ("tan-euclid", 0.38)):
            path = _write_run(tmp_path / f"{m}-{s}", [0.35, 0.41] if m == "tan-euclid" else [0.4, 0.7], labels)
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
    results = V.claim_results(pd.DataFrame(rows), bootstrap=False)
    euclid = next(r for r in results if r["claim"].baseline == "tan-euclid")
    assert euclid["diff"].lo > 0  # the interval alone would say supported
    assert euclid["verdict"] == "inconclusive"
    assert sorted(euclid["did_not_learn"]) == sorted(str(tmp_path / f"tan-euclid-{s}") for s in (0, 1, 2))
