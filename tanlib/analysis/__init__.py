"""Analysis of runs: metrics, embedding geometry and paper-style figures.

- ``tanlib.analysis.metrics``: per-prediction metrics: classification metrics,
  noisy-label AUC and detectors, subgroup metrics.
- ``tanlib.analysis.geometry``: intra-/inter-class embedding distances and silhouette,
  the abstract's "intra-class and inter-class distance" claim made measurable.
- ``tanlib.analysis.verdict``: the claims of TAN's abstract tested by paired
  differences over seeds, with the noise floor and the verdict rule.
- ``tanlib.analysis.figures``: one paper style (Okabe-Ito palette), deterministic
  PNG/PDF saving and the plot functions of the notebooks.

The mean ± std summaries over seeds, their Markdown/LaTeX tables
(``tanlib.report.tables``) and the paper's numbers with the comparison against them
(``tanlib.report.paper``; Gou et al., ICAC 2023, docs/method.md) live in ``tanlib.report``
and are re-exported here, as before.

umap-learn and seaborn are never imported here; ``figures.umap_2d`` imports umap when
called.
"""

from tanlib.analysis.figures import (
    DOUBLE_COLUMN_IN,
    METHOD_COLORS,
    METHOD_ORDER,
    OKABE_ITO,
    PAPER_RC,
    SINGLE_COLUMN_IN,
    class_colors,
    figsize,
    paper_style,
    plot_ablation,
    plot_attention_hist,
    plot_claims,
    plot_class_distribution,
    plot_confusion,
    plot_distance_distributions,
    plot_embeddings_2d,
    plot_image_grid,
    plot_learning_curves,
    plot_noise_by_intensity,
    plot_noise_detectors,
    plot_per_class,
    plot_sample_grid,
    save_figure,
    umap_2d,
)
from tanlib.analysis.geometry import class_distance_sums, distance_samples, embedding_geometry
from tanlib.analysis.metrics import (
    DETECTORS,
    classification_metrics,
    detector_scores,
    noise_detection,
    noisy_label_auc,
    subgroup_metrics,
)
from tanlib.report.paper import PAPER_RESULTS, paper_comparison
from tanlib.report.tables import DEFAULT_SUMMARY_METRICS, format_mean_std, summarise_runs, to_latex, to_markdown

__all__ = [
    "DEFAULT_SUMMARY_METRICS",
    "DOUBLE_COLUMN_IN",
    "METHOD_COLORS",
    "METHOD_ORDER",
    "OKABE_ITO",
    "PAPER_RC",
    "PAPER_RESULTS",
    "SINGLE_COLUMN_IN",
    "class_colors",
    "class_distance_sums",
    "classification_metrics",
    "distance_samples",
    "embedding_geometry",
    "figsize",
    "format_mean_std",
    "noisy_label_auc",
    "noise_detection",
    "detector_scores",
    "DETECTORS",
    "paper_comparison",
    "paper_style",
    "plot_ablation",
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
    "plot_sample_grid",
    "save_figure",
    "subgroup_metrics",
    "summarise_runs",
    "to_latex",
    "to_markdown",
    "umap_2d",
]
