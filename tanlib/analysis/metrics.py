"""Evaluation metrics, run summaries and the comparison with the paper's numbers.

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
- ``subgroup_metrics``: accuracy and mean class accuracy per subgroup (occluder, pose,
  intensity bin, ...), the abstract's "robustness" claim made measurable.
- ``summarise_runs`` / ``format_mean_std`` / ``to_markdown`` / ``to_latex``: mean and
  sample standard deviation (ddof = 1) over seeds, rendered as "88.40 ± 0.12" tables in
  Markdown and LaTeX (booktabs).
- ``PAPER_RESULTS`` / ``paper_comparison``: the numbers of Gou et al., ICAC 2023
  (abstract only) and of the baselines its "+1.37 / +0.18" refers to (docs/method.md
  section 1), set beside a kit run's numbers with the dataset and protocol of every
  number spelled out, so that a SynthFER number is never read as a RAF-DB number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from tanlib.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_SUMMARY_METRICS",
    "PAPER_RESULTS",
    "classification_metrics",
    "format_mean_std",
    "noisy_label_auc",
    "noise_detection",
    "detector_scores",
    "DETECTORS",
    "paper_comparison",
    "subgroup_metrics",
    "summarise_runs",
    "to_latex",
    "to_markdown",
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
        if np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)) and np.all(
            array == np.round(array)
        ):
            array = array.astype(np.int64)
        else:
            raise DataError(
                f"{name} must hold integer class indices 0..{n_classes - 1}, "
                f"got dtype {array.dtype}"
            )
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
        raise DataError(
            f"y_true and y_pred must have the same length, got {t.size} and {p.size}"
        )
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
    precision, recall, f1, support = precision_recall_fscore_support(
        t, p, labels=labels, zero_division=0
    )
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
        raise DataError(
            f"attention and noisy must have the same length, got {a.size} and {n.size}"
        )
    if not np.all(np.isfinite(a)):
        raise DataError("attention must be finite; it holds NaN or infinite values")
    if n.dtype != bool:
        values = set(np.unique(n).tolist())
        if not values <= {0, 1}:
            raise DataError(
                f"noisy must be boolean or 0/1 (True = label was flipped), got values "
                f"{sorted(values)[:5]}"
            )
        n = n.astype(bool)
    if a.size == 0 or n.all() or not n.any():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(n, -a))


#: The noisy-label detectors of ``noise_detection``: the label-blind attention weight
#: and two label-aware baselines.
DETECTORS = ("attention", "self_confidence", "margin")


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
      Learning's normalized margin.
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
    scores.update(self_confidence=p_given, margin=p_given - other.max(1))
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
        raise DataError(
            f"subgroup columns {missing} are not in frame; its columns are "
            f"{list(frame.columns)}"
        )
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


# --------------------------------------------------------------------------- summaries

DEFAULT_SUMMARY_METRICS = (
    "accuracy",
    "mean_class_accuracy",
    "macro_f1",
    "feature_ratio",
    "intra_inter_ratio",
    "silhouette",
    "noisy_auc",
)


def _records_frame(records) -> pd.DataFrame:
    if isinstance(records, pd.DataFrame):
        return records.copy()
    if isinstance(records, Mapping):
        raise DataError("records must be a list of dicts (one per run) or a DataFrame, got one dict")
    records = list(records)
    if not all(isinstance(r, Mapping) for r in records):
        raise DataError("records must be a list of dicts, one per run (flat: method, seed, accuracy, ...)")
    return pd.DataFrame.from_records(records)


def summarise_runs(records, by=("method",), metrics=None) -> pd.DataFrame:
    """Mean, sample standard deviation and count of each metric over seeds.

    Parameters
    ----------
    records:
        One flat dict per run (e.g. ``{"method": "tan", "seed": 0, "accuracy": 0.81,
        ...}``) or a DataFrame of such rows.
    by:
        Columns that identify a configuration; the runs of one configuration (its
        seeds) are aggregated.
    metrics:
        Metric columns to aggregate. ``None`` means those of
        ``DEFAULT_SUMMARY_METRICS`` that occur in the records; an explicitly named
        metric missing from all records is an error.

    Returns
    -------
    DataFrame with the ``by`` columns, ``n_runs``, and for each metric ``<m>_mean``,
    ``<m>_std`` (ddof = 1; NaN with a single run) and ``<m>_n`` (runs with a finite
    value; NaN values are skipped). Groups keep their first-appearance order.
    """
    df = _records_frame(records)
    if isinstance(by, str):
        by = (by,)
    by = list(by)
    if df.empty:
        raise DataError("records is empty: there are no runs to summarise")
    missing_by = [c for c in by if c not in df.columns]
    if missing_by:
        raise DataError(f"by columns {missing_by} are missing from the records; columns are {list(df.columns)}")
    if metrics is None:
        metrics = [m for m in DEFAULT_SUMMARY_METRICS if m in df.columns]
        if not metrics:
            raise DataError(
                f"records hold none of the default metrics {list(DEFAULT_SUMMARY_METRICS)}; "
                "pass metrics=[...] explicitly"
            )
    else:
        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
        missing = [m for m in metrics if m not in df.columns]
        if missing:
            raise DataError(f"metrics {missing} are missing from the records; columns are {list(df.columns)}")
    values = df[metrics].apply(pd.to_numeric, errors="coerce").astype(float)
    values = values.where(np.isfinite(values))
    rows = []
    grouped = pd.concat([df[by], values], axis=1).groupby(by, sort=False, dropna=False)
    for key, group in grouped:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["n_runs"] = int(len(group))
        for m in metrics:
            col = group[m].dropna().to_numpy()
            row[f"{m}_mean"] = float(np.mean(col)) if col.size else math.nan
            row[f"{m}_std"] = float(np.std(col, ddof=1)) if col.size > 1 else math.nan
            row[f"{m}_n"] = int(col.size)
        rows.append(row)
    return pd.DataFrame(rows)


def _summary_metrics(df: pd.DataFrame) -> list[str]:
    return [c[: -len("_mean")] for c in df.columns if c.endswith("_mean") and f"{c[:-5]}_std" in df.columns]


def format_mean_std(df: pd.DataFrame, digits: int = 2, scale=None, metrics=None) -> pd.DataFrame:
    """Render a ``summarise_runs`` table as "mean ± std" strings.

    ``digits`` decimals; ``scale`` multiplies the values first: a number applies to all
    metrics, a dict to the metrics it names (e.g. ``{"accuracy": 100}`` for percent).
    With a single run (std NaN) only the mean is shown; with no value, "n/a".
    The identifying columns and ``n_runs`` are kept; ``<m>_mean``/``<m>_std``/``<m>_n``
    become one column ``<m>``.
    """
    if not isinstance(digits, int) or digits < 0:
        raise ConfigError(f"digits must be a non-negative int, got {digits!r}")
    available = _summary_metrics(df)
    if metrics is None:
        metrics = available
    else:
        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
        missing = [m for m in metrics if m not in available]
        if missing:
            raise DataError(
                f"metrics {missing} have no <m>_mean/<m>_std columns in df; available: {available}"
            )
    if not metrics:
        raise DataError("df has no <metric>_mean/<metric>_std columns; pass a summarise_runs() table")
    if scale is None:
        scales = {}
    elif isinstance(scale, Mapping):
        scales = dict(scale)
    else:
        scales = {m: scale for m in metrics}
    stat_cols = {f"{m}_{s}" for m in _summary_metrics(df) for s in ("mean", "std", "n")}
    out = df[[c for c in df.columns if c not in stat_cols]].copy()
    for m in metrics:
        factor = float(scales.get(m, 1.0))
        texts = []
        for mean, std in zip(df[f"{m}_mean"], df[f"{m}_std"]):
            if mean is None or not np.isfinite(mean):
                texts.append("n/a")
            elif std is None or not np.isfinite(std):
                texts.append(f"{mean * factor:.{digits}f}")
            else:
                texts.append(f"{mean * factor:.{digits}f} ± {std * factor:.{digits}f}")
        out[m] = texts
    return out


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:g}"
    return str(value)


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown pipe table of ``df`` (index dropped)."""
    headers = [str(c) for c in df.columns]
    rows = [[_cell(v).replace("|", "\\|").replace("\n", " ") for v in row] for row in df.itertuples(index=False)]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    lines = [
        "| " + " | ".join(h.replace("|", "\\|") for h in headers) + " |",
        "| " + " | ".join("---:" if num else "---" for num in numeric) + " |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    escaped = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)
    return escaped.replace("±", r"$\pm$")


def to_latex(df: pd.DataFrame, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs ``tabular`` of ``df`` (``\\toprule``/``\\midrule``/``\\bottomrule``).

    Special characters are escaped and "±" becomes ``$\\pm$``. With ``caption`` or
    ``label`` the tabular is wrapped in a ``table`` environment. Needs
    ``\\usepackage{booktabs}`` in the document.
    """
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    spec = "".join("r" if num else "l" for num in numeric)
    lines = [
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(_latex_escape(str(c)) for c in df.columns) + r" \\",
        r"\midrule",
    ]
    for row in df.itertuples(index=False):
        lines.append(" & ".join(_latex_escape(_cell(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption is not None or label is not None:
        inner = [r"\begin{table}[t]", r"\centering"]
        if caption is not None:
            inner.append(rf"\caption{{{_latex_escape(caption)}}}")
        if label is not None:
            inner.append(rf"\label{{{label}}}")
        lines = inner + lines + [r"\end{table}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the paper

_RAFDB_PROTOCOL = (
    "RAF-DB basic, 7 classes, official test set (3,068 images), overall accuracy"
)
_FERPLUS_PROTOCOL = (
    "FERPlus, 8 classes, majority-vote labels, PrivateTest, overall accuracy"
)

PAPER_RESULTS: list[dict] = [
    {
        "method": "TAN",
        "dataset": "RAF-DB",
        "protocol": _RAFDB_PROTOCOL
        + "; backbone and epoch selection not stated (most likely ResNet-18 pretrained "
        "on MS-Celeb-1M, SCN's training script)",
        "accuracy": 88.40,
        "source": "Gou et al., ICAC 2023, abstract",
    },
    {
        "method": "TAN",
        "dataset": "FERPlus",
        "protocol": _FERPLUS_PROTOCOL
        + "; backbone and epoch selection not stated (most likely ResNet-18 pretrained "
        "on MS-Celeb-1M)",
        "accuracy": 88.73,
        "source": "Gou et al., ICAC 2023, abstract",
    },
    {
        "method": "SCN",
        "dataset": "RAF-DB",
        "protocol": _RAFDB_PROTOCOL
        + "; ResNet-18 pretrained on MS-Celeb-1M; SCN's script keeps the epoch with "
        "the best test accuracy (test-selected)",
        "accuracy": 87.03,
        "source": "Wang et al., CVPR 2020 (SCN); = 88.40 - 1.37 in TAN's abstract",
    },
    {
        "method": "RAN",
        "dataset": "FERPlus",
        "protocol": _FERPLUS_PROTOCOL
        + "; ResNet-18 pretrained on MS-Celeb-1M; trained on Training + PublicTest "
        "(the kit's ferplus protocol 'ran')",
        "accuracy": 88.55,
        "source": "Wang et al., IEEE TIP 2020 (RAN); = 88.73 - 0.18 in TAN's abstract",
    },
]

_DATASET_NAMES = {
    "synthfer": "SynthFER",
    "rafdb": "RAF-DB",
    "raf-db": "RAF-DB",
    "raf_db": "RAF-DB",
    "ferplus": "FERPlus",
    "fer+": "FERPlus",
    "folder": "folder",
}

_SELECTION_TEXT = {
    "last": "last epoch",
    "best_val": "best-validation epoch",
    "test_selected": "best-test epoch (test-selected, for comparison with papers)",
}


def _dataset_name(value) -> str:
    text = str(value)
    return _DATASET_NAMES.get(text.strip().lower(), text)


def paper_comparison(run_records) -> pd.DataFrame:
    """The paper's numbers beside a kit run's, with where each number comes from.

    ``run_records``: one flat dict per run with at least ``method``, ``dataset`` and
    ``accuracy`` (a fraction in [0, 1], as ``classification_metrics`` returns), and
    optionally ``protocol`` (free text, e.g. the preset), ``selection`` ("last",
    "best_val" or "test_selected") and ``seed``. Runs sharing method, dataset,
    protocol and selection are aggregated (mean ± std over seeds).

    Returns a DataFrame with one row per paper number and per run configuration:
    ``origin`` ("paper" or "this kit"), ``method``, ``dataset``, ``number_from``
    (which dataset, split and protocol the number was measured on), ``accuracy`` (%),
    ``std`` (%, NaN for paper numbers and single runs), ``n_runs``, ``source`` and
    ``comparable`` (plain language: whether and with what caveat the run's number may
    be set beside the paper's).
    """
    df = _records_frame(run_records)
    required = ["method", "dataset", "accuracy"]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"run_records lack the keys {missing}; each run needs method, dataset and accuracy")
    acc = pd.to_numeric(df["accuracy"], errors="coerce")
    if acc.isna().any() or ((acc < 0) | (acc > 1)).any():
        raise DataError(
            "run_records accuracy must be a fraction in [0, 1] (as classification_metrics "
            f"returns), got {df['accuracy'].tolist()[:5]}"
        )
    df = df.assign(accuracy=acc * 100.0, dataset=df["dataset"].map(_dataset_name))
    for col, default in (("protocol", "not stated"), ("selection", "last")):
        if col not in df.columns:
            df[col] = default
        df[col] = df[col].fillna(default).astype(str)
    bad_sel = sorted(set(df["selection"]) - set(_SELECTION_TEXT))
    if bad_sel:
        raise DataError(f"run_records selection must be one of {list(_SELECTION_TEXT)}, got {bad_sel}")

    rows = [
        {
            "origin": "paper",
            "method": r["method"],
            "dataset": r["dataset"],
            "number_from": f"{r['dataset']}: {r['protocol']}",
            "accuracy": r["accuracy"],
            "std": math.nan,
            "n_runs": 1,
            "source": r["source"],
            "comparable": "reference: number reported in the literature",
        }
        for r in PAPER_RESULTS
    ]
    paper_by_dataset: dict[str, list[dict]] = {}
    for r in PAPER_RESULTS:
        paper_by_dataset.setdefault(r["dataset"], []).append(r)

    keys = ["method", "dataset", "protocol", "selection"]
    for key, group in df.groupby(keys, sort=False):
        method, dataset, protocol, selection = key
        values = group["accuracy"].to_numpy(dtype=float)
        seeds = ""
        if "seed" in group.columns:
            seed_list = group["seed"].tolist()
            seeds = (", seeds " if len(seed_list) > 1 else ", seed ") + ", ".join(str(s) for s in seed_list)
        rows.append(
            {
                "origin": "this kit",
                "method": method,
                "dataset": dataset,
                "number_from": f"{dataset} test split; kit protocol: {protocol}; "
                f"{_SELECTION_TEXT[selection]}",
                "accuracy": float(values.mean()),
                "std": float(values.std(ddof=1)) if values.size > 1 else math.nan,
                "n_runs": int(values.size),
                "source": f"this kit ({values.size} run{'s' if values.size != 1 else ''}{seeds})",
                "comparable": _comparable_text(dataset, selection, paper_by_dataset),
            }
        )
    return pd.DataFrame(
        rows,
        columns=["origin", "method", "dataset", "number_from", "accuracy", "std", "n_runs", "source", "comparable"],
    )


def _comparable_text(dataset: str, selection: str, paper_by_dataset) -> str:
    if dataset not in paper_by_dataset:
        reported = " and ".join(sorted(paper_by_dataset))
        if dataset == "SynthFER":
            why = "SynthFER is the kit's synthetic dataset"
        else:
            why = f"{dataset} is not a dataset the paper reports"
        return (
            f"no: {why}; the paper reports only {reported}, so none of its numbers can "
            "be compared with this one (compare methods with each other inside the kit instead)"
        )
    refs = ", ".join(f"{r['method']} {r['accuracy']:.2f}" for r in paper_by_dataset[dataset])
    if selection == "test_selected":
        sel = "epoch chosen on the test set as SCN's script does, so it matches the paper's likely selection rule"
    else:
        sel = (
            f"epoch chosen as {_SELECTION_TEXT[selection]}, which is stricter than the "
            "test-selected epoch of SCN's script, so expect a slightly lower number"
        )
    return (
        f"partly: same dataset and test set as the paper's {refs}; comparable only if "
        f"the backbone (ResNet-18 pretrained on MS-Celeb-1M), input size and schedule "
        f"match the paper protocol; {sel}"
    )
