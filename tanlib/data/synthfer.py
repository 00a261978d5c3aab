"""SynthFER: procedural facial-expression datasets with known ground truth (docs/synthfer.md).

The faces are drawn by ``tanlib.data.synthdraw``; this module plans and writes a dataset.
Class frequencies follow RAF-DB (train and test), train and test identities are disjoint
and a fraction of train labels is wrong: by default the majority of simulated annotator
votes, driven by each image's ambiguity (``annotator_votes``), flipped along
confusable pairs (``noise_model="uniform"``), or flipped to a random other class
(``noise_model="random"``, the protocol of SCN's RAF-DB experiments: Wang et al., "Suppressing
Uncertainties for Large-Scale Facial Expression Recognition", CVPR 2020, section 4.4).
Output is the RAF-DB basic layout plus ``synthfer_meta.csv``; ``synthfer_settings.json`` records the settings and
``GENERATOR_VERSION``.

Every image is drawn from its own generator seeded by (seed, split, index) and every
identity from (seed, identity), so the output does not depend on the number of workers.
The generator keys are ``[seed, stream, index]`` with one ``stream`` word per kind of
draw (``synthdraw.STREAMS``); SynthFace, the identity set of ``tanlib.data.synthface``,
draws from streams of its own, which is what keeps its identities out of every SynthFER
dataset.
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from .problems import Problem
from .rafdb import IMAGE_DIR, LABEL_FILE, RAFDB_CLASSES, RAFDB_TEST_COUNTS, RAFDB_TRAIN_COUNTS, image_path, read_rafdb
from .synthdraw import sample_image

META_FILE = "synthfer_meta.csv"
# label noise flips a class to one of its confusable partners
CONFUSABLE = {0: [1], 1: [0], 2: [5], 5: [2], 4: [6], 6: [4, 3], 3: [6]}
NOISE_MODELS = ("annotators", "uniform", "random")
#: the generator stream of the ``random`` model's flips (see synthdraw.STREAMS)
RANDOM_FLIP_STREAM = 3
NEUTRAL = 6
# how much each occluder hides the expression (mask and hand: the mouth; sunglasses: the eyes)
OCCLUDER_AMBIGUITY = {"none": 0.0, "glasses": 0.05, "sunglasses": 0.45, "hand": 0.35, "mask": 0.6}
#: Bumped whenever the same settings would draw different images; stored in SETTINGS_FILE.
#: 1: the first release (intensity 0.15 + 0.85 Beta, resting bias p 0.25, spurious AUs p 0.12).
#: 2: intensity_floor and resting_bias became settings (defaults 0.35 and 0.05), spurious AUs p 0.05.
#: 3: noise_model (default "annotators": majority of simulated votes, driven by ambiguity),
#:    n_annotators and blend_fraction (compound expressions); "uniform" with blend_fraction 0
#:    draws the images and labels of version 2. (The ``random`` model, added later, draws no
#:    image or label of an existing setting differently, so it did not bump the version.)
GENERATOR_VERSION = 3
SETTINGS_FILE = "synthfer_settings.json"


def class_counts(n: int, reference: list[int]) -> list[int]:
    """Split n into per-class counts proportional to ``reference`` (largest remainder),
    with at least one image per class (taken from the largest class)."""
    p = np.asarray(reference, float) / sum(reference)
    base = np.floor(p * n).astype(int)
    order = np.argsort(-(p * n - base), kind="stable")
    base[order[: n - base.sum()]] += 1
    for k in np.flatnonzero(base == 0):
        base[np.argmax(base)] -= 1
        base[k] = 1
    return base.tolist()


# ----------------------------------------------------------------------------- drawing


def _render_chunk(args):
    out_dir, seed, size, occluder_fraction, intensity_floor, resting_bias, blend_fraction, jobs = args
    recs = []
    for split, index, name, label, identity in jobs:
        img, rec = sample_image(
            seed, split, index, label, identity, occluder_fraction, size, intensity_floor, resting_bias, blend_fraction
        )
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=rec["jpeg_quality"])
        image_path(Path(out_dir), name).write_bytes(buf.getvalue())
        recs.append(rec)
    return recs


def plan_synthfer(n_train: int, n_test: int, label_noise: float, seed: int, images_per_identity: int) -> pd.DataFrame:
    """Per image: name, split, identity, clean_label, label (given), noisy. No pixels.

    ``label_noise`` here is the ``uniform`` model's flip; pass 0 for the ``annotators``
    model, whose labels follow from the rendered faces (``annotator_votes``)."""
    rng = np.random.default_rng([seed, 0])
    frames, next_id = [], 0
    for split, n, ref in (("train", n_train, RAFDB_TRAIN_COUNTS), ("test", n_test, RAFDB_TEST_COUNTS)):
        labels = np.repeat(np.arange(7), class_counts(n, ref))
        rng.shuffle(labels)
        n_id = max(1, math.ceil(n / images_per_identity))
        identity = next_id + rng.permutation(np.arange(n) % n_id)
        next_id += n_id
        given = labels.copy()
        if split == "train" and label_noise > 0:
            for i in np.sort(rng.choice(n, int(round(label_noise * n)), replace=False)):
                given[i] = rng.choice(CONFUSABLE[int(labels[i])])
        frames.append(
            pd.DataFrame(
                {
                    "image": [f"{split}_{i + 1:05d}.jpg" for i in range(n)],
                    "split": split,
                    "identity": identity,
                    "label": given,
                    "clean_label": labels,
                    "noisy": given != labels,
                    "index": np.arange(n),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def ambiguity(meta: pd.DataFrame, intensity_floor: float) -> np.ndarray:
    """How ambiguous each face is, in [0, 1): 1 - prod(1 - c) over its causes: weakness
    (0.8 at the intensity floor, 0 at full intensity; Neutral faces are not weak), the
    blend weight of a second expression, the occluder (``OCCLUDER_AMBIGUITY``) and the
    pose (0.25 for a strong pose, 0.08 for a slight one)."""
    expressive = meta["clean_label"].to_numpy() != NEUTRAL
    span = max(1.0 - intensity_floor, 1e-6)
    weak = np.where(expressive, 0.8 * np.clip((1.0 - meta["intensity"].to_numpy()) / span, 0, 1), 0.0)
    causes = [
        weak,
        meta["blend_weight"].to_numpy(float),
        meta["occluder"].map(OCCLUDER_AMBIGUITY).to_numpy(float),
        meta["pose_bin"].map({"frontal": 0.0, "slight": 0.08, "strong": 0.25}).to_numpy(float),
    ]
    keep = np.ones(len(meta))
    for c in causes:
        keep = keep * (1.0 - c)
    return 1.0 - keep


def annotator_votes(
    meta: pd.DataFrame, label_noise: float, seed: int, n_annotators: int = 10, intensity_floor: float = 0.35
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated votes of ``n_annotators`` per face (``meta``: clean_label, intensity,
    blend_label, blend_weight, occluder, pose_bin) and the majority label.

    Annotator j errs on face i when ``U_ij < min(s * u_i ** 2, 0.9)`` (``u`` the
    ``ambiguity``); an erring annotator votes for a class the face resembles, drawn with
    weights: the blend partner (its blend weight), Neutral (the face's weakness) and the
    confusable classes (0.3 in all). The majority is the given label (a tie that
    includes the clean label keeps it). The uniforms are drawn once, so the number of wrong
    majorities grows with s, and s is found by bisection so that their share is as close
    as possible to ``label_noise``. Returns (votes of shape (n, 7), majority labels)."""
    n = len(meta)
    clean = meta["clean_label"].to_numpy().astype(int)
    u = ambiguity(meta, intensity_floor)
    rng = np.random.default_rng([seed, 4])
    err_u = rng.uniform(size=(n, n_annotators))
    pick_u = rng.uniform(size=(n, n_annotators))
    # where an erring annotator's vote goes: a per-face distribution over the 7 classes
    weights = np.zeros((n, 7))
    span = max(1.0 - intensity_floor, 1e-6)
    expressive = clean != NEUTRAL
    weights[expressive, NEUTRAL] = np.clip((1.0 - meta["intensity"].to_numpy()[expressive]) / span, 0, 1)
    blend = meta["blend_label"].to_numpy().astype(int)
    has_blend = blend >= 0
    weights[np.flatnonzero(has_blend), blend[has_blend]] += meta["blend_weight"].to_numpy(float)[has_blend]
    for i, c in enumerate(clean):
        for k in CONFUSABLE[int(c)]:
            weights[i, k] += 0.3 / len(CONFUSABLE[int(c)])
    weights[np.arange(n), clean] = 0.0
    cdf = np.cumsum(weights / weights.sum(1, keepdims=True), axis=1)
    wrong_class = np.minimum((pick_u[..., None] > cdf[:, None, :]).sum(-1), 6)

    def vote(s: float):
        err = err_u < np.minimum(s * u**2, 0.9)[:, None]
        cast = np.where(err, wrong_class, clean[:, None])
        votes = np.zeros((n, 7), dtype=int)
        np.add.at(votes, (np.repeat(np.arange(n), n_annotators), cast.ravel()), 1)
        top = votes.max(1)
        majority = np.where(votes[np.arange(n), clean] == top, clean, votes.argmax(1))
        return votes, majority

    target = int(round(label_noise * n))
    lo, hi = 0.0, 64.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (vote(mid)[1] != clean).sum() < target:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda s: abs(int((vote(s)[1] != clean).sum()) - target))
    return vote(best)


def random_flips(clean: np.ndarray, label_noise: float, seed: int) -> np.ndarray:
    """The ``random`` noise model: exactly ``round(label_noise * n)`` of the labels
    ``clean``, chosen at random, each replaced by one of the 6 other classes drawn
    uniformly, as SCN corrupts RAF-DB (Wang et al., CVPR 2020, section 4.4). The draws come
    from their own stream ``(seed, RANDOM_FLIP_STREAM)``, so the images, identities and the
    test split are those of the same dataset at 0 % noise. Returns the given labels."""
    clean = np.asarray(clean).astype(int)
    rng = np.random.default_rng([seed, RANDOM_FLIP_STREAM])
    chosen = np.sort(rng.choice(len(clean), int(round(label_noise * len(clean))), replace=False))
    given = clean.copy()
    # an offset of 1-6 classes away: uniform over the other classes, never the clean one
    given[chosen] = (clean[chosen] + rng.integers(1, 7, size=len(chosen))) % 7
    return given


def generate_synthfer(
    out_dir: str | Path,
    n_train: int = 2500,
    n_test: int = 700,
    size: int = 100,
    label_noise: float = 0.1,
    seed: int = 0,
    images_per_identity: int = 8,
    occluder_fraction: float = 0.2,
    intensity_floor: float = 0.35,
    resting_bias: float = 0.05,
    noise_model: str = "annotators",
    n_annotators: int = 10,
    blend_fraction: float = 0.25,
    workers: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a SynthFER dataset in RAF-DB basic layout to ``out_dir``; return the path.

    ``intensity_floor``: expression intensities are drawn as ``floor + (1 - floor) *
    Beta(2.2, 1.5)``; ``resting_bias``: per identity and action unit, the probability of a
    resting bias (up to 0.3) that every image of that person carries. Lower floors and
    higher biases make weak expressions and neutral faces harder to tell apart.
    ``noise_model``: ``annotators`` (majority of ``n_annotators`` simulated votes whose
    errors follow the face's ambiguity), ``uniform`` (random flips to a confusable
    class) or ``random`` (random flips to any other class, ``random_flips``);
    ``label_noise`` is the share of wrong training labels in each.
    ``blend_fraction``: the share of expressive faces that carry a second expression."""
    if n_train < 7 or n_test < 7:
        raise ConfigError(f"n_train and n_test must be >= 7 (one image per class), got {n_train}, {n_test}")
    if not 0 <= label_noise < 1 or not 0 <= occluder_fraction <= 1:
        raise ConfigError("label_noise must be in [0, 1) and occluder_fraction in [0, 1]")
    if not 0 <= intensity_floor < 1 or not 0 <= resting_bias <= 1:
        raise ConfigError(
            f"intensity_floor must be in [0, 1) and resting_bias in [0, 1], got {intensity_floor!r}, {resting_bias!r}"
        )
    if size < 32:
        raise ConfigError(f"size must be >= 32 pixels, got {size}")
    if noise_model not in NOISE_MODELS:
        raise ConfigError(f"noise_model={noise_model!r} is not allowed; choose one of {', '.join(NOISE_MODELS)}")
    if not 0 <= blend_fraction <= 1 or not 1 <= n_annotators <= 100:
        raise ConfigError(
            f"blend_fraction must be in [0, 1] and n_annotators in [1, 100], got {blend_fraction!r}, {n_annotators!r}"
        )
    out = Path(out_dir)
    if (out / LABEL_FILE).exists() and not overwrite:
        raise DataError(f"{out} already holds a dataset ({LABEL_FILE}); choose another folder or overwrite")
    (out / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    (out / LABEL_FILE).parent.mkdir(parents=True, exist_ok=True)
    uniform = noise_model == "uniform"
    plan = plan_synthfer(n_train, n_test, label_noise if uniform else 0.0, seed, images_per_identity)
    jobs = list(
        zip(
            plan["split"],
            plan["index"].tolist(),
            plan["image"],
            plan["clean_label"].tolist(),
            plan["identity"].tolist(),
        )
    )
    chunk = 64
    tasks = [
        (str(out), seed, size, occluder_fraction, intensity_floor, resting_bias, blend_fraction, jobs[i : i + chunk])
        for i in range(0, len(jobs), chunk)
    ]
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers > 1:
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else None)
        with ctx.Pool(workers) as pool:
            recs = [r for part in pool.imap(_render_chunk, tasks) for r in part]
    else:
        recs = [r for t in tasks for r in _render_chunk(t)]
    meta = pd.concat([plan.drop(columns="index"), pd.DataFrame(recs)], axis=1)
    if noise_model == "random":
        train = (meta["split"] == "train").to_numpy()
        meta.loc[train, "label"] = random_flips(meta.loc[train, "clean_label"].to_numpy(), label_noise, seed)
        meta["noisy"] = meta["label"] != meta["clean_label"]
    elif not uniform:
        train = (meta["split"] == "train").to_numpy()
        votes, majority = annotator_votes(meta[train], label_noise, seed, n_annotators, intensity_floor)
        meta.loc[train, "label"] = majority
        meta["noisy"] = meta["label"] != meta["clean_label"]
        all_votes = np.zeros((len(meta), 7), dtype=int)
        all_votes[train] = votes
        all_votes[~train, meta.loc[~train, "clean_label"].to_numpy()] = n_annotators  # test: clean, unanimous
        for k, name in enumerate(RAFDB_CLASSES):
            meta[f"votes_{name.lower()}"] = all_votes[:, k]
    meta.to_csv(out / META_FILE, index=False, lineterminator="\n")
    settings = synthfer_settings(
        n_train=n_train,
        n_test=n_test,
        size=size,
        label_noise=label_noise,
        seed=seed,
        images_per_identity=images_per_identity,
        occluder_fraction=occluder_fraction,
        intensity_floor=intensity_floor,
        resting_bias=resting_bias,
        noise_model=noise_model,
        n_annotators=n_annotators,
        blend_fraction=blend_fraction,
    )
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    with open(out / LABEL_FILE, "w", newline="\n") as fh:
        for name, label in zip(meta["image"], meta["label"]):
            fh.write(f"{name} {int(label) + 1}\n")
    return out


def synthfer_settings(**settings) -> dict:
    """Everything that decides a SynthFER dataset's images: the generator version and
    ``generate_synthfer``'s settings (its defaults, updated with ``settings``). Written to
    ``SETTINGS_FILE`` with every dataset; an existing folder is reused only if it matches."""
    import inspect

    params = inspect.signature(generate_synthfer).parameters
    unknown = sorted(set(settings) - set(params) | set(settings) & {"out_dir", "workers", "overwrite"})
    if unknown:
        raise ConfigError(f"unknown SynthFER setting(s) {unknown}")
    defaults = {k: v.default for k, v in params.items() if k not in ("out_dir", "workers", "overwrite")}
    return {"generator_version": GENERATOR_VERSION, **defaults, **settings}


def read_synthfer(root: Path) -> tuple[pd.DataFrame, list[str], list[Problem]]:
    """The RAF-DB reader plus the ground-truth columns of ``synthfer_meta.csv``."""
    frame, classes, problems = read_rafdb(root)
    meta_path = root / META_FILE
    if not meta_path.is_file():
        problems.append(
            Problem(
                "layout",
                str(meta_path),
                None,
                f"{META_FILE} missing; expected the SynthFER ground truth beside the label file",
            )
        )
        return frame, classes, problems
    if any(p.kind == "layout" for p in problems):
        return frame, classes, problems
    meta = pd.read_csv(meta_path, keep_default_na=False)
    merged = frame.merge(meta.drop(columns=["split"]), on="image", how="left", suffixes=("", "_meta"))
    mismatch = merged["label_meta"].isna() | (merged["label_meta"] != merged["label"])
    for _, row in merged[mismatch].iterrows():
        problems.append(
            Problem(
                "parse",
                str(meta_path),
                None,
                f"{row['image']}: label file says {row['label'] + 1}, {META_FILE} disagrees or lacks the image",
            )
        )
    merged = merged[~mismatch].drop(columns=["label_meta"])
    merged["clean_label"] = merged["clean_label"].astype(int)
    merged["noisy"] = merged["noisy"].astype(str).str.lower() == "true"
    return merged, classes, problems
