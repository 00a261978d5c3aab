"""Run records as evidence: the index `tan record` writes (every file's SHA-256, the run's
commit, a clean tree or not), its check, and readers that never leave a damaged record
out unless told to, and then say so."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import pytest

from tanlib.cli import main
from tanlib.errors import ConfigError, RecordError, RunDirError
from tanlib.report import collect_records, find_runs, run_record
from tanlib.report.records import (
    DATA_FILE,
    INDEX_NAME,
    RecordSkipped,
    _recording,
    add_to_index,
    check_record,
    default_index,
    holds_record,
    read_index,
    record_differences,
    reindex,
    save_record,
    verify_index,
)

RESULTS = Path(__file__).resolve().parents[2] / "results"
RECORDS = ("recipe/ce-seed0", "recipe/tan-seed0", "ablation/scn-seed0")  # scn-seed0 has a job.json


@pytest.fixture
def tree(tmp_path) -> Path:
    """A small records tree: three committed records copied, indexed."""
    root = tmp_path / "results"
    for key in RECORDS:
        shutil.copytree(RESULTS / key, root / key)
    reindex(root)
    return root


def _fake_run(tmp_path: Path, record: str = "recipe/ce-seed1", name: str = "ce-seed1", **env) -> Path:
    """A finished run directory without training: a committed record with its test
    predictions under the name a run gives them (predictions.csv)."""
    run = tmp_path / "runs" / name
    shutil.copytree(RESULTS / record, run)
    (run / "test_predictions.csv").rename(run / "predictions.csv")
    if env:
        data = json.loads((run / "env.json").read_text())
        (run / "env.json").write_text(json.dumps({**data, **env}))
    return run


def _generator():
    """docs/make_results.py as a module (the page's text on the index)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_results", RESULTS.parent / "docs" / "make_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_index_holds_every_file_hash_the_commit_and_a_clean_tree(tree):
    index = json.loads((tree / INDEX_NAME).read_text())
    assert sorted(index["records"]) == sorted(RECORDS)
    for key in RECORDS:
        entry, env = index["records"][key], json.loads((tree / key / "env.json").read_text())
        assert entry["files"] == {p.name: _sha(p) for p in (tree / key).iterdir()}
        assert entry["commit"] == env["git_commit"] and entry["clean"] is (not env["git_dirty"])
    assert "job.json" in index["records"]["ablation/scn-seed0"]["files"]
    assert verify_index(tree)["records"] == index["records"]


def _truncate(path: Path, keep: int = 300) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _edit_csv(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    image, label, pred = lines[5].strip().split(",")
    lines[5] = f"{image},{label},{label if pred != label else (int(label) + 1) % 7}\n"  # one prediction changed
    path.write_text("".join(lines))


DAMAGE = {
    "truncated JSON": (
        lambda t: _truncate(t / "recipe/ce-seed0/metrics.json"),
        ["recipe/ce-seed0/metrics.json: changed since it was indexed", "metrics.json: is not valid JSON"],
        "recipe/ce-seed0",
    ),
    "edited CSV": (
        lambda t: _edit_csv(t / "recipe/tan-seed0/test_predictions.csv"),
        ["recipe/tan-seed0/test_predictions.csv: changed since it was indexed (SHA-256"],
        "recipe/tan-seed0",
    ),
    "deleted file": (
        lambda t: (t / "ablation/scn-seed0/job.json").unlink(),
        ["ablation/scn-seed0/job.json: is listed in INDEX.json but missing"],
        "ablation/scn-seed0",
    ),
    "deleted record": (
        lambda t: shutil.rmtree(t / "recipe/tan-seed0"),
        ["recipe/tan-seed0: is listed in INDEX.json (6 files) but the folder is missing"],
        "recipe/tan-seed0",
    ),
    "unindexed record": (
        lambda t: shutil.copytree(RESULTS / "recipe/ce-seed2", t / "recipe/ce-seed2"),
        ["recipe/ce-seed2: is a folder the index does not list (holding config.json"],
        "recipe/ce-seed2",
    ),
    "added file": (
        lambda t: (t / "recipe/ce-seed0/notes.txt").write_text("x"),
        [
            "recipe/ce-seed0/notes.txt: is not listed in INDEX.json",
            "notes.txt: is not a file of a run record",
        ],
        "recipe/ce-seed0",
    ),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_every_kind_of_damage_is_an_error_naming_the_record_and_the_file(tree, kind):
    damage, texts, record = DAMAGE[kind]
    damage(tree)
    with pytest.raises(RecordError) as info:
        verify_index(tree)
    message = str(info.value)
    for text in texts:
        assert text in message, message
    assert str(tree / record) in info.value.records
    assert "tan record --reindex" in message
    assert len(info.value.problems) == len(texts)  # nothing else reported, nothing reported twice


def test_a_file_outside_every_record_and_a_damaged_index_are_errors(tree):
    (tree / "notes.md").write_text("x")
    with pytest.raises(RecordError, match=r"notes.md: lies outside any record folder"):
        verify_index(tree)
    (tree / "notes.md").unlink()
    _truncate(tree / INDEX_NAME, 200)
    with pytest.raises(RecordError, match=r"INDEX.json is not valid JSON"):
        verify_index(tree)
    (tree / INDEX_NAME).unlink()
    with pytest.raises(RecordError, match=r"INDEX.json is missing.*tan record --reindex"):
        verify_index(tree)


def test_only_the_records_under_a_folder_are_checked(tree):
    _truncate(tree / "ablation/scn-seed0/metrics.json")
    verify_index(tree, under=tree / "recipe")  # the damage lies elsewhere
    with pytest.raises(RecordError, match="scn-seed0/metrics.json"):
        verify_index(tree, under=tree / "ablation")


def test_reindex_refuses_a_record_that_does_not_parse_and_writes_nothing(tree, case, capsys):
    case(
        "R8",
        "evidence: run records",
        "`tan record --reindex results` when a record's history.csv was cut inside a row (the deliberate-change "
        "command run over a damaged record)",
        "RecordError, exit 5, naming the file and the line; INDEX.json left as it was: damage is never indexed",
    )
    before = (tree / INDEX_NAME).read_bytes()
    _truncate(tree / "recipe/ce-seed0/history.csv", 2000)  # cut inside a row
    with pytest.raises(RecordError) as info:
        reindex(tree)
    assert "recipe/ce-seed0/history.csv: line" in str(info.value) and "Nothing was indexed" in str(info.value)
    assert main(["record", "--reindex", str(tree)]) == RecordError.exit_code == 5
    err = capsys.readouterr().err
    assert (tree / INDEX_NAME).read_bytes() == before
    line = next(ln for ln in err.splitlines() if "history.csv" in ln)
    case.observed(f"exit 5; {line.strip().replace(str(tree), 'results')}; INDEX.json unchanged")


def test_a_deliberate_change_is_accepted_once_reindexed(tree):
    _edit_csv(tree / "recipe/tan-seed0/test_predictions.csv")
    with pytest.raises(RecordError):
        verify_index(tree)
    rc = main(["record", "--reindex", str(tree)])
    assert rc == 0
    verify_index(tree)


def test_check_record_names_damaged_rows_and_columns(tree):
    record = tree / "recipe/ce-seed0"
    assert check_record(record) == []
    _truncate(record / "test_predictions.csv", 200)  # cut inside line 11
    (record / "history.csv").write_text("epoch,loss\n1,0.5\n")
    problems = dict((p.name, what) for p, what in check_record(record))
    assert problems["history.csv"].startswith("lacks the column(s) train_acc, val_acc")
    assert problems["test_predictions.csv"] == "line 11 has 1 field(s), the header 3: truncated or edited?"
    (record / "test_predictions.csv").write_text("image,label,pred\na.jpg,3,6\nb.jpg,4,six\n")
    problems = dict((p.name, what) for p, what in check_record(record))
    assert problems["test_predictions.csv"].startswith("line 3: column pred holds 'six', expected an integer")
    (record / "test_predictions.csv").write_text("image,label,pred\na.jpg,3,6")
    problems = dict((p.name, what) for p, what in check_record(record))
    assert problems["test_predictions.csv"].startswith("does not end with a line break")


def test_a_table_is_parsed_once_per_content_and_every_edit_is_read(tmp_path):
    """read_record_csv caches the parse by the file's text: a second read of the same text
    is not parsed again, each caller gets its own frame, and an edit (even one of the same
    size) or a later damage is read and checked as if nothing were cached."""
    from tanlib.report import records

    path = tmp_path / "test_predictions.csv"
    path.write_text("image,label,pred\na.jpg,3,6\nb.jpg,4,4\n")
    cols = ("image", "label", "pred")
    records._parse_record_csv.cache_clear()
    first = records.read_record_csv(path, cols, integer=("label", "pred"))
    first.loc[0, "pred"] = 0  # the caller's copy: the cache keeps the file's values
    second = records.read_record_csv(path, cols, integer=("label", "pred"))
    assert records._parse_record_csv.cache_info().hits == 1
    assert second["pred"].tolist() == [6, 4]
    path.write_text("image,label,pred\na.jpg,3,5\nb.jpg,4,4\n")  # same size, other text
    assert records.read_record_csv(path, cols, integer=("label", "pred"))["pred"].tolist() == [5, 4]
    path.write_text("image,label,pred\na.jpg,3,5\nb.jpg,4,x\n")
    with pytest.raises(RecordError, match="line 3: column pred holds 'x', expected an integer"):
        records.read_record_csv(path, cols, integer=("label", "pred"))
    path.write_bytes(b"image,label,pred\n\xff\xfe.jpg,3,5\n")
    with pytest.raises(RecordError, match=r"test_predictions.csv is not a readable CSV table \('utf-8' codec"):
        records.read_record_csv(path, cols)
    path.unlink()
    with pytest.raises(RecordError, match="is missing"):
        records.read_record_csv(path, cols)


def test_collect_records_checks_the_index_and_never_skips_silently(tree):
    assert len(collect_records([tree / "recipe"])) == 2
    _truncate(tree / "recipe/ce-seed0/metrics.json")
    with pytest.raises(RecordError, match="recipe/ce-seed0/metrics.json"):
        collect_records([tree / "recipe"])
    with pytest.warns(RecordSkipped, match=r"left out the damaged record .*recipe/ce-seed0: changed since"):
        frame = collect_records([tree / "recipe"], on_error="skip")
    assert list(frame["run"]) == ["tan-seed0"]
    [skipped] = frame.attrs["skipped"]
    assert skipped["record"].endswith("recipe/ce-seed0") and "is not valid JSON" in skipped["reason"]
    (tree / "recipe" / "notes.md").write_text("x")  # not a record: nothing to leave out, so still an error
    with pytest.raises(RecordError, match="recipe: is a folder the index does not list"):
        collect_records([tree / "recipe"], on_error="skip")
    (tree / "notes.md").write_text("x")
    with pytest.raises(RecordError, match="notes.md: lies outside any record folder"):
        collect_records([tree], on_error="skip")
    with pytest.raises(ConfigError, match="on_error='ignore'"):
        collect_records([tree / "recipe"], on_error="ignore")


def test_a_damaged_run_in_a_folder_without_index_is_named_not_dropped(tmp_path, case):
    """The bug of issue 30: a truncated metrics.json made the run vanish from every report."""
    case(
        "R7",
        "evidence: run records",
        "a folder of live runs (no index, as 05_report reads a pipeline or sweep folder) where one run's "
        "metrics.json is truncated; collect_records / find_runs, then collect_records(on_error='skip')",
        "RecordError naming the file (the run is not left out in silence); with on_error='skip' the run is left "
        "out, a RecordSkipped warning names it and frame.attrs['skipped'] gives the reason; an unfinished run "
        "(no summary yet) is still left out without error",
    )
    runs = tmp_path / "runs"
    for name in ("ce-seed0", "ce-seed1"):
        shutil.copytree(RESULTS / "recipe" / name, runs / name)
    _truncate(runs / "ce-seed1" / "metrics.json")
    with pytest.raises(RecordError, match=r"ce-seed1/metrics.json is not valid JSON .*truncated or edited"):
        find_runs(runs)
    with pytest.raises(RecordError, match="ce-seed1/metrics.json"):
        collect_records([runs])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = collect_records([runs], on_error="skip")
    assert list(frame["run"]) == ["ce-seed0"]
    assert [r["record"] for r in frame.attrs["skipped"]] == [str(runs / "ce-seed1")]
    assert any("ce-seed1" in str(w.message) for w in caught if w.category is RecordSkipped)
    # an unfinished run (no summary yet) is not a damaged one: left out as before, no error
    metrics = json.loads((runs / "ce-seed0" / "metrics.json").read_text())
    del metrics["last_epoch"]
    (runs / "ce-seed1" / "metrics.json").write_text(json.dumps(metrics))
    assert [p.name for p in find_runs(runs)] == ["ce-seed0"]
    reason = frame.attrs["skipped"][0]["reason"].replace(str(runs), "runs")
    case.observed(f"RecordError: {reason}; skip: 1 run kept, ce-seed1 listed as skipped; unfinished run left out")


def test_a_report_that_skips_lists_what_it_left_out(tmp_path):
    from tanlib.report import write_report

    runs = tmp_path / "runs"
    for name in ("ce-seed0", "ce-seed1"):
        shutil.copytree(RESULTS / "recipe" / name, runs / name)
    (runs / "ce-seed1" / "config.json").write_text("{")
    with pytest.raises(RecordError, match="ce-seed1/config.json is not valid JSON"):
        write_report(tmp_path / "report", run_root=runs)
    with pytest.warns(RecordSkipped):
        report = write_report(tmp_path / "report", run_root=runs, on_error="skip").read_text()
    assert "Runs: 1 from" in report
    assert "## Left out: 1 damaged run record(s)" in report
    assert f"- `{runs / 'ce-seed1'}`: {runs / 'ce-seed1' / 'config.json'} is not valid JSON" in report


@pytest.mark.parametrize(
    "name, damage, text",
    [
        ("job.json", lambda p: _truncate(p, 20), "job.json is not valid JSON"),
        ("data.json", lambda p: p.write_text("[1, 2]"), "data.json holds a JSON list, expected an object"),
        ("config.json", lambda p: p.unlink(), "config.json is missing"),
    ],
)
def test_run_record_names_a_damaged_file(tmp_path, name, damage, text):
    record = tmp_path / "scn-seed0"
    shutil.copytree(RESULTS / "ablation/scn-seed0", record)
    assert run_record(record)["method"] == "scn"
    damage(record / name)
    with pytest.raises(RecordError, match=text):
        run_record(record)


def test_tan_record_writes_and_updates_the_index(tmp_path, capsys, case):
    case(
        "R6",
        "evidence: run records",
        "`tan record` of a run whose env.json says it was trained with uncommitted changes under tanlib/ "
        "(git_dirty: true), beside one from a clean tree",
        "refused without --allow-dirty (exit code of RunDirError, the run and the flag named, nothing written); "
        "with it recorded and indexed: a warning on stderr naming the run and its commit; the index entry says "
        "clean: false; the check accepts it and the results page lists it among the dirty-tree records",
    )
    out = tmp_path / "results" / "recipe"
    a = _fake_run(tmp_path, "recipe/ce-seed1", "ce-seed1", git_dirty=False, git_commit="a" * 40)
    b = _fake_run(tmp_path, "recipe/ce-seed2", "ce-seed2", git_dirty=True, git_commit="b" * 40)
    assert main(["record", str(a), "--out", str(out)]) == 0
    index = read_index(tmp_path / "results")
    assert list(index["records"]) == ["recipe/ce-seed1"]
    assert main(["record", str(b), "--out", str(out)]) == RunDirError.exit_code
    first, refused = capsys.readouterr()
    assert "commit aaaaaaaaaaaa, clean tree" in first
    assert "uncommitted changes" in refused and "--allow-dirty" in refused
    assert not (out / "ce-seed2").exists() and list(read_index(tmp_path / "results")["records"]) == ["recipe/ce-seed1"]
    assert main(["record", str(b), "--out", str(out), "--allow-dirty"]) == 0
    captured = capsys.readouterr()
    assert "uncommitted changes under tanlib/" in captured.err and "clean: false" in captured.err
    index = verify_index(tmp_path / "results")
    assert index["records"]["recipe/ce-seed1"]["clean"] is True
    assert index["records"]["recipe/ce-seed2"] == {
        "commit": "b" * 40,
        "clean": False,
        "files": {p.name: _sha(p) for p in (out / "ce-seed2").iterdir()},
    }
    [page_text, _] = _generator().evidence_lines(index)
    assert "1 of the 2 records were trained from a working tree with uncommitted changes" in page_text
    assert "`recipe/` ce-seed2." in page_text
    warning = next(ln for ln in captured.err.splitlines() if "warning" in ln)
    case.observed(
        f"refused, exit {RunDirError.exit_code}; with --allow-dirty exit 0; "
        f"{warning.replace(str(tmp_path), '')[:150]}...; index clean: false; page lists it"
    )
    # recording a run again replaces its entry; a stale file of the old record goes
    (out / "ce-seed1" / "job.json").write_text("{}")
    assert main(["record", str(a), "--out", str(out)]) == 0
    assert not (out / "ce-seed1" / "job.json").exists()
    verify_index(tmp_path / "results")


def test_tan_record_refuses_a_damaged_index_before_copying(tmp_path, capsys):
    out = tmp_path / "results" / "recipe"
    out.mkdir(parents=True)
    (tmp_path / "results" / INDEX_NAME).write_text('{"format": 1, "rec')
    run = _fake_run(tmp_path)
    assert main(["record", str(run), "--out", str(out)]) == RecordError.exit_code
    assert "INDEX.json is not valid JSON" in capsys.readouterr().err
    assert not (out / "ce-seed1").exists()


def test_tan_record_arguments(tmp_path, capsys):
    run = _fake_run(tmp_path)
    assert main(["record", str(run)]) == ConfigError.exit_code
    assert main(["record", "--reindex", str(tmp_path), str(run)]) == ConfigError.exit_code
    assert main(["record", "--reindex", str(tmp_path / "nowhere")]) == RunDirError.exit_code
    err = capsys.readouterr().err
    assert "needs RUN_DIR... and --out" in err and "takes no RUN_DIR" in err and "does not exist" in err


def test_save_record_indexes_only_when_asked(tmp_path):
    run = _fake_run(tmp_path)
    save_record(run, tmp_path / "plain", allow_dirty=True)  # a test run: trained in this working tree
    assert not (tmp_path / INDEX_NAME).exists()
    with pytest.raises(RunDirError, match="not under the folder of its index"):
        add_to_index(tmp_path / "elsewhere" / INDEX_NAME, tmp_path / "plain" / "ce-seed1")


def test_a_record_on_data_its_scale_fixes_otherwise_is_a_variant(tmp_path):
    """A calibrated run on annotator noise (the scale fixes random flips) reads as a variant
    of the preset, named by the data setting; at 0 % noise, where every noise model draws the
    same data, it does not; a method-config departure and a data departure are both named.
    These records predate the preset's weight average, which they name too (``ema_decay=0.0``)."""
    cal = RESULTS / "calibration"
    at30 = run_record(cal / "ce-seed0-epochs=16-num_threads=1-synth_label_noise=0.3")
    at0 = run_record(cal / "ce-seed0-epochs=16-num_threads=1-synth_label_noise=0.0")
    both = run_record(cal / "ce-seed0-num_threads=1-synth_label_noise=0.3")
    assert (at30["variant"], at30["synth_noise_model"]) == ('ema_decay=0.0, noise_model="annotators"', "annotators")
    assert (at0["variant"], at0["synth_noise_model"]) == ("ema_decay=0.0", "annotators")
    assert both["variant"] == 'ema_decay=0.0, epochs=12, noise_model="annotators"'
    # a quick-scale record: its scale fixes no noise model
    assert run_record(RESULTS / "recipe" / "ce-seed0")["variant"] == ""


def test_a_verdict_record_is_never_a_variant(tmp_path):
    """tan verdict's records (results/verdict/<dataset>-<preset>/) follow its one protocol,
    its preset with its --set: the same record is a variant elsewhere and none there, so the
    page, 05_report and tan verdict compare the same runs."""
    from tanlib.report.records import in_verdict_folder

    record = "calibration/ce-seed0-num_threads=1-synth_label_noise=0.3"
    elsewhere = _fake_run(tmp_path, record, name="ce-seed0")
    verdict = tmp_path / "results" / "verdict" / "synthfer-calibrated" / "ce-seed0"
    shutil.copytree(elsewhere, verdict)
    assert run_record(elsewhere)["variant"] == 'ema_decay=0.0, epochs=12, noise_model="annotators"'
    assert run_record(verdict)["variant"] == ""
    assert in_verdict_folder(verdict) and not in_verdict_folder(elsewhere)
    assert not in_verdict_folder(tmp_path / "results" / "verdict" / "ce-seed0")  # not in a verdict's own folder
    # a linked results folder: the path as given counts, not where the link points
    (tmp_path / "linked").symlink_to(tmp_path / "results")
    assert in_verdict_folder(tmp_path / "linked" / "verdict" / "synthfer-calibrated" / "ce-seed0")


def test_a_record_of_another_config_is_not_overwritten_unless_asked(tmp_path):
    run = _fake_run(tmp_path)
    out = tmp_path / "records"
    save_record(run, out, allow_dirty=True)
    save_record(run, out, allow_dirty=True)  # the same run again: refreshed
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "lr": 0.01}))
    with pytest.raises(RunDirError, match=r"ce-seed1 already holds the record of a run with another config \(lr: "):
        save_record(run, out, allow_dirty=True)
    assert json.loads((out / "ce-seed1" / "config.json").read_text())["lr"] == config["lr"]  # untouched
    save_record(run, out, allow_dirty=True, replace=True)
    assert json.loads((out / "ce-seed1" / "config.json").read_text())["lr"] == 0.01


def test_a_run_is_recorded_once_and_another_config_is_refused(tmp_path):
    """save_record(once=True), what tan sweep --record and tan verdict call as each run ends: a
    run already recorded with the same config is left as it is (no rewrite), a new one is
    recorded and indexed, a same-name record of another config is refused, and so is a run
    from a dirty tree."""
    run = _fake_run(tmp_path, git_dirty=False)
    out = tmp_path / "results" / "calibration"
    index = default_index(out)
    assert index == tmp_path / "results" / INDEX_NAME
    target = save_record(run, out, index=index, once=True)
    assert target == out / "ce-seed1" and sorted(read_index(index.parent)["records"]) == ["calibration/ce-seed1"]
    stamp = (target / "metrics.json").stat().st_mtime_ns
    assert save_record(run, out, index=index, once=True) is None  # already there: untouched
    assert (target / "metrics.json").stat().st_mtime_ns == stamp
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "lr": 0.01}))
    with pytest.raises(RunDirError, match="another config"):
        save_record(run, out, index=index, once=True)
    dirty = _fake_run(tmp_path, name="ce-seed2", git_dirty=True)
    with pytest.raises(RunDirError, match="uncommitted changes"):
        save_record(dirty, out, index=index, once=True)


def test_a_record_is_recorded_again_into_a_verdict_whole_and_into_the_results_index(tmp_path):
    """tan record --out results/verdict/<dataset>-<preset> indexes into results/INDEX.json, where
    tan verdict and the page look (not a second index in results/verdict/), and a record given
    as the run (a calibration run that is also a verdict run) is copied with its test
    predictions: the two records hold the same files."""
    run = _fake_run(tmp_path, git_dirty=False)
    results = tmp_path / "results"
    first = save_record(run, results / "calibration", index=default_index(results / "calibration"))
    verdict = results / "verdict" / "synthfer-calibrated"
    assert default_index(verdict) == results / INDEX_NAME
    again = save_record(first, verdict, index=default_index(verdict), once=True)
    assert (again / "test_predictions.csv").is_file() and not (results / "verdict" / INDEX_NAME).exists()
    entries = read_index(results)["records"]
    assert entries["verdict/synthfer-calibrated/ce-seed1"]["files"] == entries["calibration/ce-seed1"]["files"]
    assert "test_predictions.csv" in entries["calibration/ce-seed1"]["files"]


def test_a_record_made_from_another_checkout_is_the_same_run(tmp_path):
    """The dataset root counts as the same when both name a folder of that name holding the same
    data (data.json): a worktree's run is the run a main tree's record holds; another folder name,
    or other data settings, is another run."""
    run = _fake_run(tmp_path)
    config = json.loads((run / "config.json").read_text())
    record = tmp_path / "record"
    shutil.copytree(run, record)
    settings = {"n_train": 70, "label_noise": 0.1}
    for place in (run, record):
        (place / DATA_FILE).write_text(json.dumps(settings))
    (run / "config.json").write_text(json.dumps({**config, "root": "/work/a/data/synthfer-x"}))
    (record / "config.json").write_text(json.dumps({**config, "root": "/work/b/data/synthfer-x"}))
    assert record_differences(record, run) == {}
    (record / DATA_FILE).write_text(json.dumps({**settings, "label_noise": 0.3}))
    assert set(record_differences(record, run)) == {"root"}
    (record / DATA_FILE).write_text(json.dumps(settings))
    (record / "config.json").write_text(json.dumps({**config, "root": "/work/b/data/synthfer-y"}))
    assert set(record_differences(record, run)) == {"root"}


def test_recordings_into_one_index_take_turns(tmp_path):
    """A second recording into the same index waits while one is under way (two shards of one
    sweep recording side by side would otherwise lose an index entry)."""
    import threading

    run = _fake_run(tmp_path, git_dirty=False)
    out = tmp_path / "results" / "calibration"
    index = default_index(out)
    done = threading.Event()
    with _recording(index):
        worker = threading.Thread(target=lambda: (save_record(run, out, index=index), done.set()))
        worker.start()
        assert not done.wait(1.0)  # blocked on the lock
    worker.join(30)
    assert done.is_set() and (out / "ce-seed1" / "metrics.json").is_file()


def test_a_record_is_whole_or_absent_and_an_unindexed_one_is_recorded_again(tmp_path, monkeypatch):
    """A copy stopped halfway leaves no record (it is written beside and renamed into place), and
    a record whose indexing failed is not taken for recorded (holds_record): the next
    save_record(once=True) indexes it."""
    from tanlib.report import records

    run = _fake_run(tmp_path, git_dirty=False)
    out = tmp_path / "results" / "calibration"
    index = default_index(out)

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(records.pd, "read_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        save_record(run, out, index=index, once=True)
    monkeypatch.undo()
    assert not (out / "ce-seed1").exists() and not any(out.iterdir())  # nothing half-written
    monkeypatch.setattr(records, "add_to_index", broken)
    with pytest.raises(OSError, match="disk full"):
        save_record(run, out, index=index, once=True)
    monkeypatch.undo()
    assert (out / "ce-seed1" / "metrics.json").is_file() and not holds_record(out / "ce-seed1", index)
    assert save_record(run, out, index=index, once=True) == out / "ce-seed1"  # indexed now
    assert holds_record(out / "ce-seed1", index) and save_record(run, out, index=index, once=True) is None


def test_a_settled_file_is_read_once_and_any_later_write_is_seen(tmp_path, monkeypatch):
    """settled_key: a file whose status is older than SETTLED_S is hashed and parsed once per
    process; a write of the same size with its mtime set back still changes its ctime and is
    read again; a file changed within SETTLED_S is read every time."""
    import os

    from tanlib.report import records

    path = tmp_path / "test_predictions.csv"
    path.write_text("image,label,pred\na.jpg,3,6\nb.jpg,4,4\n")
    cols, ints = ("image", "label", "pred"), ("label", "pred")
    monkeypatch.setattr(records, "SETTLED_S", 0.0)  # every file is settled at once
    records._read_settled_csv.cache_clear()
    records._settled_sha256.cache_clear()
    first = records._sha256(path)
    assert records.read_record_csv(path, cols, integer=ints)["pred"].tolist() == [6, 4]
    assert records.read_record_csv(path, cols, integer=ints)["pred"].tolist() == [6, 4]
    assert records._sha256(path) == first
    assert records._read_settled_csv.cache_info().hits == 1 and records._settled_sha256.cache_info().hits == 1
    stat = path.stat()
    while path.stat().st_ctime_ns == stat.st_ctime_ns:  # a kernel with a coarse clock: the next tick
        path.write_text("image,label,pred\na.jpg,3,5\nb.jpg,4,4\n")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the old mtime: only the ctime tells
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_size == stat.st_size
    assert records.read_record_csv(path, cols, integer=ints)["pred"].tolist() == [5, 4]
    assert records._sha256(path) != first
    monkeypatch.setattr(records, "SETTLED_S", 60.0)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**12))  # an old mtime, a fresh ctime
    assert records.settled_key(path) is None  # settled is measured on the ctime
    monkeypatch.setattr(records, "SETTLED_S", 3600.0)  # nothing is settled: never cached
    assert records.settled_key(path) is None and records.settled_key(tmp_path / "missing.csv") is None
    path.write_text("image,label,pred\na.jpg,3,4\nb.jpg,4,4\n")
    assert records.read_record_csv(path, cols, integer=ints)["pred"].tolist() == [4, 4]


def test_a_settled_record_is_checked_again_once_damaged(tree, monkeypatch):
    """check_record and verify_index with every file settled: a clean record's check is
    reused, and a damage after it (a truncated metrics.json, an edited prediction) is found."""
    from tanlib.analysis.verdict import learning_check
    from tanlib.report import records

    monkeypatch.setattr(records, "SETTLED_S", 0.0)
    record = tree / RECORDS[0]
    assert check_record(record) == [] and check_record(record) == []
    verify_index(tree)
    before = learning_check(record)
    assert learning_check(record) == before
    (record / "metrics.json").write_text((record / "metrics.json").read_text()[:200])
    assert "metrics.json" in {p.name for p, _ in check_record(record)}
    with pytest.raises(RecordError, match="metrics.json"):
        verify_index(tree)
    table = record / "test_predictions.csv"
    lines = table.read_text().splitlines(keepends=True)
    lines[1:] = [",".join(row.strip().split(",")[:2] + [row.strip().split(",")[1]]) + "\n" for row in lines[1:]]
    table.write_text("".join(lines))  # every prediction right
    assert learning_check(record)[0] == 1.0 != before[0]
