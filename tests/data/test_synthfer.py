"""SynthFER: layout, determinism (also across worker counts), ground truth, identities."""

import filecmp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tanlib.cli import main
from tanlib.data import build_manifest, generate_synthfer
from tanlib.data.rafdb import IMAGE_DIR, LABEL_FILE, RAFDB_TRAIN_COUNTS
from tanlib.data.synthfer import CONFUSABLE, META_FILE, class_counts
from tanlib.errors import ConfigError, DataError


def test_layout_and_manifest(synth_root):
    lines = (synth_root / LABEL_FILE).read_text().splitlines()
    assert len(lines) == 175 and lines[0].split()[0] == "train_00001.jpg"
    assert all(1 <= int(line.split()[1]) <= 7 for line in lines)
    with Image.open(synth_root / IMAGE_DIR / "test_00035_aligned.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (48, 48)
    m = build_manifest("synthfer", synth_root)
    assert m.subgroups == ["occluder", "pose_bin", "intensity_bin"]
    for col in ["identity", "clean_label", "noisy", "intensity", "occluder", "yaw", "roll",
                "intensity_bin", "pose_bin", "au12"]:
        assert col in m.frame.columns
    sizes = m.frame.groupby("split").size()
    assert sizes["train"] + sizes["val"] == 140 and 12 <= sizes["val"] <= 17 and sizes["test"] == 35


def test_ground_truth_consistency(synth_root):
    meta = pd.read_csv(synth_root / META_FILE)
    given = {l.split()[0]: int(l.split()[1]) - 1 for l in (synth_root / LABEL_FILE).read_text().splitlines()}
    assert meta["label"].tolist() == [given[n] for n in meta["image"]]
    assert (meta["noisy"] == (meta["label"] != meta["clean_label"])).all()
    train, test = meta[meta.split == "train"], meta[meta.split == "test"]
    assert train["noisy"].sum() == round(0.1 * len(train))
    assert not test["noisy"].any() and (test["label"] == test["clean_label"]).all()
    for _, r in train[train["noisy"]].iterrows():
        assert r["label"] in CONFUSABLE[r["clean_label"]]
    assert not set(train["identity"]) & set(test["identity"])
    assert train["clean_label"].value_counts().sort_index().tolist() == class_counts(140, RAFDB_TRAIN_COUNTS)
    neutral = meta[meta.clean_label == 6]
    assert (neutral["intensity"] == 0).all() and (neutral["intensity_bin"] == "neutral").all()
    # happiness carries its prototype AU12 above its identity bias on average
    assert meta.loc[meta.clean_label == 3, "au12"].mean() > meta.loc[meta.clean_label == 6, "au12"].mean() + 0.3


def test_deterministic_and_independent_of_workers(synth_root, tmp_path):
    other = generate_synthfer(tmp_path / "again", n_train=140, n_test=35, size=48, seed=3, workers=1)
    for rel in (LABEL_FILE, Path(META_FILE)):
        assert filecmp.cmp(synth_root / rel, other / rel, shallow=False)
    for name in ("train_00001_aligned.jpg", "train_00077_aligned.jpg", "test_00035_aligned.jpg"):
        a = np.asarray(Image.open(synth_root / IMAGE_DIR / name))
        b = np.asarray(Image.open(other / IMAGE_DIR / name))
        assert np.array_equal(a, b)
    different = generate_synthfer(tmp_path / "seed4", n_train=14, n_test=7, size=48, seed=4, workers=1)
    assert not filecmp.cmp(synth_root / META_FILE, different / META_FILE, shallow=False)


def test_class_counts_reference():
    assert sum(class_counts(2500, RAFDB_TRAIN_COUNTS)) == 2500
    naive = [round(2500 * c / sum(RAFDB_TRAIN_COUNTS)) for c in RAFDB_TRAIN_COUNTS]
    assert max(abs(a - b) for a, b in zip(class_counts(2500, RAFDB_TRAIN_COUNTS), naive)) <= 1


def test_errors_and_cli(tmp_path, capsys):
    with pytest.raises(ConfigError):
        generate_synthfer(tmp_path / "x", n_train=3)
    with pytest.raises(ConfigError):
        generate_synthfer(tmp_path / "x", label_noise=1.5)
    out = tmp_path / "cli"
    args = ["data", "synth", "--out", str(out), "--n-train", "21", "--n-test", "14", "--size", "40",
            "--workers", "1"]
    assert main(args) == 0
    assert "wrote 35 SynthFER images" in capsys.readouterr().out
    assert main(args) == DataError.exit_code  # refuses to overwrite
    assert main(["data", "check", "--dataset", "synthfer", "--root", str(out)]) == 0
    assert main(["data", "baseline", "--root", str(out), "--size", "16"]) == 0
    assert '"balanced_accuracy"' in capsys.readouterr().out


def test_difficulty_knobs(tmp_path, capsys):
    """intensity_floor bounds every expressive image's intensity from below; resting_bias
    is the per-AU probability of an identity's resting bias (0: none, 1: every AU)."""
    from tanlib.data.synthfer import AUS, identity_params

    out = generate_synthfer(tmp_path / "strong", n_train=70, n_test=14, size=40, seed=1, workers=1,
                            intensity_floor=0.6, resting_bias=0.0)
    meta = pd.read_csv(out / META_FILE)
    expressive = meta[meta.clean_label != 6]
    assert (expressive["intensity"] >= 0.6).all() and expressive["intensity"].max() <= 1.0
    assert all(v == 0 for v in identity_params(1, 5, resting_bias=0.0)["bias"].values())
    assert all(v > 0 for v in identity_params(1, 5, resting_bias=1.0)["bias"].values()) and len(AUS) == 13
    with pytest.raises(ConfigError, match="intensity_floor"):
        generate_synthfer(tmp_path / "x", intensity_floor=1.0)
    with pytest.raises(ConfigError, match="resting_bias"):
        generate_synthfer(tmp_path / "x", resting_bias=-0.1)
    assert main(["data", "synth", "--out", str(tmp_path / "cli"), "--n-train", "14", "--n-test", "7", "--size", "40",
                 "--workers", "1", "--intensity-floor", "0.5", "--resting-bias", "0"]) == 0
    meta = pd.read_csv(tmp_path / "cli" / META_FILE)
    assert (meta.loc[meta.clean_label != 6, "intensity"] >= 0.5).all()
