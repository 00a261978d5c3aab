"""The paper style of every figure of the kit, and its reproducible saving.

What this module owns:

- ``paper_style`` / ``PAPER_RC``: one matplotlib style for every figure: DejaVu Sans,
  8 pt text sized for a 3.5 in single-column or 7 in double-column figure
  (``figsize``, ``SINGLE_COLUMN_IN``, ``DOUBLE_COLUMN_IN``), TrueType fonts embedded in
  PDFs, and the Okabe-Ito colour-blind-safe palette (``OKABE_ITO``; Okabe & Ito, "Color
  Universal Design", 2008; Wong, Nature Methods 8:441, 2011), with ``METHOD_COLORS``
  fixing one colour per method of docs/method.md, ``METHOD_ORDER`` their display order
  and ``class_colors`` the colours of classes.
- ``save_figure``: PNG (200 dpi) and PDF with deterministic metadata (no creation
  date, no software stamp), so that saving the same figure twice gives byte-identical
  files and a rerun of the pipeline changes a figure file only when its content does;
  it warns (``FigureLayoutWarning``, ``layout.overlapping_texts``) when text elements
  of the figure are drawn over each other.
- ``_method_color`` (a run name's method colour) and ``_GREY``, shared by the plot
  modules of this package.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from tanlib.config import METHODS
from tanlib.errors import ConfigError

SINGLE_COLUMN_IN = 3.5
DOUBLE_COLUMN_IN = 7.0

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
_GREY = "#999999"

#: Display order of the methods (docs/method.md), baseline first, TAN last: the order
#: of ``tanlib.config.METHODS``, the one list of methods.
METHOD_ORDER = METHODS

#: One fixed colour per method; TAN gets the most salient (vermillion), CE neutral grey.
METHOD_COLORS = {
    "ce": _GREY,
    "scn": OKABE_ITO["orange"],
    "attention": OKABE_ITO["blue"],
    "triplet": OKABE_ITO["sky_blue"],
    "tan-euclid": OKABE_ITO["bluish_green"],
    "tan-nothreshold": OKABE_ITO["reddish_purple"],
    "tan": OKABE_ITO["vermillion"],
}

_CYCLE = [
    OKABE_ITO[k]
    for k in ("blue", "vermillion", "bluish_green", "orange", "reddish_purple", "sky_blue", "yellow", "black")
]

PAPER_RC = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "legend.frameon": False,
    "figure.titlesize": 9,
    "figure.dpi": 100,
    "figure.figsize": (SINGLE_COLUMN_IN, SINGLE_COLUMN_IN * 0.75),
    "axes.prop_cycle": matplotlib.cycler(color=_CYCLE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "axes.grid": False,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.5,
    "lines.linewidth": 1.2,
    "lines.markersize": 3,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "image.cmap": "viridis",
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "svg.hashsalt": "tanlib",
}


def paper_style():
    """Context manager applying ``PAPER_RC`` (``matplotlib.rc_context``).

    ``with paper_style(): fig, ax = plt.subplots(...)``. Every plot function of this
    module already draws inside it; use it for figures drawn by hand.
    """
    return matplotlib.rc_context(PAPER_RC)


def figsize(columns: int = 1, aspect: float = 0.75, rows: float = 1.0) -> tuple[float, float]:
    """Figure size in inches: width of one (3.5 in) or two (7 in) columns, height =
    width x ``aspect`` x ``rows``."""
    if columns not in (1, 2):
        raise ConfigError(f"columns must be 1 (single column, 3.5 in) or 2 (double, 7 in), got {columns!r}")
    if aspect <= 0 or rows <= 0:
        raise ConfigError(f"aspect and rows must be positive, got aspect={aspect!r}, rows={rows!r}")
    width = SINGLE_COLUMN_IN if columns == 1 else DOUBLE_COLUMN_IN
    return (width, width * aspect * rows)


def class_colors(n: int) -> list[str]:
    """``n`` distinguishable colours for classes: Okabe-Ito up to 8, tab20 beyond."""
    if n <= len(_CYCLE):
        return _CYCLE[:n]
    cmap = matplotlib.colormaps["tab20"]
    return [matplotlib.colors.to_hex(cmap(i % 20)) for i in range(n)]


def _method_color(name: str, fallback_index: int) -> str:
    key = str(name).lower()
    if key in METHOD_COLORS:
        return METHOD_COLORS[key]
    # "tan (seed 0)", "tan/seed1": match the longest method name the run name starts with
    for method in sorted(METHOD_COLORS, key=len, reverse=True):
        if key.startswith(method) and (
            len(key) == len(method) or not key[len(method)].isalnum() and key[len(method)] != "-"
        ):
            return METHOD_COLORS[method]
    return _CYCLE[fallback_index % len(_CYCLE)]


def save_figure(fig: Figure, path_without_suffix, dpi: int = 200) -> list[Path]:
    """Write ``fig`` as ``<path>.png`` (``dpi``) and ``<path>.pdf``; return both paths.

    Metadata that would change between runs is removed (PDF ``CreationDate``, PNG
    ``Software``), so the same figure saved twice gives byte-identical files. A
    trailing ``.png``/``.pdf`` on the path is dropped; parent folders are created.
    A figure whose text elements overlap (``overlapping_texts``) is saved all the same,
    with a ``FigureLayoutWarning`` naming them.
    """
    if not isinstance(fig, Figure):
        raise ConfigError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    base = Path(path_without_suffix)
    if base.suffix.lower() in (".png", ".pdf"):
        base = base.with_suffix("")
    if not base.name:
        raise ConfigError(f"path_without_suffix must name a file, got {str(path_without_suffix)!r}")
    base.parent.mkdir(parents=True, exist_ok=True)
    png = base.with_name(base.name + ".png")
    pdf = base.with_name(base.name + ".pdf")
    from tanlib.analysis.figures.layout import warn_on_overlaps

    with paper_style():
        warn_on_overlaps(fig, base.name)
        fig.savefig(png, dpi=dpi, format="png", metadata={"Software": None})
        fig.savefig(
            pdf,
            format="pdf",
            metadata={
                "CreationDate": None,
                "ModDate": None,
                "Producer": "tanlib (matplotlib pdf backend)",
                "Creator": "tanlib",
            },
        )
    return [png, pdf]
