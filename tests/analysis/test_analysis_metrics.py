"""Tests of tanlib.analysis.metrics against scikit-learn, numpy and hand-computed cases."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from tanlib.analysis.metrics import (
    PAPER_RESULTS,
    classification_metrics,
    format_mean_std,
    noisy_label_auc,
    paper_comparison,
    subgroup_metrics,
    summarise_runs,
    to_latex,
    to_markdown,
)
from tanlib.errors import ConfigError, DataError

CLASSES = ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 6, 200)  # class 6 never true
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 7, 200))
    m = classification_metrics(y_true, y_pred, CLASSES)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["mean_class_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["confusion"] == confusion_matrix(y_true, y_pred, labels=range(7)).tolist()
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(7), zero_division=0)
    for i, name in enumerate(CLASSES):
        assert m["per_class"][name]["precision"] == pytest.approx(p[i])
        assert m["per_class"][name]["recall"] == pytest.approx(r[i])
        assert m["per_class"][name]["f1"] == pytest.approx(f[i])
        assert m["per_class"][name]["support"] == s[i]
    assert m["n"] == 200
    json.dumps(m)  # plain Python types only
    assert isinstance(m["accuracy"], float) and isinstance(m["confusion"][0][0], int)


def test_classification_metrics_hand_case():
    # true: a a a b b c ; pred: a a b b c c
    m = classification_metrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    # recalls: a 2/3, b 1/2, c 1/1
    assert m["mean_class_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    # precisions: a 2/2, b 1/2, c 1/2 ; f1 = 2pr/(p+r)
    f_a = 2 * 1 * (2 / 3) / (1 + 2 / 3)
    f_b = 0.5
    f_c = 2 * 0.5 * 1 / 1.5
    assert m["per_class"]["b"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["macro_f1"] == pytest.approx((f_a + f_b + f_c) / 3)


def test_classification_metrics_mean_class_accuracy_ignores_absent_classes():
    m = classification_metrics([0, 0, 1], [0, 0, 2], ["a", "b", "c", "d"])
    assert m["mean_class_accuracy"] == pytest.approx((1.0 + 0.0) / 2)
    assert m["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_classification_metrics_errors():
    with pytest.raises(DataError, match="same length"):
        classification_metrics([0, 1], [0], ["a", "b"])
    with pytest.raises(DataError, match="y_pred.*0..1"):
        classification_metrics([0, 1], [0, 2], ["a", "b"])
    with pytest.raises(DataError, match="empty"):
        classification_metrics([], [], ["a", "b"])
    with pytest.raises(ConfigError, match="classes"):
        classification_metrics([0], [0], "ab")


def test_noisy_label_auc_hand_case_and_sklearn():
    attention = [0.9, 0.8, 0.2, 0.7, 0.3]
    noisy = [False, False, True, False, True]
    assert noisy_label_auc(attention, noisy) == 1.0
    # one flipped sample above one clean sample: 5 of 6 pairs ordered right
    attention = [0.9, 0.25, 0.2, 0.7, 0.3]
    assert noisy_label_auc(attention, noisy) == pytest.approx(5 / 6)
    rng = np.random.default_rng(0)
    a, n = rng.random(100), rng.random(100) < 0.2
    assert noisy_label_auc(a, n) == pytest.approx(roc_auc_score(n, -a))
    assert noisy_label_auc(a, n.astype(int)) == pytest.approx(roc_auc_score(n, -a))


def test_noisy_label_auc_undefined_and_errors():
    assert noisy_label_auc([0.1, 0.5], [False, False]) is None
    assert noisy_label_auc([0.1, 0.5], [1, 1]) is None
    with pytest.raises(DataError, match="same length"):
        noisy_label_auc([0.1], [0, 1])
    with pytest.raises(DataError, match="0/1"):
        noisy_label_auc([0.1, 0.2], [0, 2])


def test_subgroup_metrics():
    frame = pd.DataFrame(
        {
            "occluder": ["none", "mask", "none", "mask", None, "none"],
            "intensity": [0.1, 0.2, 0.5, 0.6, 0.9, 0.95],
            "y": [0, 1, 1, 0, 1, 0],
        }
    )
    y_pred = np.array([0, 1, 0, 1, 1, 0])
    out = subgroup_metrics(frame, "y", y_pred, ["occluder", "intensity"], bins={"intensity": [0, 0.5, 1.0]})
    assert list(out.columns) == ["column", "group", "n", "accuracy", "mean_class_accuracy"]
    occ = out[out.column == "occluder"].set_index("group")
    assert occ.loc["none", "n"] == 3
    assert occ.loc["none", "accuracy"] == pytest.approx(2 / 3)
    assert occ.loc["none", "mean_class_accuracy"] == pytest.approx(balanced_accuracy_score([0, 1, 0], [0, 0, 0]))
    assert occ.loc["mask", "accuracy"] == pytest.approx(0.5)
    assert occ.loc["missing", "n"] == 1
    inten = out[out.column == "intensity"]
    assert inten["n"].tolist() == [3, 3]
    with pytest.raises(DataError, match="not in frame"):
        subgroup_metrics(frame, "y", y_pred, ["pose"])
    with pytest.raises(DataError, match="6 rows"):
        subgroup_metrics(frame, [0, 1], [0, 1], "occluder")


def _records():
    rng = np.random.default_rng(3)
    recs = []
    for method in ["ce", "tan"]:
        for seed in range(3):
            recs.append({"method": method, "seed": seed, "accuracy": float(rng.random()), "noisy_auc": float(rng.random())})
    recs.append({"method": "scn", "seed": 0, "accuracy": 0.5, "noisy_auc": None})
    return recs


def test_summarise_runs_matches_numpy():
    recs = _records()
    s = summarise_runs(recs, by="method")
    assert s["method"].tolist() == ["ce", "tan", "scn"]
    for method in ["ce", "tan"]:
        acc = np.array([r["accuracy"] for r in recs if r["method"] == method])
        row = s.set_index("method").loc[method]
        assert row["accuracy_mean"] == pytest.approx(acc.mean())
        assert row["accuracy_std"] == pytest.approx(np.std(acc, ddof=1))
        assert row["accuracy_n"] == 3 and row["n_runs"] == 3
    scn = s.set_index("method").loc["scn"]
    assert scn["accuracy_mean"] == 0.5 and math.isnan(scn["accuracy_std"])
    assert scn["noisy_auc_n"] == 0 and math.isnan(scn["noisy_auc_mean"])
    with pytest.raises(DataError, match="macro_f1"):
        summarise_runs(recs, metrics=["macro_f1"])
    with pytest.raises(DataError, match="by columns"):
        summarise_runs(recs, by=("dataset",))


def test_format_and_tables():
    s = summarise_runs(
        [{"method": "tan", "accuracy": 0.884}, {"method": "tan", "accuracy": 0.886}, {"method": "ce_x", "accuracy": 0.8}],
        metrics=["accuracy"],
    )
    f = format_mean_std(s, digits=2, scale={"accuracy": 100})
    assert f["accuracy"].tolist() == ["88.50 ± 0.14", "80.00"]
    assert list(f.columns) == ["method", "n_runs", "accuracy"]
    md = to_markdown(f)
    assert md.splitlines()[0] == "| method | n_runs | accuracy |"
    assert md.splitlines()[1] == "| --- | ---: | --- |"
    assert "| tan | 2 | 88.50 ± 0.14 |" in md
    tex = to_latex(f, caption="Results", label="tab:res")
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"88.50 $\pm$ 0.14" in tex and r"ce\_x" in tex and r"n\_runs" in tex
    assert r"\begin{tabular}{lrl}" in tex and r"\label{tab:res}" in tex
    with pytest.raises(ConfigError, match="digits"):
        format_mean_std(s, digits=-1)


def test_paper_results_and_comparison():
    by_key = {(r["method"], r["dataset"]): r["accuracy"] for r in PAPER_RESULTS}
    assert by_key == {("TAN", "RAF-DB"): 88.40, ("TAN", "FERPlus"): 88.73, ("SCN", "RAF-DB"): 87.03, ("RAN", "FERPlus"): 88.55}
    assert all(set(r) == {"method", "dataset", "protocol", "accuracy", "source"} for r in PAPER_RESULTS)
    runs = [
        {"method": "tan", "dataset": "synthfer", "seed": 0, "accuracy": 0.70, "protocol": "quick"},
        {"method": "tan", "dataset": "synthfer", "seed": 1, "accuracy": 0.72, "protocol": "quick"},
        {"method": "tan", "dataset": "rafdb", "seed": 0, "accuracy": 0.87, "protocol": "paper", "selection": "test_selected"},
    ]
    out = paper_comparison(runs)
    assert {"origin", "number_from", "comparable", "accuracy", "dataset"} <= set(out.columns)
    paper = out[out.origin == "paper"]
    assert len(paper) == 4
    kit = out[out.origin == "this kit"].reset_index(drop=True)
    assert kit.loc[0, "dataset"] == "SynthFER"
    assert kit.loc[0, "accuracy"] == pytest.approx(71.0)
    assert kit.loc[0, "std"] == pytest.approx(np.std([70, 72], ddof=1))
    assert kit.loc[0, "comparable"].startswith("no:")
    assert "SynthFER" in kit.loc[0, "number_from"]
    assert kit.loc[1, "dataset"] == "RAF-DB"
    assert kit.loc[1, "comparable"].startswith("partly:") and "88.40" in kit.loc[1, "comparable"]
    assert "RAF-DB" in kit.loc[1, "number_from"]
    with pytest.raises(DataError, match="fraction"):
        paper_comparison([{"method": "tan", "dataset": "rafdb", "accuracy": 88.4}])


def test_noise_detectors_against_sklearn_and_the_loss_ranking():
    from tanlib.analysis.metrics import noise_detection

    rng = np.random.default_rng(0)
    n, k = 300, 5
    logits = rng.normal(size=(n, k))
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    given = rng.integers(0, k, n)
    noisy = rng.uniform(size=n) < 0.2
    attention = rng.uniform(size=n)
    out = noise_detection({"prob": prob, "attention": attention}, given, noisy)
    p_given = prob[np.arange(n), given]
    loss = -np.log(p_given)  # the small-loss criterion ranks exactly as the self-confidence
    best_other = np.array([max(prob[i, j] for j in range(k) if j != given[i]) for i in range(n)])
    assert out["attention"] == pytest.approx(roc_auc_score(noisy, -attention))
    assert out["self_confidence"] == pytest.approx(roc_auc_score(noisy, loss))
    assert out["margin"] == pytest.approx(roc_auc_score(noisy, best_other - p_given))
    assert (out["n"], out["n_noisy"]) == (n, int(noisy.sum()))
    blind = noise_detection({"prob": prob, "attention": attention}, given, noisy, attention=False)
    assert blind["attention"] is None and blind["margin"] == out["margin"]
    with pytest.raises(DataError, match="one row per given label"):
        noise_detection({"prob": prob[:10], "attention": attention}, given, noisy)
