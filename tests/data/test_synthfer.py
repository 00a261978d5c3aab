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
    for col in [
        "identity",
        "clean_label",
        "noisy",
        "intensity",
        "occluder",
        "yaw",
        "roll",
        "intensity_bin",
        "pose_bin",
        "au12",
    ]:
        assert col in m.frame.columns
    sizes = m.frame.groupby("split").size()
    assert sizes["train"] + sizes["val"] == 140 and 12 <= sizes["val"] <= 17 and sizes["test"] == 35


def test_ground_truth_consistency(synth_root):
    meta = pd.read_csv(synth_root / META_FILE)
    given = {line.split()[0]: int(line.split()[1]) - 1 for line in (synth_root / LABEL_FILE).read_text().splitlines()}
    assert meta["label"].tolist() == [given[n] for n in meta["image"]]
    assert (meta["noisy"] == (meta["label"] != meta["clean_label"])).all()
    train, test = meta[meta.split == "train"], meta[meta.split == "test"]
    assert abs(train["noisy"].sum() - round(0.1 * len(train))) <= 1  # the annotators model, the default
    assert not test["noisy"].any() and (test["label"] == test["clean_label"]).all()
    votes = meta.filter(like="votes_").to_numpy()
    assert (votes.sum(1) == 10).all() and (votes.argmax(1)[test.index] == test["clean_label"]).all()
    # the given label is the majority of the votes (a tie with the clean label keeps it)
    top = votes.max(1)
    assert (votes[np.arange(len(meta)), meta["label"]] == top).all()
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
    args = ["data", "synth", "--out", str(out), "--n-train", "21", "--n-test", "14", "--size", "40", "--workers", "1"]
    assert main(args) == 0
    assert "wrote 35 SynthFER images" in capsys.readouterr().out
    assert main(args) == DataError.exit_code  # refuses to overwrite
    assert main(["data", "check", "--dataset", "synthfer", "--root", str(out)]) == 0
    assert main(["data", "baseline", "--root", str(out), "--size", "16"]) == 0
    assert '"balanced_accuracy"' in capsys.readouterr().out


def test_difficulty_knobs(tmp_path, capsys):
    """intensity_floor bounds every expressive image's intensity from below; resting_bias
    is the per-AU probability of an identity's resting bias (0: none, 1: every AU)."""
    from tanlib.data.synthdraw import AUS, identity_params

    out = generate_synthfer(
        tmp_path / "strong", n_train=70, n_test=14, size=40, seed=1, workers=1, intensity_floor=0.6, resting_bias=0.0
    )
    meta = pd.read_csv(out / META_FILE)
    expressive = meta[meta.clean_label != 6]
    assert (expressive["intensity"] >= 0.6).all() and expressive["intensity"].max() <= 1.0
    assert all(v == 0 for v in identity_params(1, 5, resting_bias=0.0)["bias"].values())
    assert all(v > 0 for v in identity_params(1, 5, resting_bias=1.0)["bias"].values()) and len(AUS) == 13
    with pytest.raises(ConfigError, match="intensity_floor"):
        generate_synthfer(tmp_path / "x", intensity_floor=1.0)
    with pytest.raises(ConfigError, match="resting_bias"):
        generate_synthfer(tmp_path / "x", resting_bias=-0.1)
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(tmp_path / "cli"),
                "--n-train",
                "14",
                "--n-test",
                "7",
                "--size",
                "40",
                "--workers",
                "1",
                "--intensity-floor",
                "0.5",
                "--resting-bias",
                "0",
            ]
        )
        == 0
    )
    meta = pd.read_csv(tmp_path / "cli" / META_FILE)
    assert (meta.loc[meta.clean_label != 6, "intensity"] >= 0.5).all()


V2_DIGEST = "bdda17dc2df4a66bda5a55a1d07ab4b73a2d281b131a497199b95dafad520a48"


def _digest(root: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for p in sorted((root / IMAGE_DIR).iterdir()):
        h.update(p.read_bytes())
    h.update((root / LABEL_FILE).read_bytes())
    return h.hexdigest()


def test_uniform_model_without_blends_draws_version_2(tmp_path):
    """``noise_model="uniform", blend_fraction=0`` gives, byte for byte, the images and
    labels that generator version 2 wrote (digest taken from version 2's code)."""
    out = generate_synthfer(
        tmp_path / "v2", n_train=28, n_test=14, size=32, seed=5, workers=1, noise_model="uniform", blend_fraction=0.0
    )
    assert _digest(out) == V2_DIGEST
    meta = pd.read_csv(out / META_FILE)
    train = meta[meta.split == "train"]
    assert train["noisy"].sum() == 3 and not meta.filter(like="votes_").columns.size
    for _, r in train[train["noisy"]].iterrows():
        assert r["label"] in CONFUSABLE[r["clean_label"]]
    import json

    settings = json.loads((out / "synthfer_settings.json").read_text())
    assert settings["noise_model"] == "uniform" and settings["generator_version"] == 3


def _faces(n=4000, seed=0):
    """A meta frame of n training faces (no pixels) for the vote simulation."""
    from tanlib.data.synthdraw import BLENDS

    rng = np.random.default_rng(seed)
    clean = rng.integers(0, 7, n)
    expressive = clean != 6
    blended = expressive & (rng.uniform(size=n) < 0.25)
    return pd.DataFrame(
        {
            "clean_label": clean,
            "intensity": np.where(expressive, 0.35 + 0.65 * rng.beta(2.2, 1.5, n), 0.0),
            "blend_label": [int(rng.choice(BLENDS[c])) if b else -1 for c, b in zip(clean, blended)],
            "blend_weight": np.where(blended, rng.uniform(0.3, 0.8, n), 0.0),
            "occluder": rng.choice(
                ["none", "glasses", "sunglasses", "hand", "mask"], n, p=[0.8, 0.06, 0.04, 0.05, 0.05]
            ),
            "pose_bin": rng.choice(["frontal", "slight", "strong"], n, p=[0.5, 0.35, 0.15]),
        }
    )


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_annotator_votes_rate_ambiguity_and_where_wrong_labels_go(rate):
    from sklearn.metrics import roc_auc_score

    from tanlib.data.synthfer import annotator_votes

    faces = _faces()
    votes, label = annotator_votes(faces, rate, seed=1)
    clean = faces["clean_label"].to_numpy()
    noisy = label != clean
    assert abs(noisy.mean() - rate) <= 1 / len(faces)  # the rate is hit by the bisection
    assert (votes.sum(1) == 10).all() and (votes[np.arange(len(faces)), label] == votes.max(1)).all()
    expressive = clean != 6
    # wrong labels fall on weak faces: low intensity detects them far above chance
    assert roc_auc_score(noisy[expressive], -faces["intensity"][expressive]) > 0.65
    blended = faces["blend_label"].to_numpy() >= 0
    assert noisy[blended].mean() > 2 * noisy[~blended].mean()
    # a wrong label is a class the face resembles: its blend partner, Neutral or a confusable class
    for i in np.flatnonzero(noisy):
        allowed = set(CONFUSABLE[clean[i]]) | ({6} if clean[i] != 6 else set()) | {faces["blend_label"][i]}
        assert label[i] in allowed
    # noise, not a new labelling rule: at 30 % too, the given labels of every clean class name
    # that class more often than any other
    for k in range(7):
        assert np.bincount(label[clean == k], minlength=7).argmax() == k
    again = annotator_votes(faces, rate, seed=1)
    assert np.array_equal(again[0], votes) and not np.array_equal(annotator_votes(faces, rate, seed=2)[1], label)


def test_noise_model_option_and_errors(tmp_path):
    """An unknown noise model is refused with the allowed ones named; the CLI passes
    --noise-model and --label-noise through to the settings file."""
    import json

    with pytest.raises(
        ConfigError, match="noise_model='votes' is not allowed; choose one of annotators, uniform, random$"
    ):
        generate_synthfer(tmp_path / "x", noise_model="votes")
    with pytest.raises(ConfigError, match="blend_fraction"):
        generate_synthfer(tmp_path / "x", blend_fraction=2.0)
    out = tmp_path / "cli"
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(out),
                "--n-train",
                "21",
                "--n-test",
                "7",
                "--size",
                "32",
                "--workers",
                "1",
                "--noise-model",
                "uniform",
                "--label-noise",
                "0.2",
            ]
        )
        == 0
    )
    settings = json.loads((out / "synthfer_settings.json").read_text())
    assert (settings["noise_model"], settings["label_noise"], settings["blend_fraction"]) == ("uniform", 0.2, 0.25)


def _naive_random_flips(clean, label_noise, seed):
    """The ``random`` model written out with loops: round(label_noise * n) distinct positions
    from the stream (seed, 3), then, position by position in increasing order, one of the 6
    other classes, counted on round the 7 classes from the clean one."""
    rng = np.random.default_rng([seed, 3])
    n = len(clean)
    positions = sorted(rng.choice(n, int(round(label_noise * n)), replace=False).tolist())
    steps = rng.integers(1, 7, size=len(positions)).tolist()
    given = [int(c) for c in clean]
    for i, step in zip(positions, steps):
        others = [(int(clean[i]) + k) % 7 for k in range(1, 7)]  # never the clean class
        given[i] = others[step - 1]
    return given


@pytest.mark.parametrize(("n", "label_noise", "seed"), [(70, 0.1, 0), (140, 0.3, 1), (139, 0.45, 7), (70, 0.0, 2)])
def test_random_flips_against_a_naive_reference(n, label_noise, seed):
    """random_flips flips exactly round(p * n) labels, each to a class other than its
    clean one, leaves every other label as it was and equals the loop reference (the
    stream (seed, RANDOM_FLIP_STREAM)); the same seed repeats it, another seed does not."""
    from tanlib.data.synthfer import RANDOM_FLIP_STREAM, random_flips

    assert RANDOM_FLIP_STREAM == 3
    clean = np.random.default_rng(100 + seed).integers(0, 7, n)
    before = clean.copy()
    given = random_flips(clean, label_noise, seed)
    assert np.array_equal(clean, before)  # the input is not modified
    reference = _naive_random_flips(clean, label_noise, seed)
    assert given.tolist() == reference
    flipped = [i for i in range(n) if given[i] != clean[i]]
    assert len(flipped) == round(label_noise * n)
    for i in range(n):
        assert 0 <= given[i] <= 6
        if i not in flipped:
            assert given[i] == clean[i]
    assert np.array_equal(random_flips(clean, label_noise, seed), given)
    if flipped:
        assert not np.array_equal(random_flips(clean, label_noise, seed + 1), given)


def test_random_flips_keep_each_class_and_spread_wrong_labels_uniformly():
    """On 7 x 10,000 labels at 30 %: exactly 21,000 flips; every clean class is still named
    by its own label most often (noise, not a new labelling rule), and its wrong labels are
    spread evenly over the 6 other classes (each 5 % of the class expected, 3-7 % allowed)."""
    from tanlib.data.synthfer import random_flips

    clean = np.repeat(np.arange(7), 10000)
    np.random.default_rng(0).shuffle(clean)
    given = random_flips(clean, 0.3, seed=11)
    assert (given != clean).sum() == 21000
    for k in range(7):
        counts = np.bincount(given[clean == k], minlength=7)
        assert counts.argmax() == k and counts[k] > 0.65 * 10000
        for j in range(7):
            if j != k:
                assert 0.03 * 10000 <= counts[j] <= 0.07 * 10000, (k, j, counts)


@pytest.fixture(scope="module")
def random_noise_roots(tmp_path_factory):
    """The same small SynthFER at 30 % and at 0 % label noise with the ``random`` model."""
    base = tmp_path_factory.mktemp("random-noise")
    kw = dict(n_train=140, n_test=21, size=32, seed=2, workers=1, noise_model="random")
    return generate_synthfer(base / "p30", label_noise=0.3, **kw), generate_synthfer(base / "p0", label_noise=0.0, **kw)


def test_random_model_changes_only_training_labels(random_noise_roots, tmp_path):
    """``noise_model="random"`` at 30 % writes, byte for byte, the images of the same
    settings at 0 %, the same test split and clean labels, and flips exactly 42 of the 140
    training labels to another class; ``noisy`` marks exactly those, the label file holds
    the meta's labels and the settings file the model. At 0 % the annotators and uniform
    models write the same images and label file as ``random`` (why synthfer_departures
    ignores the noise model without noise)."""
    import json

    noisy_root, clean_root = random_noise_roots
    names = sorted(p.name for p in (clean_root / IMAGE_DIR).iterdir())
    assert len(names) == 161 and names == sorted(p.name for p in (noisy_root / IMAGE_DIR).iterdir())
    for name in names:
        assert (noisy_root / IMAGE_DIR / name).read_bytes() == (clean_root / IMAGE_DIR / name).read_bytes()
    noisy, clean = pd.read_csv(noisy_root / META_FILE), pd.read_csv(clean_root / META_FILE)
    assert list(noisy.columns) == list(clean.columns) and not noisy.filter(like="votes_").columns.size
    test = noisy["split"] == "test"
    pd.testing.assert_frame_equal(noisy[test], clean[test])
    pd.testing.assert_frame_equal(noisy.drop(columns=["label", "noisy"]), clean.drop(columns=["label", "noisy"]))
    assert not clean["noisy"].any() and (clean["label"] == clean["clean_label"]).all()
    changed = noisy["label"] != clean["label"]
    assert changed.sum() == round(0.3 * 140) and not changed[test].any()
    assert (noisy["noisy"] == changed).all() and (noisy["noisy"] == (noisy["label"] != noisy["clean_label"])).all()
    for root, meta in ((noisy_root, noisy), (clean_root, clean)):
        given = {line.split()[0]: int(line.split()[1]) - 1 for line in (root / LABEL_FILE).read_text().splitlines()}
        assert meta["label"].tolist() == [given[n] for n in meta["image"]]
    lines = (noisy_root / LABEL_FILE).read_text().splitlines()
    assert lines[140:] == (clean_root / LABEL_FILE).read_text().splitlines()[140:]
    settings = json.loads((noisy_root / "synthfer_settings.json").read_text())
    assert (settings["noise_model"], settings["label_noise"], settings["generator_version"]) == ("random", 0.3, 3)
    for model in ("annotators", "uniform"):
        other = generate_synthfer(
            tmp_path / model, n_train=140, n_test=21, size=32, seed=2, workers=1, noise_model=model, label_noise=0.0
        )
        assert filecmp.cmp(other / LABEL_FILE, clean_root / LABEL_FILE, shallow=False)
        assert _digest(other) == _digest(clean_root)


def test_random_model_independent_of_workers(random_noise_roots, tmp_path):
    """The ``random`` model with 2 workers writes the label, meta and image files of 1 worker."""
    noisy_root, _ = random_noise_roots
    other = generate_synthfer(
        tmp_path / "w2", n_train=140, n_test=21, size=32, seed=2, workers=2, noise_model="random", label_noise=0.3
    )
    for rel in (LABEL_FILE, Path(META_FILE)):
        assert filecmp.cmp(noisy_root / rel, other / rel, shallow=False)
    assert _digest(other) == _digest(noisy_root)


def test_the_parameters_without_the_faces_are_the_rendered_faces_parameters():
    """sample_image(render=False) gives each face's ground-truth record without drawing it
    (the difficulty baseline reads 10,000 of them): the same record as the rendered face's,
    blends, occluders and identities included, for a train, test and synthface stream."""
    from tanlib.data.synthdraw import sample_image

    for split in ("train", "test", "synthface"):
        for index in range(12):
            args = (3, split, index, index % 7, index // 3, 0.5, 48, 0.35, 0.05, 0.5)
            image, record = sample_image(*args)
            none, alone = sample_image(*args, render=False)
            assert image.size == (48, 48) and none is None
            assert alone == record
