"""The benchmarks' own correctness checks at tiny size, their JSON, and ``tan bench``.

No timing is asserted here: speed is what bench/ measures and docs/benchmarks.md reports.
"""

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]  # bench/ is importable from here: pytest's pythonpath (pyproject.toml)


def test_objective_benchmark_tiny(tmp_path):
    from bench import bench_objective

    res = bench_objective.main(["--tiny", "--out", str(tmp_path / "o.json")])
    data = json.loads((tmp_path / "o.json").read_text())
    r = data["results"]["16"]
    assert r["ratio_tan_over_ce"]["n"] == 2 and r["ratio_tan_over_ce"]["median"] > 0
    assert data["machine"]["torch_threads"] == 1 and "command" in data
    # the covariance inverse root is computed once per covariance update, not per call
    assert res["inverse_computations"] <= res["covariance_updates"] + 1


def test_miner_benchmark_tiny_checks_naive_agreement(tmp_path):
    from bench import bench_miner

    res = bench_miner.main(["--tiny", "--out", str(tmp_path / "m.json")])
    small, big = res["results"]["32"], res["results"]["96"]
    assert small["check"]["loss_compared"] and small["check"]["max_abs_distance_difference"] < 1e-4
    assert abs(small["check"]["loss_vectorised"] - small["check"]["loss_naive"]) < 1e-4
    assert big["naive_extrapolated_from_anchors"] == 16  # sampled above --sample-above
    assert big["memory"]["peak_bytes"] > 0
    assert res["results"]["memory_growth_exponent"]["peak_bytes"] < 2.5  # no O(N^3) buffer


def test_miner_benchmark_naive_matches_vectorised_on_a_fresh_batch():
    import torch

    from bench.bench_miner import build, make_batch, naive, vectorised

    obj, config = build(d=16)
    emb, labels, att = make_batch(40, 16, seed=7)
    loss, idx = vectorised(obj, emb, labels, att)
    want, out, keep = naive(
        emb,
        labels,
        att,
        obj.distance.matrix().detach(),
        config.mahalanobis_eps,
        config.mahalanobis_margin,
        config.threshold,
    )
    assert sorted(idx[0].tolist()) == sorted(out)
    assert float(loss) == pytest.approx(want, abs=1e-5)
    assert torch.is_tensor(loss)


def test_input_benchmark_tiny(tmp_path):
    from bench import bench_input

    res = bench_input.main(["--tiny", "--out", str(tmp_path / "i.json")])
    for k in ("model", "kit", "reference", "input_kit", "input_reference"):
        assert res["images_per_s"][k]["median"] > 0
    assert "met" in res and res["goal_kit_over_model_at_least"] == 0.9


def test_gpu_benchmark_runs_on_cpu_at_tiny_size(tmp_path):
    from bench.gpu import gpu_bench

    out = tmp_path / "g.json"
    assert (
        gpu_bench.main(["--cpu", "--tiny", "--parity-epochs", "0", "--out", str(out), "--workdir", str(tmp_path)]) == 0
    )
    data = json.loads(out.read_text())
    assert data["device"] == "cpu"
    assert {"reference@16", "kit@16", "fast@16"} <= set(data["throughput"]["variants"])
    assert data["throughput"]["variants"]["kit@16"]["speedup_over_reference"]["median"] > 0
    assert data["parity"] == {"skipped": "--parity-epochs 0"}


def test_gpu_script_needs_a_wheel_or_pml(tmp_path):
    script = (REPO / "bench" / "gpu" / "run_gpu_bench.sh").read_text()
    assert "pip install" in script and "--no-index" in script and "bench/gpu/wheels" in script
    assert subprocess.run(["bash", "-n", str(REPO / "bench" / "gpu" / "run_gpu_bench.sh")]).returncode == 0


def test_pipeline_benchmark_analyses_a_run(tmp_path):
    from bench.bench_pipeline import analyse, classify

    def nb(path, cells):
        path.write_text(
            json.dumps(
                {
                    "cells": [
                        {"cell_type": "code", "source": src, "metadata": {"papermill": {"duration": d}}}
                        for src, d in cells
                    ]
                }
            )
        )

    run = tmp_path / "run"
    (run / "notebooks").mkdir(parents=True)
    nb(
        run / "notebooks" / "02_train-tan.ipynb",
        [
            ("import torch\nimport pandas as pd", 3.0),
            ("run_dir = ensure_run(config, run_dir)", 20.0),
            ("fig = plot_learning_curves(h)\nsave_figure(fig, p)", 2.0),
        ],
    )
    nb(run / "notebooks" / "04_embeddings.ipynb", [("coords = umap_2d(x)", 10.0)])
    (run / "pipeline.json").write_text(
        json.dumps(
            {
                "seconds": 40.0,
                "status": "ok",
                "notebooks": [
                    {"output": str(run / "notebooks" / "02_train-tan.ipynb"), "seconds": 27.0},
                    {"output": str(run / "notebooks" / "04_embeddings.ipynb"), "seconds": 12.0},
                ],
            }
        )
    )
    res = analyse(run, wall=45.0)
    assert res["seconds"] == {
        "training": 20.0,
        "umap_numba": 10.0,
        "interpreter_and_imports": 5.0,
        "kernel_startup": 4.0,
        "imports": 3.0,
        "plotting": 2.0,
    }
    assert res["summed_part_seconds"] == 44.0 and res["wall_seconds"] == 45.0
    assert sum(res["share"].values()) == pytest.approx(1.0, abs=0.01)  # shares of the summed parts
    assert classify("03_evaluate-ce", "table = metrics_table(m)") == "evaluation"


def test_tan_bench_lists_and_rejects_unknown_names(capsys):
    from tanlib.cli import main

    assert main(["bench", "--list"]) == 0
    listed = capsys.readouterr().out
    for name in ("objective", "miner", "input", "pipeline", "gpu", "synthfer"):
        assert name in listed
    assert main(["bench", "no-such-benchmark"]) != 0
    assert "unknown benchmark" in capsys.readouterr().err


def test_tan_bench_runs_named_scripts(tmp_path, monkeypatch):
    from tanlib import bench_cli

    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "bench_objective.py").write_text(
        "import sys, pathlib; pathlib.Path('ran.txt').write_text(' '.join(sys.argv[1:]))\n"
    )
    assert bench_cli.run_benchmarks(["objective"], ["--tiny"], root=tmp_path) == 0
    assert (tmp_path / "ran.txt").read_text() == "--tiny"
    (tmp_path / "bench" / "bench_miner.py").write_text("raise SystemExit(3)\n")
    from tanlib.errors import TANError

    with pytest.raises(TANError, match="exit code 3"):
        bench_cli.run_benchmarks(["miner"], root=tmp_path)


def test_memory_format_benchmark_tiny(tmp_path):
    from bench import bench_memory_format

    res = bench_memory_format.main(["--tiny", "--out", str(tmp_path / "mf.json")])
    data = json.loads((tmp_path / "mf.json").read_text())
    assert data["benchmark"] == "memory_format" and "threads1" in data
    ratio = res["threads1"]["channels_last_over_contiguous"]
    assert ratio["n"] == 1 and ratio["median"] > 0


def test_cpu_train_benchmark_tiny_times_the_kit_epoch_against_before(tmp_path):
    from bench import bench_cpu_train

    variants = "before,bf16+cl,bf16+cl+ema"
    res = bench_cpu_train.main(["--tiny", "--variants", variants, "--out", str(tmp_path / "c.json")])
    data = json.loads((tmp_path / "c.json").read_text())
    r = data["results"]["threads1"]
    assert set(r["images_per_s"]) == set(variants.split(",")) and r["images_per_s"]["bf16+cl+ema"]["median"] > 0
    assert r["ratio_to_before"]["before"]["median"] == 1.0 and res["threads1"]["threads"] == 1
    assert data["params"]["baseline"] == "before" and data["machine"]["torch_threads"] == 1
    with pytest.raises(SystemExit, match="unknown variant"):
        bench_cpu_train.main(["--tiny", "--variants", "fp16", "--out", str(tmp_path / "x.json")])


def test_parity_compares_paired_seeds_against_the_fp32_spread():
    import numpy as np
    import pandas as pd
    from scipy import stats

    from bench.bench_parity import compare

    def frame(acc, amp):
        return pd.DataFrame(
            {"method": "ce", "seed": [0, 1, 2], "accuracy": acc, "mean_class_accuracy": acc, "amp": amp}
        )

    fp32, bf16 = frame([0.50, 0.54, 0.58], "none"), frame([0.52, 0.53, 0.61], "bf16")
    r = compare(fp32, bf16, ["ce"])["ce"]["accuracy"]
    diff = np.array([2.0, -1.0, 3.0])
    assert r["diff_points"] == pytest.approx(diff.tolist()) and r["diff_mean"] == pytest.approx(diff.mean(), abs=0.01)
    half = stats.t.ppf(0.975, 2) * diff.std(ddof=1) / np.sqrt(3)
    assert r["diff_t95"] == pytest.approx([diff.mean() - half, diff.mean() + half], abs=0.01)
    assert r["fp32_sd"] == pytest.approx(4.0) and r["within_fp32_seed_sd"] is True
    with pytest.raises(SystemExit, match="amp bf16"):
        compare(fp32, frame([0.5, 0.5, 0.5], "none"), ["ce"])


def test_verdict_throughput_summarises_a_device_call(tmp_path):
    """The GPU verdict call's summary against a hand count: two runs finished of three
    started, at most two at a time, one of four dmon samples busy; the third run's record,
    written by a later call, is not this call's (recorded.txt)."""
    from bench.gpu.verdict_throughput import summary

    events = tmp_path / "call"
    events.mkdir()
    (events / "events.txt").write_text(
        "100 start gpu-ce-s3-n0.1\n100 start gpu-tan-s3-n0.1\n250 end gpu-ce-s3-n0.1 rc=0\n"
        "250 start gpu-scn-s3-n0.1\n400 end gpu-tan-s3-n0.1 rc=0\n"
    )
    (events / "dmon.txt").write_text("# gpu sm mem\n# Idx % %\n 0 99 5\n 0 0 0\n 0 50 1\n 0 10 0\n")
    records = tmp_path / "records"
    (events / "recorded.txt").write_text("ce-seed3-num_threads=1\ntan-seed3-num_threads=1\n")
    runs = (("ce-seed3-num_threads=1", [10, 300, 500]), ("tan-seed3-num_threads=1", [5, 100, 200, 400]))
    for name, speeds in runs + (("scn-seed3-num_threads=1", [1, 2, 3]),):
        (records / name).mkdir(parents=True)
        (records / name / "history.csv").write_text(
            "epoch,images_per_s\n" + "".join(f"{i},{v}\n" for i, v in enumerate(speeds))
        )
    out = summary(events, records)
    assert out["runs_started"] == 3 and out["runs_finished"] == 2 and out["concurrent"] == 2
    assert out["seconds_per_run"]["by_method"] == {"ce": 150, "tan": 300}
    assert out["seconds_per_run"]["median"] == 225.0
    assert out["images_per_s_per_run_median"] == (400 + 200) / 2  # medians of epochs 2.. : 400 and 200
    assert out["gpu_busy_share"] == 0.25
    assert subprocess.run(["bash", "-n", str(REPO / "bench" / "gpu" / "verdict_runs.sh")]).returncode == 0


def test_bootstrap_benchmark_tiny_asserts_the_kit_equals_the_indexed_reference(tmp_path):
    import numpy as np

    from bench import bench_bootstrap
    from tanlib.analysis import stats as S

    res = bench_bootstrap.main(["--tiny", "--out", str(tmp_path / "b.json")])
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["benchmark"] == "bootstrap" and set(res) == {"seeds3-accuracy", "seeds3-mean_class_accuracy"}
    assert all(r["identical"] and r["indexed_over_counts"]["median"] > 0 for r in res.values())
    values, labels = bench_bootstrap.make_data(4, 200)  # the reference is the replaced code, not a copy of the kit's
    for statistic in ("accuracy", "mean_class_accuracy"):
        want = bench_bootstrap.indexed(values, labels, statistic, 30, seed=2)
        assert np.array_equal(S.hierarchical_bootstrap(values, labels, statistic, n_boot=30, seed=2), want)


def test_page_build_benchmark_tiny_times_both_variants(tmp_path):
    """Benchmark 11 at tiny size: 3 index checks of one records group in a fresh process per
    variant, timed and written as JSON (no timing is asserted)."""
    from bench import bench_page_build

    res = bench_page_build.main(["--tiny", "--out", str(tmp_path / "p.json")])
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["benchmark"] == "page_build" and set(res["verify"]["seconds"]) == {"cached", "uncached"}
    assert res["records"] > 0 and "build" not in res


def test_cpu_verdict_cost_reads_the_cpu_records_alone(tmp_path):
    """The CPU cost summary against a hand count: two CPU records and one GPU record; the
    epoch medians leave the first epoch out; no CPU record, or no folder, is a clear exit."""
    from bench.bench_cpu_verdict_cost import main, summary

    records = tmp_path / "records"
    runs = (
        ("ce-seed0", "cpu", 600.0, [(90, 10), (60, 100), (62, 110), (70, 90)]),
        ("tan-seed0", "cpu", 1200.0, [(99, 1), (80, 70), (70, 80)]),
        ("tan-seed1", "cuda", 60.0, [(9, 900), (3, 2000)]),
    )
    for name, device, seconds, epochs in runs:
        (records / name).mkdir(parents=True)
        (records / name / "env.json").write_text(json.dumps({"device": device, "torch_threads": 1}))
        method = name.split("-seed")[0]
        (records / name / "metrics.json").write_text(json.dumps({"method": method, "seconds": seconds, "amp": "bf16"}))
        (records / name / "history.csv").write_text(
            "epoch,seconds,images_per_s\n" + "".join(f"{i},{s},{v}\n" for i, (s, v) in enumerate(epochs, 1))
        )
    out = summary(records)
    assert out["runs"] == 2 and out["other_devices"] == 1 and out["settings"] == ["bf16, 1 thread(s)"]
    assert out["minutes_per_run"]["by_method"] == {"ce": 10.0, "tan": 20.0}
    assert out["minutes_per_run"]["median"] == 15.0
    assert out["epoch_seconds_median"] == (62 + 75) / 2  # medians of epochs 2..: 62 and (80 + 70) / 2
    assert out["images_per_s_per_run_median"] == (100 + 75) / 2  # 100 and (70 + 80) / 2
    main([str(records), "--out", str(tmp_path / "c.json")])
    assert json.loads((tmp_path / "c.json").read_text())["runs"] == 2
    assert out["records"] == str(records)  # outside the repository: as given; inside: relative to it
    with pytest.raises(SystemExit, match="no record trained on a CPU"):
        summary(records / "tan-seed1")
    with pytest.raises(SystemExit, match="not a folder of run records"):
        summary(tmp_path / "missing")
