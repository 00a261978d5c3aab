"""Run records: the finished runs of a folder tree, one flat row per run, ``tan record``,
and the index of the evidence (``results/INDEX.json``).

What this module owns:

- ``find_runs``: every finished run directory (complete ``metrics.json``, run summary
  included) under a set of folders, so a report can merge the shards of a sweep; a run
  whose lock another writer holds (``tanlib.runlock``: training, evaluation) is left out
  until that writer is done, so a report never reads a half-written run. A run is not
  finished while its ``metrics.json`` lacks the summary; a ``metrics.json`` that cannot
  be read at all is a damaged record, never a run left out in silence.
- ``run_record`` / ``collect_records``: one flat row per run, every number read from the
  run's ``metrics.json`` (accuracies as fractions) plus its ``config.json`` and, for
  sweep runs, the grid settings of ``job.json``. A damaged record (a file that does not
  parse, a file a record needs that is missing, a file the index says was changed)
  raises ``RecordError`` naming the record and the file; a caller that would rather go
  on without it says so (``on_error="skip"``), and is told what was left out and why
  (a ``RecordSkipped`` warning per record, ``frame.attrs["skipped"]``).
- ``save_record`` (``RECORD_FILES``, ``RECORD_EXTRAS``, ``data_settings``): the record of
  a finished run, without checkpoints, that the repository commits under ``results/``
  (a run trained from a dirty tree only with ``allow_dirty``, ``tan record --allow-dirty``)
  (docs/pipeline.md, "Run records"), and ``register``, the ``tan record`` sub-command that
  writes it and updates the index.
- The index (``INDEX_NAME``): per record folder, every file's SHA-256, the commit its run
  was trained at and whether that tree was clean (``env.json``). ``tan record`` adds or
  replaces the entries of what it records (``add_to_index``); ``tan record --reindex
  ROOT`` rebuilds it after a deliberate change (``reindex``, which refuses records that do
  not parse); ``verify_index`` checks a tree against it before anything reads a number
  from it (docs/make_results.py, and ``collect_records`` over any folder with an index).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import json
import math
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from ..config import Config, preset_variant
from ..data.prepare import synthfer_departures
from ..errors import ConfigError, RecordError, RunDirError
from ..runlock import run_lock_holder

#: What a caller may do with a damaged record: stop (the default) or leave it out, listed.
ON_ERROR = ("raise", "skip")


class RecordSkipped(UserWarning):
    """A damaged record was left out because the caller asked for it (``on_error="skip"``)."""


def _complete(metrics: dict) -> bool:
    """A finished run's metrics.json: ``tanlib.engine.rundir.metrics_complete``, the one rule."""
    from ..engine.rundir import metrics_complete

    return metrics_complete(metrics)


def _shown(path: str | Path) -> str:
    """A path as messages show it: relative to the project root when inside it."""
    from ..paths import project_root

    path = Path(path)
    try:
        return path.resolve().relative_to(project_root()).as_posix()
    except ValueError:
        return str(path)


def _check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error={on_error!r} is not allowed; choose one of {', '.join(map(repr, ON_ERROR))}")


def read_record_json(path: str | Path) -> dict:
    """A JSON object file of a run or record; ``RecordError`` naming the file and what was
    expected when it is missing, does not parse or is not an object."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RecordError(f"{_shown(path)} is missing", [(path, "missing")], [path.parent]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"{_shown(path)} cannot be read: {exc}", [(path, str(exc))], [path.parent]) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        what = f"is not valid JSON ({exc.msg}: line {exc.lineno}, column {exc.colno}; {len(text)} characters)"
        raise RecordError(f"{_shown(path)} {what}: truncated or edited?", [(path, what)], [path.parent]) from None
    if not isinstance(value, dict):
        what = f"holds a JSON {type(value).__name__}, expected an object"
        raise RecordError(f"{_shown(path)} {what}", [(path, what)], [path.parent])
    return value


#: The columns the readers take from a record's tables (``check_record`` requires them).
HISTORY_COLUMNS = ("epoch", "train_acc", "val_acc")
PREDICTION_COLUMNS = ("image", "label", "pred")


def read_record_csv(path: str | Path, columns, integer=()) -> pd.DataFrame:
    """The ``columns`` of a record's CSV table; ``RecordError`` naming the file when it is
    missing, does not parse, has a row whose field count differs from the header's or no
    final line break (a cut file), lacks a column or has an empty cell in one, or holds a
    non-integer value in a column of ``integer``.

    A table read before with the same text is parsed once (the verdict reads each test
    predictions file dozens of times): the cache is keyed by the text, so an edit is always
    parsed again; the caller gets its own copy."""
    path = Path(path)
    if not path.is_file():
        raise _csv_error(path, "is missing")
    key = settled_key(path)
    if key is not None:
        return _read_settled_csv(key, path, tuple(columns), tuple(integer)).copy()
    return _parse_record_csv(path, _csv_text(path), tuple(columns), tuple(integer)).copy()


def _csv_text(path: Path) -> str:
    try:
        return path.read_text()
    except (UnicodeDecodeError, OSError) as exc:
        what = f"is not a readable CSV table ({' '.join(str(exc).split())}): truncated or edited?"
        raise _csv_error(path, what) from None


@functools.lru_cache(maxsize=1024)
def _read_settled_csv(key: tuple, path: Path, columns: tuple, integer: tuple) -> pd.DataFrame:
    """``read_record_csv`` of a settled file (``settled_key``): read once while its status is unchanged."""
    return _parse_record_csv(path, _csv_text(path), columns, integer)


#: A file whose status last changed at least this many seconds ago is settled (``settled_key``).
SETTLED_S = 2.0


def settled_key(path: str | Path) -> tuple | None:
    """What identifies a file's content for the in-process caches of the record readers:
    (path, device, inode, size, mtime, ctime), or None when the file is missing or its status
    changed within the last ``SETTLED_S`` seconds. Every write, truncation, rename or ``utime``
    sets the ctime to the present, and nothing sets it back, so a file that was settled when
    it was read and has the same key now was not written since. A file changed less than
    ``SETTLED_S`` ago is read every time: two writes within one tick of the clock could leave
    the same key (git's "racily clean" files)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if time.time_ns() - st.st_ctime_ns < SETTLED_S * 1e9:
        return None
    return (os.fspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _csv_error(path: Path, what: str) -> RecordError:
    return RecordError(f"{_shown(path)} {what}", [(path, what)], [path.parent])


@functools.lru_cache(maxsize=512)
def _parse_record_csv(path: Path, text: str, columns: tuple, integer: tuple) -> pd.DataFrame:
    """``read_record_csv``'s parse and checks of ``text``, the content of ``path`` (an
    exception is never cached)."""

    def fail(what):
        return _csv_error(path, what)

    try:
        frame = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise fail(f"is not a readable CSV table ({' '.join(str(exc).split())}): truncated or edited?") from None
    widths = [len(row) for row in csv.reader(text.splitlines())]
    short = next((i for i, w in enumerate(widths) if w != widths[0]), None)
    if short is not None:
        raise fail(f"line {short + 1} has {widths[short]} field(s), the header {widths[0]}: truncated or edited?")
    if not text.endswith("\n"):
        raise fail("does not end with a line break (every table the kit writes does): truncated?")
    lacking = [c for c in columns if c not in frame.columns]
    if lacking:
        found = ", ".join(map(str, frame.columns))
        raise fail(f"lacks the column(s) {', '.join(lacking)}; expected {', '.join(columns)} (found: {found})")
    if frame.empty:
        raise fail(f"has no rows; expected one row per {'epoch' if 'epoch' in columns else 'test image'}")
    frame = frame[list(columns)]
    for column in columns:
        bad = frame[column].isna()
        if column in integer and not bad.any():
            bad = pd.to_numeric(frame[column], errors="coerce").pipe(lambda v: v.isna() | (v % 1 != 0))
        if bad.any():
            row = int(bad.to_numpy().argmax())
            value, kind = frame[column].iloc[row], "an integer" if column in integer else "a value"
            # line row + 2: the header is line 1
            raise fail(f"line {row + 2}: column {column} holds {value!r}, expected {kind}: truncated or edited?")
    return frame


def find_runs(folders, on_error: str = "raise", skipped: list | None = None) -> list[Path]:
    """Run directories with a complete ``metrics.json`` under ``folders`` (sorted), less
    those another process is writing right now (their run lock is held) and those not
    finished (``metrics.json`` without the run summary).

    A ``metrics.json`` that cannot be read is a damaged record: ``RecordError`` naming it,
    or with ``on_error="skip"`` the run is left out and ``(run, reason)`` appended to
    ``skipped``."""
    _check_on_error(on_error)
    if isinstance(folders, (str, Path)):
        folders = [folders]
    found = set()
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            raise RunDirError(f"runs folder {folder} does not exist")
        for metrics in folder.rglob("metrics.json"):
            if run_lock_holder(metrics.parent) is not None:
                continue  # being written: not a record until its writer is done
            try:
                finished = _complete(read_record_json(metrics))
            except RecordError as exc:
                if on_error == "raise":
                    raise
                if skipped is not None:
                    skipped.append((metrics.parent.resolve(), str(exc)))
                continue
            if finished:
                found.add(metrics.parent.resolve())
    return sorted(found)


def _num(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def run_record(run_dir: str | Path) -> dict:
    """One flat dict per run, numbers straight from ``metrics.json``; ``RecordError``
    naming the file when ``metrics.json``, ``config.json``, ``job.json`` or ``data.json``
    is missing (the first two), does not parse, or the run is unfinished."""
    run_dir = Path(run_dir)
    metrics = read_record_json(run_dir / "metrics.json")
    if not _complete(metrics):
        what = "lacks the 'last' and 'best_val' results or the run summary (last_epoch); the run is unfinished"
        raise RecordError(f"{_shown(run_dir / 'metrics.json')} {what}", [(run_dir / "metrics.json", what)], [run_dir])
    config = read_record_json(run_dir / "config.json")
    # the run's primary checkpoint (metrics "primary": best validation, or the last epoch for the
    # calibrated preset); records from before that key are best-validation runs
    primary = metrics.get("primary", "best_val")
    best, last = metrics["results"][primary], metrics["results"]["last"]
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
        "noisy_auc_entropy": _num(detection.get("entropy")),
        # the numeric format the run resolved to (metrics.json amp; records before it: float32)
        "precision": metrics.get("amp") or "none",
        "primary": primary,
        "accuracy_last": _num(last.get("accuracy")),
        "accuracy_best_val": _num(metrics["results"]["best_val"].get("accuracy")),
        "accuracy_test_selected": _num((metrics.get("test_selected") or {}).get("accuracy")),
    }
    job = run_dir / "job.json"
    if job.is_file():
        spec = read_record_json(job)
        for key, value in (spec.get("overrides") or {}).items():
            record[key] = value
        for key, value in (spec.get("synthfer") or {}).items():
            record[f"synth_{key}"] = value
    record["variant"] = run_variant(run_dir, {**config, "dataset": record["dataset"], "scale": record["scale"]})
    if record["dataset"] == "synthfer":  # the label noise of every SynthFER run, sweep or not
        settings = data_settings(run_dir)
        record.setdefault("synth_label_noise", settings.get("label_noise"))
        record.setdefault("synth_noise_model", settings.get("noise_model"))
    if in_verdict_folder(run_dir):
        record["variant"] = ""  # one verdict, one protocol (its preset and --set): none is a variant
    return record


#: ``tan verdict`` records its runs under ``<results>/VERDICT_FOLDER/<dataset>-<preset>/``.
VERDICT_FOLDER = "verdict"


def run_variant(run_dir: str | Path, config: dict, **base_overrides) -> str:
    """How a run departs from its method's preset at its scale (``preset_variant`` of its
    config, a key the config predates taking its default; ``base_overrides``: keys of that
    preset taken otherwise), then the SynthFER data settings its scale fixes otherwise
    (``synthfer_departures``: annotator noise at the calibrated preset); "" for the preset
    itself. ``run_record``'s ``variant``, but for a verdict's records (``in_verdict_folder``)."""
    if not config.get("method"):
        return ""
    variant = preset_variant(Config.from_dict(config).to_dict(), **base_overrides)
    if config.get("dataset") == "synthfer":
        departs = synthfer_departures(data_settings(run_dir), config.get("scale") or "quick")
        extra = ", ".join(f"{k}={json.dumps(v)}" for k, v in departs.items())
        variant = ", ".join(filter(None, (variant, extra)))
    return variant


def in_verdict_folder(run_dir: str | Path) -> bool:
    """Whether a record is one of ``tan verdict``'s (``results/verdict/<dataset>-<preset>/<run>``).
    Every run of a verdict follows the verdict's one protocol, its preset with its ``--set``,
    so the claims compare them as they are: none is a variant of its method (``run_record``
    gives them ``variant=""``; the page, ``05_report`` and ``tan verdict`` read them alike)."""
    return Path(os.path.abspath(run_dir)).parent.parent.name == VERDICT_FOLDER  # the path as given, links kept


def collect_records(folders, on_error: str = "raise") -> pd.DataFrame:
    """``run_record`` of every finished run under ``folders``; raises when none is found.

    A folder inside an indexed tree (an ``INDEX_NAME`` in it, or one or two levels above
    it: ``results/INDEX.json`` for ``results/recipe``) is first checked against the index
    (``verify_index``). A damaged record raises ``RecordError`` naming the record and the
    file. With ``on_error="skip"`` it is left out instead: each one is warned about
    (``RecordSkipped``) and listed, with the reason, in ``frame.attrs["skipped"]`` (a
    list of ``{"record", "reason"}``; empty when nothing was left out)."""
    _check_on_error(on_error)
    if isinstance(folders, (str, Path)):
        folders = [folders]
    folders = [Path(f) for f in folders]
    skipped: list[tuple[Path, str]] = []
    for folder in folders:
        index = index_file_for(folder)
        if index is None:
            continue
        try:
            verify_index(index.parent, under=folder)
        except RecordError as exc:
            records = {Path(r).resolve() for r in exc.records}
            outside = [p for p, _ in exc.problems if Path(p) not in records and Path(p).parent not in records]
            if on_error == "raise" or outside:  # a damaged index, a stray file: no record to leave out
                raise
            skipped += [(r, _problems_of(exc, r)) for r in sorted(records)]
    left_out = {p for p, _ in skipped}
    unreadable: list[tuple[Path, str]] = []
    runs = find_runs(folders, on_error=on_error, skipped=unreadable)
    skipped += [(p, why) for p, why in unreadable if p not in left_out]
    rows = []
    for run in runs:
        if run in left_out:
            continue
        try:
            rows.append(run_record(run))
        except RecordError as exc:
            if on_error == "raise":
                raise
            skipped.append((run, str(exc)))
    for run, reason in skipped:
        warnings.warn(f"left out the damaged record {_shown(run)}: {reason}", RecordSkipped, stacklevel=2)
    if not rows:
        also = f" ({len(skipped)} damaged record(s) left out: {', '.join(_shown(p) for p, _ in skipped)})"
        raise RunDirError(
            f"no finished run (complete metrics.json) under {', '.join(map(str, folders))}" + (also if skipped else "")
        )
    frame = pd.DataFrame(rows)
    frame.attrs["skipped"] = [{"record": _shown(p), "reason": why} for p, why in skipped]
    return frame


def _problems_of(exc: RecordError, record) -> str:
    """The problems of ``exc`` that concern one record folder, as one line."""
    record = Path(record)
    mine = [what for path, what in exc.problems if Path(path) == record or Path(path).parent == record]
    return "; ".join(mine) or str(exc)


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
    ``data.json`` (``RecordError`` when it does not parse), else the
    ``synthfer_settings.json`` of the run's dataset folder (``dataset_settings``); {} for
    other datasets or when the folder is gone."""
    run_dir = Path(run_dir)
    if (run_dir / DATA_FILE).is_file():
        return read_record_json(run_dir / DATA_FILE)
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return dataset_settings(config)


def dataset_settings(config: dict) -> dict:
    """The ``synthfer_settings.json`` of a config's SynthFER folder (its ``root``, relative to
    the project root); {} for other datasets or when the folder is gone."""
    from ..data.synthfer import SETTINGS_FILE
    from ..paths import project_path

    if config.get("dataset") != "synthfer" or not config.get("root"):
        return {}
    try:
        return json.loads((project_path(config["root"]) / SETTINGS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def check_record(folder: str | Path) -> list[tuple[Path, str]]:
    """What is wrong with a record folder, as ``(path, problem)`` pairs (empty: nothing):
    a file of ``RECORD_FILES`` missing, a JSON file that does not parse or is not an
    object, an unfinished ``metrics.json``, a table without the columns the readers take
    (``HISTORY_COLUMNS``, ``PREDICTION_COLUMNS``) or with a damaged row, a file that is
    not part of a record."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    keys = tuple(settled_key(p) for p in files)
    if files and None not in keys:  # every file settled: checked once while none changes
        return list(_check_settled_record(folder, keys))
    return _check_record(folder)


@functools.lru_cache(maxsize=4096)
def _check_settled_record(folder: Path, keys: tuple) -> tuple:
    return tuple(_check_record(folder))


def _check_record(folder: Path) -> list[tuple[Path, str]]:
    problems: list[tuple[Path, str]] = []
    known = ", ".join(RECORD_FILES + RECORD_EXTRAS)
    for name in RECORD_FILES:
        if not (folder / name).is_file():
            problems.append((folder / name, f"is missing; a record holds {', '.join(RECORD_FILES)}"))
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            if path.name not in RECORD_FILES + RECORD_EXTRAS:
                problems.append((path, f"is not a file of a run record (those are {known})"))
            elif path.suffix == ".json":
                value = read_record_json(path)
                if path.name == "metrics.json" and not _complete(value):
                    problems.append((path, "lacks the test results or the run summary (last_epoch): unfinished run"))
            elif path.name == "history.csv":
                read_record_csv(path, HISTORY_COLUMNS, integer=("epoch",))
            elif path.name == "test_predictions.csv":
                read_record_csv(path, PREDICTION_COLUMNS, integer=("label", "pred"))
        except RecordError as exc:
            problems += exc.problems
    return problems


def save_record(
    run_dir: str | Path,
    dest: str | Path,
    index: str | Path | None = None,
    allow_dirty: bool = False,
    replace: bool = False,
    once: bool = False,
) -> Path | None:
    """Copy a finished run's record (``RECORD_FILES``, and ``RECORD_EXTRAS`` the run
    has) to ``dest``/<run name>; return it. A record file an earlier record of that name
    left there and this run lacks is removed; an earlier record of that name with another
    config (``config_differences``) is refused unless ``replace``: it may be evidence a page
    cites. With ``index`` (an ``INDEX_NAME`` file),
    the record's entry there is added or replaced (``add_to_index``). With ``once``, a record
    of this run already there (the same config: ``record_differences``) is left untouched and
    None returned: what ``tan sweep --record`` and ``tan verdict`` do as each run finishes.
    Recordings into one folder on this machine take turns (``_recording``), so two shards
    recording side by side never lose an index entry or copy one run twice at once.

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
    if index is not None:
        read_index(Path(index).parent, missing_ok=True)  # a damaged index is refused before anything is copied
    target = Path(dest) / run_dir.name
    with _recording(index if index is not None else dest):
        if (target / "config.json").is_file() and not replace:
            changed = record_differences(target, run_dir)
            if changed:
                keys = ", ".join(f"{k}: {a!r} there, {b!r} here" for k, (a, b) in changed.items())
                raise RunDirError(
                    f"{target} already holds the record of a run with another config ({keys}): rename that record "
                    "(then tan record --reindex) or record this run elsewhere; tan record --replace overwrites it"
                )
            if once and holds_record(target, index):
                return None
        env = read_record_json(run_dir / "env.json")
        if env.get("git_dirty") is True and not allow_dirty:
            commit = (env.get("git_commit") or "unknown")[:12]
            raise RunDirError(
                f"{run_dir} was trained from a working tree with uncommitted changes under tanlib/ (env.json "
                f"git_dirty: true): commit {commit} alone does not hold the code it ran, so it is not recorded. "
                "Train it again from a clean commit, or record it anyway with tan record --allow-dirty (the index "
                "then marks it clean: false and docs/results.md lists it)"
            )
        return _copy_record(run_dir, target, index)


def holds_record(record: str | Path, index: str | Path | None = None) -> bool:
    """Whether ``record`` is a record in place: its config and metrics there and, with ``index``,
    its entry in that index (a record whose indexing failed is recorded again)."""
    record = Path(record)
    if not (record / "config.json").is_file() or not (record / "metrics.json").is_file():
        return False
    if index is None:
        return True
    index = Path(index)
    try:
        key = record.resolve().relative_to(index.parent.resolve()).as_posix()
    except ValueError:
        return False
    return key in read_index(index.parent, missing_ok=True)["records"]


def _copy_record(run_dir: Path, target: Path, index) -> Path:
    """Write the record into a temporary sibling folder and rename it into place (a record is
    whole or absent, whatever stops the copy); files of an earlier record there that are not
    record files are kept; then index it."""
    tmp = target.parent / f".{target.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name in RECORD_FILES + ("job.json", "pretrained.json"):
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, tmp / name)
        settings = data_settings(run_dir)
        if settings:
            (tmp / DATA_FILE).write_text(json.dumps(settings, indent=2) + "\n")
        if (run_dir / "predictions.csv").is_file():
            frame = pd.read_csv(run_dir / "predictions.csv", usecols=["image", "label", "pred"])
            frame.to_csv(tmp / "test_predictions.csv", index=False)
        elif (run_dir / "test_predictions.csv").is_file():  # a record recorded again (into a verdict)
            shutil.copy2(run_dir / "test_predictions.csv", tmp / "test_predictions.csv")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.is_dir():
        for old in target.iterdir():
            if old.name not in RECORD_FILES + RECORD_EXTRAS and not (tmp / old.name).exists():
                shutil.move(str(old), tmp / old.name)
        gone = target.parent / f".{target.name}.old{os.getpid()}"
        target.rename(gone)
        tmp.rename(target)
        shutil.rmtree(gone)
    else:
        tmp.rename(target)
    if index is not None:
        add_to_index(index, target)
    return target


def record_differences(record: str | Path, run_dir: str | Path) -> dict[str, tuple]:
    """How the config of the run in ``run_dir`` differs from the record's (``config_vs_record``)."""
    run_dir = Path(run_dir)
    return config_vs_record(record, read_record_json(run_dir / "config.json"), data_settings(run_dir))


def config_vs_record(record: str | Path, config: dict, settings: dict) -> dict[str, tuple]:
    """How ``config`` (a run's or a sweep job's, on data of generator ``settings``) differs from
    the record's (``config_differences``), with the dataset root counted as the same when both
    name a folder of the same name holding the same data (``data_settings``): a record made from
    another checkout or worktree of the kit is still this run's. The one rule for "this run is
    recorded" (``save_record``, ``tan sweep --record``, ``tan verdict``)."""
    from ..config import config_differences

    record = Path(record)
    changed = config_differences(read_record_json(record / "config.json"), config)
    roots = changed.get("root")
    if (
        roots
        and all(isinstance(r, str) for r in roots)
        and Path(roots[0]).name == Path(roots[1]).name
        and data_settings(record) == settings
    ):
        del changed["root"]
    return changed


@contextlib.contextmanager
def _recording(place: str | Path):
    """One recording at a time per index (or records folder, without one) on this machine: an
    OS file lock (``filelock``) in the temporary folder, named by ``place``'s resolved path (a
    lock file beside the records would be a file outside every record), writable by every user.
    Shards on several machines sharing ``results/`` are not kept apart by it."""
    import tempfile

    from filelock import FileLock

    key = hashlib.sha256(str(Path(place).resolve()).encode()).hexdigest()[:16]
    with FileLock(os.path.join(tempfile.gettempdir(), f"tanlib-record-{key}.lock"), mode=0o666):
        yield


# ---------------------------------------------------------------------------- the index
#: The index of a records tree, in its root (``results/INDEX.json``).
INDEX_NAME = "INDEX.json"
INDEX_FORMAT = 1
_INDEX_ABOUT = (
    "The evidence behind docs/results.md: per run record (folder relative to this file), the SHA-256 of "
    "every file, the commit its run was trained at and whether that tree was clean (env.json: git_commit, "
    "git_dirty, uncommitted changes under tanlib/). Written by tan record; after a deliberate change to a "
    "record, rebuild it with: tan record --reindex <this folder>. docs/make_results.py checks every record "
    "against it before reading one."
)


def reindex_command(root: str | Path) -> str:
    """The one command that rebuilds the index of ``root``."""
    return f"tan record --reindex {_shown(root)}"


def default_index(dest: str | Path) -> Path:
    """The index a group of records ``dest`` is recorded into (``tan record --out``, ``tan
    sweep --record``): ``INDEX_NAME`` in the results folder, the one above ``results/NAME``,
    two above a verdict's ``results/verdict/<dataset>-<preset>`` (where ``tan verdict``
    indexes it)."""
    dest = Path(dest)
    return (dest.parent.parent if dest.parent.name == VERDICT_FOLDER else dest.parent) / INDEX_NAME


def index_file_for(folder: str | Path) -> Path | None:
    """The index covering ``folder``: an ``INDEX_NAME`` in it, in its parent (a group of
    records such as ``results/recipe``) or in its grandparent (one record), else None."""
    folder = Path(folder).resolve()
    for place in (folder, folder.parent, folder.parent.parent):
        if (place / INDEX_NAME).is_file():
            return place / INDEX_NAME
    return None


def _sha256(path: Path) -> str:
    """The file's SHA-256; a settled file (``settled_key``) is hashed once per process."""
    key = settled_key(path)
    return _settled_sha256(key) if key is not None else _hash_file(path)


@functools.lru_cache(maxsize=65536)
def _settled_sha256(key: tuple) -> str:
    return _hash_file(Path(key[0]))


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_entry(folder: str | Path) -> dict:
    """A record's index entry: every file's SHA-256, its run's commit and whether the tree
    was clean (``env.json``'s ``git_commit`` and ``git_dirty``; ``clean`` is None when the
    run did not know: no git)."""
    folder = Path(folder)
    env = read_record_json(folder / "env.json")
    dirty = env.get("git_dirty")
    return {
        "commit": env.get("git_commit"),
        "clean": (not dirty) if isinstance(dirty, bool) else None,
        "files": {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file()},
    }


def _scan(root: Path, scope: str | None = None) -> dict[str, list[Path]]:
    """Every file under ``root`` (under its folder ``scope`` only, when given) but the index
    itself, by folder relative to ``root`` (POSIX)."""
    found: dict[str, list[Path]] = {}
    for path in sorted((root / scope if scope else root).rglob("*")):
        if path.is_file() and path != root / INDEX_NAME:
            found.setdefault(path.parent.relative_to(root).as_posix(), []).append(path)
    return found


def read_index(root: str | Path, missing_ok: bool = False) -> dict:
    """The index of ``root`` (``root/INDEX_NAME``); ``RecordError`` naming it when it is
    missing (unless ``missing_ok``: an empty index), does not parse or is not an index."""
    root = Path(root)
    path = root / INDEX_NAME
    if not path.is_file():
        if missing_ok:
            return {"format": INDEX_FORMAT, "about": _INDEX_ABOUT, "records": {}}
        what = (
            "is missing: nothing says which files are the evidence; index the records present with "
            + reindex_command(root)
        )
        raise RecordError(f"{_shown(path)} {what}", [(path, what)])
    index = read_record_json(path)
    records = index.get("records")
    if index.get("format") != INDEX_FORMAT or not isinstance(records, dict):
        what = f"is not an index of format {INDEX_FORMAT} (a 'records' object); rebuild it with {reindex_command(root)}"
        raise RecordError(f"{_shown(path)} {what}", [(path, what)])
    for key, entry in records.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("files"), dict)):
            what = f"entry {key!r} has no 'files' object; rebuild it with {reindex_command(root)}"
            raise RecordError(f"{_shown(path)} {what}", [(path, what)])
    return index


def _write_index(root: Path, records: dict) -> Path:
    from ..atomicio import atomic_write_json

    path = root / INDEX_NAME
    atomic_write_json(path, {"format": INDEX_FORMAT, "about": _INDEX_ABOUT, "records": dict(sorted(records.items()))})
    return path


def _raise_problems(problems: list[tuple[Path, str]], records, root: Path, then: str) -> None:
    if not problems:
        return
    lines = [f"{len(problems)} problem(s) with the run records under {_shown(root)}:"]
    lines += [f"  {_shown(path)}: {what}" for path, what in problems]
    lines.append(then)
    raise RecordError("\n".join(lines), problems, sorted({str(r) for r in records}))


def verify_index(root: str | Path, under: str | Path | None = None) -> dict:
    """Check the records under ``root`` (only those under ``under``, when given) against
    ``root/INDEX_NAME`` and return the index. Every problem is collected, then raised as
    one ``RecordError`` naming the record and the file: a file whose SHA-256 differs from
    the index's, a file or record folder the index lists and the tree lacks, a file or
    folder the index does not list, a record that does not parse (``check_record``)."""
    root = Path(root).resolve()
    index = read_index(root)
    scope = None
    if under is not None:
        rel = Path(under).resolve().relative_to(root).as_posix()
        scope = None if rel == "." else rel

    def inside(key: str) -> bool:
        return scope is None or key == scope or key.startswith(scope + "/")

    listed = {k: v for k, v in index["records"].items() if inside(k)}
    on_disk = _scan(root, scope)  # only the folders inside the scope
    problems: list[tuple[Path, str]] = []
    concerned: set[Path] = set()
    for key, entry in sorted(listed.items()):
        folder = root / key
        files = {p.name: p for p in on_disk.get(key, [])}
        if not files:
            what = f"is listed in {INDEX_NAME} ({len(entry['files'])} files) but the folder is missing or empty"
            problems.append((folder, what))
            concerned.add(folder)
            continue
        mine: list[tuple[Path, str]] = []
        for name, digest in sorted(entry["files"].items()):
            if name not in files:
                mine.append((folder / name, f"is listed in {INDEX_NAME} but missing"))
                continue
            found = _sha256(files[name])
            if found != digest:
                what = f"changed since it was indexed (SHA-256 {found[:12]}..., the index has {digest[:12]}...)"
                mine.append((folder / name, what))
        for name in sorted(set(files) - set(entry["files"])):
            mine.append((folder / name, f"is not listed in {INDEX_NAME} (added after the record was indexed)"))
        reported = {path for path, _ in mine}
        # what the file says when read (a truncated JSON, a damaged row), beside its changed hash;
        # a file already reported missing is not reported missing twice
        mine += [(path, what) for path, what in check_record(folder) if path.is_file() or path not in reported]
        if mine:
            problems += mine
            concerned.add(folder)
    for key in sorted(set(on_disk) - set(index["records"])):
        if key == ".":
            problems += [(p, "lies outside any record folder and is not in the index") for p in on_disk[key]]
            continue
        folder = root / key
        names = ", ".join(p.name for p in on_disk[key])
        problems.append((folder, f"is a folder the index does not list (holding {names})"))
        if (folder / "metrics.json").is_file():  # a run record; other files are strays, not records
            concerned.add(folder)
    _raise_problems(
        problems,
        concerned,
        root,
        f"Checked against {_shown(root / INDEX_NAME)}; nothing was read from these records. Restore them "
        f"(git status {_shown(root)} shows what changed; git checkout -- {_shown(root)}), or after a "
        f"deliberate change rebuild the index with: {reindex_command(root)}",
    )
    return index


def reindex(root: str | Path) -> dict:
    """Rebuild ``root/INDEX_NAME`` from the record folders under ``root`` (every folder
    holding files); refuse, writing nothing, when any record does not parse
    (``check_record``) or a file lies outside a record folder. Returns the index. Takes turns
    with recordings into the same index (``_recording``)."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise RunDirError(f"records folder {_shown(root)} does not exist")
    with _recording(root / INDEX_NAME):
        return _reindex(root)


def _reindex(root: Path) -> dict:
    problems: list[tuple[Path, str]] = []
    records = {}
    for key, files in _scan(root).items():
        folder = root / key
        if key == ".":
            problems += [(p, "lies outside any record folder (records are ROOT/<group>/<run>/)") for p in files]
            continue
        found = check_record(folder)
        if found:
            problems += found
            continue
        records[key] = record_entry(folder)
    _raise_problems(
        problems,
        {p.parent for p, _ in problems},
        root,
        "Nothing was indexed: a record that does not parse is damaged, not evidence. Restore it "
        f"(git checkout -- {_shown(root)}) or remove it, then run {reindex_command(root)} again.",
    )
    _write_index(root, records)
    return records


def add_to_index(index: str | Path, folder: str | Path) -> dict:
    """Add or replace the entry of the record ``folder`` in ``index`` (created when
    missing; the record must lie under the index's folder and parse). Returns the entry."""
    index, folder = Path(index).resolve(), Path(folder).resolve()
    root = index.parent
    try:
        key = folder.relative_to(root).as_posix()
    except ValueError:
        raise RunDirError(f"record {_shown(folder)} is not under the folder of its index {_shown(index)}") from None
    _raise_problems(check_record(folder), [folder], root, "The record was not indexed.")
    current = read_index(root, missing_ok=True)
    entry = record_entry(folder)
    _write_index(root, {**current["records"], key: entry})
    return entry


def _dirty_note(entry: dict) -> str:
    if entry["clean"] is False:
        return "trained from a working tree with uncommitted changes under tanlib/"
    return "clean tree" if entry["clean"] else "no git information"


def _record_command(args) -> int:
    if args.reindex is not None:
        if args.run_dirs or args.out:
            raise ConfigError("tan record --reindex ROOT takes no RUN_DIR and no --out")
        records = reindex(args.reindex)
        dirty = [k for k, e in records.items() if e["clean"] is False]
        files = sum(len(e["files"]) for e in records.values())
        print(f"indexed {len(records)} record(s), {files} files, in {_shown(Path(args.reindex) / INDEX_NAME)}")
        if dirty:
            print(f"{len(dirty)} of them trained with uncommitted changes (clean: false): {', '.join(dirty)}")
        return 0
    if not args.run_dirs or not args.out:
        raise ConfigError("tan record needs RUN_DIR... and --out DIR (or --reindex ROOT alone)")
    out = Path(args.out)
    index = Path(args.index) if args.index else default_index(out)
    for run in args.run_dirs:
        target = save_record(run, out, index=index, allow_dirty=args.allow_dirty, replace=args.replace)
        entry = read_index(index.parent)["records"][target.resolve().relative_to(index.parent.resolve()).as_posix()]
        commit = (entry["commit"] or "unknown")[:12]
        print(f"recorded {run} -> {target} (indexed in {_shown(index)}: commit {commit}, {_dirty_note(entry)})")
        if entry["clean"] is False:
            print(
                f"tan record: warning: {run} was trained from a working tree with uncommitted changes under tanlib/ "
                f"(env.json git_dirty): commit {commit} alone does not hold the code it ran; the index marks it "
                "clean: false and docs/results.md lists it",
                file=sys.stderr,
            )
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "record",
        help="copy finished runs' records (no checkpoints) for committing, and index them",
        description="tan record RUN_DIR... --out results/NAME copies each run's record and adds it to the "
        "index (results/INDEX.json for --out results/NAME: every file's SHA-256, the run's commit, a clean "
        "tree or not). tan record --reindex results rebuilds the index after a deliberate change.",
    )
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR")
    p.add_argument("--out", help="folder of records, e.g. results/recipe")
    p.add_argument(
        "--index",
        help=f"the index to update (default: {INDEX_NAME} in the results folder: the one above --out, two above a "
        "verdict's --out results/verdict/NAME)",
    )
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        help="record a run trained from a working tree with uncommitted changes under tanlib/ (refused otherwise)",
    )
    p.add_argument(
        "--replace", action="store_true", help="overwrite a record of the same name whose run had another config"
    )
    p.add_argument("--reindex", metavar="ROOT", help="rebuild ROOT/INDEX.json from the records under ROOT (no RUN_DIR)")
    p.set_defaults(func=_record_command)


__all__ = [
    "DATA_FILE",
    "HISTORY_COLUMNS",
    "INDEX_NAME",
    "ON_ERROR",
    "PREDICTION_COLUMNS",
    "RECORD_EXTRAS",
    "RECORD_FILES",
    "RecordSkipped",
    "add_to_index",
    "check_record",
    "collect_records",
    "config_vs_record",
    "data_settings",
    "dataset_settings",
    "default_index",
    "find_runs",
    "holds_record",
    "index_file_for",
    "read_index",
    "read_record_csv",
    "read_record_json",
    "record_differences",
    "record_entry",
    "register",
    "reindex",
    "reindex_command",
    "run_record",
    "run_variant",
    "save_record",
    "verify_index",
]
