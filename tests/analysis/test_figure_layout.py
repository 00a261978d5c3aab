"""Every figure function of tanlib.analysis.figures, drawn on small data shaped like the
kit's (seven RAF-DB class names, RAF-DB-like class counts, two or more runs): no two of
its text elements (titles, suptitle, axis and tick labels, bar labels, legend entries)
may overlap (``tanlib.analysis.figures.layout.overlapping_texts``, matplotlib's window
extents after a draw). The embedding figures are also drawn with the suptitle notebook
04 adds after the function returns."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from tanlib.analysis import figures as F  # noqa: E402
from tanlib.analysis.figures.layout import FigureLayoutWarning, figure_texts, overlapping_texts  # noqa: E402

CLASSES = ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"]
# RAF-DB's train shares at the quick preset's SynthFER size (2250 train, 250 val, 700 test)
SHARES = np.array([0.105, 0.023, 0.058, 0.388, 0.161, 0.057, 0.208])


def _rng():
    return np.random.default_rng(0)


def _manifest() -> pd.DataFrame:
    rows = []
    for split, n in (("train", 2250), ("val", 250), ("test", 700)):
        counts = np.round(SHARES * n).astype(int)
        for c, k in enumerate(counts):
            rows += [{"label": c, "split": split}] * int(k)
    return pd.DataFrame(rows)


def _faces(n: int, size: int = 24) -> np.ndarray:
    return _rng().integers(0, 256, (n, 3, size, size), dtype=np.uint8)


def _metrics(seed: int) -> dict:
    from tanlib.analysis.metrics import classification_metrics

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, 300)
    pred = np.where(rng.random(300) < 0.6, y, rng.integers(0, 7, 300))
    return classification_metrics(y, pred, CLASSES)


def _history() -> pd.DataFrame:
    epochs = np.arange(1, 16)
    return pd.DataFrame(
        {
            "epoch": epochs,
            "loss_ce": 1.8 / epochs**0.3,
            "loss_triplet": 0.2 / epochs**0.2,
            "loss_mahalanobis": 0.25 / epochs**0.2,
            "loss_rr": 0.05 + 0 * epochs,
            "loss_total": 2.3 / epochs**0.3,
            "train_acc": 1 - 0.7 / epochs**0.3,
            "val_acc": 1 - 0.75 / epochs**0.3,
            "test_acc": 1 - 0.76 / epochs**0.3,
            "attention_mean": 0.5 + 0.01 * epochs,
            "n_high": 40 + epochs,
            "n_triplets": 1500 - 10 * epochs,
            "n_hard_triplets": 300 - 3 * epochs,
        }
    )


def _attention_history(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    h = _history()
    for j in range(7):
        h[f"attention_class{j}"] = np.clip(0.5 + 0.03 * j * np.log(h["epoch"]) + 0.02 * rng.standard_normal(15), 0, 1)
    return h


def _synth_meta() -> pd.DataFrame:
    rng = _rng()
    n = 600
    return pd.DataFrame(
        {
            "split": "train",
            "clean_label": rng.integers(0, 7, n),
            "intensity": rng.random(n),
            "noisy": rng.random(n) < 0.1,
            "blend_label": np.where(rng.random(n) < 0.3, rng.integers(0, 7, n), -1),
            "occluder": rng.choice(["none", "glasses", "mask", "hand"], n),
            "pose_bin": rng.choice(["frontal", "left", "right"], n),
        }
    )


def _embedding_coords() -> dict:
    rng = _rng()
    labels = rng.integers(0, 7, 300)
    return {m: (rng.normal(size=(300, 2)) + labels[:, None], labels) for m in ("ce", "tan")}


def _distance_samples() -> dict:
    from tanlib.analysis.geometry import distance_samples

    rng = _rng()
    labels = rng.integers(0, 7, 200)
    x = rng.normal(size=(200, 8)) + labels[:, None]
    return {"ce": distance_samples(x, labels), "tan": distance_samples(x * 0.8, labels)}


def _ablation():
    from tanlib.report.tables import summarise_runs

    recs = [
        {"method": m, "seed": s, "accuracy": 0.5 + 0.02 * i + 0.01 * s}
        for i, m in enumerate(F.METHOD_ORDER)
        for s in range(3)
    ]
    return summarise_runs(recs, metrics=["accuracy"])


def _claims() -> list[dict]:
    from tanlib.analysis.stats import combined_test
    from tanlib.analysis.verdict import CLAIMS, PairedDifference, t_interval

    rng = _rng()
    out = []
    for claim in CLAIMS:
        for level in (0.0, 0.1, 0.3):
            diffs = rng.normal(0.0, 0.02, 3)
            mean, lo, hi = t_interval(diffs)
            diff = PairedDifference([0, 1, 2], diffs, mean, lo, hi, [("a", "b")] * 3)
            test = combined_test(mean, float(np.std(diffs, ddof=1) / np.sqrt(3)), 2, 0.0, claim.delta)
            verdict = "inconclusive" if lo < 0 < hi else "supported"
            boot = (mean - 0.03, mean + 0.03) if claim.measure == "accuracy" else None
            out.append(
                {"claim": claim, "level": level, "diff": diff, "test": test, "bootstrap": boot, "verdict": verdict}
            )
    return out


def _gallery():
    rng = _rng()
    n = 64
    given = rng.integers(0, 7, n)
    scores = rng.permutation(n) / n
    rank = np.argsort(np.argsort(scores))
    wrong = np.isin(rank, [0, 4, 9, 30])  # the 1st and 5th lowest: 3-line titles beside 2-line ones
    clean = np.where(wrong, (given + 3) % 7, given)
    return F.plot_ranked_faces(_faces(n, 96), scores, given, clean, CLASSES, n_show=8, score_name="attention")


#: one builder per plot function of tanlib.analysis.figures; the suite fails when a new
#: plot function has none (test_every_plot_function_is_checked)
BUILDERS = {
    "plot_class_distribution": lambda: F.plot_class_distribution(_manifest(), CLASSES),
    "plot_sample_grid": lambda: F.plot_sample_grid(
        _faces(42),
        np.repeat(np.arange(7), 6),
        CLASSES,
        per_class=6,
        wrong=np.arange(42) % 5 == 0,
        clean_labels=(np.repeat(np.arange(7), 6) + 3) % 7,
    ),
    "plot_noise_by_intensity": lambda: F.plot_noise_by_intensity(_synth_meta()),
    "plot_image_grid": lambda: F.plot_image_grid(
        _faces(16),
        titles=[f"{CLASSES[i % 7]} → {CLASSES[(i + 3) % 7]} (0.9{i % 10})" for i in range(16)],
        ncols=8,
    ),
    "plot_ranked_faces": _gallery,
    "plot_learning_curves": lambda: F.plot_learning_curves(_history()),
    "plot_attention_by_class": lambda: F.plot_attention_by_class(
        {
            m: [_attention_history(s) for s in range(3)]
            for m in ("scn", "attention", "tan-euclid", "tan-nothreshold", "tan")
        },
        CLASSES,
    ),
    "plot_confusion": lambda: F.plot_confusion(_metrics(0)["confusion"], CLASSES),
    "plot_per_class": lambda: F.plot_per_class({"ce": _metrics(1), "tan": _metrics(2)}, CLASSES),
    "plot_attention_hist": lambda: F.plot_attention_hist(_rng().random(500), noisy=_rng().random(500) < 0.1),
    "plot_noise_detectors": lambda: F.plot_noise_detectors(
        {"attention": _rng().random(500), "self_confidence": _rng().random(500), "margin": _rng().random(500) - 0.5},
        _rng().random(500) < 0.1,
    ),
    "plot_embeddings_2d": lambda: F.plot_embeddings_2d(_embedding_coords(), CLASSES),
    "plot_distance_distributions": lambda: F.plot_distance_distributions(_distance_samples()),
    "plot_ablation": lambda: F.plot_ablation(_ablation(), "accuracy"),
    "plot_claims": lambda: F.plot_claims(_claims()),
}

# notebook 04 titles both embedding figures after the function returns
SUPTITLES = {
    "plot_embeddings_2d": "UMAP of the test backbone features h (L2-normalised)",
    "plot_distance_distributions": "Pair distances of the test backbone features h (L2-normalised)",
}


def test_every_plot_function_is_checked():
    plot_functions = {name for name in F.__all__ if name.startswith("plot_")}
    assert plot_functions == set(BUILDERS)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_no_text_overlaps(name):
    fig = BUILDERS[name]()
    try:
        assert len(figure_texts(fig)) >= 3  # the check sees the figure's texts
        assert overlapping_texts(fig) == []
        if name in SUPTITLES:
            fig.suptitle(SUPTITLES[name])
            assert overlapping_texts(fig) == []
    finally:
        plt.close(fig)


def test_the_check_finds_a_suptitle_drawn_over_panel_titles():
    """A figure laid out with tight_layout and titled afterwards (the embedding figures'
    old layout): the suptitle lands on the panel titles, and the check names both."""
    fig, axes = plt.subplots(1, 2, figsize=(7, 2))
    for ax, name in zip(axes, ("ce", "tan")):
        ax.set_title(name)
    fig.tight_layout()
    fig.suptitle("UMAP of the test backbone features h")
    pairs = overlapping_texts(fig)
    assert ("figure text 'UMAP of the test backbone features h'", "axes 0 center title 'ce'") in pairs
    plt.close(fig)


def test_rotated_tick_labels_are_tested_as_rotated_rectangles():
    """Labels at 30 degrees whose axis-aligned boxes overlap but whose glyphs do not are
    not reported; squeezed closer, they are."""
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_xticks(range(7), [f"{c}" for c in CLASSES], rotation=30, ha="right")
    fig.tight_layout()
    assert overlapping_texts(fig) == []
    fig.set_size_inches(1.2, 2)
    assert overlapping_texts(fig)
    plt.close(fig)


def test_save_figure_warns_on_overlapping_text(tmp_path):
    fig, axes = plt.subplots(1, 2, figsize=(7, 2))
    for ax, name in zip(axes, ("ce", "tan")):
        ax.set_title(name)
    fig.tight_layout()
    fig.suptitle("UMAP of the test backbone features h, a title drawn afterwards")
    with pytest.warns(FigureLayoutWarning, match="overlapping text"):
        F.save_figure(fig, tmp_path / "garbled")
    plt.close(fig)
