"""`tan sweep --executor slurm` through submitit, for real on this machine (`--slurm
cluster=local`: submitit's local executor, the same code path as on SLURM), its options
and their errors, and job.json written before training."""

from __future__ import annotations

import importlib
import json
import os
import signal
import threading
import time

import pandas as pd
import pytest

from tanlib.cli import main
from tanlib.errors import ConfigError, PipelineError
from tanlib.executors import executor_parameters, parse_slurm_items
from tanlib.pipeline import grid_jobs, load_grid, run_is_complete, run_sweep

# the smoke preset cut further (as tests/reliability): 3 epochs of 2 steps at 32 px, one thread
TINY = "parameters: {epochs: [3], image_size: [32], max_train_samples: [64], num_threads: [1]}\n"


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from tanlib.data import generate_synthfer

    return generate_synthfer(
        tmp_path_factory.mktemp("exec-synth") / "synthfer", n_train=140, n_test=35, size=48, seed=3, workers=1
    )


def _wait_for(path, sweep: threading.Thread, log: list, seconds=300):
    """Wait until ``path`` exists; fail at once, with the sweep's log, if the sweep ended first."""
    end = time.monotonic() + seconds
    while not path.exists():
        assert sweep.is_alive(), f"the sweep ended before {path} appeared:\n" + "\n".join(map(str, log))
        assert time.monotonic() < end, f"{path} did not appear within {seconds} s"
        time.sleep(0.05)


def _holder_pid(run_dir) -> int:
    """The pid of the process writing ``run_dir`` (the submitit job), from its run lock."""
    return int(json.loads((run_dir / ".tan.lock.json").read_text())["pid"])


@pytest.mark.system
@pytest.mark.slow(65)
def test_slurm_sweep_preempted_and_killed_jobs_resume_and_the_report_gathers_all(synth_root, tmp_path, capsys):
    """2 smoke runs (ce, tan) through submitit's local executor. The ce job is preempted
    (SIGUSR2, the signal SLURM sends): submitit calls its checkpoint and requeues it, and it
    resumes from last.pt. The tan job is killed (SIGKILL): the sweep names it and its stderr
    file and makes no report; the same command again skips the finished run, resubmits only
    the killed job, which resumes from last.pt, and the report gathers both runs. The sweep's
    ``on_finished`` hears of the finished run only."""
    pytest.importorskip("submitit")
    grid = tmp_path / "g.yaml"
    grid.write_text(
        f"name: exec\npreset: smoke\nroot: {synth_root}\nmethods: [ce, tan]\nseeds: [0]\n{TINY}"
        "slurm: {time: 30, cpus: 1}\n"
    )
    jobs = grid_jobs(load_grid(grid))
    assert len(jobs) == 2
    out = tmp_path / "sweeps"
    runs = out / "exec" / "runs"
    preempted, killed = runs / jobs[0].name, runs / jobs[1].name
    first: list = []

    def sweep():
        try:
            run_sweep(
                grid,
                out=str(out),
                executor="slurm",
                slurm={"cluster": "local"},
                log=first.append,
                on_finished=lambda run: first.append(("finished", run.name)),  # as each job ends (tan sweep --record)
            )
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            first.append(exc)

    thread = threading.Thread(target=sweep)
    thread.start()
    _wait_for(preempted / "last.pt", thread, first)
    os.kill(_holder_pid(preempted), signal.SIGUSR2)
    _wait_for(killed / "last.pt", thread, first)
    os.kill(_holder_pid(killed), signal.SIGKILL)
    thread.join(600)
    assert not thread.is_alive()

    error = first[-1]
    assert isinstance(error, PipelineError), first
    assert f"{killed.name}: job " in str(error) and "ended without a result" in str(error)
    stderr = str(error).split(f"{killed.name}: job ", 1)[1].split("stderr: ", 1)[1].splitlines()[0]
    assert stderr.endswith("_log.err") and os.path.isfile(stderr)
    assert [run_is_complete(runs / j.name) for j in jobs] == [True, False]
    assert [e for e in first if isinstance(e, tuple)] == [("finished", preempted.name)]
    logs = [p.read_text() for p in (out / "exec" / "submitit").glob("*_log.out")]
    assert sum(f"{preempted.name}: resuming from last.pt" in text for text in logs) == 1  # requeued by submitit
    assert not (out / "exec" / "report").exists()

    capsys.readouterr()
    again = ["sweep", "--grid", str(grid), "--out", str(out), "--executor", "slurm", "--slurm", "cluster=local"]
    assert main(again) == 0  # the same command: only the killed run is submitted
    second = capsys.readouterr().out.splitlines()
    assert sum(": finished, skipped" in line for line in second) == 1
    assert any("submitted 1 job(s) (local)" in line for line in second)
    logs = [p.read_text() for p in (out / "exec" / "submitit").glob("*_log.out")]
    assert sum(f"{killed.name}: resuming from last.pt" in text for text in logs) == 1
    for job in jobs:
        run = runs / job.name
        assert run_is_complete(run)
        assert list(pd.read_csv(run / "history.csv")["epoch"]) == [1, 2, 3]  # resumed, not restarted
        assert json.loads((run / "job.json").read_text())["name"] == job.name
    report = (out / "exec" / "report" / "REPORT.md").read_text()
    assert all(job.name in report for job in jobs)


def test_job_json_is_written_before_training(tmp_path, monkeypatch):
    """A kill between training and the end of the job must not leave a run without its
    grid settings: job.json is in the run folder when training starts, a fresh run
    starts beside it, and clearing a killed first epoch (--overwrite) keeps it."""
    from tanlib.data.synthfer import SETTINGS_FILE, synthfer_settings
    from tanlib.engine.rundir import prepare_run_dir as prepare
    from tanlib.runlock import holds_run_locks

    prepare_run_dir = holds_run_locks(prepare)  # the lock is released when it returns, as in train()

    root = tmp_path / "data"
    root.mkdir()
    (root / "synthfer_meta.csv").write_text("stand-in: the dataset is not read by the fake training\n")
    (root / SETTINGS_FILE).write_text(json.dumps(synthfer_settings()))
    grid = tmp_path / "g.yaml"
    grid.write_text(f"name: mini\nmethods: [ce]\nseeds: [0]\npreset: smoke\nroot: {root}\n")
    seen = []

    def fake_train(config, run_dir, resume=False, overwrite=False, **kw):
        seen.append((run_dir / "job.json").is_file())
        prepare_run_dir(run_dir, resume, overwrite)  # the engine's check of the folder: job.json is no obstacle
        (run_dir / "config.json").write_text("{}")
        assert (run_dir / "job.json").is_file()
        raise KeyboardInterrupt  # killed before training ends

    monkeypatch.setattr(importlib.import_module("tanlib.engine.train"), "train", fake_train)  # what ensure_run calls
    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid, out=str(tmp_path / "sweeps"), report=False, log=lambda *_: None)
    assert seen == [True]
    run_dir = tmp_path / "sweeps" / "mini" / "runs" / "ce-seed0"
    assert json.loads((run_dir / "job.json").read_text())["grid"] == "mini"
    prepare_run_dir(run_dir, resume=False, overwrite=True)  # a restart of the killed first epoch
    assert sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(".")) == ["job.json"]


def test_slurm_options_and_their_errors(tmp_path, capsys):
    options = parse_slurm_items(["partition=gpu", "time=60", "gpus=1", "cpus=8", "mem=32", "parallel=4"])
    assert options == {"partition": "gpu", "time": 60, "gpus": 1, "cpus": 8, "mem": 32.0, "parallel": 4}
    assert executor_parameters(options, "tan-g") == {
        "name": "tan-g",
        "timeout_min": 60,
        "slurm_partition": "gpu",
        "gpus_per_node": 1,
        "cpus_per_task": 8,
        "mem_gb": 32.0,
        "slurm_array_parallelism": 4,
    }
    for items, message in (
        (["partion=gpu"], "--slurm partion: unknown SLURM option; allowed: cluster, partition"),
        (["time=soon"], "--slurm time: got 'soon', expected minutes per job"),
        (["gpus=-1"], "--slurm gpus: got '-1', expected GPUs per job, an integer >= 0"),
        (["mem=lots"], "--slurm mem: got 'lots', expected memory per job in GB"),
        (["cluster=moon"], "--slurm cluster: got 'moon', expected slurm .* or local"),
        (["gpus"], r"--slurm 'gpus': expected KEY=VALUE"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_slurm_items(items)

    grid = tmp_path / "g.yaml"
    base = "methods: [ce]\npreset: smoke\n"
    grid.write_text(base + "slurm: {partition: gpu, time: 90, mem: 16}\n")
    assert load_grid(grid)["slurm"] == {"partition": "gpu", "time": 90, "mem": 16.0}
    for section, message in (
        ("{time: -5}", r"slurm\.time: got -5, expected minutes per job"),
        ("{nodes: 2}", r"slurm\.nodes: unknown SLURM option"),
        ("[gpu]", "'slurm' must map SLURM options to values"),
    ):
        grid.write_text(base + f"slurm: {section}\n")
        with pytest.raises(ConfigError, match=message) as info:
            load_grid(grid)
        assert str(grid) in str(info.value)

    grid.write_text(base)
    with pytest.raises(ConfigError, match="--slurm options .*need --executor slurm"):
        run_sweep(grid, out=str(tmp_path / "s"), slurm={"partition": "gpu"})
    with pytest.raises(ConfigError, match="--executor ray is not provided: Ray is a .*docs/scale.md"):
        run_sweep(grid, out=str(tmp_path / "s"), executor="ray")
    # the command line: one message and the ConfigError exit code, before anything runs
    assert (
        main(
            [
                "sweep",
                "--grid",
                str(grid),
                "--out",
                str(tmp_path / "s"),
                "--executor",
                "slurm",
                "--slurm",
                "partion=gpu",
            ]
        )
        == 2
    )
    assert "--slurm partion: unknown SLURM option" in capsys.readouterr().err
    assert main(["sweep", "--grid", str(grid), "--out", str(tmp_path / "s"), "--executor", "ray"]) == 2
    assert "Ray is a" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_slurm_executor_without_slurm_says_so(tmp_path, monkeypatch):
    """Where sbatch and srun are missing, ``--executor slurm`` stops before submitting,
    and says how to run the same jobs on this machine."""
    pytest.importorskip("submitit")
    grid = tmp_path / "g.yaml"
    grid.write_text("methods: [ce]\npreset: smoke\n")
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm"))
    with pytest.raises(ConfigError, match=r"there is no SLURM here .*--slurm cluster=local"):
        run_sweep(grid, out=str(tmp_path / "s"), executor="slurm", slurm={"partition": "gpu"})
    assert not (tmp_path / "s").exists()
