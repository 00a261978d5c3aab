"""SynthFace: many synthetic identities for face-recognition pretraining (docs/pretraining.md).

TAN, SCN and RAN start from a ResNet-18 trained to tell MS-Celeb-1M identities apart.
SynthFace is the offline stand-in for those identities: the SynthFER renderer
(``tanlib.data.synthfer``: the same face model, expressions, pose, lighting, occluders,
blur, noise and JPEG) draws ``identities`` people with ``images_per_identity`` images each,
every image with an expression drawn uniformly from the 7 classes, so that identity has to
be recognised across expressions. Two changes from a SynthFER dataset:

* background and shirt colours are drawn per image, not per identity (a face set whose
  background names the person teaches the background);
* every draw comes from generator streams of its own (``STREAMS["synthface"]``).

**Disjoint from every SynthFER dataset.** A SynthFER identity is the parameter set that
``identity_params(seed, i)`` draws from ``np.random.default_rng([seed, 7, i])``; every
SynthFER dataset, whatever its seed and size, uses the stream word 7 for its identities
(train and test alike). A SynthFace identity is drawn from ``[seed, 17, j]``. NumPy's
``SeedSequence`` turns such a key, as an array of 32-bit words, into a generator state;
with seeds (and indices) below 2**32 each key is exactly three words, and a SynthFER key
and a SynthFace key differ in the middle word (7 vs 17) whatever the seeds and indices,
so no SynthFace identity is ever drawn from the generator of a SynthFER identity. (With a
SynthFER seed of 2**32 or more the seed takes two words and a crafted seed could line up
with a SynthFace key; the kit's seeds are small integers, and SynthFace refuses seeds
outside [0, 2**32).) ``tests/engine/test_pretrain.py`` checks the consequence directly:
no SynthFace identity's parameter vector equals one of a default-size SynthFER dataset
for any of the seeds the kit uses.

The images are rendered at ``render_size`` (SynthFER's 100 px), JPEG-coded at the drawn
quality and decoded at ``size`` as ``load_images`` decodes a SynthFER file, so the
pretraining input looks like the FER input. Nothing is written to disk.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ..errors import ConfigError
from .synthdraw import STREAMS, identity_params, sample_image
from .synthfer import GENERATOR_VERSION

#: Stream words of SynthFace's own draws beside ``STREAMS["synthface"]``: per-image
#: background and shirt colours, and the plan (expression labels).
COLOUR_STREAM, PLAN_STREAM = 13, 19
MAX_SEED = 2**32


def synthface_identity(seed: int, identity: int, resting_bias: float = 0.05) -> dict:
    """The face parameters of SynthFace identity ``identity`` (its own stream)."""
    return identity_params(seed, identity, resting_bias, stream=STREAMS["synthface"][2])


def plan_synthface(identities: int, images_per_identity: int, heldout_per_identity: int, seed: int = 0) -> pd.DataFrame:
    """Per image: ``index`` (its generator key), ``identity`` (0..identities-1), ``label``
    (expression, uniform over the 7 classes) and ``split``: the last
    ``heldout_per_identity`` images of each identity are ``heldout``, the rest ``train``."""
    if identities < 2:
        raise ConfigError(f"identities={identities} must be >= 2 (identity classification needs two classes)")
    if not 1 <= heldout_per_identity < images_per_identity:
        raise ConfigError(
            f"heldout_per_identity={heldout_per_identity} must be >= 1 and below "
            f"images_per_identity={images_per_identity} (each identity keeps training images)"
        )
    if not 0 <= seed < MAX_SEED:
        raise ConfigError(
            f"seed={seed} must be in [0, 2**32): the SynthFace keys must stay three words "
            "to be disjoint from SynthFER's (tanlib/data/synthface.py)"
        )
    n = identities * images_per_identity
    rng = np.random.default_rng([seed, PLAN_STREAM])
    within = np.tile(np.arange(images_per_identity), identities)
    return pd.DataFrame(
        {
            "index": np.arange(n),
            "identity": np.repeat(np.arange(identities), images_per_identity),
            "label": rng.integers(0, 7, n),
            "split": np.where(within >= images_per_identity - heldout_per_identity, "heldout", "train"),
        }
    )


def _render_chunk(args) -> tuple[np.ndarray, list[dict]]:
    seed, size, render_size, settings, rows = args
    out = np.empty((len(rows), size, size, 3), dtype=np.uint8)
    recs = []
    for k, (index, identity, label) in enumerate(rows):
        idp = dict(synthface_identity(seed, identity, settings["resting_bias"]))
        colours = np.random.default_rng([seed, COLOUR_STREAM, index])
        idp["bg"], idp["shirt"] = colours.uniform(30, 230, 3), colours.uniform(20, 230, 3)
        img, rec = sample_image(
            seed,
            "synthface",
            index,
            label,
            identity,
            settings["occluder_fraction"],
            render_size,
            settings["intensity_floor"],
            settings["resting_bias"],
            settings["blend_fraction"],
            idp=idp,
        )
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=rec["jpeg_quality"])
        with Image.open(buf) as im:  # decoded as load_images / decode_rgb decode a SynthFER file
            im.draft("RGB", (size, size))
            rgb = im.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
        out[k] = np.asarray(rgb)
        recs.append({"occluder": rec["occluder"], "pose_bin": rec["pose_bin"], "intensity": rec["intensity"]})
    return out, recs


def render_synthface(
    plan: pd.DataFrame,
    seed: int = 0,
    size: int = 64,
    render_size: int = 100,
    occluder_fraction: float = 0.2,
    intensity_floor: float = 0.35,
    resting_bias: float = 0.05,
    blend_fraction: float = 0.25,
    workers: int | None = None,
) -> tuple[torch.Tensor, pd.DataFrame]:
    """Render the images of ``plan``: a uint8 tensor (N, 3, size, size) and the plan with
    each image's occluder, pose bin and expression intensity. The pixels depend only on
    the arguments, not on ``workers`` (every image has its own generators)."""
    if size < 32 or render_size < 32:
        raise ConfigError(f"size and render_size must be >= 32 pixels, got {size}, {render_size}")
    settings = dict(
        occluder_fraction=occluder_fraction,
        intensity_floor=intensity_floor,
        resting_bias=resting_bias,
        blend_fraction=blend_fraction,
    )
    rows = list(zip(plan["index"].tolist(), plan["identity"].tolist(), plan["label"].tolist()))
    chunk = 64
    tasks = [(seed, size, render_size, settings, rows[i : i + chunk]) for i in range(0, len(rows), chunk)]
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers > 1 and len(tasks) > 1:
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else None)
        with ctx.Pool(workers) as pool:
            parts = pool.map(_render_chunk, tasks)
    else:
        parts = [_render_chunk(t) for t in tasks]
    images = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, size, size, 3), np.uint8)
    meta = pd.concat([plan.reset_index(drop=True), pd.DataFrame([r for p in parts for r in p[1]])], axis=1)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), meta


def synthface_settings(
    identities: int,
    images_per_identity: int,
    heldout_per_identity: int,
    seed: int,
    size: int,
    render_size: int,
    occluder_fraction: float,
    intensity_floor: float,
    resting_bias: float,
    blend_fraction: float,
) -> dict:
    """Everything that decides a SynthFace set: recorded in the weights' provenance."""
    return {
        "generator": "synthface",
        "synthfer_generator_version": GENERATOR_VERSION,
        "streams": list(STREAMS["synthface"]) + [COLOUR_STREAM, PLAN_STREAM],
        "identities": identities,
        "images_per_identity": images_per_identity,
        "heldout_per_identity": heldout_per_identity,
        "seed": seed,
        "size": size,
        "render_size": render_size,
        "occluder_fraction": occluder_fraction,
        "intensity_floor": intensity_floor,
        "resting_bias": resting_bias,
        "blend_fraction": blend_fraction,
    }
