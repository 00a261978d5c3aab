"""The embedding explorer of notebook 04 without a browser: its points (test faces from a
run's files, training faces through the run's model), the hover panel and gallery, and
the plotly callbacks and widgets wired to them. The projection is a cheap linear one
(``project=``): umap_2d has its own tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tanlib.errors import ConfigError

CLASSES = ["Surprise", "Fear", "Happiness"]


def _project(vectors, seed, n_neighbors):
    """The first two principal axes: deterministic and instant."""
    x = vectors - vectors.mean(0)
    return x @ np.linalg.svd(x, full_matrices=False)[2][:2].T


class FakeRun:
    """The parts of ``tanlib.engine.Run`` the explorer reads, on faces written to disk."""

    def __init__(self, root: Path, method: str, n: int = 24, trains_embedding: bool = True, attention: bool = True):
        rng = np.random.default_rng(len(method))
        self.path = root / f"{method}-seed0"
        self.path.mkdir(parents=True)
        paths = []
        for i in range(n):
            p = self.path / f"face{i:02d}.png"
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(p)
            paths.append(str(p))
        label = np.arange(n) % 3
        clean = label.copy()
        clean[[1, 5]] = (label[[1, 5]] + 1) % 3  # two wrong labels
        pred = label.copy()
        pred[[2, 5, 7]] = (label[[2, 5, 7]] + 2) % 3
        self.predictions = pd.DataFrame(
            {
                "index": np.arange(n),
                "path": paths,
                "label": label,
                "clean_label": clean,
                "noisy": label != clean,
                "pred": pred,
                "attention": np.linspace(0.1, 0.9, n),
                "confidence": np.full(n, 0.7),
            }
        )
        self.embeddings = {"features": rng.normal(size=(n, 8)), "embedding": rng.normal(size=(n, 4))}
        self.classes = CLASSES
        self.config = SimpleNamespace(
            method=method, trains_embedding=trains_embedding, attention=attention, image_size=16
        )
        self.manifest = SimpleNamespace(split=lambda name: self.predictions[["path", "label", "clean_label"]].copy())

    def model(self, checkpoint="best"):
        import torch

        class Tiny(torch.nn.Module):
            def forward(self, x):
                flat = x.flatten(1)[:, :8]
                logits = flat[:, :3]
                return SimpleNamespace(
                    logits=logits, attention=torch.sigmoid(flat[:, 3]), embedding=flat[:, :4], features=flat
                )

        return Tiny()


@pytest.fixture
def runs(tmp_path):
    return {
        "ce": FakeRun(tmp_path, "ce", trains_embedding=False, attention=False),
        "tan": FakeRun(tmp_path, "tan"),
    }


def test_points_of_the_test_faces(runs):
    from tanlib.analysis import explorer_points

    pts = explorer_points(runs["tan"], space="embedding", project=_project, max_points=20, seed=0)
    assert len(pts) == 20 and np.isfinite(pts[["x", "y"]].to_numpy()).all()
    full = explorer_points(runs["tan"], project=_project, max_points=1000)
    assert full["wrong"].tolist() == [i in (1, 5) for i in range(24)]
    assert full["correct"].tolist() == [i not in (2, 5, 7) for i in range(24)]
    assert full.loc[1, "label_name"] == "Fear" and full.loc[1, "clean_name"] == "Happiness"
    assert full.loc[23, "attention"] == pytest.approx(0.9)
    ce = explorer_points(runs["ce"], project=_project)
    assert ce["attention"].isna().all()  # ce has no attention module
    with pytest.raises(ConfigError, match="untrained projection"):
        explorer_points(runs["ce"], space="embedding", project=_project)
    with pytest.raises(ConfigError, match="split"):
        explorer_points(runs["tan"], split="val", project=_project)


def test_points_of_the_training_faces_come_from_the_model(runs):
    from tanlib.analysis import explorer_points

    pts = explorer_points(runs["tan"], split="train", project=_project, max_points=10)
    assert len(pts) == 10 and pts["wrong"].sum() <= 2
    assert pts["attention"].between(0, 1).all() and pts["confidence"].between(0, 1).all()


def test_hover_panel_and_gallery_show_the_faces(runs):
    from tanlib.analysis.explorer import explorer_points, gallery_html, point_html

    pts = explorer_points(runs["tan"], project=_project)
    panel = point_html(pts.iloc[5])
    assert "data:image/png;base64," in panel and "wrong label: it is <b>Surprise</b>" in panel
    assert "prediction: Fear" in panel and "attention: 0.274" in panel
    gallery = gallery_html(pts.iloc[[1, 2, 3]])
    assert gallery.count("<img") == 3 and "3 face(s) selected" in gallery and "1 with a wrong label" in gallery
    assert "No face selected" in gallery_html(pts.iloc[[]])


def test_callbacks_and_widgets(runs):
    from plotly.callbacks import BoxSelector, InputDeviceState, Points

    from tanlib.analysis import EmbeddingExplorer

    ex = EmbeddingExplorer(runs, project=_project, colour="class")
    trace = ex.figure.data[0]
    assert ex.method.value == "ce" and len(trace.x) == 24
    assert [t.name for t in ex.figure.data[1:]] == CLASSES  # one legend entry per class
    state = InputDeviceState(ctrl=False, alt=False, shift=False, meta=False, button=0, buttons=0)
    # what the widget does when the browser reports a hover, a box selection, a click
    trace._dispatch_on_hover(Points(point_inds=[5], xs=[0], ys=[0], trace_name="faces", trace_index=0), state)
    assert "data:image/png;base64," in ex.detail.value and "wrong label" in ex.detail.value
    selector = BoxSelector(xrange=[0, 1], yrange=[0, 1])
    trace._dispatch_on_selection(Points(point_inds=[0, 1, 2, 3], trace_name="faces", trace_index=0), selector)
    assert ex.gallery.value.count("<img") == 4
    trace._dispatch_on_click(Points(point_inds=[7], trace_name="faces", trace_index=0), state)
    assert ex.gallery.value.count("<img") == 1 and "1 face(s) selected" in ex.gallery.value

    ex.colour.value = "wrong"  # widgets redraw the plot
    assert [t.name for t in ex.figure.data[1:]] == ["wrong label", "label right"]
    assert "No face selected" in ex.gallery.value
    ex.colour.value = "attention"
    assert len(ex.figure.data) == 2 and "no attention" in ex.figure.data[1].name  # ce: no attention module
    ex.method.value = "tan"
    assert len(ex.figure.data) == 1 and trace.marker.showscale and "tan" in ex.figure.layout.title.text
    ex.space.value = "embedding"
    assert "embedding e" in ex.figure.layout.title.text
    ex.method.value = "ce"  # ce has no trained embedding: back to the features
    assert ex.space.value == "features" and "features h" in ex.figure.layout.title.text
    ex.colour.value = "correct"
    ex.split.value = "train"
    assert "train" in ex.figure.layout.title.text and ex.data()["correct"].dtype == bool
    assert {("ce", "features", "test"), ("tan", "embedding", "test"), ("ce", "features", "train")} <= set(ex._cache)
    assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()
