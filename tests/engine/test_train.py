"""Training runs: run directory contents, refusals, exact resume after a kill, DDP."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from tanlib.config import METHODS
from tanlib.engine import evaluate, load_run, train
from tanlib.errors import DataError, RunDirError, TANError

RUN_FILES = {
    "config.json",
    "env.json",
    "manifest.csv",
    "manifest.json",
    "history.csv",
    "metrics.json",
    "last.pt",
    "best.pt",
    "predictions.csv",
    "embeddings.npz",
}
HISTORY_COLUMNS = {
    "epoch",
    "lr",
    "loss_total",
    "loss_ce",
    "loss_triplet",
    "loss_mahalanobis",
    "loss_rr",
    "train_acc",
    "val_acc",
    "test_acc",
    "attention_mean",
    "attention_std",
    "embedding_spread",
    "active_triplet",
    "active_hard",
    "violating_triplet",
    "violating_hard",
    "metric_weight",
    "n_high",
    "n_triplets",
    "n_hard_triplets",
    "empty_triplet",
    "empty_hard",
    "relabelled",
    "seconds",
}


@pytest.mark.parametrize("method", METHODS)
def test_smoke_run_writes_complete_run_dir(method, smoke_run):
    out = smoke_run(method)
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    run = load_run(out)
    assert run.config.method == method
    assert list(run.history["epoch"]) == [1, 2] and HISTORY_COLUMNS <= set(run.history.columns)
    m = run.metrics
    assert m["method"] == method and m["seed"] == 0 and m["last_epoch"] == 2
    assert {"last", "best_val"} <= set(m["results"])
    assert m["test_selected"]["label"].startswith("test-selected") and m["primary"] == "best_val"
    assert m["train_noisy_auc"] is None if method in ("ce", "triplet") else 0 <= m["train_noisy_auc"] <= 1
    detection = m["noise_detection"]
    assert detection["attention"] == m["train_noisy_auc"] and 0 <= detection["self_confidence"] <= 1
    assert detection["n"] == len(run.manifest.split("train")) and detection["n_noisy"] > 0
    # geometry: every method in the shared feature space, the embedding only where it is trained
    best = m["results"]["best_val"]
    assert 0 < best["geometry_features"]["ratio"] < 2
    assert isinstance(m["collapsed"], bool) and isinstance(m["collapse_reason"], str)
    if run.config.trains_embedding:  # two smoke epochs may or may not collapse; the flag follows the rule
        spread = min(m["results"][k]["geometry"]["mean_distance"] for k in ("best_val", "last"))
        assert m["collapsed"] == (spread < 0.2)
        assert run.vectors("embedding").shape[1] == run.config.embedding_dim
    else:
        assert best["geometry"] is None and "not trained" in m["collapse_reason"]
        with pytest.raises(TANError, match="has no metric term"):
            run.vectors("embedding")
    assert np.allclose(np.linalg.norm(run.vectors("features"), axis=1), 1)
    # numbers in metrics.json come from predictions.csv
    pred = run.predictions
    assert m["results"]["best_val"]["accuracy"] == pytest.approx(pred["correct"].mean())
    assert len(run.embeddings["embedding"]) == len(pred) == m["results"]["best_val"]["n"]
    if method in ("ce", "triplet"):
        assert (run.history["n_high"] == 0).all()
    if method.startswith("tan"):
        assert (run.history["n_hard_triplets"] > 0).all()
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["config"] == run.config.to_dict() and ckpt["epoch"] == 2


def test_existing_run_dir_is_refused_and_kept(smoke, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    with pytest.raises(RunDirError, match="already exists and is not empty"):
        train(smoke("ce"), out)
    with pytest.raises(RunDirError, match="does not look like a run directory"):
        train(smoke("ce"), out, overwrite=True)
    assert (out / "notes.txt").read_text() == "precious"


def test_resume_refuses_a_different_config(smoke, tmp_path):
    threads = torch.get_num_threads()
    out = train(smoke("ce", epochs=1, num_threads=threads + 1), tmp_path / "r", log=lambda *a: None)
    assert torch.get_num_threads() == threads  # the run's thread count ends with the run
    with pytest.raises(TANError, match=r"config differs .*lr: checkpoint 0.001 vs now 0.01"):
        train(smoke("ce", epochs=2, lr=0.01), out, resume=True)
    with pytest.raises(RunDirError, match="cannot resume"):
        train(smoke("ce"), tmp_path / "never", resume=True)


def test_dataset_with_problems_is_refused_unless_skipped(synth_root, smoke, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(synth_root, bad)
    victim = sorted((bad / "Image" / "aligned").glob("train_*"))[3]
    victim.write_bytes(victim.read_bytes()[:100])  # truncated JPEG
    with pytest.raises(DataError, match=victim.name):
        train(smoke("ce", root=str(bad)), tmp_path / "refused")
    assert not (tmp_path / "refused" / "last.pt").exists()
    out = train(smoke("ce", root=str(bad), skip_bad_data=True, epochs=1), tmp_path / "skipped", log=lambda *a: None)
    skipped = pd.read_csv(out / "skipped.csv")
    assert victim.name in " ".join(skipped.astype(str).values.ravel())


def _model_tensors(path):
    return torch.load(path, weights_only=True)["model"]


# A killed and resumed run equals the uninterrupted one: reliability cases F1-F3
# (tests/reliability/test_reliability_faults.py) kill `tan train` at three set points (mid-epoch,
# while last.pt is written, while history.csv is written) and compare weights, history and accuracy.


def test_cli_train_and_evaluate(synth_root, tmp_path):
    from tanlib.cli import main

    out = tmp_path / "cli"
    rc = main(
        [
            "train",
            "--method",
            "ce",
            "--preset",
            "smoke",
            "--root",
            str(synth_root),
            "--out",
            str(out),
            "--set",
            "epochs=1",
            "--set",
            "progress=false",
            "--set",
            "image_size=32",
            "--set",
            "max_train_samples=64",
        ]
    )
    assert rc == 0 and (out / "metrics.json").is_file()
    assert main(["train", "--method", "ce", "--preset", "smoke", "--root", str(synth_root), "--out", str(out)]) == 5
    assert main(["train", "--preset", "smoke", "--out", str(tmp_path / "x"), "--set", "lr=-1"]) == 2
    assert main(["evaluate", str(out), "--checkpoint", "last", "--tta-flip"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert "last+flip" in m["results"] and (out / "predictions_last_flip.csv").is_file()


def test_python_m_engine_train_is_tan_train(capsys):
    """``python -m tanlib.engine.train`` (what torchrun launches) delegates to ``tan train``:
    one command line, in engine/cli.py."""
    import importlib

    from tanlib.engine import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0 and "--method" in capsys.readouterr().out
    assert not hasattr(importlib.import_module("tanlib.engine.train"), "main")


def test_on_step_hook_sees_every_step_and_can_inject_a_fault(smoke, tmp_path):
    """``train(on_step=...)``: the named hook into every training step, before the objective;
    replacing the outputs at step 2 of epoch 2 with NaN logits stops the run there, with
    the previous epoch's checkpoint kept."""
    from tanlib.engine.checkpoint import load_checkpoint
    from tanlib.errors import NonFiniteLossError
    from tanlib.models import TANOutput

    seen = []

    def on_step(epoch, step, out, labels):
        assert isinstance(out, TANOutput) and len(out.logits) == len(labels)
        seen.append((epoch, step))
        if (epoch, step) == (2, 2):
            return out._replace(logits=out.logits * float("nan"))
        return None

    out = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match=r"at step 2 of epoch 2: .*non-finite part\(s\): ce"):
        train(smoke("ce", epochs=2, max_train_samples=96), out, log=lambda *a: None, on_step=on_step)
    n = len(seen) - 2  # the steps of epoch 1
    assert n >= 2 and seen == [(1, s) for s in range(1, n + 1)] + [(2, 1), (2, 2)]
    assert load_checkpoint(out / "last.pt")["epoch"] == 1 and not (out / "metrics.json").exists()


def test_cross_dataset_evaluation_maps_classes(smoke_run, tmp_path):
    import shutil

    from tanlib.data import generate_synthfer

    out = shutil.copytree(smoke_run("ce"), tmp_path / "run")  # evaluate() writes into the run
    other = generate_synthfer(tmp_path / "other", n_train=14, n_test=60, size=48, seed=7, workers=1)
    block = evaluate(out, dataset="synthfer", root=str(other), class_map={"Fear": None})
    assert block["dropped_classes"] == ["Fear"] and block["n"] < 60
    m = json.loads((out / "metrics.json").read_text())
    assert "synthfer/best_val" in m["cross_dataset"]
    with pytest.raises(DataError, match="not classes of the run"):
        evaluate(out, dataset="synthfer", root=str(other), class_map={"Fear": "Terror"})


def test_attention_scale_reads_the_predictions_the_runs_noise_detection_read(smoke_run, tmp_path, capsys):
    """tanlib.analysis.attention_scale and docs/make_attention_scale.py on a finished run: its
    training-face predictions are the ones the run's noise detection ranked (the same AUC, to the
    last bit), and a method without attention is refused by name, before any work."""
    import importlib.util
    from pathlib import Path

    from tanlib.analysis.attention_scale import scale_diagnostics, training_predictions

    run = smoke_run("tan")
    pred, train_split = training_predictions(run)
    got = scale_diagnostics(pred["attention"], pred["logits"], train_split["label"], train_split["clean_label"])
    m = json.loads((run / "metrics.json").read_text())
    assert got["auc_attention"] == m["train_noisy_auc"] and got["n"] == m["noise_detection"]["n"]
    with pytest.raises(RunDirError, match="method 'ce', which has no attention"):
        training_predictions(smoke_run("ce"))

    repo = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("make_attention_scale", repo / "docs" / "make_attention_scale.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    out, fig = tmp_path / "scale.json", tmp_path / "scale.png"
    assert gen.main([str(run), "--out", str(out), "--figure", str(fig)]) == 0
    (row,) = json.loads(out.read_text())["runs"]
    assert row["run"] == run.name and row["method"] == "tan" and row["records"] == []
    assert row["auc_attention"] == m["train_noisy_auc"] and row["r_log_norm"] == pytest.approx(got["r_log_norm"])
    assert fig.stat().st_size > 10_000 and "off the scale" in capsys.readouterr().out
    redrawn = tmp_path / "redrawn.png"
    assert gen.main(["--redraw", "--out", str(out), "--figure", str(redrawn)]) == 0
    assert redrawn.read_bytes() == fig.read_bytes()
    assert gen.main(["--redraw", "--out", str(tmp_path / "none.json"), "--figure", str(redrawn)]) == 2
    assert "none.json: no such file" in capsys.readouterr().err
    before = out.read_text()
    assert gen.main([str(run), str(smoke_run("ce")), "--out", str(out), "--figure", str(fig)]) == 2
    assert "without attention" in capsys.readouterr().err and out.read_text() == before


@pytest.mark.slow(98)
def test_ddp_two_processes_on_cpu(smoke, tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    cfg = smoke("tan", epochs=1, num_threads=1)
    cfg.save(tmp_path / "cfg.json")
    out = tmp_path / "ddp"
    res = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "tanlib.engine.train",
            "--config",
            str(tmp_path / "cfg.json"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    run = load_run(out)
    assert json.loads((out / "env.json").read_text())["world_size"] == 2
    assert len(run.history) == 1 and run.history["n_hard_triplets"].iloc[0] > 0
    assert 0 <= run.metrics["results"]["best_val"]["accuracy"] <= 1


def test_forced_collapse_is_flagged_in_metrics_and_log(smoke, tmp_path, monkeypatch):
    """A network whose embedding is one point for every image (what batch-hard mining can
    converge to) must end with collapsed=true, a reason, and warnings in the log."""
    from tanlib.models import tan_net

    forward = tan_net.TANNet.forward

    def collapsed_forward(self, x):
        out = forward(self, x)
        point = torch.nn.functional.normalize(torch.ones_like(out.embedding) + 1e-3 * out.embedding, dim=1)
        return out._replace(embedding=point)

    monkeypatch.setattr(tan_net.TANNet, "forward", collapsed_forward)
    lines = []
    out = train(smoke("triplet", epochs=1, max_train_samples=64), tmp_path / "collapsed", log=lines.append)
    m = json.loads((out / "metrics.json").read_text())
    assert m["collapsed"] is True and "mean pairwise distance of 0.00" in m["collapse_reason"]
    assert any("embedding is collapsing" in line for line in lines)
    assert any(line.startswith("warning: collapsed run") for line in lines)
    from tanlib.report import collapse_lines, collect_records, runs_table

    records = collect_records([tmp_path])
    assert runs_table(records)["embedding"].tolist() == ["collapsed"]
    assert "collapsed" in collapse_lines(records)[0] and "`collapsed`" in collapse_lines(records)[2]


def test_sampler_that_cannot_fill_a_batch_is_a_config_error_before_training(smoke, tmp_path):
    from tanlib.errors import ConfigError

    with pytest.raises(ConfigError, match="m_per_class=4 and 7 classes"):
        train(smoke("tan", sampler="m_per_class", m_per_class=4), tmp_path / "pk", log=lambda *a: None)
    assert not (tmp_path / "pk" / "last.pt").exists()


def test_a_cpu_run_repeats_exactly_without_deterministic(smoke, smoke_run, tmp_path):
    """Why the variance model's repeats use another thread count (docs/results.md): on one
    machine with one thread count a run repeated gives the same weights, history and accuracy, with deterministic=false
    too; what moves results is another floating-point order (thread count, CPU, build)."""
    cfg = smoke("tan")
    assert cfg.deterministic is False
    runs = [smoke_run("tan"), train(cfg, tmp_path / "again", log=lambda *a: None)]
    a, b = (_model_tensors(p / "last.pt") for p in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ha, hb = (pd.read_csv(p / "history.csv").drop(columns=["seconds", "images_per_s"]) for p in runs)
    pd.testing.assert_frame_equal(ha, hb)


def test_weight_average_is_the_moving_average_of_the_weights_and_batchnorm_statistics(smoke):
    """``build_weight_average`` against an explicit loop: after the first update (a copy),
    each update moves every parameter and BatchNorm running statistic a share 1 - decay of
    the way to the trained model's."""
    from tanlib.engine.train import build_weight_average

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    assert build_weight_average(smoke("ce"), model) is None  # ema_decay=0: no average
    ema = build_weight_average(smoke("ce", ema_decay=0.9), model)
    reference = None
    for _ in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(8, 3))  # train mode: the running statistics move
        ema.update_parameters(model)
        now = {k: v.clone().double() for k, v in model.state_dict().items() if v.is_floating_point()}
        if reference is None:
            reference = now
        else:
            for k in reference:
                reference[k] = 0.9 * reference[k] + 0.1 * now[k]
    got = ema.module.state_dict()
    assert set(reference) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"}
    for k, v in reference.items():
        assert torch.allclose(got[k].double(), v, atol=1e-6), k
        assert not torch.allclose(got[k].double(), model.state_dict()[k].double()), k


def test_a_weight_average_leaves_the_training_alone_and_resumes_exactly(smoke, tmp_path):
    """With ``ema_decay`` the optimiser trains the same weights as without it (same seed,
    deterministic); the checkpoints hold the average (what every epoch evaluates) beside
    the trained weights; a run stopped after epoch 1 and resumed ends as one never stopped."""
    quiet = dict(log=lambda *a: None)
    base = dict(epochs=2, deterministic=True)
    plain = train(smoke("ce", **base), tmp_path / "plain", **quiet)
    averaged = train(smoke("ce", ema_decay=0.5, **base), tmp_path / "ema", **quiet)
    trained = torch.load(averaged / "last.pt", weights_only=True)
    for k, v in _model_tensors(plain / "last.pt").items():
        assert torch.equal(trained["train_model"][k], v), k
    assert trained["ema_n_averaged"] == 2 * 2  # 2 steps an epoch
    assert any(not torch.equal(v, trained["train_model"][k]) for k, v in trained["model"].items())
    assert "train_model" not in torch.load(averaged / "best.pt", weights_only=True)

    stopped = train(smoke("ce", ema_decay=0.5, **{**base, "epochs": 1}), tmp_path / "resumed", **quiet)
    resumed = torch.load(train(smoke("ce", ema_decay=0.5, **base), stopped, resume=True, **quiet) / "last.pt")
    for key in ("model", "train_model"):
        for k, v in trained[key].items():
            assert torch.equal(resumed[key][k], v), (key, k)
    assert (
        pd.read_csv(stopped / "history.csv")["val_acc"].tolist()
        == pd.read_csv(averaged / "history.csv")["val_acc"].tolist()
    )
    with pytest.raises(TANError, match="ema_decay=1.0 is out of range"):
        smoke("ce", ema_decay=1.0)
