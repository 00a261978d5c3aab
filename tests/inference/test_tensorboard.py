"""TensorBoard (config key ``tensorboard``): scalars equal history.csv, attention
histograms, the test split's embedding projector; a clear error when not installed."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from tanlib.config import preset
from tanlib.engine.tensorboard import scalar_tag
from tanlib.errors import ConfigError


def test_missing_tensorboard_is_a_config_error_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    from tanlib.engine import train

    config = preset("tan", "smoke", root=str(tmp_path / "nowhere"), tensorboard=True, progress=False)
    with pytest.raises(ConfigError, match=r"tensorboard=true needs the tensorboard package.*tanlib\[tensorboard\]"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists() and not (tmp_path / "nowhere").exists()


def test_scalar_tags():
    assert [scalar_tag(c) for c in ("loss_total", "val_acc", "lr", "seconds", "n_high")] == [
        "loss/total",
        "accuracy/val",
        "optim/lr",
        "speed/seconds",
        "train/n_high",
    ]


def test_events_match_the_history(inference_run):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    logdir = inference_run / "tensorboard"
    assert logdir.is_dir()
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    history = pd.read_csv(inference_run / "history.csv")
    tags = acc.Tags()
    for column in ("loss_total", "loss_ce", "train_acc", "val_acc", "test_acc", "lr", "attention_mean"):
        events = acc.Scalars(scalar_tag(column))
        assert [e.step for e in events] == list(history["epoch"])
        np.testing.assert_allclose([e.value for e in events], history[column], rtol=1e-6)
    for split in ("val", "test"):
        assert f"attention/{split}" in tags["histograms"]
        hist = acc.Histograms(f"attention/{split}")
        assert [h.step for h in hist] == list(history["epoch"])
        assert 0 < hist[-1].histogram_value.min <= hist[-1].histogram_value.max < 1


def test_projector_holds_the_test_embeddings(inference_run):
    pytest.importorskip("tensorboard")
    logdir = inference_run / "tensorboard"
    config = (logdir / "projector_config.pbtxt").read_text()
    assert "test_embedding" in config and "sprite" in config
    with np.load(inference_run / "embeddings.npz") as z:
        embedding = z["embedding"]
    (folder,) = [p.parent for p in logdir.rglob("tensors.tsv")]
    tensors = np.loadtxt(folder / "tensors.tsv", delimiter="\t")
    np.testing.assert_allclose(tensors, embedding, atol=1e-5)
    meta = pd.read_csv(folder / "metadata.tsv", sep="\t")
    pred = pd.read_csv(inference_run / "predictions.csv")
    assert list(meta.columns) == ["label", "pred", "correct", "attention"]
    assert list(meta["label"]) == list(pred["class_name"]) and list(meta["pred"]) == list(pred["pred_name"])
    assert (folder / "sprite.png").is_file()
