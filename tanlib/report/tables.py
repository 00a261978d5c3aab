"""Tables: mean ± std over seeds, Markdown and LaTeX rendering, and the report's tables.

What this module owns:

- ``summarise_runs`` / ``format_mean_std``: mean and sample standard deviation
  (ddof = 1) over seeds, rendered as "88.40 ± 0.12"; ``DEFAULT_SUMMARY_METRICS`` are
  the metrics summarised when none are named.
- ``to_markdown`` / ``to_latex``: a table as a GitHub-flavoured Markdown pipe table or
  a LaTeX booktabs ``tabular``.
- The tables of REPORT.md and the notebooks, built from run records
  (``tanlib.report.records``): ``runs_table`` (one row per run, ``RUN_COLUMNS``),
  ``results_tables`` (mean ± std over seeds, grouped by ``group_columns``: dataset,
  scale, method and whatever grid setting varies), ``metrics_table`` (one run's model
  selections), ``per_class_distances`` (runs side by side), ``embedding_state`` and
  ``collapse_lines`` (collapsed embeddings, docs/method.md "Collapse") and
  ``ablation_groups`` (one ablation chart each).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from .records import _num

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
            raise DataError(f"metrics {missing} have no <m>_mean/<m>_std columns in df; available: {available}")
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


#: Columns of the per-run table of REPORT.md: (record key, header, percent?).
RUN_COLUMNS = (
    ("accuracy_last", "test acc. last (%)", True),
    ("accuracy", "test acc. best-val (%)", True),
    ("mean_class_accuracy", "mean class acc. best-val (%)", True),
    ("macro_f1", "macro F1 best-val (%)", True),
    ("feature_ratio", "intra/inter, features h", False),
    ("intra_inter_ratio", "intra/inter, embedding e", False),
    ("noisy_auc", "noisy AUC, attention", False),
    ("noisy_auc_confidence", "noisy AUC, self-confidence", False),
)
#: Record columns that are measurements, not settings (never used to group runs).
MEASURES = (
    "run",
    "path",
    "seed",
    "best_epoch",
    "last_epoch",
    "accuracy",
    "mean_class_accuracy",
    "macro_f1",
    "feature_ratio",
    "feature_silhouette",
    "intra_inter_ratio",
    "silhouette",
    "embedding_spread",
    "noisy_auc",
    "noisy_auc_confidence",
    "noisy_auc_margin",
    "noisy_auc_entropy",
    "collapsed",
    "collapse_reason",
    "attention_state",
    "accuracy_last",
    "accuracy_best_val",
    "accuracy_test_selected",
)


def group_columns(records: pd.DataFrame) -> list[str]:
    """Columns that identify a configuration: dataset, scale, method and every grid
    setting (config override or SynthFER setting) that takes more than one value."""
    base = ["dataset", "scale", "method"]
    fixed = set(base) | set(MEASURES)
    extra = [c for c in records.columns if c not in fixed and records[c].astype(str).nunique() > 1]
    return base + extra


def runs_table(records: pd.DataFrame) -> pd.DataFrame:
    """The per-run table of REPORT.md: percentages with 2 decimals, ratios with 3."""
    rows = []
    for _, r in records.sort_values(["method", "seed", "run"]).iterrows():
        row = {"run": r["run"], "method": r["method"], "seed": r["seed"], "dataset": r["dataset"], "scale": r["scale"]}
        for key, header, percent in RUN_COLUMNS:
            value = r[key]
            row[header] = "n/a" if not math.isfinite(value) else (f"{100 * value:.2f}" if percent else f"{value:.3f}")
        row["embedding"] = embedding_state(r)
        row["attention"] = r.get("attention_state") or "n/a"
        rows.append(row)
    return pd.DataFrame(rows)


def embedding_state(record) -> str:
    """The trained embedding in words: "collapsed", "spread" or "not trained"."""
    if record.get("collapsed") is True:
        return "collapsed"
    return "not trained" if not math.isfinite(_num(record.get("intra_inter_ratio"))) else "spread"


def collapse_lines(records: pd.DataFrame) -> list[str]:
    """Markdown lines naming every collapsed run and why (empty when none collapsed)."""
    bad = records[records["collapsed"] == True]  # noqa: E712  (None for old runs)
    if bad.empty:
        return []
    lines = [
        f"**{len(bad)} of {len(records)} runs have a collapsed embedding** (docs/method.md, Collapse): their "
        "embedding geometry and any comparison of their metric terms measure nothing.",
        "",
    ]
    lines += [f"- `{r['run']}`: {r['collapse_reason']}" for _, r in bad.iterrows()]
    return lines + [""]


def results_tables(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary from ``summarise_runs``, the same rendered as "mean ± std" strings)."""
    metrics = [
        m
        for m in (
            "accuracy",
            "mean_class_accuracy",
            "macro_f1",
            "feature_ratio",
            "intra_inter_ratio",
            "noisy_auc",
            "noisy_auc_confidence",
            "accuracy_last",
        )
        if m in records.columns and records[m].notna().any()
    ]
    summary = summarise_runs(records, by=group_columns(records), metrics=metrics)
    scale = {m: (100.0 if m.startswith(("accuracy", "mean_class", "macro")) else 1.0) for m in metrics}
    shown = format_mean_std(summary, digits=2, scale=scale, metrics=metrics)
    return summary, shown


def metrics_table(metrics: dict) -> pd.DataFrame:
    """One row per model selection of a run's ``metrics.json`` (last epoch,
    best-validation epoch, and the test-selected epoch labelled as such), percentages."""
    rows = []
    for key, label in (("last", "last epoch"), ("best_val", "best-validation epoch")):
        result = (metrics.get("results") or {}).get(key)
        if not result:
            continue
        geometry = result.get("geometry") or {}
        features = result.get("geometry_features") or {}
        rows.append(
            {
                "selection": label,
                "epoch": metrics.get("last_epoch" if key == "last" else "best_epoch"),
                "accuracy (%)": round(100 * result["accuracy"], 2),
                "mean class acc. (%)": round(100 * result["mean_class_accuracy"], 2),
                "macro F1 (%)": round(100 * result["macro_f1"], 2),
                "intra/inter, features h": _round(features.get("ratio"), 3),
                "intra/inter, embedding e": _round(geometry.get("ratio"), 3),
                "silhouette, embedding e": _round(geometry.get("silhouette"), 3),
            }
        )
    selected = metrics.get("test_selected") or {}
    if "accuracy" in selected:
        rows.append(
            {
                "selection": selected.get("label", "test-selected, for comparison with papers"),
                "epoch": selected.get("epoch"),
                "accuracy (%)": round(100 * selected["accuracy"], 2),
            }
        )
    return pd.DataFrame(rows)


def _round(value, digits):
    return round(float(value), digits) if isinstance(value, (int, float)) else math.nan


def per_class_distances(runs: dict, selection: str = "best_val", space: str = "features") -> pd.DataFrame:
    """Per-class intra- and inter-class mean distances of several runs side by side:
    ``runs`` maps a run name to its ``metrics.json`` dict; ``space`` is ``features``
    (L2-normalised h, every method) or ``embedding`` (runs without a trained one are left out)."""
    key = {"features": "geometry_features", "embedding": "geometry"}[space]
    rows = {}
    for name, metrics in runs.items():
        per_class = ((metrics.get("results") or {}).get(selection, {}).get(key) or {}).get("per_class") or {}
        for cls, values in per_class.items():
            row = rows.setdefault(cls, {"class": cls, "n": values.get("n")})
            intra, inter = values.get("intra"), values.get("inter")
            row[f"{name} intra"] = _round(intra, 3)
            row[f"{name} inter"] = _round(inter, 3)
            row[f"{name} ratio"] = _round(intra / inter, 3) if intra is not None and inter else math.nan
    return pd.DataFrame(list(rows.values()))


def ablation_groups(summary: pd.DataFrame):
    """Split a summary into frames with one row per method or method variant (one per
    value of every other grouping column), each with a file-name suffix: for one
    ablation chart each."""
    if "variant" in summary:  # a variant is a bar of its own (tan, tan (lambda_rr=1.0)), not a chart
        variant = summary["variant"].fillna("").astype(str)
        summary = summary.assign(
            method=summary["method"]
            .astype(str)
            .where(variant == "", summary["method"].astype(str) + " (" + variant + ")")
        ).drop(columns="variant")
    others = [c for c in summary.columns if c not in ("method", "n_runs") and not c.endswith(("_mean", "_std", "_n"))]
    varying = [c for c in others if summary[c].astype(str).nunique() > 1]
    if not varying:
        yield "", summary
        return
    for key, part in summary.groupby(varying, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        yield "-" + "-".join(f"{c}={v}" for c, v in zip(varying, key)), part


__all__ = [
    "DEFAULT_SUMMARY_METRICS",
    "MEASURES",
    "RUN_COLUMNS",
    "ablation_groups",
    "collapse_lines",
    "embedding_state",
    "format_mean_std",
    "group_columns",
    "metrics_table",
    "per_class_distances",
    "results_tables",
    "runs_table",
    "summarise_runs",
    "to_latex",
    "to_markdown",
]
