"""Per-prediction metrics against scikit-learn and hand cases: classification, noisy-label AUC,
subgroups, the noise detectors."""

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

from tanlib.analysis.metrics import classification_metrics, noisy_label_auc, subgroup_metrics
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
    entropy = [-sum(prob[i, j] * math.log(prob[i, j]) for j in range(k)) for i in range(n)]
    assert out["entropy"] == pytest.approx(roc_auc_score(noisy, entropy))  # label-blind: high entropy suspect
    assert (out["n"], out["n_noisy"]) == (n, int(noisy.sum()))
    blind = noise_detection({"prob": prob, "attention": attention}, given, noisy, attention=False)
    assert blind["attention"] is None and blind["margin"] == out["margin"]
    with pytest.raises(DataError, match="one row per given label"):
        noise_detection({"prob": prob[:10], "attention": attention}, given, noisy)
