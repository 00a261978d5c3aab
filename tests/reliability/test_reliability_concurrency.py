"""Concurrent writers: one writer per run directory (``tanlib.runlock``). Two trainings on
one folder, a killed holder, a sweep job started twice, reports and evaluations during a
write, a second ``tan run --resume``. Each case is one row of docs/reliability.md.

No case depends on timing: the writer under test is paused at a known point (the
driver's ``hold`` spec, or ``lockholder.py``) until the test releases it, and every wait
is for a file or a process, with a generous upper bound that only turns a hang into a
failure."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from driver import run as run_driver
from driver import start
from reliafix import quiet

from tanlib.cli import main
from tanlib.errors import RunDirBusyError, RunDirError
from tanlib.runlock import HOLDER_FILE, LOCK_FILE, read_lock_holder, run_lock, run_lock_holder

HERE = Path(__file__).resolve().parent
HOLDER = HERE / "lockholder.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WAIT_S = 600  # an upper bound that turns a hang into a failure, never a timing assertion


def spawn(args: list, log: Path) -> subprocess.Popen:
    with open(log, "w") as err:
        return subprocess.Popen([sys.executable, *map(str, args)], stdout=subprocess.DEVNULL, stderr=err, env=ENV)


def wait_until(condition, procs=(), what="the condition"):
    deadline = time.monotonic() + WAIT_S
    while not condition():
        dead = [p for p in procs if p.poll() is not None]
        if dead and not condition():
            pytest.fail(f"a helper process ended (rc {dead[0].returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"waited {WAIT_S} s for {what}")
        time.sleep(0.05)


class Holder:
    """``lockholder.py``: another process holding a run directory's lock until released."""

    def __init__(self, run_dir: Path, sync: Path):
        sync.mkdir(parents=True, exist_ok=True)
        self.sync = sync
        self.proc = spawn([HOLDER, run_dir, sync], sync / "stderr.txt")
        wait_until(lambda: (sync / "ready").exists(), [self.proc], "the lock holder to take the lock")
        self.pid = self.proc.pid

    def release(self) -> int:
        (self.sync / "go").write_text("")
        return self.proc.wait(timeout=WAIT_S)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=WAIT_S)


def busy_text(run_dir: Path, pid: int) -> list[str]:
    return [
        f"run directory {run_dir} is being written by another process",
        f"pid {pid} on host {socket.gethostname()}",
        "started 20",
    ]


def cli(args, capsys):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


# ---------------------------------------------------------------------- two trainings, one folder
def test_two_writers_started_together_one_trains_one_is_refused(case, small, tmp_path, capsys):
    case(
        "W1",
        "concurrency: two writers",
        "`tan train --method ce --out same` and `tan train --method tan --out same` started together (each "
        "would pause at training step 1 of epoch 1); while the winner trains: `tan train --resume`, "
        "`tan train --overwrite` and `tan evaluate` on the same folder",
        "one trains; the other exits 5 (RunDirBusyError) without writing, naming the folder and the "
        "winner's host, pid and start time; the three later attempts are refused the same way; the winner "
        "finishes (exit 0) and the folder holds its run alone; no holder file left",
    )
    out = tmp_path / "same"
    procs, syncs, cfgs, logs = {}, {}, {}, {}
    for method in ("ce", "tan"):
        cfgs[method] = tmp_path / f"{method}.json"
        small(method, epochs=1).save(cfgs[method])
        syncs[method] = tmp_path / f"sync-{method}"
        syncs[method].mkdir()
        logs[method] = tmp_path / f"{method}.stderr"
    for method in ("ce", "tan"):  # started back to back: whichever takes the lock first wins
        args = ["train", "--config", cfgs[method], "--out", out]
        procs[method] = start(f"hold:1:1:{syncs[method]}", args, logs[method])
    ready = lambda: [m for m in procs if (syncs[m] / "ready").exists()]  # noqa: E731
    ended = lambda: [m for m in procs if procs[m].poll() is not None]  # noqa: E731
    deadline = time.monotonic() + WAIT_S
    while not (ready() and ended()):
        if len(ended()) == 2 or time.monotonic() > deadline:
            pytest.fail(
                "expected one writer paused in its run and one refused; got "
                + "; ".join(f"{m}: rc {procs[m].poll()} {logs[m].read_text()[-600:]}" for m in procs)
            )
        time.sleep(0.05)
    (winner,), (loser,) = ready(), ended()
    assert winner != loser
    loser_err = logs[loser].read_text()
    assert procs[loser].returncode == RunDirBusyError.exit_code == 5, loser_err
    assert "Traceback" not in loser_err
    for text in busy_text(out, procs[winner].pid):
        assert text in loser_err, loser_err
    holder = read_lock_holder(out)
    assert holder["pid"] == procs[winner].pid and holder["host"] == socket.gethostname()

    refusals = {}
    for extra in (
        ["train", "--config", cfgs[loser], "--out", out, "--resume"],
        ["train", "--config", cfgs[loser], "--out", out, "--overwrite"],
        ["evaluate", out],
    ):
        rc, _, err = cli(extra, capsys)
        assert rc == RunDirBusyError.exit_code, err
        for text in busy_text(out, procs[winner].pid):
            assert text in err, err
        refusals[" ".join(map(str, extra[:1] + extra[-1:]))] = rc

    (syncs[winner] / "go").write_text("")
    assert procs[winner].wait(timeout=WAIT_S) == 0, logs[winner].read_text()[-2000:]
    assert json.loads((out / "config.json").read_text())["method"] == winner
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == winner and metrics["last_epoch"] == 1
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1]
    assert not (out / HOLDER_FILE).exists() and run_lock_holder(out) is None
    case.observed(
        f"{winner} trained (exit 0); {loser} exit {procs[loser].returncode}: "
        f"{loser_err.strip().splitlines()[-1][:150]}; --resume/--overwrite/evaluate exit 5, 5, 5"
    )


def test_killed_writer_never_blocks_its_resume(case, small, tmp_path):
    case(
        "W2",
        "concurrency: stale lock",
        "`tan train` (ce, 2 epochs) killed with SIGKILL at step 1 of epoch 2 while holding the run lock; then "
        "`tan train --resume`, nothing removed by hand",
        "the lock file and the dead holder's record stay, but the lock is free (the OS released it with the "
        "process); the resume takes it and finishes (exit 0, epochs 1 and 2 once each); no holder file left",
    )
    cfg = tmp_path / "config.json"
    small("ce", epochs=2).save(cfg)
    out = tmp_path / "run"
    res = run_driver("step:2:1", ["train", "--config", cfg, "--out", out], tmp_path / "driver.stderr")
    assert res.returncode == -signal.SIGKILL, res.stderr[-2000:]
    stale = read_lock_holder(out)
    assert (out / LOCK_FILE).is_file() and stale.get("pid") and stale["pid"] != os.getpid()
    assert run_lock_holder(out) is None  # nobody holds it: the kill released it
    assert main(["train", "--config", str(cfg), "--out", str(out), "--resume"]) == 0
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1, 2]
    assert not (out / HOLDER_FILE).exists() and run_lock_holder(out) is None
    case.observed(
        f"killed by signal 9 holding the lock (stale record: pid {stale['pid']}); lock free after "
        "the kill; resume rc 0, epochs [1, 2]"
    )


# ---------------------------------------------------------------------- sweeps, reports, evaluate, tan run
def test_sweep_job_started_twice_runs_once(case, synth_root, tmp_path, capsys):
    from tanlib.pipeline import grid_jobs, load_grid, run_is_complete

    case(
        "W3",
        "concurrency: sweep",
        "`tan sweep` of 2 jobs while another process (an overlapping shard, a requeued copy) holds job 2's "
        "run lock; then the same `tan sweep` again once that process has ended",
        "job 1 trains; job 2 is skipped with a line naming the holder and left untouched; exit 0 with job 2 "
        "pending; the rerun trains job 2 only (job 1 skipped, files unchanged); the sweep's own lock and "
        "train()'s lock on the same job nest without deadlock",
    )
    grid = tmp_path / "mini.yaml"
    grid.write_text(
        f"name: mini\nmethods: [ce]\nseeds: [0, 1]\npreset: smoke\nroot: {synth_root}\n"
        "parameters: {epochs: [1], image_size: [32], max_train_samples: [64], num_threads: [1], "
        "deterministic: [true]}\n"
    )
    out = tmp_path / "sweeps"
    first, second = (out / "mini" / "runs" / j.name for j in grid_jobs(load_grid(grid)))
    other = Holder(second, tmp_path / "sync")
    args = ["sweep", "--grid", grid, "--out", out, "--no-report"]
    try:
        rc, log, err = cli(args, capsys)
        assert rc == 0, err
        assert run_is_complete(first) and not run_is_complete(second)
        assert sorted(p.name for p in second.iterdir()) == sorted([LOCK_FILE, HOLDER_FILE])  # untouched
        skipped = [line for line in log.splitlines() if "skipped, another process is writing it" in line]
        assert len(skipped) == 1 and second.name in skipped[0] and f"pid {other.pid} on host" in skipped[0]
        assert "1 job(s) not finished yet" in log
    finally:
        assert other.release() == 0
    before = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    rc, log, err = cli(args, capsys)
    assert rc == 0, err
    assert run_is_complete(second) and json.loads((second / "metrics.json").read_text())["seed"] == 1
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == before
    case.observed(
        f"first sweep rc 0: job 1 trained, job 2 '...: skipped, another process is writing it "
        f"({skipped[0].split('writing it (', 1)[1][:60]}...)'; rerun rc 0, job 2 trained, job 1 untouched"
    )


def test_reports_and_evaluate_skip_a_run_being_written(case, finished_run, tmp_path, capsys):
    from tanlib.report import find_runs

    case(
        "W4",
        "concurrency: readers",
        "a finished run whose lock another process holds (a `tan evaluate` or a resumed training still "
        "writing): the report's run search, then `tan evaluate` of it; again once that process has ended",
        "the report leaves the run out while it is written and lists it afterwards; `tan evaluate` exits 5 "
        "naming the holder and leaves metrics.json byte for byte unchanged, then succeeds (exit 0)",
    )
    src, _ = finished_run
    runs = tmp_path / "runs"
    run = runs / "r1"
    shutil.copytree(src, run)
    before = (run / "metrics.json").read_bytes()
    assert find_runs(runs) == [run.resolve()]
    other = Holder(run, tmp_path / "sync")
    try:
        assert find_runs(runs) == []
        rc, _, err = cli(["evaluate", run], capsys)
        assert rc == RunDirError.exit_code
        for text in busy_text(run, other.pid):
            assert text in err, err
        assert (run / "metrics.json").read_bytes() == before
    finally:
        assert other.release() == 0
    assert find_runs(runs) == [run.resolve()]
    from tanlib.engine import evaluate

    block = evaluate(run)  # the same call `tan evaluate` makes, now that the lock is free
    assert block["checkpoint"] == "best" and run_lock_holder(run) is None
    case.observed(
        f"report skipped the run while held, listed it after; evaluate exit {rc}: "
        f"{err.strip().splitlines()[0][:140]}; after release it evaluates"
    )


def test_second_tan_run_resume_is_refused(case, synth_root, tmp_path, capsys):
    case(
        "W5",
        "concurrency: pipeline",
        "`tan run --run-id k --resume` while another `tan run` of the same run folder holds its lock",
        "RunDirBusyError, exit 5, naming the folder and the holder before any notebook runs; pipeline.json untouched",
    )
    runs = tmp_path / "runs"
    (runs / "k").mkdir(parents=True)
    record = {
        "run_id": "k",
        "preset": "smoke",
        "dataset": "synthfer",
        "methods": ["ce"],
        "seed": 0,
        "params": {},
        "notebooks": [],
        "status": "running",
    }
    (runs / "k" / "pipeline.json").write_text(json.dumps(record, indent=2) + "\n")
    before = (runs / "k" / "pipeline.json").read_bytes()
    other = Holder(runs / "k", tmp_path / "sync")
    try:
        rc, _, err = cli(
            [
                "run",
                "--preset",
                "smoke",
                "--root",
                synth_root,
                "--methods",
                "ce",
                "--out",
                runs,
                "--run-id",
                "k",
                "--resume",
            ],
            capsys,
        )
    finally:
        assert other.release() == 0
    assert rc == RunDirBusyError.exit_code, err
    for text in busy_text(runs / "k", other.pid):
        assert text in err, err
    assert (runs / "k" / "pipeline.json").read_bytes() == before and not (runs / "k" / "notebooks").exists()
    case.observed(f"exit {rc}; {err.strip().splitlines()[0][:180]}")


# ---------------------------------------------------------------------- the lock itself, in one process
def test_lock_is_reentrant_in_one_process_and_scoped(tmp_path, small):
    from tanlib.runlock import hold_run_lock, holds_run_locks

    run = tmp_path / "r"
    assert run_lock_holder(run) is None and not run.exists()  # a probe creates nothing
    with run_lock(run, create=True) as outer:
        with run_lock(run) as inner:  # nested: the same holder, no deadlock
            assert inner == outer and read_lock_holder(run)["pid"] == os.getpid()
        assert run_lock_holder(run) == outer  # still held after the inner block
    assert run_lock_holder(run) is None and not (run / HOLDER_FILE).exists() and (run / LOCK_FILE).is_file()

    @holds_run_locks
    def writer(fail: bool):
        hold_run_lock(run)
        assert run_lock_holder(run) is not None
        if fail:
            raise RuntimeError("boom")

    writer(False)
    assert run_lock_holder(run) is None
    with pytest.raises(RuntimeError):
        writer(True)
    assert run_lock_holder(run) is None  # released on the error path too

    from tanlib.engine import train

    out = tmp_path / "nested"
    with run_lock(out, create=True):  # as a sweep does: train() and its evaluate() take it again
        train(small("ce", epochs=1), out, overwrite=True, log=quiet)
        assert run_lock_holder(out) is not None
    assert run_lock_holder(out) is None and json.loads((out / "metrics.json").read_text())["last_epoch"] == 1


def test_overwrite_keeps_the_lock_files_and_refuses_foreign_folders(small, tmp_path):
    from tanlib.engine.rundir import prepare_run_dir

    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="does not look like a run directory"):
        prepare_run_dir(foreign, resume=False, overwrite=True)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]  # refused before a lock file was made
    with pytest.raises(RunDirError, match="already exists and is not empty"):
        prepare_run_dir(foreign, resume=False, overwrite=False)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
