"""Whether a figure's text can be read: overlapping text elements, found after a draw.

What this module owns: ``figure_texts`` (every visible, non-empty text of a figure with
a name saying where it is: suptitle, axes titles, axis labels, tick labels, texts and
annotations inside axes such as bar labels, legend entries and titles, figure
legends) and ``overlapping_texts`` (the pairs among them whose drawn boxes overlap).
``save_figure`` calls ``overlapping_texts`` on every figure it saves and warns
(``FigureLayoutWarning``) when one is found, so a notebook or the pipeline that saves a
garbled figure says so.

A text's box is its window extent after ``fig.canvas.draw()`` (matplotlib's
``Text.get_window_extent``), in display pixels. A rotated text (tick labels at 30 or
45 degrees) is tested as the rotated rectangle it fills, not as its axis-aligned box,
which would report neighbours that only share corners of their boxes.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from matplotlib.figure import Figure
from matplotlib.text import Text


class FigureLayoutWarning(UserWarning):
    """A saved figure has text elements drawn over each other."""


def _add(out: list, name: str, text) -> None:
    if isinstance(text, Text) and text.get_visible() and text.get_text().strip() and text.get_alpha() != 0:
        out.append((name, text))


def _legend_texts(out: list, legend, where: str) -> None:
    if legend is None or not legend.get_visible():
        return
    _add(out, f"{where} legend title", legend.get_title())
    for t in legend.get_texts():
        _add(out, f"{where} legend {t.get_text()!r}", t)


def figure_texts(fig: Figure) -> list[tuple[str, Text]]:
    """``(name, Text)`` of every visible, non-empty text element of ``fig``: figure texts
    (suptitle, supxlabel, ``fig.text``), figure legends, and per visible axes its three
    titles, axis labels, the tick labels matplotlib draws, its texts and annotations (bar
    labels, cell values, notes) and its legend. Names read like ``axes 1 title 'tan'``."""
    out: list[tuple[str, Text]] = []
    for t in fig.texts:
        _add(out, f"figure text {t.get_text()!r}", t)
    for legend in fig.legends:
        _legend_texts(out, legend, "figure")
    for sub in getattr(fig, "subfigs", []):
        out += figure_texts(sub)
    for k, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        where = f"axes {k}"
        for loc in ("left", "center", "right"):
            title = ax._left_title if loc == "left" else ax.title if loc == "center" else ax._right_title
            _add(out, f"{where} {loc} title {title.get_text()!r}", title)
        for axis_name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if not ax.axison or not axis.get_visible():  # ax.axis("off") draws no axis
                continue
            _add(out, f"{where} {axis_name}label {axis.label.get_text()!r}", axis.label)
            # the ticks matplotlib draws: those inside the view interval (what Axis.draw uses)
            for tick in axis._update_ticks():
                for label in (tick.label1, tick.label2):
                    if label.get_visible():
                        _add(out, f"{where} {axis_name}tick {label.get_text()!r}", label)
            _add(out, f"{where} {axis_name} offset text {axis.offsetText.get_text()!r}", axis.offsetText)
        for t in ax.texts:
            _add(out, f"{where} text {t.get_text()!r}", t)
        _legend_texts(out, ax.get_legend(), where)
    return out


def _box_corners(box) -> np.ndarray:
    return np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])


def _corners(text: Text, renderer) -> np.ndarray:
    """The 4 corners (display pixels) of the rectangle ``text`` is drawn in: its window
    extent, or for a rotated text the rectangle of its unrotated size turned about the
    extent's centre (a turned rectangle's bounding box has the same centre)."""
    box = text.get_window_extent(renderer)
    rotation = text.get_rotation()
    if rotation % 90.0 == 0:
        return _box_corners(box)
    text.set_rotation(0)  # the unrotated size; the rotation is restored at once
    try:
        flat = text.get_window_extent(renderer)
    finally:
        text.set_rotation(rotation)
    theta = math.radians(rotation)
    u = np.array([math.cos(theta), math.sin(theta)]) * flat.width / 2
    v = np.array([-math.sin(theta), math.cos(theta)]) * flat.height / 2
    centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
    return np.array([centre - u - v, centre + u - v, centre + u + v, centre - u + v])


def _overlap(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    """Whether two convex quadrilaterals overlap by more than ``tol`` pixels along every
    separating axis (the separating axis theorem on their edge normals)."""
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            normal = np.array([-edge[1], edge[0]])
            norm = np.hypot(*normal)
            if norm == 0:
                continue
            normal /= norm
            pa, pb = a @ normal, b @ normal
            if min(pa.max(), pb.max()) - max(pa.min(), pb.min()) <= tol:
                return False
    return True


def overlapping_texts(fig: Figure, tol: float = 0.5) -> list[tuple[str, str]]:
    """Pairs ``(name, name)`` of text elements of ``fig`` (``figure_texts``) drawn over each
    other by more than ``tol`` display pixels, after drawing the figure (its layout engine,
    constrained or tight, runs in the draw). Empty when every text can be read."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = figure_texts(fig)
    shapes = [_corners(t, renderer) for _, t in texts]
    boxes = np.array([[s[:, 0].min(), s[:, 1].min(), s[:, 0].max(), s[:, 1].max()] for s in shapes]).reshape(-1, 4)
    found = []
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if (
                boxes[i, 0] >= boxes[j, 2] - tol
                or boxes[j, 0] >= boxes[i, 2] - tol
                or boxes[i, 1] >= boxes[j, 3] - tol
                or boxes[j, 1] >= boxes[i, 3] - tol
            ):
                continue
            if _overlap(shapes[i], shapes[j], tol):
                found.append((texts[i][0], texts[j][0]))
    return found


def warn_on_overlaps(fig: Figure, name: str = "figure") -> list[tuple[str, str]]:
    """``overlapping_texts(fig)``, and a ``FigureLayoutWarning`` naming the first pairs
    when there are any."""
    pairs = overlapping_texts(fig)
    if pairs:
        shown = "; ".join(f"{a} over {b}" for a, b in pairs[:4])
        more = f" (and {len(pairs) - 4} more)" if len(pairs) > 4 else ""
        warnings.warn(f"{name}: {len(pairs)} overlapping text element(s): {shown}{more}", FigureLayoutWarning, 2)
    return pairs


__all__ = ["FigureLayoutWarning", "figure_texts", "overlapping_texts", "warn_on_overlaps"]
