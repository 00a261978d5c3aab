"""Per-prediction evaluation metrics: classification, noisy-label detection, subgroups.

What this module implements:

- ``classification_metrics``: overall accuracy, mean class accuracy (the mean of the
  per-class recalls, what the FER literature calls "mean accuracy" or "average
  accuracy"; scikit-learn's ``balanced_accuracy_score``), macro F1, the confusion matrix
  (rows = true class, columns = predicted class) and the per-class precision, recall,
  F1 and support, all as JSON-serialisable Python numbers.
- ``noisy_label_auc``: the ROC AUC of *low* attention as a detector of flipped labels,
  the measurable form of SCN's claim (Wang et al., "Suppressing Uncertainties for
  Large-Scale Facial Expression Recognition", CVPR 2020, section 3) that the attention
  weight of a mislabelled sample is low. Equals ``roc_auc_score(noisy, -attention)``.
- ``DETECTORS`` / ``detector_scores`` / ``noise_detection``: the attention weight beside
  two label-aware detectors of wrong training labels (Confident Learning's
  self-confidence and margin, Northcutt et al., JAIR 2021), each with its noisy-label AUC.
- ``subgroup_metrics``: accuracy and mean class accuracy per subgroup (occluder, pose,
  intensity bin, ...), the abstract's "robustness" claim made measurable.

Summaries over seeds and their Markdown/LaTeX tables live in ``tanlib.report.tables``;
the paper's numbers and the comparison with them in ``tanlib.report.paper``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from tanlib.errors import ConfigError, DataError

__all__ = [
    "DETECTORS",
    "classification_metrics",
    "detector_scores",
    "noise_detection",
    "noisy_label_auc",
    "subgroup_metrics",
]


# --------------------------------------------------------------------------- helpers


def _as_1d(values, name: str) -> np.ndarray:
    """Return ``values`` (list, numpy array, pandas Series or torch tensor) as 1-D numpy."""
    if hasattr(values, "detach"):  # torch.Tensor without importing torch here
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got an array of shape {array.shape}")
    return array


def _as_label_indices(values, name: str, n_classes: int) -> np.ndarray:
    array = _as_1d(values, name)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise DataError(f"{name} must hold integer class indices 0..{n_classes - 1}, got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    bad = (array < 0) | (array >= n_classes)
    if bad.any():
        raise DataError(
            f"{name} must hold class indices in 0..{n_classes - 1} (one per entry of "
            f"classes), found {sorted(set(array[bad].tolist()))[:5]}"
        )
    return array


def _check_classes(classes) -> list[str]:
    if isinstance(classes, str) or not isinstance(classes, Iterable):
        raise ConfigError(f"classes must be a sequence of class names, got {classes!r}")
    names = [str(c) for c in classes]
    if not names:
        raise ConfigError("classes must name at least one class, got an empty sequence")
    if len(set(names)) != len(names):
        raise ConfigError(f"classes must be unique, got {names}")
    return names


def _check_pair(y_true, y_pred, classes):
    names = _check_classes(classes)
    t = _as_label_indices(y_true, "y_true", len(names))
    p = _as_label_indices(y_pred, "y_pred", len(names))
    if t.shape != p.shape:
        raise DataError(f"y_true and y_pred must have the same length, got {t.size} and {p.size}")
    if t.size == 0:
        raise DataError("y_true and y_pred are empty: there is nothing to evaluate")
    return t, p, names


# --------------------------------------------------------------------------- metrics


def classification_metrics(y_true, y_pred, classes) -> dict:
    """Accuracy, mean class accuracy, macro F1, confusion and per-class report.

    Parameters
    ----------
    y_true, y_pred:
        Integer class indices (0..K-1, positions in ``classes``), same length.
    classes:
        The K class names, in index order.

    Returns
    -------
    dict with plain Python numbers (``json.dumps`` works on it):

    - ``accuracy``: fraction of correct predictions, in [0, 1].
    - ``mean_class_accuracy``: mean over the classes present in ``y_true`` of their
      recall (= ``sklearn.metrics.balanced_accuracy_score``).
    - ``macro_f1``: unweighted mean of the per-class F1 over the classes present in
      ``y_true`` or ``y_pred`` (= ``f1_score(average="macro")``; an undefined
      precision counts as 0).
    - ``confusion``: K x K list of lists of counts, row = true class, column = predicted.
    - ``per_class``: ``{name: {precision, recall, f1, support}}`` for every class in
      ``classes`` (precision/recall/F1 of 0 where undefined, support = true count).
    - ``n``: number of samples.
    """
    t, p, names = _check_pair(y_true, y_pred, classes)
    k = len(names)
    labels = np.arange(k)
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support  # imported on use (seconds)

    cm = confusion_matrix(t, p, labels=labels)
    precision, recall, f1, support = precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    present_true = np.unique(t)
    present_any = np.union1d(present_true, np.unique(p))
    macro_f1 = float(np.mean(f1[present_any]))
    mean_class_accuracy = float(np.mean(recall[present_true]))
    return {
        "accuracy": float(np.mean(t == p)),
        "mean_class_accuracy": mean_class_accuracy,
        "macro_f1": macro_f1,
        "n": int(t.size),
        "confusion": [[int(v) for v in row] for row in cm],
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
    }


def noisy_label_auc(attention, noisy) -> float | None:
    """ROC AUC of low attention as a detector of noisy (flipped) labels.

    ``attention`` holds one weight per sample, ``noisy`` one boolean (or 0/1) per sample
    saying whether its training label was flipped. The score of "is noisy" is the
    *negated* attention, so 1.0 means every flipped sample has lower attention than
    every clean one, 0.5 means chance. Returns ``None`` when ``noisy`` holds only one
    class (no flipped label, or all flipped): the AUC is undefined then.
    """
    a = _as_1d(attention, "attention").astype(np.float64)
    n = _as_1d(noisy, "noisy")
    if a.shape != n.shape:
        raise DataError(f"attention and noisy must have the same length, got {a.size} and {n.size}")
    if not np.all(np.isfinite(a)):
        raise DataError("attention must be finite; it holds NaN or infinite values")
    if n.dtype != bool:
        values = set(np.unique(n).tolist())
        if not values <= {0, 1}:
            raise DataError(f"noisy must be boolean or 0/1 (True = label was flipped), got values {sorted(values)[:5]}")
        n = n.astype(bool)
    if a.size == 0 or n.all() or not n.any():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(n, -a))


#: The noisy-label detectors of ``noise_detection``: the label-blind attention weight
#: and two label-aware baselines.
DETECTORS = ("attention", "entropy", "self_confidence", "margin")


def detector_scores(pred: dict, given, attention: bool = True) -> dict[str, np.ndarray]:
    """Per-sample scores of the ``DETECTORS``, each low for a suspected wrong label.

    ``pred``: ``predict``'s output on the training images (``prob``, ``attention``);
    ``given``: the training labels as given (possibly wrong).

    * ``attention``: the attention weight (SCN, TAN); label-blind; left out without an
      attention module;
    * ``self_confidence``: p(given label | x), the self-confidence of Confident Learning
      (Northcutt et al., JAIR 2021); it ranks exactly as the per-sample loss
      -log p(given | x) of the small-loss criterion (Co-teaching, Han et al. 2018);
    * ``margin``: p(given | x) - max over the other classes of p(k | x), Confident
      Learning's normalized margin;
    * ``entropy``: minus the predictive entropy of p( . | x); label-blind, like the
      attention: the difficulty baseline a label-blind detector has to beat.
    """
    prob = np.asarray(pred["prob"], dtype=np.float64)
    y = _as_1d(given, "given").astype(int)
    if prob.ndim != 2 or prob.shape[0] != y.size:
        raise DataError(f"pred['prob'] must have one row per given label ({y.size}), got shape {prob.shape}")
    rows = np.arange(y.size)
    p_given = prob[rows, y]
    other = prob.copy()
    other[rows, y] = -np.inf
    scores = {"attention": np.asarray(pred["attention"], dtype=np.float64)} if attention else {}
    entropy = -(prob * np.log(np.clip(prob, 1e-12, 1.0))).sum(1)
    scores.update(entropy=-entropy, self_confidence=p_given, margin=p_given - other.max(1))
    return scores


def noise_detection(pred: dict, given, noisy, attention: bool = True) -> dict:
    """ROC AUC of each detector of ``detector_scores`` for the wrong training labels
    (``noisy``: True where the given label is wrong), with ``n`` and ``n_noisy``.
    An AUC is ``None`` without that detector or when ``noisy`` has one class only."""
    scores = detector_scores(pred, given, attention)
    out = {name: (noisy_label_auc(scores[name], noisy) if name in scores else None) for name in DETECTORS}
    out.update(n=int(len(scores["margin"])), n_noisy=int(np.asarray(_as_1d(noisy, "noisy")).astype(bool).sum()))
    return out


def subgroup_metrics(frame: pd.DataFrame, y_true, y_pred, columns, bins=None) -> pd.DataFrame:
    """Accuracy and mean class accuracy per subgroup.

    Parameters
    ----------
    frame:
        One row per evaluated sample (e.g. the test manifest joined with SynthFER's
        meta file), in the order of ``y_true``/``y_pred``.
    y_true, y_pred:
        Integer class indices, either arrays of ``len(frame)`` or names of columns of
        ``frame``.
    columns:
        The subgroup columns of ``frame`` (one name or a list).
    bins:
        Optional ``{column: int or list of edges}`` to bin a numeric column first
        (an int gives that many equal-frequency bins via ``pandas.qcut``, a list gives
        ``pandas.cut`` edges), e.g. ``{"intensity": 3}``.

    Returns
    -------
    DataFrame with rows ``(column, group, n, accuracy, mean_class_accuracy)``; ``group``
    is the group value as text ("missing" for missing values), ordered as the groups
    sort.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    if isinstance(columns, str):
        columns = [columns]
    columns = list(columns)
    if not columns:
        raise ConfigError("columns must name at least one subgroup column of frame")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"subgroup columns {missing} are not in frame; its columns are {list(frame.columns)}")
    bins = dict(bins or {})
    unknown_bins = [c for c in bins if c not in columns]
    if unknown_bins:
        raise ConfigError(f"bins names columns {unknown_bins} that are not in columns {columns}")

    def resolve(values, name):
        if isinstance(values, str):
            if values not in frame.columns:
                raise DataError(f"{name}={values!r} is not a column of frame")
            values = frame[values].to_numpy()
        array = _as_1d(values, name)
        if array.size != len(frame):
            raise DataError(
                f"{name} has {array.size} entries but frame has {len(frame)} rows; they "
                "must describe the same samples in the same order"
            )
        return array.astype(np.int64)

    t = resolve(y_true, "y_true")
    p = resolve(y_pred, "y_pred")
    rows = []
    for column in columns:
        values = frame[column].reset_index(drop=True)
        if column in bins:
            spec = bins[column]
            if not pd.api.types.is_numeric_dtype(values):
                raise DataError(f"bins[{column!r}] needs a numeric column, got dtype {values.dtype}")
            if isinstance(spec, int):
                if spec < 1:
                    raise ConfigError(f"bins[{column!r}] must be a positive int, got {spec}")
                values = pd.qcut(values, spec, duplicates="drop")
            else:
                values = pd.cut(values, list(spec), include_lowest=True)
        codes, uniques = pd.factorize(values, sort=True)
        for code, group in enumerate(uniques):
            mask = codes == code
            rows.append(_group_row(column, str(group), t[mask], p[mask]))
        if (codes < 0).any():
            mask = codes < 0
            rows.append(_group_row(column, "missing", t[mask], p[mask]))
    return pd.DataFrame(rows, columns=["column", "group", "n", "accuracy", "mean_class_accuracy"])


def _group_row(column, group, t, p) -> dict:
    return {
        "column": column,
        "group": group,
        "n": int(t.size),
        "accuracy": float(np.mean(t == p)),
        "mean_class_accuracy": _mean_recall(t, p),
    }


def _mean_recall(t, p) -> float:
    """Mean over the classes present in ``t`` of their recall (balanced accuracy)."""
    classes = np.unique(t)
    return float(np.mean([np.mean(p[t == c] == c) for c in classes]))
