"""Fixtures of the pipeline tests: one smoke-scale pipeline run shared by the session.

The run is also reliability case F5 (``test_killed_tan_run_is_never_taken_for_finished``):
``tan run`` is killed while 02_train runs and then resumed, so the smoke outputs every
other test reads come from a resumed pipeline, and the kill costs one extra 01_data, not
a second pipeline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pipelinefix import EVALUATE, SYNTH, TINY_TRAINING


@dataclass
class SmokeRun:
    root: Path  # the run folder, <out>/smoke
    latest: Path  # the folder of its REPORT.md (tan run --latest)
    seconds: float  # wall time of the resumed `tan run`
    killed: dict = field(default_factory=dict)  # what F5 observed between the kill and the resume


def smoke_args(base: Path) -> list[str]:
    """``tan run`` of the smoke pipeline: SynthFER of ``SYNTH``, training cut to ``TINY_TRAINING``,
    03_evaluate's samples cut to ``EVALUATE``."""
    settings = {**SYNTH, "02_train.overrides": TINY_TRAINING, **{f"03_evaluate.{k}": v for k, v in EVALUATE.items()}}
    params = [f"{k}={json.dumps(v)}" for k, v in settings.items()]
    args = ["run", "--preset", "smoke", "--root", str(base / "synthfer"), "--out", str(base / "runs")]
    args += ["--run-id", "smoke", "--latest", str(base / "latest")]
    for param in params:
        args += ["-p", param]
    return args


def _files(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> SmokeRun:
    """``tan run --preset smoke`` (methods ce and tan) on a small SynthFER in a temporary
    folder, its training cut to 32 px and 128 images, SIGKILLed as soon as 02_train starts;
    then the same command (refused: the folder exists), ``--resume --seed 1`` (refused: the
    settings differ) and ``--resume``, which completes it."""
    from tanlib.cli import main

    base = tmp_path_factory.mktemp("smoke")
    args, run_root = smoke_args(base), base / "runs" / "smoke"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tanlib.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,  # the notebook kernels too are killed below
    )
    target = run_root / "notebooks" / "02_train-ce.ipynb"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not target.exists():
        time.sleep(0.1)
    if proc.poll() is not None:
        pytest.fail(f"tan run ended before it could be killed: rc {proc.returncode} {proc.stderr.read()[-1500:]}")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = {
        "returncode": proc.returncode,
        "status": json.loads((run_root / "pipeline.json").read_text())["status"],
        "report": (run_root / "REPORT.md").exists() or (base / "latest" / "REPORT.md").exists(),
    }
    before = _files(run_root)
    killed["rerun"] = main(args)
    killed["files_kept"] = _files(run_root) == before
    killed["other_seed"] = main([*args, "--resume", "--seed", "1"])
    start = time.perf_counter()
    killed["resume"] = main([*args, "--resume"])
    if killed["resume"] != 0:
        pytest.fail(f"tan run --resume of the killed smoke run exited {killed['resume']}")
    return SmokeRun(run_root, base / "latest", time.perf_counter() - start, killed)
