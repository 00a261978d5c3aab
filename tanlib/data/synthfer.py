"""SynthFER: procedural facial-expression images with known ground truth (docs/synthfer.md).

Faces are drawn with PIL polygons on a 2x supersampled canvas and box-downsampled (anti-
aliasing). Expressions come from FACS action units (AUs) set by the EMFACS prototype of
the class at a sampled intensity; identity (face shape, feature sizes and spacing, skin,
hair, a resting AU bias) varies more than expression; nuisances are pose (in-plane roll,
emulated yaw), scale, shift, illumination gradient, blur, noise, JPEG quality and
occluders (glasses, sunglasses, hand, mask). Class frequencies follow RAF-DB (train and
test), train and test identities are disjoint and a fraction of train labels is flipped
along confusable pairs. Output is the RAF-DB basic layout plus ``synthfer_meta.csv``.

Every image is drawn from its own generator seeded by (seed, split, index) and every
identity from (seed, identity), so the output does not depend on the number of workers.
The generator keys are ``[seed, stream, index]`` with one ``stream`` word per kind of
draw (``STREAMS``); SynthFace, the identity set of ``tanlib.data.synthface``, draws from
streams of its own, which is what keeps its identities out of every SynthFER dataset.
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
from PIL import Image, ImageDraw, ImageFilter

from ..errors import ConfigError, DataError
from .problems import Problem
from .rafdb import IMAGE_DIR, LABEL_FILE, RAFDB_CLASSES, RAFDB_TEST_COUNTS, RAFDB_TRAIN_COUNTS, image_path, read_rafdb

META_FILE = "synthfer_meta.csv"
AUS = [1, 2, 4, 5, 6, 7, 9, 12, 15, 16, 20, 23, 26]
# EMFACS prototypes per RAF-DB class index: Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral
PROTOTYPES = {
    0: {1: 1.0, 2: 1.0, 5: 0.9, 26: 1.0},
    1: {1: 1.0, 2: 0.7, 4: 0.8, 5: 1.0, 20: 1.0, 26: 0.6},
    2: {9: 1.0, 15: 0.8, 16: 0.7},
    3: {6: 0.8, 12: 1.0},
    4: {1: 1.0, 4: 0.7, 15: 1.0},
    5: {4: 1.0, 5: 0.7, 7: 1.0, 23: 1.0},
    6: {},
}
# label noise flips a class to one of its confusable partners
CONFUSABLE = {0: [1], 1: [0], 2: [5], 5: [2], 4: [6], 6: [4, 3], 3: [6]}
# compound expressions (Du et al. 2014): the second expression a blended face may carry
BLENDS = {0: [1, 3], 1: [0, 4], 2: [5, 0], 3: [0], 4: [5, 1], 5: [2, 4]}
NOISE_MODELS = ("annotators", "uniform")
NEUTRAL = 6
# how much each occluder hides the expression (mask and hand: the mouth; sunglasses: the eyes)
OCCLUDER_AMBIGUITY = {"none": 0.0, "glasses": 0.05, "sunglasses": 0.45, "hand": 0.35, "mask": 0.6}
#: Bumped whenever the same settings would draw different images; stored in SETTINGS_FILE.
#: 1: the first release (intensity 0.15 + 0.85 Beta, resting bias p 0.25, spurious AUs p 0.12).
#: 2: intensity_floor and resting_bias became settings (defaults 0.35 and 0.05), spurious AUs p 0.05.
#: 3: noise_model (default "annotators": majority of simulated votes, driven by ambiguity),
#:    n_annotators and blend_fraction (compound expressions); "uniform" with blend_fraction 0
#:    draws the images and labels of version 2.
GENERATOR_VERSION = 3
SETTINGS_FILE = "synthfer_settings.json"
SPURIOUS_AU_P = 0.05  # per image and action unit: a spurious activation up to 0.25
OCCLUDERS = {"glasses": 0.3, "sunglasses": 0.2, "hand": 0.25, "mask": 0.25}  # shares of occluded images
HAIR = [(25, 20, 18), (60, 40, 25), (110, 75, 40), (190, 150, 90), (140, 60, 30), (150, 150, 150)]
SKIN_LIGHT, SKIN_DARK = np.array([238, 205, 180]), np.array([90, 60, 42])
MASKS = [(190, 215, 235), (235, 235, 235), (40, 40, 45), (120, 140, 170)]


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


def _bezier(a, mid, b, n=10):
    """Quadratic curve from a to b passing through mid at t=0.5."""
    a, mid, b = np.asarray(a, float), np.asarray(mid, float), np.asarray(b, float)
    c = 2 * mid - (a + b) / 2
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * c + t**2 * b


def _ellipse(cx, cy, rx, ry, n=24):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


class _Pen:
    """Draws face-space shapes (origin at face centre, unit = canvas width) through a pose."""

    def __init__(self, draw, canvas, scale, roll_deg, shift, yaw_deg):
        r = math.radians(roll_deg)
        self.m = canvas * scale * np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
        self.t = canvas * (np.array([0.5, 0.5]) + np.asarray(shift))
        self.cos_y, self.sin_y = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
        self.draw, self.canvas, self.scale = draw, canvas, scale

    def pts(self, xy, depth=0.0):
        xy = np.asarray(xy, float).reshape(-1, 2).copy()
        xy[:, 0] = xy[:, 0] * self.cos_y + depth * 0.12 * self.sin_y
        return [tuple(p) for p in (xy @ self.m.T + self.t).tolist()]

    def poly(self, xy, fill, depth=0.0):
        self.draw.polygon(self.pts(xy, depth), fill=fill)

    def line(self, xy, fill, width, depth=0.0):
        w = max(1, int(round(width * self.canvas * self.scale)))
        self.draw.line(self.pts(xy, depth), fill=fill, width=w, joint="curve")

    def ellipse(self, cx, cy, rx, ry, fill, depth=0.0, n=24):
        self.poly(_ellipse(cx, cy, rx, ry, n), fill, depth)


def _tone(rgb, f, alpha=None):
    c = tuple(min(255, max(0, int(v * f))) for v in rgb)
    return c if alpha is None else c + (min(255, max(0, int(alpha))),)


#: The ``stream`` word of the generator keys ``[seed, stream, index]``, per source of images:
#: (image draws, blend draws, identity draws). SynthFER's train and test splits share the
#: identity stream 7 (their identity indices are disjoint); SynthFace (tanlib.data.synthface,
#: the pretraining identities) uses streams that no SynthFER dataset uses (and 13, 19 for
#: its per-image colours and its plan; SynthFER's plan, annotators: 0, 4).
STREAMS = {"train": (1, 5, 7), "test": (2, 6, 7), "synthface": (11, 15, 17)}


def identity_params(seed: int, identity: int, resting_bias: float = 0.05, stream: int = 7) -> dict:
    """Face geometry, colours and resting AU bias of one identity (each AU biased, by up
    to 0.3, with probability ``resting_bias``), drawn from the generator keyed by
    ``[seed, stream, identity]`` (``stream`` 7: SynthFER's identities, see ``STREAMS``)."""
    r = np.random.default_rng([seed, stream, identity])
    skin = SKIN_LIGHT + r.uniform() * (SKIN_DARK - SKIN_LIGHT) + r.normal(0, 8, 3)
    return {
        "fw": r.uniform(0.25, 0.33),
        "fh": r.uniform(0.33, 0.41),
        "power": r.uniform(1.8, 2.8),
        "taper": r.uniform(0.0, 0.35),
        "skin": np.clip(skin, 30, 250),
        "hair": np.clip(np.array(HAIR[r.integers(len(HAIR))]) + r.normal(0, 10, 3), 0, 255),
        "hair_style": int(r.integers(3)),
        "hairline": r.uniform(0.05, 0.2),
        "eye_y": r.uniform(-0.075, -0.02),
        "eye_dx": r.uniform(0.095, 0.135),
        "ew": r.uniform(0.042, 0.06),
        "eh": r.uniform(0.015, 0.024),
        "iris": r.uniform(0.42, 0.6),
        "iris_rgb": np.array([(70, 45, 25), (40, 30, 20), (70, 100, 130), (80, 110, 70)][r.integers(4)]),
        "brow_gap": r.uniform(0.04, 0.07),
        "brow_w": r.uniform(0.012, 0.024),
        "arch": r.uniform(0.0, 0.02),
        "brow_len": r.uniform(0.9, 1.4),
        "nose_y": r.uniform(0.06, 0.11),
        "nw": r.uniform(0.03, 0.055),
        "mouth_y": r.uniform(0.16, 0.215),
        "mw": r.uniform(0.07, 0.1),
        "lip": r.uniform(0.012, 0.026),
        "lip_rgb": np.array([185, 85, 90]) * r.uniform(0.6, 1.05),
        "bias": {a: (r.uniform(0, 0.3) if r.uniform() < resting_bias else 0.0) for a in AUS},
        "bg": r.uniform(30, 230, 3),
        "shirt": r.uniform(20, 230, 3),
    }


def render_face(idp: dict, au: dict, nuis: dict, size: int, ss: int = 2) -> Image.Image:
    """Draw one face (identity ``idp``, action units ``au`` in [0,1], nuisances ``nuis``)."""
    canvas = size * ss
    img = Image.new("RGB", (canvas, canvas), tuple(int(v) for v in idp["bg"]))
    draw = ImageDraw.Draw(img, "RGBA")
    pen = _Pen(draw, canvas, nuis["scale"], nuis["roll"], (nuis["shift_x"], nuis["shift_y"]), nuis["yaw"])
    skin, hair = idp["skin"], idp["hair"]
    fw, fh = idp["fw"], idp["fh"]
    g = lambda k: 1.3 * au.get(k, 0.0)  # noqa: E731  (AU value -> displacement gain)
    opening = 0.075 * g(26) + 0.022 * g(16)

    # body, hair behind the head, ears
    pen.poly([(-0.5, 0.75), (-0.42, fh + 0.12), (0.42, fh + 0.12), (0.5, 0.75)], _tone(idp["shirt"], 1))
    pen.poly([(-0.1, 0.1), (0.1, 0.1), (0.11, fh + 0.15), (-0.11, fh + 0.15)], _tone(skin, 0.8))
    if idp["hair_style"] > 0:
        pen.ellipse(0, -fh * 0.25, fw * 1.12, fh * 0.95, _tone(hair, 1), depth=-0.3)
    if idp["hair_style"] == 2:
        pen.poly(
            [(-fw * 1.12, -0.1), (fw * 1.12, -0.1), (fw * 1.2, fh * 0.9), (-fw * 1.2, fh * 0.9)], _tone(hair, 1), -0.3
        )
    for s in (-1, 1):
        pen.ellipse(s * fw * 0.97, idp["eye_y"] + 0.035, 0.03, 0.05, _tone(skin, 0.9), depth=-0.5)

    # face outline (superellipse, tapered chin, jaw drop)
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    c, s_ = np.cos(t), np.sin(t)
    x = fw * np.sign(c) * np.abs(c) ** (2 / idp["power"])
    y = fh * np.sign(s_) * np.abs(s_) ** (2 / idp["power"])
    low = y > 0
    x[low] *= 1 - idp["taper"] * (y[low] / fh) ** 2
    y[low] += opening * 0.8 * (y[low] / fh) ** 1.5
    face = np.stack([x, y], 1)
    pen.poly(face, _tone(skin, 1))

    ey, dx, ew, eh = idp["eye_y"], idp["eye_dx"], idp["ew"], idp["eh"]
    # forehead wrinkles (AU1/2), glabella lines (AU4)
    fa = max(g(1), g(2))
    if fa > 0.05:
        for k in range(3):
            yy = ey - idp["brow_gap"] - 0.04 - 0.018 * k
            pen.line(_bezier((-0.09, yy + 0.006), (0, yy), (0.09, yy + 0.006)), _tone(skin, 0.6, 150 * fa), 0.004)
    if g(4) > 0.05:
        for s in (-1, 1):
            pen.line(
                [(s * 0.012, ey - idp["brow_gap"] + 0.005), (s * 0.01, ey - idp["brow_gap"] + 0.04)],
                _tone(skin, 0.55, 200 * g(4)),
                0.005,
                0.6,
            )

    for s in (-1, 1):  # s=-1: image-left side, s=+1: image-right side
        # brows: inner, middle, outer point
        by = ey - idp["brow_gap"]
        inner = (s * (dx - ew * 0.9 - 0.02 * g(4)), by - 0.045 * g(1) + 0.03 * g(4))
        mid = (s * (dx + ew * 0.1), by - idp["arch"] - 0.022 * g(1) - 0.035 * g(2) + 0.014 * g(4))
        outer = (s * (dx + ew * idp["brow_len"]), by + 0.006 - 0.035 * g(2) + 0.01 * g(1) + 0.004 * g(4))
        pen.line([inner, mid, outer], _tone(hair, 0.8), idp["brow_w"], 0.5)
        # eyes: openness from AU5 (wider), AU6/AU7 (narrower)
        open_ = float(np.clip(1 + 0.9 * g(5) - 0.45 * g(6) - 0.55 * g(7) + 0.15 * g(1), 0.12, 2.2))
        h = eh * open_
        cy = ey - 0.3 * eh * (g(6) + g(7)) * 0.5
        pen.ellipse(s * dx, cy, ew, h, (240, 238, 232), 0.5)
        ir = ew * idp["iris"]
        pen.ellipse(s * dx, cy, ir, min(ir, h), _tone(idp["iris_rgb"], 1), 0.5, n=16)
        pen.ellipse(s * dx, cy, ir * 0.45, min(ir * 0.45, h), (15, 12, 12), 0.5, n=12)
        lid = _ellipse(s * dx, cy, ew, h, 24)
        pen.line(lid[12:], (35, 25, 22), 0.006, 0.5)  # upper lid: points with y < cy
        pen.line(lid[:13], _tone(skin, 0.6, 140), 0.003, 0.5)  # lower lid
        # cheek raise and crow's feet (AU6)
        if g(6) > 0.05:
            pen.ellipse(
                s * dx, ey + 0.075 - 0.02 * g(6), 0.05, 0.028, _tone(skin * [1.0, 0.8, 0.8], 0.95, 130 * g(6)), 0.4
            )
            for k in (-1, 0, 1):
                x0 = s * (dx + ew * 1.1)
                pen.line(
                    [(x0, cy + 0.01 * k), (x0 + s * 0.025, cy + 0.018 * k)], _tone(skin, 0.6, 170 * g(6)), 0.003, 0.5
                )

    # nose: bridge shade, tip, nostrils raised and widened by AU9, wrinkles (AU9)
    ny, nw = idp["nose_y"] - 0.015 * g(9), idp["nw"] * (1 + 0.25 * g(9))
    pen.line([(nw * 0.4, ey + 0.02), (nw * 0.55, ny - 0.03)], _tone(skin, 0.75, 120), 0.005, 0.8)
    pen.line(_bezier((-nw, ny - 0.004), (0, ny + 0.008), (nw, ny - 0.004)), _tone(skin, 0.6, 200), 0.005, 1.0)
    for s in (-1, 1):
        pen.ellipse(s * nw * 0.5, ny, nw * 0.32, 0.008, _tone(skin, 0.35), 1.0, n=12)
    if g(9) > 0.05:
        for k in range(3):
            yy = ey + 0.012 + 0.012 * k
            pen.line([(-0.022, yy), (0.022, yy)], _tone(skin, 0.55, 220 * g(9)), 0.004, 0.9)

    # mouth corners: AU12 up/out, AU15 down, AU20 out, AU23 in, AU9 raises the upper lip
    my, mw = idp["mouth_y"], idp["mw"]
    cx = mw + 0.025 * g(12) + 0.03 * g(20) - 0.022 * g(23) - 0.005 * g(15)
    cyc = my - 0.035 * g(12) + 0.03 * g(15) + 0.006 * g(20) - 0.008 * g(9)
    nasolabial = 0.25 + 0.8 * g(12) + 0.8 * g(9)
    for s in (-1, 1):
        pen.line(
            _bezier(
                (s * nw * 1.1, ny - 0.01), (s * (nw * 1.3 + 0.02), (ny + cyc) / 2), (s * (cx + 0.012), cyc + 0.012)
            ),
            _tone(skin, 0.65, 120 * min(nasolabial, 1.5)),
            0.004,
            0.7,
        )
    lt_u = idp["lip"] * (1 - 0.6 * g(23))
    lt_l = idp["lip"] * 1.25 * (1 - 0.5 * g(23))
    ym = my + 0.006 * g(12)
    up_in = ym - opening * 0.15 - 0.01 * g(9)
    lo_in = ym + opening * 0.85 + 0.012 * g(16)
    L, R = (-cx, cyc), (cx, cyc)
    outer = np.vstack([_bezier(L, (0, up_in - lt_u), R), _bezier(R, (0, lo_in + lt_l), L)])
    pen.poly(outer, _tone(idp["lip_rgb"] * 0.5 + skin * 0.5, 1), 0.6)
    if opening > 0.004:
        pen.poly(np.vstack([_bezier(L, (0, up_in), R), _bezier(R, (0, lo_in), L)]), (55, 20, 25), 0.6)
        if opening > 0.012:
            band = min(0.35 * opening, 0.018)
            top = _bezier((-cx * 0.85, cyc), (0, up_in), (cx * 0.85, cyc))
            pen.poly(np.vstack([top, (top + [0, band])[::-1]]), (232, 228, 215), 0.6)
    else:
        pen.line(_bezier(L, (0, ym), R), (70, 30, 35), 0.005, 0.6)

    # hair over the forehead
    if idp["hair_style"] > 0:
        cap = face[face[:, 1] < -fh + idp["hairline"]]
        if len(cap) > 2:
            pen.poly(cap, _tone(hair, 1), 0)

    occ = nuis["occluder"]
    if occ in ("glasses", "sunglasses"):
        frame_rgb = (20, 20, 25) if nuis["occ_a"] < 0.6 else (140, 100, 40)
        for s in (-1, 1):
            lens = _ellipse(s * dx, ey, ew * 1.5, max(eh * 2.2, 0.035), 20)
            if occ == "sunglasses":
                pen.poly(lens, (15, 15, 20, 235), 0.55)
            pen.line(np.vstack([lens, lens[:1]]), frame_rgb, 0.007, 0.55)
            pen.line([(s * (dx + ew * 1.5), ey), (s * fw, ey - 0.005)], frame_rgb, 0.006, 0.2)
        pen.line([(-dx + ew * 1.5, ey), (dx - ew * 1.5, ey)], frame_rgb, 0.006, 0.7)
    elif occ == "mask":
        top = idp["nose_y"] - 0.03
        below = face[face[:, 1] > top]
        below = below[np.argsort(np.arctan2(below[:, 1], below[:, 0]))]
        edge = _bezier((fw * 0.95, top + 0.01), (0, top - 0.02), (-fw * 0.95, top + 0.01))
        pen.poly(np.vstack([below, edge]), MASKS[int(nuis["occ_a"] * len(MASKS)) % len(MASKS)], 0.6)
        for s in (-1, 1):
            pen.line([(s * fw * 0.95, top + 0.02), (s * fw, ey + 0.03)], (200, 200, 200), 0.004, 0.2)
    elif occ == "hand":
        hx, hy = (nuis["occ_a"] - 0.5) * 0.3, idp["mouth_y"] + (nuis["occ_b"] - 0.4) * 0.12
        hand = _tone(skin, 0.95 + 0.1 * nuis["occ_b"])
        ang = (nuis["occ_a"] - 0.5) * 1.2
        for k in range(4):
            a = ang - 0.45 + 0.3 * k
            base = np.array([hx - 0.06 + 0.04 * k, hy])
            tip = base + 0.13 * np.array([math.sin(a), -math.cos(a)])
            pen.line([tuple(base), tuple(tip)], hand, 0.034, 1.2)
        pen.ellipse(hx, hy + 0.04, 0.1, 0.08, hand, 1.2)

    # downsample (anti-aliasing), then image-level nuisances
    img = img.reduce(ss)
    if nuis["blur"] > 0:
        img = img.filter(ImageFilter.GaussianBlur(nuis["blur"] * size / 100))
    a = np.asarray(img, dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    th = nuis["light_dir"]
    ramp = 1 + nuis["light_grad"] * 2 * (xx * math.cos(th) + yy * math.sin(th))
    a = a * (nuis["brightness"] * ramp)[..., None] * np.asarray(nuis["tint"], np.float32)
    a = a + nuis["noise_rng"].normal(0, nuis["noise"], a.shape).astype(np.float32)
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))


# ----------------------------------------------------------------------------- sampling


def sample_image(
    seed: int,
    split: str,
    index: int,
    label: int,
    identity: int,
    occluder_fraction: float,
    size: int,
    intensity_floor: float = 0.35,
    resting_bias: float = 0.05,
    blend_fraction: float = 0.0,
    idp: dict | None = None,
) -> tuple[Image.Image, dict]:
    """Render one image from its own generator; return it with its ground-truth record.

    ``split``: ``train`` or ``test`` (SynthFER) or ``synthface`` (the pretraining set);
    it chooses the generator streams (``STREAMS``). ``idp``: the identity's parameters
    when the caller has them (else ``identity_params`` of ``identity``).
    The blend (second expression) is drawn from a generator of its own, so that
    ``blend_fraction=0`` leaves every other draw, and so the image, as in version 2."""
    if split not in STREAMS:
        raise ConfigError(f"split={split!r} is not allowed; choose one of {', '.join(STREAMS)}")
    image_stream, blend_stream, identity_stream = STREAMS[split]
    r = np.random.default_rng([seed, image_stream, index])
    if idp is None:
        idp = identity_params(seed, identity, resting_bias, stream=identity_stream)
    proto = PROTOTYPES[label]
    intensity = 0.0 if not proto else float(intensity_floor + (1 - intensity_floor) * r.beta(2.2, 1.5))
    blend_label, blend_weight = -1, 0.0
    rb = np.random.default_rng([seed, blend_stream, index])
    if proto and rb.uniform() < blend_fraction:
        blend_label = int(rb.choice(BLENDS[label]))
        blend_weight = float(rb.uniform(0.3, 0.8))
    second = PROTOTYPES[blend_label] if blend_label >= 0 else {}
    au = {}
    for a in AUS:
        v = (proto.get(a, 0.0) + blend_weight * second.get(a, 0.0)) * intensity * r.uniform(0.7, 1.3) + idp["bias"][a]
        if r.uniform() < SPURIOUS_AU_P:
            v += r.uniform(0, 0.25)
        au[a] = float(np.clip(v, 0, 1))
    occluder = "none"
    if r.uniform() < occluder_fraction:
        occluder = str(r.choice(list(OCCLUDERS), p=np.array(list(OCCLUDERS.values())) / sum(OCCLUDERS.values())))
    nuis = {
        "roll": float(np.clip(r.normal(0, 8), -20, 20)),
        "yaw": float(r.uniform(-25, 25)),
        "scale": float(r.uniform(0.95, 1.25)),
        "shift_x": float(r.uniform(-0.05, 0.05)),
        "shift_y": float(r.uniform(-0.05, 0.05)),
        "occluder": occluder,
        "occ_a": float(r.uniform()),
        "occ_b": float(r.uniform()),
        "blur": float(r.uniform(0.3, 1.3)) if r.uniform() < 0.5 else 0.0,
        "brightness": float(r.uniform(0.65, 1.25)),
        "light_grad": float(r.uniform(0, 0.45)),
        "light_dir": float(r.uniform(0, 2 * np.pi)),
        "tint": r.uniform(0.9, 1.1, 3),
        "noise": float(r.uniform(0, 10)),
        "jpeg_quality": int(r.integers(35, 96)),
    }
    nuis["noise_rng"] = r
    img = render_face(idp, au, nuis, size)
    pose = math.hypot(nuis["yaw"], nuis["roll"])
    rec = {
        "intensity": round(intensity, 4),
        "blend_label": blend_label,
        "blend_weight": round(blend_weight, 4),
        **{f"au{a}": round(au[a], 4) for a in AUS},
        **{
            k: round(nuis[k], 4)
            for k in ("yaw", "roll", "scale", "shift_x", "shift_y", "blur", "brightness", "light_grad", "noise")
        },
        "occluder": occluder,
        "jpeg_quality": nuis["jpeg_quality"],
        "intensity_bin": "neutral"
        if not proto
        else ("low" if intensity < 0.4 else "mid" if intensity < 0.7 else "high"),
        "pose_bin": "frontal" if pose < 10 else ("slight" if pose < 20 else "strong"),
    }
    return img, rec


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
    errors follow the face's ambiguity) or ``uniform`` (random flips to a confusable
    class); ``label_noise`` is the share of wrong training labels in both.
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
    if not uniform:
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
