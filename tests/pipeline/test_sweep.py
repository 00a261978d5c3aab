"""Sweeps: grid expansion, shards, skipping finished runs and resuming partial ones."""

from __future__ import annotations

import importlib
import json

import pytest

from tanlib.errors import ConfigError
from tanlib.pipeline import grid_jobs, load_grid, parse_shard, project_path, run_is_complete, run_sweep


def _complete_metrics(method="tan", seed=0):
    result = {
        "split": "test",
        "accuracy": 0.5,
        "mean_class_accuracy": 0.4,
        "macro_f1": 0.3,
        "geometry": {"ratio": 0.9, "silhouette": 0.1, "per_class": {}},
        "subgroups": [],
    }
    return {
        "method": method,
        "seed": seed,
        "dataset": "synthfer",
        "scale": "smoke",
        "best_epoch": 1,
        "last_epoch": 2,
        "results": {"last": result, "best_val": result},
        "test_selected": {"epoch": 1, "accuracy": 0.5},
        "train_noisy_auc": None,
    }


def test_shipped_grids():
    ablation = grid_jobs(load_grid(project_path("grids/ablation.yaml")))
    assert len(ablation) == 18 and {j.method for j in ablation} == {
        "ce",
        "scn",
        "triplet",
        "tan-euclid",
        "tan-nothreshold",
        "tan",
    }
    assert [j.seed for j in ablation[:6]] == [0] * 6 and len({j.method for j in ablation[:6]}) == 6  # seed-major
    noise = grid_jobs(load_grid(project_path("grids/label_noise.yaml")))
    assert len(noise) == 36 and {j.method for j in noise} == {j.method for j in ablation}
    assert sorted({j.synthfer["label_noise"] for j in noise}) == [0.0, 0.3]  # 10 %: the default, ablation.yaml
    assert len({j.name for j in noise}) == 36


def test_shards_partition_the_jobs(tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text("methods: [ce, tan]\nseeds: [0, 1, 2]\npreset: smoke\nparameters: {epochs: [1, 2]}\n")
    jobs = [j.name for j in grid_jobs(load_grid(grid))]
    assert len(jobs) == 12 and len(set(jobs)) == 12
    shards = [jobs[i - 1 :: 3] for i in (1, 2, 3)]
    assert sorted(sum(shards, [])) == sorted(jobs)
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "a/b"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)


def test_grid_errors_name_the_key(tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text("methods: [ce]\nparameters: {epochz: [1]}\n")
    with pytest.raises(ConfigError, match="epochz"):
        grid_jobs(load_grid(grid))
    grid.write_text("methods: [ce]\nsynthfer: {noise: [0.1]}\n")
    with pytest.raises(ConfigError, match="unknown synthfer setting"):
        load_grid(grid)


def test_grid_may_vary_every_synthfer_setting(tmp_path):
    """A grid's synthfer: section accepts every generator setting, e.g. the noise model
    grids/label_noise.yaml documents (it used to accept only seven of them)."""
    grid = tmp_path / "g.yaml"
    grid.write_text("name: g\nmethods: [ce]\nsynthfer:\n  noise_model: [uniform, annotators]\n  label_noise: [0.3]\n")
    names = [j.name for j in grid_jobs(load_grid(grid))]
    assert names == [
        "ce-seed0-synth_label_noise=0.3-synth_noise_model=uniform",
        "ce-seed0-synth_label_noise=0.3-synth_noise_model=annotators",
    ]
    grid.write_text("name: g\nmethods: [ce]\nsynthfer:\n  noise_modle: [uniform]\n")
    with pytest.raises(ConfigError, match="noise_modle"):
        load_grid(grid)


def _mini_grid(tmp_path, methods: str):
    """A smoke grid of ``methods`` (seed 0) on a stand-in SynthFER folder that no fake run reads."""
    from tanlib.data.synthfer import SETTINGS_FILE, synthfer_settings

    grid = tmp_path / "g.yaml"
    root = tmp_path / "data"
    grid.write_text(f"name: mini\nmethods: [{methods}]\nseeds: [0]\npreset: smoke\nroot: {root}\n")
    root.mkdir()
    (root / "synthfer_meta.csv").write_text("stand-in: the dataset is not read when no run trains\n")
    (root / SETTINGS_FILE).write_text(json.dumps(synthfer_settings()))
    return grid, root


def test_sweep_skips_finished_and_resumes_partial(tmp_path, monkeypatch):
    grid, root = _mini_grid(tmp_path, "ce, tan")
    out = tmp_path / "sweeps"
    done = out / "mini" / "runs" / "ce-seed0"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text(json.dumps(_complete_metrics("ce")))
    partial = out / "mini" / "runs" / "tan-seed0"
    partial.mkdir(parents=True)
    (partial / "last.pt").write_bytes(b"")
    calls = []

    def fake_train(config, run_dir, resume=False, overwrite=False, **kw):
        calls.append((config.method, str(run_dir), resume))
        (run_dir / "metrics.json").write_text(json.dumps(_complete_metrics(config.method)))
        return run_dir

    monkeypatch.setattr(importlib.import_module("tanlib.engine.train"), "train", fake_train)  # what ensure_run calls
    run_sweep(grid, out=str(out), report=False, log=lambda *_: None)
    assert calls == [("tan", str(partial), True)]
    assert run_is_complete(partial) and json.loads((partial / "job.json").read_text())["grid"] == "mini"
    calls.clear()
    run_sweep(grid, out=str(out), report=False, log=lambda *_: None)
    assert calls == []


def test_a_finished_run_of_another_config_is_not_skipped_silently(tmp_path, monkeypatch):
    """A grid whose preset changed since a run finished (SCN's relabel epoch at the calibrated
    scale): the sweep stops naming the job and the key, instead of counting the old run."""
    from tanlib.config import preset
    from tanlib.errors import RunDirError

    grid = tmp_path / "g.yaml"
    root = tmp_path / "data"
    grid.write_text(f"name: mini\nmethods: [scn]\nseeds: [0]\npreset: smoke\nroot: {root}\n")
    done = tmp_path / "sweeps" / "mini" / "runs" / "scn-seed0"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text(json.dumps(_complete_metrics("scn")))
    old = preset("scn", "smoke", root=str(root), epochs=4, relabel_epoch=3).to_dict()
    (done / "config.json").write_text(json.dumps(old))
    with pytest.raises(RunDirError, match=r"sweep job scn-seed0 is finished with another config.*epochs"):
        run_sweep(grid, out=str(tmp_path / "sweeps"), report=False, log=lambda *_: None)
    (done / "config.json").write_text(json.dumps(preset("scn", "smoke", root=str(root)).to_dict()))
    run_sweep(grid, out=str(tmp_path / "sweeps"), report=False, log=lambda *_: None)  # the same config: skipped


def test_existing_synthfer_reused_only_with_the_same_settings(tmp_path, monkeypatch):
    """At the default location a SynthFER folder is generated once and reused; one made
    with other settings, or by the older generator (no settings file), is refused with
    the differing settings named. A folder the user names elsewhere is used as it is."""
    import tanlib.pipeline as pipeline
    from tanlib.data.synthfer import SETTINGS_FILE
    from tanlib.errors import DataError
    from tanlib.pipeline import ensure_dataset

    root = tmp_path / "sf"
    monkeypatch.setitem(pipeline.SYNTHFER_DEFAULTS, "smoke", {**pipeline.SYNTHFER_DEFAULTS["smoke"], "root": str(root)})
    assert ensure_dataset("synthfer", root, n_train=14, n_test=7) == root
    stamp = (root / "synthfer_meta.csv").stat().st_mtime_ns
    assert ensure_dataset("synthfer", root, n_train=14, n_test=7) == root  # reused, not regenerated
    assert (root / "synthfer_meta.csv").stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match=r"n_train: 14 there, 21 wanted"):
        ensure_dataset("synthfer", root, n_train=21, n_test=7)
    (root / SETTINGS_FILE).write_text("{not json")
    with pytest.raises(DataError, match="not readable JSON"):
        ensure_dataset("synthfer", root, n_train=14, n_test=7)
    (root / SETTINGS_FILE).unlink()
    with pytest.raises(DataError, match="older generator"):
        ensure_dataset("synthfer", root, n_train=14, n_test=7)
    monkeypatch.undo()  # no longer a default location: the user's folder, used as it is
    assert ensure_dataset("synthfer", root, n_train=21, n_test=7) == root


def test_sweep_skips_a_job_another_process_writes(tmp_path, monkeypatch):
    """A job whose run lock another process holds is skipped with a line naming it, and
    trained by the next sweep; the sweep still exits normally (its report waits)."""
    import tanlib.pipeline.sweep as pipeline
    from tanlib.errors import RunDirBusyError

    grid, root = _mini_grid(tmp_path, "ce, tan")
    calls, lines = [], []

    def fake_train(config, run_dir, resume=False, overwrite=False, **kw):
        calls.append(config.method)
        (run_dir / "metrics.json").write_text(json.dumps(_complete_metrics(config.method)))
        return run_dir

    real_lock = pipeline.run_lock
    holder = {"host": "node7", "pid": 4242, "started": "2026-01-01T00:00:00+0000", "command": "tan sweep"}

    def busy_for_tan(run_dir, create=False):
        if run_dir.name.startswith("tan-"):
            raise RunDirBusyError(f"run directory {run_dir} is being written by another process", str(run_dir), holder)
        return real_lock(run_dir, create=create)

    monkeypatch.setattr(importlib.import_module("tanlib.engine.train"), "train", fake_train)  # what ensure_run calls
    monkeypatch.setattr(pipeline, "run_lock", busy_for_tan)
    run_sweep(grid, out=str(tmp_path / "sweeps"), report=False, log=lines.append)
    assert calls == ["ce"]
    assert any("tan-seed0: skipped, another process is writing it (pid 4242 on host node7" in x for x in lines)
    assert any("1 job(s) not finished yet" in x for x in lines)
    monkeypatch.setattr(pipeline, "run_lock", real_lock)
    calls.clear()
    run_sweep(grid, out=str(tmp_path / "sweeps"), report=False, log=lines.append)
    assert calls == ["tan"]


def test_sweep_record_records_each_run_as_its_job_ends(tmp_path, monkeypatch, capsys):
    """tan sweep --record DEST: a run is recorded as soon as its job ends (the first run's
    record exists before the second starts training), a run finished earlier is recorded when
    its job is skipped, a run whose record is refused does not stop the other jobs (the sweep
    ends with an error naming it), a job recorded in DEST is not trained again once its run
    directory is gone, a record there of another config stops the sweep before any training,
    and a tree with uncommitted changes under tanlib/ is refused before anything trains."""
    import shutil

    from tanlib.cli import main
    from tanlib.engine import rundir

    committed = project_path("results/recipe/ce-seed0")
    grid, root = _mini_grid(tmp_path, "ce, tan, scn")
    dest = tmp_path / "results" / "calibration"
    seen = []
    dirty = {"scn"}  # scn's first run comes from a dirty tree: its record is refused

    def fake_train(config, run_dir, resume=False, overwrite=False, **kw):
        seen.append((config.method, sorted(p.name for p in dest.iterdir()) if dest.is_dir() else []))
        (run_dir / "config.json").write_text(json.dumps(config.to_dict()))
        (run_dir / "history.csv").write_text((committed / "history.csv").read_text())
        env = {"git_commit": "0" * 40, "git_dirty": config.method in dirty}
        (run_dir / "env.json").write_text(json.dumps(env))
        (run_dir / "metrics.json").write_text(json.dumps(_complete_metrics(config.method)))
        return run_dir

    monkeypatch.setattr(importlib.import_module("tanlib.engine.train"), "train", fake_train)
    sweeps = tmp_path / "sweeps"
    args = ["sweep", "--grid", str(grid), "--out", str(sweeps), "--no-report", "--record", str(dest)]
    monkeypatch.setattr(rundir, "git_state", lambda root=None: ("0" * 40, True))
    assert main(args) != 0
    assert "uncommitted changes under tanlib/: no run of this sweep could be recorded" in capsys.readouterr().err
    assert seen == [] and not dest.exists()
    monkeypatch.setattr(rundir, "git_state", lambda root=None: ("0" * 40, False))
    assert main([*args, "--shard", "1/3"]) == 0  # ce only
    assert seen == [("ce", [])] and sorted(p.name for p in dest.iterdir()) == ["ce-seed0"]
    shutil.rmtree(dest / "ce-seed0")  # a run finished before: recorded when its job is skipped
    assert main(args) != 0
    captured = capsys.readouterr()
    assert seen[1:] == [("tan", ["ce-seed0"]), ("scn", ["ce-seed0", "tan-seed0"])]  # each recorded as it ended
    assert sorted(p.name for p in dest.iterdir()) == ["ce-seed0", "tan-seed0"]
    assert "1 finished run(s) of" in captured.err and "scn-seed0: " in captured.err
    assert "uncommitted changes" in captured.err and "recorded tan-seed0" in captured.out
    index = json.loads((dest.parent / "INDEX.json").read_text())["records"]
    assert sorted(index) == ["calibration/ce-seed0", "calibration/tan-seed0"]
    # the run directories gone (another machine): the recorded jobs are skipped, scn trains again
    shutil.rmtree(sweeps)
    dirty.clear()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert [m for m, _ in seen[3:]] == ["scn"] and "ce-seed0: recorded in" in out and "tan-seed0: recorded in" in out
    assert sorted(p.name for p in dest.iterdir()) == ["ce-seed0", "scn-seed0", "tan-seed0"]
    # a record made from another checkout (the data folder of the same name and settings) is this job's
    config = json.loads((dest / "ce-seed0" / "config.json").read_text())
    (dest / "ce-seed0" / "config.json").write_text(json.dumps({**config, "root": "/elsewhere/data"}))
    shutil.rmtree(sweeps)
    assert main(args) == 0 and len(seen) == 4 and "ce-seed0: recorded in" in capsys.readouterr().out
    # a record of another config under a job's name (the grid's last job): refused before anything trains
    shutil.rmtree(sweeps)
    shutil.rmtree(dest / "ce-seed0")
    config = json.loads((dest / "scn-seed0" / "config.json").read_text())
    (dest / "scn-seed0" / "config.json").write_text(json.dumps({**config, "lr": 0.5}))
    assert main(args) != 0
    assert "holds the record of a run with another config (lr: 0.5 there" in capsys.readouterr().err
    assert len(seen) == 4  # ce, first in the grid, did not train
    assert main(["sweep", "--grid", str(grid), "--report-only", "--record", str(dest)]) != 0
    assert "--report-only records nothing" in capsys.readouterr().err
