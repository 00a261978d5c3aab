"""Tests of tanlib.analysis.figures: deterministic saving and every plot function on tiny input."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tanlib.analysis import figures as F
from tanlib.analysis.geometry import distance_samples
from tanlib.analysis.metrics import classification_metrics
from tanlib.config import METHODS
from tanlib.errors import ConfigError, DataError
from tanlib.report.tables import summarise_runs

CLASSES = ["surprise", "fear", "happiness"]


def test_style_constants():
    assert set(F.METHOD_COLORS) == set(METHODS)  # every method its own colour, in every figure
    assert len(set(F.METHOD_COLORS.values())) == len(METHODS)
    assert F.PAPER_RC["font.sans-serif"] == ["DejaVu Sans"]
    assert F.figsize(1)[0] == 3.5 and F.figsize(2)[0] == 7.0
    with pytest.raises(ConfigError, match="columns"):
        F.figsize(3)
    import matplotlib

    before = matplotlib.rcParams["font.size"]
    with F.paper_style():
        assert matplotlib.rcParams["font.size"] == 8
    assert matplotlib.rcParams["font.size"] == before


def test_save_figure_is_byte_identical(tmp_path):
    fig = F.plot_confusion([[3, 1], [0, 2]], ["a", "b"])
    first = F.save_figure(fig, tmp_path / "one" / "confusion")
    assert [p.name for p in first] == ["confusion.png", "confusion.pdf"]
    assert all(p.exists() and p.stat().st_size > 0 for p in first)
    blobs = [p.read_bytes() for p in first]
    second = F.save_figure(fig, tmp_path / "two" / "confusion.png")  # suffix dropped
    assert [p.name for p in second] == ["confusion.png", "confusion.pdf"]
    assert [p.read_bytes() for p in second] == blobs
    assert b"CreationDate" not in blobs[1]
    assert blobs[0][:8] == b"\x89PNG\r\n\x1a\n" and blobs[1][:5] == b"%PDF-"
    with pytest.raises(ConfigError, match="Figure"):
        F.save_figure("not a figure", tmp_path / "x")


def test_plot_class_distribution():
    frame = pd.DataFrame({"label": [0, 1, 1, 2, 2, 2, 0], "split": ["train"] * 4 + ["test"] * 3})
    assert isinstance(F.plot_class_distribution(frame, CLASSES), Figure)
    by_name = frame.assign(label=[CLASSES[i] for i in frame.label])
    assert isinstance(F.plot_class_distribution(by_name, CLASSES), Figure)
    with pytest.raises(DataError, match="outside"):
        F.plot_class_distribution(frame.assign(label=[5] * 7), CLASSES)


def test_plot_sample_grid():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 3, 8, 8), dtype=np.uint8)
    labels = np.array([0, 0, 1, 2, 2, 2, 2])
    fig = F.plot_sample_grid(images, labels, CLASSES, per_class=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 9
    gray = rng.integers(0, 256, (3, 1, 8, 8), dtype=np.uint8)
    assert isinstance(F.plot_sample_grid(gray, [0, 1, 2], CLASSES, per_class=2), Figure)
    with pytest.raises(DataError, match="N x C x H x W"):
        F.plot_sample_grid(images[0], labels, CLASSES)


def test_plot_learning_curves():
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "loss_ce": [1.5, 1.0, 0.8],
            "loss_triplet": [0.2, 0.15, 0.1],
            "loss_mahalanobis": [0.3, 0.2, 0.0],
            "loss_total": [2.0, 1.35, 0.9],
            "train_acc": [0.4, 0.6, 0.7],
            "val_acc": [0.35, 0.5, 0.6],
            "attention_mean": [0.5, 0.55, 0.6],
            "n_high": [40, 44, 45],
            "n_triplets": [60, 50, 40],
            "lr": [1e-3, 9e-4, 8.1e-4],
        }
    )
    fig = F.plot_learning_curves(history)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert isinstance(F.plot_learning_curves(history[["epoch", "loss_ce"]]), Figure)
    with pytest.raises(DataError, match="no column to plot"):
        F.plot_learning_curves(history[["epoch", "lr"]])


def test_plot_confusion_and_per_class():
    m_ce = classification_metrics([0, 1, 2, 2], [0, 2, 2, 2], CLASSES)
    m_tan = classification_metrics([0, 1, 2, 2], [0, 1, 2, 1], CLASSES)
    assert isinstance(F.plot_confusion(m_ce["confusion"], CLASSES), Figure)
    assert isinstance(F.plot_confusion(m_ce["confusion"], CLASSES, normalize=False), Figure)
    fig = F.plot_per_class({"ce": m_ce, "tan (seed 0)": m_tan}, CLASSES)
    assert isinstance(fig, Figure)
    colors = {p.get_facecolor()[:3] for p in fig.axes[0].patches}
    import matplotlib.colors as mc

    assert mc.to_rgb(F.METHOD_COLORS["tan"]) in colors and mc.to_rgb(F.METHOD_COLORS["ce"]) in colors
    with pytest.raises(DataError, match="3 x 3"):
        F.plot_confusion([[1, 0], [0, 1]], CLASSES)
    with pytest.raises(DataError, match="per-class"):
        F.plot_per_class({"ce": {"per_class": {}}}, CLASSES)


def test_plot_attention_hist():
    rng = np.random.default_rng(0)
    a = rng.random(50)
    assert isinstance(F.plot_attention_hist(a), Figure)
    fig = F.plot_attention_hist(a, noisy=a < 0.2)
    assert isinstance(fig, Figure) and "AUC" in fig.axes[0].get_title()
    assert isinstance(F.plot_attention_hist(a, noisy=np.zeros(50, bool)), Figure)
    with pytest.raises(DataError, match="one entry per attention"):
        F.plot_attention_hist(a, noisy=[True])


def test_plot_image_grid():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), rng.random((3, 8, 8)), rng.random((8, 8))]
    fig = F.plot_image_grid(images, ["a", "b", "c"], ncols=2, title_colors=["red", "green", "black"])
    assert isinstance(fig, Figure)
    with pytest.raises(DataError, match="titles"):
        F.plot_image_grid(images, ["a"])


def test_plot_embeddings_and_distances():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 30)
    coords = {"ce": (rng.normal(size=(30, 2)), labels), "tan": (rng.normal(size=(30, 2)), labels)}
    fig = F.plot_embeddings_2d(coords, CLASSES)
    assert isinstance(fig, Figure)
    with pytest.raises(DataError, match="N x 2"):
        F.plot_embeddings_2d({"ce": (np.zeros((30, 3)), labels)}, CLASSES)
    emb = rng.normal(size=(30, 4))
    samples = {"ce": distance_samples(emb, labels), "tan": distance_samples(emb * 0.5, labels)}
    assert isinstance(F.plot_distance_distributions(samples), Figure)


def test_plot_ablation():
    recs = [
        {"method": m, "seed": s, "accuracy": 0.6 + 0.05 * i + 0.01 * s}
        for i, m in enumerate(["tan", "ce", "scn"])
        for s in range(2)
    ] + [{"method": "triplet", "seed": 0, "accuracy": 0.7}]
    summary = summarise_runs(recs, metrics=["accuracy"])
    fig = F.plot_ablation(summary, "accuracy")
    assert isinstance(fig, Figure)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["ce", "scn", "triplet", "tan"]
    with pytest.raises(DataError, match="macro_f1_mean"):
        F.plot_ablation(summary, "macro_f1")


def test_umap_2d_errors_without_importing_umap():
    with pytest.raises(ConfigError, match="n_neighbors"):
        F.umap_2d(np.zeros((5, 3)), n_neighbors=15)


def test_exact_knn_matches_a_loop_and_puts_each_row_first():
    from tanlib.analysis.figures.embeddings import exact_knn

    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4))
    x[7] = x[3]  # a duplicate: rows 3 and 7 are each other's neighbour at distance 0
    idx, dist = exact_knn(x, 5)
    for i in range(len(x)):
        d = [np.sqrt(sum((x[i, c] - x[j, c]) ** 2 for c in range(4))) for j in range(len(x))]
        assert idx[i, 0] == i and dist[i, 0] == 0.0
        np.testing.assert_allclose(sorted(dist[i]), sorted(d)[:5], atol=1e-12)
        np.testing.assert_allclose(dist[i], [d[j] for j in idx[i]], atol=1e-12)


@pytest.mark.slow(19)
def test_umap_2d_tiny_and_deterministic():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(25, 6)), rng.normal(size=(25, 6)) + 6.0])
    a = F.umap_2d(x, seed=0, n_neighbors=5)
    b = F.umap_2d(x, seed=0, n_neighbors=5)
    assert a.shape == (50, 2) and np.isfinite(a).all()
    np.testing.assert_allclose(a, b)
