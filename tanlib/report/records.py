"""Run records: the finished runs of a folder tree, one flat row per run, and ``tan record``.

What this module owns:

- ``find_runs``: every finished run directory (complete ``metrics.json``, run summary
  included) under a set of folders, so a report can merge the shards of a sweep; a run
  whose lock another writer holds (``tanlib.runlock``: training, evaluation) is left out
  until that writer is done, so a report never reads a half-written run.
- ``run_record`` / ``collect_records``: one flat row per run, every number read from the
  run's ``metrics.json`` (accuracies as fractions) plus its ``config.json`` and, for
  sweep runs, the grid settings of ``job.json``.
- ``save_record`` (``RECORD_FILES``, ``RECORD_EXTRAS``, ``data_settings``): the record of
  a finished run, without checkpoints, that the repository commits under ``results/``
  (docs/pipeline.md, "Run records"), and ``register``, the ``tan record`` sub-command that
  writes it.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd

from ..config import preset_variant
from ..errors import RunDirError
from ..runlock import run_lock_holder


def _complete(metrics: dict) -> bool:
    """A finished run's metrics.json: ``tanlib.engine.rundir.metrics_complete``, the one rule."""
    from ..engine.rundir import metrics_complete

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
        raise RunDirError(
            f"{run_dir / 'metrics.json'} lacks the 'last' and 'best_val' results or the run summary "
            "(last_epoch); the run is unfinished"
        )
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
    from ..data.synthfer import SETTINGS_FILE
    from ..paths import project_path

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


__all__ = [
    "DATA_FILE",
    "RECORD_EXTRAS",
    "RECORD_FILES",
    "collect_records",
    "data_settings",
    "find_runs",
    "register",
    "run_record",
    "save_record",
]
