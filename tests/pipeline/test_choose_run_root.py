"""Which run folder notebooks 03 and 04 read: ``tanlib.paths.choose_run_root``. "newest"
is the folder under reports/runs whose finished runs ended last; a folder without the
runs asked for is refused with one sentence saying what to run, and nothing is created."""

from __future__ import annotations

import json
import os

import pytest

from tanlib.errors import RunDirError
from tanlib.paths import NEWEST, choose_run_root, finished_methods

DONE = {"last_epoch": 2, "results": {"last": {"accuracy": 0.5}, "best_val": {"accuracy": 0.6}}}


def _run(folder, name, metrics=DONE, mtime=None):
    run = folder / "runs" / name
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(metrics))
    if mtime is not None:
        os.utime(run / "metrics.json", (mtime, mtime))


def _tree(tmp_path):
    runs = tmp_path / "reports" / "runs"
    _run(runs / "20240101-quick", "ce-seed0", mtime=1_000)
    _run(runs / "20240101-quick", "tan-seed0", mtime=1_100)
    _run(runs / "20240102-smoke", "tan-seed0", mtime=2_000)  # newest tan, no ce
    _run(runs / "20240103-smoke", "tan-seed0", metrics={"results": {}}, mtime=3_000)  # killed: not finished
    _run(runs / "interactive", "scn-seed0", mtime=2_500)
    return runs


def test_newest_finished_run_is_chosen(tmp_path):
    runs = _tree(tmp_path)
    folder, methods, line = choose_run_root(NEWEST, ["tan"], 0, runs_dir=runs)
    assert folder == runs / "20240102-smoke" and methods == ["tan"]
    assert line.startswith(f"Reading {folder}, the newest finished run under {runs}")
    folder, methods, _ = choose_run_root(NEWEST, ["ce", "tan"], 0, runs_dir=runs)
    assert folder == runs / "20240101-quick" and methods == ["ce", "tan"]
    folder, methods, _ = choose_run_root(NEWEST, [], 0, runs_dir=runs)  # every finished method
    assert folder == runs / "interactive" and methods == ["scn"]
    assert finished_methods(runs / "20240101-quick", 0) == ["ce", "tan"]  # the kit's method order
    folder, methods, line = choose_run_root(runs / "20240101-quick", [], 0)
    assert methods == ["ce", "tan"] and "(run_root)" in line


def test_no_run_says_what_to_run_and_creates_nothing(tmp_path):
    runs = _tree(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(RunDirError, match=r"No finished run \(triplet-seed0\) under .*: run `make reproduce`"):
        choose_run_root(NEWEST, ["triplet"], 0, runs_dir=runs)
    with pytest.raises(RunDirError, match="No finished run"):
        choose_run_root(NEWEST, [], 0, runs_dir=tmp_path / "nothing")
    with pytest.raises(RunDirError, match=r"holds no finished run tan-seed1 .* set run_root = 'newest'"):
        choose_run_root(runs / "20240101-quick", "tan", 1)
    with pytest.raises(RunDirError, match="holds no finished run tan-seed0"):
        choose_run_root(runs / "20240103-smoke", ["tan"], 0)
    assert sorted(p for p in tmp_path.rglob("*")) == before
