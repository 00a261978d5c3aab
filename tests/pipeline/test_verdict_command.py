"""``tan verdict`` end to end at toy scale: claims read, seeds planned, runs trained through
the sweep executor, recorded and indexed, judged, stopped when the budget is spent; the same
on a RAF-DB-shaped tree with a noisy training label list per level; ``--plan`` trains nothing."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from tanlib.cli import main
from tanlib.errors import ConfigError, RunDirError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from datafix import small_entries, write_rafdb  # noqa: E402

TOY = ["--preset", "smoke", "--set", "image_size=32", "--set", "max_train_samples=48", "--set", "epochs=1"]
TOY += ["--set", "num_threads=1", "--allow-dirty"]


def _claims(path: Path, levels, design: dict | None = None) -> Path:
    path.write_text(
        yaml.safe_dump(
            ({"design": design} if design else {})
            | {
                "claims": [
                    {
                        "id": "acc",
                        "text": "TAN is more accurate than CE",
                        "a": "tan",
                        "b": "ce",
                        "measure": "accuracy",
                        "direction": "greater",
                        "levels": levels,
                        "delta": 0.0137,
                        "family": "primary",
                    }
                ]
            }
        )
    )
    return path


def _places(tmp_path):
    return ["--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")]


@pytest.mark.system
@pytest.mark.slow(20)
def test_tan_verdict_trains_records_and_stops_at_the_budget(tmp_path, capsys):
    claims = _claims(tmp_path / "claims.yaml", [0.1], {"first": 3, "batch": 2, "max_seeds": 3})  # one look, 3 seeds
    args = ["verdict", "--claims", str(claims), *TOY, *_places(tmp_path), "--data-dir", str(tmp_path / "data")]
    args += ["--synth", "n_train=70", "--synth", "n_test=35", "--synth", "size=32"]
    assert main([*args, "--plan"]) == 0
    out = capsys.readouterr().out
    assert "next: seeds 0..2 of ce, tan at label noise 0.1 (6 runs)" in out
    assert not (tmp_path / "runs").exists()  # --plan trains nothing
    assert main([*args, "--json", str(tmp_path / "plan.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    first = next(k for k, line in enumerate(lines) if line.startswith("[verdict] recorded "))
    second = next(k for k, line in enumerate(lines) if line.startswith("[sweep] (2/6) "))
    assert first < second  # each run recorded as it finishes, not after the batch
    records = tmp_path / "results" / "verdict" / "synthfer-smoke"
    names = sorted(p.name for p in records.iterdir())
    assert len(names) == 6 and all("synth_label_noise=0.1" in n for n in names)
    index = json.loads((tmp_path / "results" / "INDEX.json").read_text())["records"]
    assert sorted(index) == [f"verdict/synthfer-smoke/{n}" for n in names]
    assert len({e["commit"] for e in index.values()}) == 1
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["seeds_done"] == 3 and plan["seeds"] == 3  # the budget: nothing more to train
    (row,) = plan["claims"]
    assert row["seeds"] == 3 and row["status"] in ("decided", "budget spent", "a run did not learn")
    # a second call finds everything recorded and trains nothing
    assert main(args) == 0
    assert "nothing to train" in capsys.readouterr().out
    # on a new machine (no run folders) with one record missing, the same batch again: only that run
    # trains, the rest is recorded and skipped (the records are what a verdict resumes from)
    import shutil

    from tanlib.pipeline.verdict import Verdict

    shutil.rmtree(tmp_path / "runs")
    (missing,) = [n for n in names if n.startswith("ce-seed2")]
    shutil.rmtree(records / missing)
    assert main(["record", "--reindex", str(tmp_path / "results")]) == 0
    lines = []
    verdict = Verdict(
        claims,
        preset="smoke",
        overrides={"image_size": 32, "max_train_samples": 48, "epochs": 1, "num_threads": 1},
        synthfer={"n_train": 70, "n_test": 35, "size": 32},
        runs=str(tmp_path / "runs"),
        results=str(tmp_path / "results"),
        data_dir=str(tmp_path / "data"),
        allow_dirty=True,
        log=lines.append,
    )
    written = verdict.run_batch({"seeds_done": 0, "seeds": 3, "methods": ["ce", "tan"], "levels": [0.1]})
    assert written == [records / missing]
    assert (
        sum(": recorded in " in line for line in lines) == 5
        and len(list((tmp_path / "runs").rglob("metrics.json"))) == 1
    )


@pytest.mark.system
@pytest.mark.slow(20)
def test_tan_verdict_on_a_rafdb_tree_with_noisy_label_lists(tmp_path, capsys):
    entries = small_entries(per_class_train=10, per_class_test=2)  # 1 validation face per class
    root = write_rafdb(tmp_path / "rafdb", entries)
    train = [(n, lab) for n, lab in entries if n.startswith("train")]
    noisy = [(n, (lab % 7) + 1 if i % 5 == 0 else lab) for i, (n, lab) in enumerate(train)]  # every 5th flipped
    (root / "EmoLabel" / "noise_train_20.txt").write_text("".join(f"{n} {lab}\n" for n, lab in noisy))
    claims = _claims(tmp_path / "claims.yaml", [0.0, 0.2], {"first": 2, "max_seeds": 2})  # one look, 2 seeds
    args = ["verdict", "--claims", str(claims), "--dataset", "rafdb", "--root", str(root), *TOY, *_places(tmp_path)]
    assert main([*args, "--plan"]) == ConfigError.exit_code  # level 0.2 has no list yet
    assert "--noisy-labels LEVEL=PATH" in capsys.readouterr().err
    args += ["--noisy-labels", f"0.2={root / 'EmoLabel' / 'noise_train_20.txt'}"]
    assert main(args) == 0
    records = tmp_path / "results" / "verdict" / "rafdb-smoke"
    runs = sorted(p.name for p in records.iterdir())
    assert len(runs) == 8  # ce, tan x 2 levels x seeds 0, 1
    from tanlib.pipeline.verdict import Verdict

    v = Verdict(
        claims,
        dataset="rafdb",
        root=str(root),
        preset="smoke",
        runs=str(tmp_path / "runs"),
        results=str(tmp_path / "results"),
        allow_dirty=True,
        noisy_labels={0.2: str(root / "EmoLabel" / "noise_train_20.txt")},
        log=lambda *a: None,
    )
    frame = v.record_frame()
    assert sorted(frame["synth_label_noise"].unique()) == [0.0, 0.2]
    noisy_runs = frame[frame["synth_label_noise"] == 0.2]
    metrics = json.loads((Path(noisy_runs["path"].iloc[0]) / "metrics.json").read_text())
    assert metrics["noise_detection"]["n_noisy"] > 0  # the noisy list was trained on
    assert {r["level"] for r in v.judge()} == {0.0, 0.2}


def _stand_in(rows):
    """Records in memory (no folder: no test images to resample)."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "run": f"{m}-seed{s}",
                "path": f"/nowhere/{m}-{s}",
                "variant": "",
                "method": m,
                "seed": s,
                "accuracy": acc,
                "synth_label_noise": 0.1,
                "precision": "none",
            }
            for m, s, acc in rows
        ]
    )


def test_the_plan_adds_seeds_until_decided_or_the_budget_is_spent(tmp_path, monkeypatch):
    from tanlib.analysis.sequential import SequentialDesign
    from tanlib.analysis.verdict import claim_results
    from tanlib.pipeline.verdict import Verdict

    claims = _claims(tmp_path / "claims.yaml", [0.1], {"first": 3, "batch": 4, "max_seeds": 12})
    v = Verdict(claims, preset="smoke", runs=str(tmp_path / "runs"), results=str(tmp_path / "results"), log=print)
    assert v.design == SequentialDesign(3, 4, 12) and v.design.looks() == [3, 7, 11, 12]  # from the claims file
    plan = v.plan()
    assert (plan["seeds_done"], plan["seeds"], plan["methods"], plan["levels"]) == (0, 3, ["ce", "tan"], [0.1])
    grid = v.grid(plan)
    assert grid["seeds"] == [0, 1, 2] and grid["synthfer"] == {"label_noise": [0.1]} and grid["preset"] == "smoke"

    def given(rows):
        monkeypatch.setattr(v, "record_frame", lambda: _stand_in(rows))
        monkeypatch.setattr(
            v, "judge", lambda: claim_results(_stand_in(rows), v.claims, bootstrap=False, design=v.design)
        )
        return v.plan()

    # a clear effect on 3 seeds: decided, nothing more to train
    clear = [(m, s, 0.60 + 0.001 * s + (0.05 if m == "tan" else 0.0)) for m in ("ce", "tan") for s in range(3)]
    plan = given(clear)
    assert plan["claims"][0]["status"] == "decided" and plan["seeds"] == 3
    # a noisy one: up to the next look; with 5 seeds recorded (between looks) still the look of 7,
    # with 9 the look of 11, never "done + batch"
    noisy = [(m, s, 0.6 + (0.03 if (m == "tan") == (s % 2 == 0) else -0.03)) for m in ("ce", "tan") for s in range(9)]
    for n, look, target in ((3, 3, 7), (5, 3, 7), (9, 7, 11)):
        plan = given([row for row in noisy if row[1] < n])
        assert plan["claims"][0]["status"] == "open" and plan["claims"][0]["look"] == look
        assert (plan["seeds_done"], plan["seeds"]) == (n, target)
    # the last look is the budget: nothing more is trained
    plan = given(
        noisy
        + [(m, s, 0.6 + (0.03 if (m == "tan") == (s % 2 == 0) else -0.03)) for m in ("ce", "tan") for s in range(9, 12)]
    )
    assert plan["claims"][0]["status"] == "budget spent" and plan["seeds"] == plan["seeds_done"] == 12
    # a seed missing for one method: the look is not reached (every method of the level needs it)
    gap = [row for row in noisy if not (row[0] == "ce" and row[1] == 1)]
    plan = given(gap)
    assert plan["claims"][0]["look"] == "n/a" and plan["seeds_done"] == 1 and plan["seeds"] == 3
    # the batch's count leaves out what is recorded: of seeds 1-2 of ce and tan, only ce's seed 1 is missing
    assert plan["missing"] == [("ce", 1, 0.1)]
    assert "(1 run to train; 3 of the 4 are recorded)" in v.describe(plan)
    # a method without any run at the level: its first seeds join the batch (the look counts the
    # methods with runs, so tan's 3 seeds reach a look, and the batch starts at seed 0 for ce)
    plan = given([row for row in noisy if row[0] == "tan" and row[1] < 3])
    assert plan["claims"][0]["look"] == 3 and (plan["seeds_done"], plan["seeds"]) == (0, 7)
    assert plan["missing"] == [("ce", s, 0.1) for s in range(7)] + [("tan", s, 0.1) for s in range(3, 7)]


def test_rafdb_levels_are_noisy_label_lists(tmp_path):
    from tanlib.pipeline.verdict import Verdict, parse_noisy_labels

    assert parse_noisy_labels(["0.1=a.txt", "0.3=b.txt"]) == {0.1: "a.txt", 0.3: "b.txt"}
    for bad in ("a.txt", "0=a.txt", "x=a.txt", "0.1="):
        with pytest.raises(ConfigError, match="LEVEL=PATH"):
            parse_noisy_labels([bad])
    claims = _claims(tmp_path / "claims.yaml", [0.0, 0.1])
    with pytest.raises(ConfigError, match="needs --root"):
        Verdict(claims, dataset="rafdb")
    with pytest.raises(ConfigError, match="--noisy-labels LEVEL=PATH"):
        Verdict(claims, dataset="rafdb", root="data/rafdb")
    v = Verdict(
        claims,
        dataset="rafdb",
        root="data/rafdb",
        preset="paper",
        noisy_labels={0.1: "n10.txt"},
        results=str(tmp_path / "results"),
        log=lambda *a: None,
    )
    grid = v.grid({"seeds_done": 0, "seeds": 3, "methods": ["ce", "tan"], "levels": [0.0, 0.1]})
    assert grid["parameters"] == {"noisy_train_labels": [None, "n10.txt"]} and grid["root"] == "data/rafdb"
    assert "synthfer" not in grid and grid["preset"] == "paper"


def test_records_of_another_commit_refuse_training_but_not_a_plan(tmp_path, monkeypatch):
    """A verdict's runs come from one commit: with its records at another commit than the tree's,
    training is refused; a plan (which trains nothing) says so and goes on."""
    from tanlib.engine import rundir
    from tanlib.pipeline.verdict import Verdict
    from tanlib.report.records import INDEX_FORMAT

    claims = _claims(tmp_path / "claims.yaml", [0.1])
    notes = []
    v = Verdict(
        claims,
        preset="smoke",
        runs=str(tmp_path / "runs"),
        results=str(tmp_path / "results"),
        log=notes.append,
    )
    record = {"commit": "a" * 40, "clean": True, "files": {}}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "INDEX.json").write_text(
        json.dumps({"format": INDEX_FORMAT, "records": {"verdict/synthfer-smoke/ce-seed0": record}})
    )
    monkeypatch.setattr(rundir, "git_state", lambda *a, **k: ("b" * 40, False))
    with pytest.raises(RunDirError, match="trained at commit aaaaaaaaaaaa, the tree is at bbbbbbbbbbbb"):
        v.commit_check()
    assert v.commit_check(plan_only=True) == "a" * 40
    assert len(notes) == 1 and "judged here by the analysis of bbbbbbbbbbbb" in notes[0]
    monkeypatch.setattr(rundir, "git_state", lambda *a, **k: ("a" * 40, False))
    assert v.commit_check() == "a" * 40


def test_a_verdict_holds_one_numeric_format_and_another_is_an_arm(tmp_path, monkeypatch):
    """A machine, an amp setting or a finished run in another format than the records is refused
    before any training (the machine: local executor) or recording, naming both formats, the
    --arm to use and, for a run, where to move it; an arm has its own folders; a plan is never
    refused."""
    from tanlib.pipeline.verdict import Verdict

    claims = _claims(tmp_path / "claims.yaml", [0.1])
    places = {"runs": str(tmp_path / "runs"), "results": str(tmp_path / "results")}
    v = Verdict(claims, preset="smoke", allow_dirty=True, log=lambda *_: None, **places)
    assert v.record_formats() == [] and v.check_format("fp32", "this machine") is None  # no records: any format
    bf16 = [(m, s, 0.6) for m in ("ce", "tan") for s in range(3)]
    monkeypatch.setattr(v, "record_frame", lambda: _stand_in(bf16).assign(precision="bf16"))
    v._formats = None  # read once per batch (run_batch forgets them)
    assert v.record_formats() == ["bf16"] and v.check_format("bf16", "this machine") is None
    with pytest.raises(RunDirError, match=r"this machine trains in fp32, the records under .*synthfer-smoke are bf16"):
        v.check_format("fp32", "this machine")
    with pytest.raises(RunDirError, match=r"add --arm float32 \(records under verdict/synthfer-smoke-float32/\)"):
        v.check_format("fp32", "this machine")
    # a finished float32 run (no amp key: a record from before it) is refused before anything is written
    run = tmp_path / "runs" / "verdict-synthfer-smoke" / "runs" / "ce-seed3"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))
    moved = f"move {run} into {tmp_path / 'runs' / 'verdict-synthfer-smoke-float32' / 'runs'}/ and rerun with --arm"
    with pytest.raises(RunDirError, match=re.escape(moved)):
        v.record_run(run)
    assert not (tmp_path / "results").exists()
    # amp set: the format of every machine, checked before training on any executor
    monkeypatch.setattr(v, "overrides", {"amp": "none"})
    assert v.configured_format() == "fp32"
    for executor in ("local", "slurm"):
        monkeypatch.setattr(v, "executor", executor)
        with pytest.raises(RunDirError, match="the verdict's amp setting trains in fp32"):
            v.run()
    assert not list((tmp_path / "runs" / v.name).glob("grid-*.yaml"))  # refused before the batch's grid
    assert v.run(plan_only=True)["seeds_done"] == 3  # a plan trains nothing: never refused
    # amp=auto: each machine decides; this one is checked on a local executor
    monkeypatch.setattr(v, "overrides", {"amp": "auto", "device": "cpu"})
    monkeypatch.setattr(v, "executor", "local")
    assert v.configured_format() is None and v.machine_format() in ("bf16", "fp32")
    monkeypatch.setattr(v, "machine_format", lambda: "fp32")
    with pytest.raises(RunDirError, match="this machine trains in fp32"):
        v.run()
    monkeypatch.setattr(v, "overrides", {"amp": "bf16"})
    assert v.configured_format() == "bf16"
    arm = Verdict(claims, preset="smoke", arm="float32", **places)
    assert arm.records == tmp_path / "results" / "verdict" / "synthfer-smoke-float32"
    assert arm.name == "verdict-synthfer-smoke-float32"
    with pytest.raises(ConfigError, match="--arm '../x': expected a short name"):
        Verdict(claims, preset="smoke", arm="../x", **places)
