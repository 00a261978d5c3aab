"""Run collection and the Markdown report of a pipeline run or a sweep.

What this module implements:

- ``find_runs``: every finished run directory (complete ``metrics.json``, run summary
  included) under a set of folders, so a report can merge the shards of a sweep; a run
  whose lock another writer holds (``tanlib.runlock``: training, evaluation) is left out
  until that writer is done, so a report never reads a half-written run.
- ``run_record``: one flat row per run, every number read from the run's
  ``metrics.json`` (accuracies as fractions) plus its ``config.json`` and, for sweep
  runs, the grid settings of ``job.json``.
- ``results_tables``: the mean ± std table over seeds (Markdown and LaTeX) and the
  per-run table, grouped by dataset, scale, method and whatever grid setting varies.
- Table helpers of the notebooks: ``metrics_table`` (one run's selections),
  ``per_class_distances`` (runs side by side), ``paper_records`` (rows for
  ``analysis.paper_comparison``) and ``ablation_groups`` (one chart per setting).
- ``write_report``: ``REPORT.md`` in a folder, with the per-run table, the summary
  and paper-comparison tables written by ``05_report`` (read from their files) and
  every figure of the run tree copied beside it and embedded with relative links.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd

from .config import preset_variant
from .errors import RunDirError
from .runlock import run_lock_holder

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
MEASURES = ("run", "path", "seed", "best_epoch", "last_epoch", "accuracy", "mean_class_accuracy", "macro_f1",
            "feature_ratio", "feature_silhouette", "intra_inter_ratio", "silhouette", "embedding_spread",
            "noisy_auc", "noisy_auc_confidence", "noisy_auc_margin", "collapsed", "collapse_reason",
            "attention_state", "accuracy_last", "accuracy_test_selected")


def _complete(metrics: dict) -> bool:
    """A finished run's metrics.json: ``tanlib.engine.rundir.metrics_complete``, the one rule."""
    from .engine.rundir import metrics_complete

    return metrics_complete(metrics)


def find_runs(folders) -> list[Path]:
    """Run directories with a complete ``metrics.json`` under ``folders`` (sorted), less
    those another process is writing right now (their run lock is held)."""
    if isinstance(folders, (str, Path)):
        folders = [folders]
    found = set()
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            raise RunDirError(f"runs folder {folder} does not exist")
        for metrics in folder.rglob("metrics.json"):
            try:
                if _complete(json.loads(metrics.read_text())) and run_lock_holder(metrics.parent) is None:
                    found.add(metrics.parent.resolve())
            except (OSError, json.JSONDecodeError):
                continue
    return sorted(found)


def _num(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def run_record(run_dir: str | Path) -> dict:
    """One flat dict per run, numbers straight from ``metrics.json``."""
    run_dir = Path(run_dir)
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{run_dir / 'metrics.json'} cannot be read: {exc}") from None
    if not _complete(metrics):
        raise RunDirError(f"{run_dir / 'metrics.json'} lacks the 'last' and 'best_val' results or the run summary "
                          "(last_epoch); the run is unfinished")
    config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    best, last = metrics["results"]["best_val"], metrics["results"]["last"]
    geometry = best.get("geometry") or {}
    features = best.get("geometry_features") or {}
    detection = metrics.get("noise_detection") or {}
    record = {
        "run": run_dir.name,
        "path": str(run_dir),
        "method": metrics.get("method", config.get("method")),
        "seed": metrics.get("seed", config.get("seed")),
        "dataset": metrics.get("dataset", config.get("dataset")),
        "scale": metrics.get("scale", config.get("scale")),
        "best_epoch": metrics.get("best_epoch"),
        "last_epoch": metrics.get("last_epoch"),
        "accuracy": _num(best.get("accuracy")),
        "mean_class_accuracy": _num(best.get("mean_class_accuracy")),
        "macro_f1": _num(best.get("macro_f1")),
        "feature_ratio": _num(features.get("ratio")),
        "feature_silhouette": _num(features.get("silhouette")),
        "intra_inter_ratio": _num(geometry.get("ratio")),
        "silhouette": _num(geometry.get("silhouette")),
        "embedding_spread": _num(geometry.get("mean_distance")),
        "collapsed": metrics.get("collapsed"),
        "collapse_reason": metrics.get("collapse_reason", ""),
        "attention_state": metrics.get("attention_state"),
        "noisy_auc": _num(metrics.get("train_noisy_auc")),
        "noisy_auc_confidence": _num(detection.get("self_confidence")),
        "noisy_auc_margin": _num(detection.get("margin")),
        "accuracy_last": _num(last.get("accuracy")),
        "accuracy_test_selected": _num((metrics.get("test_selected") or {}).get("accuracy")),
    }
    job = run_dir / "job.json"
    if job.is_file():
        spec = json.loads(job.read_text())
        for key, value in (spec.get("overrides") or {}).items():
            record[key] = value
        for key, value in (spec.get("synthfer") or {}).items():
            record[f"synth_{key}"] = value
    record["variant"] = preset_variant(config) if config.get("method") else ""
    if record["dataset"] == "synthfer":  # the label noise of every SynthFER run, sweep or not
        record.setdefault("synth_label_noise", data_settings(run_dir).get("label_noise"))
    return record


def collect_records(folders) -> pd.DataFrame:
    """``run_record`` of every finished run under ``folders``; raises when none is found."""
    runs = find_runs(folders)
    if not runs:
        raise RunDirError(f"no finished run (complete metrics.json) under {', '.join(map(str, folders))}")
    return pd.DataFrame([run_record(r) for r in runs])


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
    lines = [f"**{len(bad)} of {len(records)} runs have a collapsed embedding** (docs/method.md, Collapse): their "
             "embedding geometry and any comparison of their metric terms measure nothing.", ""]
    lines += [f"- `{r['run']}`: {r['collapse_reason']}" for _, r in bad.iterrows()]
    return lines + [""]


def results_tables(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary from ``summarise_runs``, the same rendered as "mean ± std" strings)."""
    from .analysis import format_mean_std, summarise_runs

    metrics = [m for m in ("accuracy", "mean_class_accuracy", "macro_f1", "feature_ratio", "intra_inter_ratio",
                           "noisy_auc", "noisy_auc_confidence", "accuracy_last")
               if m in records.columns and records[m].notna().any()]
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
        rows.append({
            "selection": label,
            "epoch": metrics.get("last_epoch" if key == "last" else "best_epoch"),
            "accuracy (%)": round(100 * result["accuracy"], 2),
            "mean class acc. (%)": round(100 * result["mean_class_accuracy"], 2),
            "macro F1 (%)": round(100 * result["macro_f1"], 2),
            "intra/inter, features h": _round(features.get("ratio"), 3),
            "intra/inter, embedding e": _round(geometry.get("ratio"), 3),
            "silhouette, embedding e": _round(geometry.get("silhouette"), 3),
        })
    selected = metrics.get("test_selected") or {}
    if "accuracy" in selected:
        rows.append({"selection": selected.get("label", "test-selected, for comparison with papers"),
                     "epoch": selected.get("epoch"), "accuracy (%)": round(100 * selected["accuracy"], 2)})
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


def paper_records(records: pd.DataFrame) -> list[dict]:
    """Rows for ``analysis.paper_comparison``: each run's best-validation and
    test-selected accuracy, with the kit preset as its protocol."""
    out = []
    for _, r in records.iterrows():
        protocol = f"{r['scale']} preset"
        for selection, key in (("best_val", "accuracy"), ("test_selected", "accuracy_test_selected")):
            if math.isfinite(r[key]):
                out.append({"method": r["method"], "dataset": r["dataset"], "accuracy": r[key], "seed": r["seed"],
                            "protocol": protocol, "selection": selection})
    return out


def ablation_groups(summary: pd.DataFrame):
    """Split a summary into frames with one row per method or method variant (one per
    value of every other grouping column), each with a file-name suffix: for one
    ablation chart each."""
    if "variant" in summary:  # a variant is a bar of its own (tan, tan (lambda_rr=1.0)), not a chart
        variant = summary["variant"].fillna("").astype(str)
        summary = summary.assign(method=summary["method"].astype(str).where(
            variant == "", summary["method"].astype(str) + " (" + variant + ")")).drop(columns="variant")
    others = [c for c in summary.columns if c not in ("method", "n_runs") and not c.endswith(("_mean", "_std", "_n"))]
    varying = [c for c in others if summary[c].astype(str).nunique() > 1]
    if not varying:
        yield "", summary
        return
    for key, part in summary.groupby(varying, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        yield "-" + "-".join(f"{c}={v}" for c, v in zip(varying, key)), part


_FIGURE_ORDER = ("data_", "learning_curves", "confusion", "per_class", "attention", "hardest", "gradcam",
                 "embeddings_", "ablation", "claims")


def _figures(folder: Path) -> list[Path]:
    """PNG figures under ``folder``: data first, then each run's, embeddings, report."""
    def key(path: Path):
        rank = next((i for i, p in enumerate(_FIGURE_ORDER) if path.name.startswith(p)), len(_FIGURE_ORDER))
        group = 1 if "runs" in path.relative_to(folder).parts else (0 if rank == 0 else 2)
        return (group, str(path.parent), rank, path.name)

    return sorted(folder.rglob("*.png"), key=key)


def _shown_path(path: Path) -> str:
    """A path as a report shows it: relative to the project root when inside it, so a
    committed report does not name the machine it was written on."""
    from .pipeline import project_root

    try:
        return Path(path).resolve().relative_to(project_root()).as_posix()
    except ValueError:
        return str(path)


def write_report(out_dir: str | Path, run_root: str | Path, runs_from=None, replace: bool = False,
                 title: str | None = None) -> Path:
    """Write ``out_dir/REPORT.md`` for the runs under ``runs_from`` (default: ``run_root``).

    ``run_root`` is the folder whose ``tables/`` and figures the report shows: a
    pipeline run folder, or a sweep's ``report/`` folder. Every number of the per-run
    table comes from the runs' ``metrics.json``; the summary and paper-comparison
    tables are read from ``run_root/tables/`` (written by ``05_report``). Figures (PNG)
    under ``run_root`` are copied to ``out_dir/figures/`` (unless ``out_dir`` is
    ``run_root``) and embedded with relative links. ``replace`` empties ``out_dir``
    first (used for ``reports/latest``).
    """
    out_dir, run_root = Path(out_dir), Path(run_root)
    runs_from = [Path(p) for p in (runs_from or [run_root])]
    records = collect_records(runs_from)
    if replace and out_dir.exists() and out_dir.resolve() != run_root.resolve():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = run_root / "tables"
    lines = [f"# {title or 'TAN reproducibility kit: report'}", ""]
    pipeline = run_root / "pipeline.json"
    if pipeline.is_file():
        info = json.loads(pipeline.read_text())
        lines += [f"Pipeline run `{info.get('run_id')}`: preset `{info.get('preset')}`, dataset "
                  f"`{info.get('dataset')}`, methods {', '.join(info.get('methods', []))}, seed {info.get('seed')}.", ""]
    datasets = sorted(set(records["dataset"].astype(str)))
    lines += [f"Runs: {len(records)} from {', '.join('`' + _shown_path(p) + '`' for p in runs_from)}. "
              f"Datasets: {', '.join(datasets)}. Accuracies are on the test split; 'best-val' uses the epoch "
              "with the best validation accuracy, 'last' the last epoch.", ""]
    if "synthfer" in datasets:
        lines += ["> SynthFER is the kit's synthetic dataset: its numbers compare methods with each other and "
                  "are **not** RAF-DB or FERPlus numbers.", ""]
    from .analysis import to_markdown

    lines += ["## Runs (from each run's metrics.json)", "",
              "Geometry: intra/inter of the L2-normalised backbone features h compares every method in one "
              "space; that of the embedding e exists only where a metric term trained it.", "",
              to_markdown(runs_table(records)), ""]
    lines += collapse_lines(records)
    if (tables / "claims.md").is_file():
        from .analysis.verdict import VERDICT_RULE

        lines += ["## The paper's claims", "",
                  "One row per claim of TAN's abstract and label-noise level: the per-seed paired difference "
                  "(same seed: same data order and initial weights), its 95 % t interval over seeds and a "
                  "bootstrap interval over the test images. The verdict: " + VERDICT_RULE, "",
                  (tables / "claims.md").read_text().strip(), ""]
    for name, heading in (("results.md", "Results: mean ± std over seeds"),
                          ("paper_comparison.md", "Comparison with the paper's reported numbers"),
                          ("per_class_distances.md", "Per-class embedding distances")):
        if (tables / name).is_file():
            lines += [f"## {heading}", "", (tables / name).read_text().strip(), ""]
    figures = _figures(run_root)
    if figures:
        lines += ["## Figures", ""]
        copy = out_dir.resolve() != run_root.resolve()
        for fig in figures:
            rel = fig.relative_to(run_root)
            short = Path(*[p for p in rel.parts if p != "figures"])
            if copy:
                target = out_dir / "figures" / short
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(fig, target)
                pdf = fig.with_suffix(".pdf")
                if pdf.is_file():
                    shutil.copy2(pdf, target.with_suffix(".pdf"))
                link = (Path("figures") / short).as_posix()
            else:
                link = rel.as_posix()
            caption = " / ".join(p for p in short.with_suffix("").parts if p != "runs")
            lines += [f"### {caption}", "", f"![{caption}]({link})", ""]
    report = out_dir / "REPORT.md"
    report.write_text("\n".join(lines).rstrip() + "\n")
    return report


#: The files of a run record: what a published number needs, without checkpoints.
RECORD_FILES = ("config.json", "history.csv", "metrics.json", "env.json")
#: Written into a record beside them when the run has them: the sweep job, the provenance
#: of pretrained weights (``pretrained.json``), the data settings (``data.json``, see
#: ``data_settings``) and the test predictions of the best-validation checkpoint (image,
#: label, pred: what a bootstrap over test images needs).
RECORD_EXTRAS = ("job.json", "pretrained.json", "data.json", "test_predictions.csv")
DATA_FILE = "data.json"


def data_settings(run_dir: str | Path) -> dict:
    """The generator settings of the SynthFER dataset a run was trained on: a record's
    ``data.json``, else the ``synthfer_settings.json`` of the run's dataset folder (the
    config's ``root``, relative to the project root); {} for other datasets or when the
    folder is gone."""
    from .data.synthfer import SETTINGS_FILE
    from .pipeline import project_path

    run_dir = Path(run_dir)
    if (run_dir / DATA_FILE).is_file():
        return json.loads((run_dir / DATA_FILE).read_text())
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    if config.get("dataset") != "synthfer" or not config.get("root"):
        return {}
    path = project_path(config["root"]) / SETTINGS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def save_record(run_dir: str | Path, dest: str | Path) -> Path:
    """Copy a finished run's record (``RECORD_FILES``, and ``RECORD_EXTRAS`` the run
    has) to ``dest``/<run name>; return it.

    Records are what the repository commits under ``results/``: every number of
    ``docs/results.md`` is read from them, so anyone can audit and regenerate the page."""
    run_dir = Path(run_dir)
    try:
        finished = _complete(json.loads((run_dir / "metrics.json").read_text()))
    except (OSError, json.JSONDecodeError):
        finished = False
    if not finished:
        raise RunDirError(f"{run_dir} is not a finished run (complete metrics.json); nothing recorded")
    missing = [f for f in RECORD_FILES if not (run_dir / f).is_file()]
    if missing:
        raise RunDirError(f"{run_dir} lacks {', '.join(missing)}; a record needs {', '.join(RECORD_FILES)}")
    target = Path(dest) / run_dir.name
    target.mkdir(parents=True, exist_ok=True)
    for name in RECORD_FILES + ("job.json", "pretrained.json"):
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, target / name)
    settings = data_settings(run_dir)
    if settings:
        (target / DATA_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    if (run_dir / "predictions.csv").is_file():
        frame = pd.read_csv(run_dir / "predictions.csv", usecols=["image", "label", "pred"])
        frame.to_csv(target / "test_predictions.csv", index=False)
    return target


def _record_command(args) -> int:
    for run in args.run_dirs:
        print(f"recorded {run} -> {save_record(run, args.out)}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("record", help="copy finished runs' records (no checkpoints) for committing")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", required=True, help="folder of records, e.g. results/recipe")
    p.set_defaults(func=_record_command)


__all__ = ["DATA_FILE", "RECORD_EXTRAS", "RECORD_FILES", "data_settings", "RUN_COLUMNS", "save_record", "ablation_groups", "collect_records", "find_runs", "group_columns", "metrics_table",
           "paper_records", "per_class_distances", "results_tables", "run_record", "runs_table", "write_report"]
