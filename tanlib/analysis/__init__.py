"""Analysis of runs: metrics, embedding geometry and paper-style figures.

- ``tanlib.analysis.metrics``: per-prediction metrics: classification metrics,
  noisy-label AUC and detectors, subgroup metrics.
- ``tanlib.analysis.geometry``: intra-/inter-class embedding distances and silhouette,
  the abstract's "intra-class and inter-class distance" claim made measurable.
- ``tanlib.analysis.verdict``: the claims of TAN's abstract tested by paired
  differences over seeds, the pre-registered claims (claims.yaml), the variance model
  (tanlib.analysis.stats) and the verdict rule.
- ``tanlib.analysis.figures``: one paper style (Okabe-Ito palette), deterministic
  PNG/PDF saving and the plot functions of the notebooks.
- ``tanlib.analysis.explorer``: the interactive embedding explorer of notebook 04
  (plotly FigureWidget + ipywidgets: hover a UMAP point to see the face, select points
  for a gallery); plotly is imported when an explorer is built.

The mean ± std summaries over seeds, their Markdown/LaTeX tables
(``tanlib.report.tables``) and the paper's numbers with the comparison against them
(``tanlib.report.paper``; Gou et al., ICAC 2023, docs/method.md) live in ``tanlib.report``
and are re-exported here, as before.

umap-learn and seaborn are never imported here; ``figures.umap_2d`` imports umap when
called.

Every name below is imported on first use (PEP 562), so a training process that
needs the metrics does not import matplotlib.
"""

from tanlib.lazy import lazy_exports

_EXPORTS = {  # name -> the module that defines it, imported on first use
    **dict.fromkeys(
        [
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
        ],
        "tanlib.analysis.figures",
    ),
    **dict.fromkeys(["class_distance_sums", "distance_samples", "embedding_geometry"], "tanlib.analysis.geometry"),
    **dict.fromkeys(["EmbeddingExplorer", "explore_embeddings", "explorer_points"], "tanlib.analysis.explorer"),
    **dict.fromkeys(
        [
            "DETECTORS",
            "classification_metrics",
            "detector_scores",
            "noise_detection",
            "noisy_label_auc",
            "subgroup_metrics",
        ],
        "tanlib.analysis.metrics",
    ),
    **dict.fromkeys(["PAPER_RESULTS", "paper_comparison"], "tanlib.report.paper"),
    **dict.fromkeys(
        ["DEFAULT_SUMMARY_METRICS", "format_mean_std", "summarise_runs", "to_latex", "to_markdown"],
        "tanlib.report.tables",
    ),
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
