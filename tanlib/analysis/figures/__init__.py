"""Figures of the kit, in one paper style, saved reproducibly.

What this package owns, one module per concern:

- ``style``: ``paper_style`` / ``PAPER_RC``: one matplotlib style for every figure:
  DejaVu Sans, 8 pt text sized for a 3.5 in single-column or 7 in double-column figure
  (``figsize``), TrueType fonts embedded in PDFs, and the Okabe-Ito colour-blind-safe
  palette (Okabe & Ito, "Color Universal Design", 2008; Wong, Nature Methods 8:441,
  2011), with ``METHOD_COLORS`` fixing one colour per method of docs/method.md; and
  ``save_figure``: PNG (200 dpi) and PDF with deterministic metadata (no creation
  date, no software stamp), so that saving the same figure twice gives byte-identical
  files and a rerun of the pipeline changes a figure file only when its content does.
- Plot functions that return a ``matplotlib.figure.Figure`` and never save:
  - ``data``: figures of a dataset: the data figures of notebook 01 (class
    distribution, sample grid with the wrong labels framed), SynthFER's wrong labels by
    intensity and the image grids of 03 (hardest mistakes, Grad-CAM overlays, the faces a
    detector ranks lowest and highest: ``plot_ranked_faces``);
  - ``training``: figures of one run: the training curves of 02 and the evaluation
    figures of 03 (confusion matrix, per-class recall, attention histogram split by
    clean / flipped label, noisy-label detectors);
  - ``embeddings``: the embedding figures of 04 (UMAP panels, intra- vs inter-class
    distance distributions; McInnes et al., "UMAP", arXiv:1802.03426);
  - ``results``: figures across runs: the ablation bar chart of 05 and the verdict's
    claims figure.
- ``layout``: ``overlapping_texts`` (text elements drawn over each other, found from
  matplotlib's window extents after a draw); ``save_figure`` warns
  (``FigureLayoutWarning``) when a figure it saves has any, and the test suite checks
  every plot function with it.

Every public name is re-exported here, so ``from tanlib.analysis.figures import X``
works for all of them. umap-learn is imported inside ``umap_2d`` only.
"""

from tanlib.analysis.figures.data import (
    plot_class_distribution,
    plot_image_grid,
    plot_noise_by_intensity,
    plot_ranked_faces,
    plot_sample_grid,
)
from tanlib.analysis.figures.embeddings import plot_distance_distributions, plot_embeddings_2d, umap_2d
from tanlib.analysis.figures.layout import FigureLayoutWarning, figure_texts, overlapping_texts
from tanlib.analysis.figures.results import plot_ablation, plot_claims
from tanlib.analysis.figures.style import (
    DOUBLE_COLUMN_IN,
    METHOD_COLORS,
    METHOD_ORDER,
    OKABE_ITO,
    PAPER_RC,
    SINGLE_COLUMN_IN,
    class_colors,
    figsize,
    paper_style,
    save_figure,
)
from tanlib.analysis.figures.training import (
    attention_by_class,
    has_attention_by_class,
    plot_attention_by_class,
    plot_attention_hist,
    plot_confusion,
    plot_learning_curves,
    plot_noise_detectors,
    plot_per_class,
)

__all__ = [
    "DOUBLE_COLUMN_IN",
    "FigureLayoutWarning",
    "METHOD_COLORS",
    "METHOD_ORDER",
    "OKABE_ITO",
    "PAPER_RC",
    "SINGLE_COLUMN_IN",
    "class_colors",
    "figsize",
    "figure_texts",
    "overlapping_texts",
    "paper_style",
    "plot_ablation",
    "attention_by_class",
    "has_attention_by_class",
    "plot_attention_by_class",
    "plot_attention_hist",
    "plot_claims",
    "plot_class_distribution",
    "plot_confusion",
    "plot_distance_distributions",
    "plot_embeddings_2d",
    "plot_image_grid",
    "plot_learning_curves",
    "plot_noise_by_intensity",
    "plot_noise_detectors",
    "plot_per_class",
    "plot_ranked_faces",
    "plot_sample_grid",
    "save_figure",
    "umap_2d",
]
