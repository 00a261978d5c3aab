"""Drawing SynthFER's faces: identities, action units, nuisances, one labelled image
(docs/synthfer.md). ``tanlib.data.synthfer`` plans a dataset and writes it from these.

Faces are drawn with PIL polygons on a 2x supersampled canvas and box-downsampled (anti-
aliasing). Expressions come from FACS action units (AUs) set by the EMFACS prototype of
the class at a sampled intensity (``PROTOTYPES``), optionally blended with a second
expression (``BLENDS``); identity (face shape, feature sizes and spacing, skin, hair, a
resting AU bias) varies more than expression (``identity_params``); nuisances are pose
(in-plane roll, emulated yaw), scale, shift, illumination gradient, blur, noise, JPEG
quality and occluders (glasses, sunglasses, hand, mask). ``sample_image`` draws one image
from its own generator, keyed ``[seed, stream, index]`` (``STREAMS``), so a dataset does
not depend on the number of workers.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..errors import ConfigError

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
# compound expressions (Du et al. 2014): the second expression a blended face may carry
BLENDS = {0: [1, 3], 1: [0, 4], 2: [5, 0], 3: [0], 4: [5, 1], 5: [2, 4]}
SPURIOUS_AU_P = 0.05  # per image and action unit: a spurious activation up to 0.25
OCCLUDERS = {"glasses": 0.3, "sunglasses": 0.2, "hand": 0.25, "mask": 0.25}  # shares of occluded images
HAIR = [(25, 20, 18), (60, 40, 25), (110, 75, 40), (190, 150, 90), (140, 60, 30), (150, 150, 150)]
SKIN_LIGHT, SKIN_DARK = np.array([238, 205, 180]), np.array([90, 60, 42])
MASKS = [(190, 215, 235), (235, 235, 235), (40, 40, 45), (120, 140, 170)]


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
    render: bool = True,
) -> tuple[Image.Image | None, dict]:
    """Render one image from its own generator; return it with its ground-truth record.
    With ``render=False`` the image is None and the record the same (every parameter is
    drawn before the rendering, which draws only the pixel noise): the generator's
    per-face parameters without the cost of drawing the faces.

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
    img = render_face(idp, au, nuis, size) if render else None
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
