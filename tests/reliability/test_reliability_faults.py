"""Fault injection: SIGKILL at several points, write failures, a failing notebook cell,
a non-finite loss. Each test is one row of docs/reliability.md (see conftest.py)."""

from __future__ import annotations

import builtins
import errno
import importlib
import io
import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest
import torch
from driver import run as run_driver

from tanlib.cli import main
from tanlib.engine.checkpoint import load_checkpoint
from tanlib.errors import NonFiniteLossError, PipelineError, RunDirError

TIMING_COLUMNS = ["seconds", "images_per_s"]


def model_tensors(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def assert_same_run(ref: Path, out: Path):
    for name in ("last.pt", "best.pt"):
        a, b = model_tensors(ref / name), model_tensors(out / name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}: tensor {k} differs from the uninterrupted run"
    ha, hb = (pd.read_csv(p / "history.csv").drop(columns=TIMING_COLUMNS) for p in (ref, out))
    pd.testing.assert_frame_equal(ha, hb)
    ma, mb = (json.loads((p / "metrics.json").read_text()) for p in (ref, out))
    assert ma["results"]["last"]["accuracy"] == mb["results"]["last"]["accuracy"]


def tmp_leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob(".*.tmp-*"))


# ---------------------------------------------------------------------- SIGKILL during training
@pytest.mark.parametrize(
    "cid, spec, what",
    [
        ("F1", "step:2:2", "SIGKILL mid-epoch (training step 2 of epoch 2)"),
        ("F2", "write:last.pt:2", "SIGKILL halfway through writing last.pt at the end of epoch 2"),
        (
            "F3",
            "write:history.csv:2",
            "SIGKILL halfway through writing history.csv at the end of epoch 2 "
            "(last.pt of epoch 2 already renamed into place)",
        ),
    ],
)
def test_killed_training_resumes_to_the_uninterrupted_result(cid, spec, what, case, small, reference_run, tmp_path):
    case(
        cid,
        "fault: SIGKILL (training)",
        f"`tan train` (tan, 3 epochs, deterministic CPU) with {what}; then `tan train --resume`",
        "newest last.pt intact and loadable; resume exits 0; final last.pt/best.pt weights, history.csv "
        "and test accuracy equal an uninterrupted run; epochs 1, 2, 3 once each; no temporary file left",
    )
    cfg = tmp_path / "config.json"
    small("tan", epochs=3).save(cfg)
    out = tmp_path / "run"
    res = run_driver(spec, ["train", "--config", cfg, "--out", out], tmp_path / "driver.stderr")
    assert res.returncode == -signal.SIGKILL, res.stderr[-2000:]
    done = 2 if spec.startswith("write:history") else 1
    state = load_checkpoint(out / "last.pt")  # intact and loadable after the kill
    assert state["epoch"] == done
    assert not (out / "metrics.json").exists()
    history = pd.read_csv(out / "history.csv")
    assert list(history["epoch"]) == [1], "history.csv must hold only finished epochs"
    left = tmp_leftovers(out)
    assert bool(left) == spec.startswith("write:"), left

    assert main(["train", "--config", str(cfg), "--out", str(out), "--resume"]) == 0
    assert_same_run(reference_run, out)
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1, 2, 3]
    assert tmp_leftovers(out) == []
    case.observed(
        f"killed by signal 9 with last.pt at epoch {state['epoch']}"
        + (f" and partial {left[0]}" if left else "")
        + "; resume rc 0, weights and history identical"
    )


# ---------------------------------------------------------------------- SIGKILL during tan sweep
@pytest.mark.slow(101)
def test_killed_sweep_skips_finished_and_does_not_take_partial_metrics_for_finished(case, synth_root, tmp_path):
    from tanlib.pipeline import grid_jobs, load_grid, run_is_complete

    case(
        "F4",
        "fault: SIGKILL (sweep)",
        "`tan sweep` of 2 jobs killed in job 2 after its test evaluations wrote metrics.json but before the "
        "run's summary; then `tan sweep` again",
        "job 1 counted finished and skipped (files untouched); job 2 not taken for finished, resumed and "
        "completed; rerun exits 0",
    )
    grid = tmp_path / "mini.yaml"
    grid.write_text(
        f"name: mini\nmethods: [ce]\nseeds: [0, 1]\npreset: smoke\nroot: {synth_root}\n"
        "parameters: {epochs: [1], image_size: [32], max_train_samples: [64], num_threads: [1]}\n"
    )
    out = tmp_path / "sweeps"
    args = ["sweep", "--grid", str(grid), "--out", str(out), "--no-report"]
    res = run_driver("finish:2", args, tmp_path / "driver.stderr")
    assert res.returncode == -signal.SIGKILL, res.stderr[-2000:]
    first, second = (out / "mini" / "runs" / j.name for j in grid_jobs(load_grid(grid)))
    partial = json.loads((second / "metrics.json").read_text())
    assert "results" in partial and "last_epoch" not in partial  # the kill left a partial metrics.json
    assert run_is_complete(first)
    assert not run_is_complete(second), "a partial metrics.json was taken for a finished run"
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in first.iterdir()}

    assert main(args) == 0
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in first.iterdir()} == before
    done = json.loads((second / "metrics.json").read_text())
    assert done["last_epoch"] == 1 and done["method"] == "ce" and (second / "job.json").is_file()
    case.observed("killed by signal 9; rerun rc 0; job 1 skipped (mtimes unchanged), job 2 resumed and finished")


# F5 (a killed `tan run`) is tests/pipeline/test_smoke_pipeline.py: it shares the smoke pipeline's run.


# ---------------------------------------------------------------------- a non-finite loss
def test_non_finite_loss_stops_with_step_and_part_and_keeps_last_good(case, small, tmp_path, monkeypatch, capsys):
    import functools

    train_mod = importlib.import_module("tanlib.engine.train")
    case(
        "F6",
        "fault: non-finite loss",
        "NaN logits fed to the objective at step 2 of epoch 2 (`tan train`, tan, 2 epochs); then --resume "
        "without the fault",
        "NonFiniteLossError, exit 6, message names 'step 2 of epoch 2' and part 'ce'; last.pt and best.pt "
        "are epoch 1; no metrics.json; resume completes",
    )

    def nan_logits(epoch, step, out, labels):  # train()'s on_step hook
        return out._replace(logits=out.logits * float("nan")) if (epoch, step) == (2, 2) else None

    monkeypatch.setattr(train_mod, "train", functools.partial(train_mod.train, on_step=nan_logits))
    cfg = tmp_path / "config.json"
    small("tan", epochs=2).save(cfg)
    out = tmp_path / "run"
    rc = main(["train", "--config", str(cfg), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == NonFiniteLossError.exit_code == 6
    assert "non-finite loss at step 2 of epoch 2" in err and "non-finite part(s): ce" in err
    assert "Traceback" not in err
    assert load_checkpoint(out / "last.pt")["epoch"] == 1 and load_checkpoint(out / "best.pt")["epoch"] == 1
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1] and not (out / "metrics.json").exists()
    monkeypatch.undo()
    assert main(["train", "--config", str(cfg), "--out", str(out), "--resume"]) == 0
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1, 2]
    case.observed(f"exit {rc}: {err.strip().splitlines()[0]}")


# ---------------------------------------------------------------------- write failures
def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def full_disk(monkeypatch, folder: Path):
    """Every open-for-writing under ``folder`` fails with ENOSPC (the suite runs as root, so
    chmod cannot make a folder unwritable; a full disk is simulated instead)."""
    folder = Path(folder).resolve()
    real_open = builtins.open

    def guarded(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+"):
            if Path(os.fspath(file)).resolve().is_relative_to(folder):
                _enospc()
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(io, "open", guarded)


def test_write_failure_mid_run_keeps_previous_checkpoint(case, small, tmp_path, monkeypatch, capsys):
    case(
        "F7",
        "fault: write failure",
        "disk full (ENOSPC, simulated by failing os.replace) when last.pt of epoch 2 is written; then --resume",
        "RunDirError, exit 5, message names last.pt and the OS error; last.pt still epoch 1 and loadable; "
        "history.csv epoch 1 only; no temporary file left; resume completes",
    )
    cfg = tmp_path / "config.json"
    small("ce", epochs=2).save(cfg)
    out = tmp_path / "run"
    real_replace = os.replace
    calls = {"n": 0}

    def replace(src, dst, *a, **k):
        if Path(dst).name == "last.pt":
            calls["n"] += 1
            if calls["n"] == 2:
                _enospc()
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    rc = main(["train", "--config", str(cfg), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == RunDirError.exit_code == 5
    assert f"cannot write {out / 'last.pt'}: No space left on device" in err and "Traceback" not in err
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1] and tmp_leftovers(out) == []
    monkeypatch.undo()
    assert main(["train", "--config", str(cfg), "--out", str(out), "--resume"]) == 0
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1, 2]
    case.observed(f"exit {rc}: {err.strip().splitlines()[0]}")


def test_full_disk_for_a_new_run_is_a_clear_error(case, small, tmp_path, monkeypatch, capsys):
    case(
        "F8",
        "fault: write failure",
        "`tan train` into a new run folder on a full disk (every write under it fails with ENOSPC)",
        "RunDirError, exit 5, one message naming the file; no traceback",
    )
    cfg = tmp_path / "config.json"
    small("ce", epochs=1).save(cfg)
    out = tmp_path / "run"
    full_disk(monkeypatch, out.parent / "run")
    rc = main(["train", "--config", str(cfg), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == RunDirError.exit_code, err
    assert "No space left on device" in err and str(out / "config.json") in err
    case.observed(f"exit {rc}: {err.strip().splitlines()[0]}")


def test_full_disk_during_evaluate_leaves_earlier_results_untouched(case, finished_run, tmp_path, monkeypatch, capsys):
    import shutil

    case(
        "F9",
        "fault: write failure",
        "`tan evaluate` of a finished run on a full disk (ENOSPC on every write in the run folder)",
        "RunDirError, exit 5; metrics.json, predictions.csv and embeddings.npz byte for byte unchanged; "
        "no temporary file left",
    )
    src, _ = finished_run
    run = tmp_path / "run"
    shutil.copytree(src, run, ignore=shutil.ignore_patterns("last.pt"))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.suffix != ".pt"}
    full_disk(monkeypatch, run)
    rc = main(["evaluate", str(run)])
    err = capsys.readouterr().err
    assert rc == RunDirError.exit_code and "No space left on device" in err and "Traceback" not in err
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.suffix != ".pt"} == before
    assert tmp_leftovers(run) == []
    case.observed(f"exit {rc}: {err.strip().splitlines()[0]}")


# ---------------------------------------------------------------------- a failing notebook cell
def test_failing_notebook_cell_stops_pipeline_and_keeps_its_output(case, tmp_path, capsys):
    from test_reliability_inputs import rafdb_tree

    case(
        "F10",
        "fault: failing notebook cell",
        "`tan run` on a RAF-DB tree with a truncated image: the build_manifest cell of 01_data raises; "
        "then the same `tan run --run-id` again",
        "PipelineError, exit 7, naming notebook, cell and DataError; executed 01_data.ipynb kept with the "
        "error; later notebooks not run; pipeline.json 'failed'; rerun refused (exit 5), nothing overwritten",
    )
    root = rafdb_tree(tmp_path / "rafdb", break_image="truncated")
    runs = tmp_path / "runs"
    args = [
        "run",
        "--preset",
        "smoke",
        "--dataset",
        "rafdb",
        "--root",
        str(root),
        "--methods",
        "ce",
        "--out",
        str(runs),
        "--run-id",
        "r1",
    ]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == PipelineError.exit_code == 7, err
    assert "notebook 01_data failed in code cell" in err and "DataError" in err
    kept = runs / "r1" / "notebooks" / "01_data.ipynb"
    import nbformat

    executed = nbformat.read(str(kept), as_version=4)
    errors = [
        o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"
    ]
    assert errors and errors[0]["ename"] == "DataError"
    assert not (runs / "r1" / "notebooks" / "02_train-ce.ipynb").exists()
    assert json.loads((runs / "r1" / "pipeline.json").read_text())["status"].startswith("failed")
    assert (runs / "r1" / "data" / "check.txt").is_file()  # an earlier cell's output is kept
    before = {p: p.read_bytes() for p in (runs / "r1").rglob("*") if p.is_file()}
    assert main(args) == RunDirError.exit_code
    assert {p: p.read_bytes() for p in (runs / "r1").rglob("*") if p.is_file()} == before
    case.observed(f"exit {rc}: {err.strip().splitlines()[0][:160]}")
