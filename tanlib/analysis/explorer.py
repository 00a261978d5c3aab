"""The embedding explorer of notebook 04: the faces behind every point of a UMAP.

What this module owns:

- ``explorer_points``: one row per face of a run: its 2-D UMAP position in the chosen
  space (backbone features h, L2-normalised, or the embedding e), image path, given and
  clean label, whether the given label is wrong, prediction, correctness, attention and
  confidence. ``split="test"`` reads the run's ``predictions.csv`` and ``embeddings.npz``;
  ``split="train"`` runs the run's model over a seeded sample of its training faces
  (where SynthFER's wrong labels are).
- ``thumbnail_uri``, ``point_html`` and ``gallery_html``: a face as an inline PNG and the
  HTML of the hover panel and of the selection gallery.
- ``EmbeddingExplorer`` (``explore_embeddings`` builds one): a plotly ``FigureWidget``
  with ipywidgets around it. Hovering a point shows its face and labels beside the plot;
  a lasso or box selection, or a click, lists the faces as a gallery below it; widgets
  choose the run (method), the space, the split and the colouring (class, wrong label,
  attention, correct / incorrect). It renders in JupyterLab through the widget manager
  (plotly's FigureWidget is an anywidget), with no server of its own; the callbacks run
  in the kernel. UMAPs are computed when first shown and kept.

The static UMAP figure of 04 (``plot_embeddings_2d``, PNG + PDF) stays the one for
papers; the explorer is for looking.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from tanlib.analysis.figures.style import _GREY, OKABE_ITO, class_colors
from tanlib.errors import ConfigError, DataError

SPACES = {"features": "features h", "embedding": "embedding e"}
SPLITS = ("test", "train")
COLOURINGS = {
    "class": "given label",
    "wrong": "wrong label",
    "attention": "attention",
    "correct": "correct / incorrect",
}


def _vectors(raw: Mapping, space: str) -> np.ndarray:
    from tanlib.analysis.geometry import space_vectors

    return space_vectors(raw, space)


def _check_space(run, space: str) -> None:
    from tanlib.analysis.geometry import check_space

    check_space(space, run.config, run.path.name)


def explorer_points(
    run,
    space: str = "features",
    split: str = "test",
    max_points: int = 1000,
    seed: int = 0,
    n_neighbors: int = 15,
    project: Callable | None = None,
    checkpoint: str | None = None,
) -> pd.DataFrame:
    """One row per face of ``run`` (a ``tanlib.engine.Run``): columns ``x``, ``y`` (2-D
    projection of the ``space`` vectors: ``umap_2d`` unless ``project(vectors, seed,
    n_neighbors)`` is given), ``path``, ``label``, ``label_name``, ``clean_label``,
    ``clean_name``, ``wrong``, ``pred``, ``pred_name``, ``correct``, ``attention``,
    ``confidence``. At most ``max_points`` faces, a seeded sample. Training faces are run
    through ``checkpoint`` (default: the run's primary one, as the test predictions are)."""
    _check_space(run, space)
    if split not in SPLITS:
        raise ConfigError(f"split={split!r} is not allowed; choose one of {', '.join(SPLITS)}")
    if not isinstance(max_points, int) or max_points < 3:
        raise ConfigError(f"max_points must be an int >= 3, got {max_points!r}")
    classes = list(run.classes)
    rng = np.random.default_rng(seed)
    if split == "test":
        frame = run.predictions.reset_index(drop=True)
        vectors = _vectors(run.embeddings, space)
        if len(vectors) != len(frame):
            raise DataError(
                f"{run.path}: embeddings.npz has {len(vectors)} rows, predictions.csv {len(frame)}; "
                "evaluate the run again"
            )
        keep = np.sort(rng.choice(len(frame), size=min(max_points, len(frame)), replace=False))
        frame, vectors = frame.iloc[keep].reset_index(drop=True), vectors[keep]
        probs = None
    else:
        from tanlib.data import load_images
        from tanlib.engine import predict

        train = run.manifest.split("train")
        keep = np.sort(rng.choice(len(train), size=min(max_points, len(train)), replace=False))
        frame = train.iloc[keep].reset_index(drop=True)
        from tanlib.engine.evaluate import primary_checkpoint

        model = run.model(checkpoint or primary_checkpoint(run.config))
        out = predict(model, load_images(frame, size=run.config.image_size))
        vectors = _vectors(out, space)
        frame = frame.assign(pred=out["pred"], attention=out["attention"].ravel())
        probs = out["prob"]
    if len(frame) < 3:
        raise DataError(f"{run.path}: only {len(frame)} {split} faces; the explorer needs at least 3")
    label = frame["label"].to_numpy().astype(int)
    clean = frame["clean_label"].to_numpy().astype(int) if "clean_label" in frame else label
    pred = frame["pred"].to_numpy().astype(int)
    attention = frame["attention"].to_numpy(dtype=float) if "attention" in frame else np.full(len(frame), np.nan)
    if not getattr(run.config, "attention", True):
        attention = np.full(len(frame), np.nan)  # no attention module (ce): the column is a constant
    if probs is not None:
        confidence = probs.max(1)
    else:
        confidence = frame["confidence"].to_numpy(dtype=float) if "confidence" in frame else np.full(len(frame), np.nan)
    k = max(2, min(n_neighbors, len(frame) - 1))
    if project is None:
        from tanlib.analysis.figures.embeddings import umap_2d

        xy = umap_2d(vectors, seed=seed, n_neighbors=k)
    else:
        xy = np.asarray(project(vectors, seed, k), dtype=float)
    if xy.shape != (len(frame), 2):
        raise DataError(f"the projection gave shape {xy.shape}; expected ({len(frame)}, 2)")
    return pd.DataFrame(
        {
            "x": xy[:, 0],
            "y": xy[:, 1],
            "path": frame["path"].astype(str).to_numpy(),
            "label": label,
            "label_name": [classes[i] for i in label],
            "clean_label": clean,
            "clean_name": [classes[i] for i in clean],
            "wrong": label != clean,
            "pred": pred,
            "pred_name": [classes[i] for i in pred],
            "correct": pred == label,
            "attention": attention,
            "confidence": confidence,
        }
    )


def thumbnail_uri(path: str, size: int = 96) -> str:
    """The image at ``path`` as a ``data:image/png;base64`` URI, ``size`` x ``size``."""
    from tanlib.data.decode import read_rgb

    buf = io.BytesIO()
    read_rgb(str(path), size).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _facts(row) -> list[str]:
    lines = [f"given label: <b>{html.escape(row['label_name'])}</b>"]
    if row["wrong"]:
        lines.append(
            f"<span style='color:{OKABE_ITO['vermillion']}'>wrong label: it is "
            f"<b>{html.escape(row['clean_name'])}</b></span>"
        )
    else:
        lines.append(f"clean label: {html.escape(row['clean_name'])}")
    mark = "right" if row["correct"] else f"<span style='color:{OKABE_ITO['vermillion']}'>wrong</span>"
    lines.append(f"prediction: {html.escape(row['pred_name'])} ({mark})")
    if np.isfinite(row["attention"]):
        lines.append(f"attention: {row['attention']:.3f}")
    if np.isfinite(row["confidence"]):
        lines.append(f"confidence: {row['confidence']:.2f}")
    return lines


def point_html(row, size: int = 128) -> str:
    """The hover panel of one face (a row of ``explorer_points``): its thumbnail and facts."""
    uri = thumbnail_uri(row["path"], size)
    name = html.escape(str(row["path"]).rsplit("/", 1)[-1])
    return (
        f"<div class='tan-explorer-point'><img src='{uri}' width='{size}' height='{size}' alt='{name}'>"
        f"<div style='font-size:12px;line-height:1.4'>{'<br>'.join(_facts(row))}<br>"
        f"<span style='color:#666'>{name}</span></div></div>"
    )


def gallery_html(rows: pd.DataFrame, limit: int = 48, size: int = 80) -> str:
    """The selected faces (rows of ``explorer_points``) as a gallery: thumbnail, given
    label, and the clean label or prediction where they differ; at most ``limit``."""
    if rows.empty:
        return "<div class='tan-explorer-gallery'>No face selected: lasso, box-select or click points.</div>"
    shown = rows.head(limit)
    cells = []
    for _, row in shown.iterrows():
        colour = OKABE_ITO["vermillion"] if row["wrong"] else "#000"
        note = f"is {row['clean_name']}" if row["wrong"] else f"pred. {row['pred_name']}"
        cells.append(
            f"<figure style='margin:2px;width:{size + 8}px;text-align:center;font-size:10px;color:{colour}'>"
            f"<img src='{thumbnail_uri(row['path'], size)}' width='{size}' height='{size}'"
            f" style='border:2px solid {colour if row['wrong'] else 'transparent'}'>"
            f"<figcaption>{html.escape(row['label_name'])}<br>{html.escape(note)}</figcaption></figure>"
        )
    more = f" (the first {limit} shown)" if len(rows) > limit else ""
    wrong = int(rows["wrong"].sum())
    head = (
        f"<div><b>{len(rows)} face(s) selected</b>{more}: {wrong} with a wrong label, "
        f"{int((~rows['correct']).sum())} predicted wrong.</div>"
    )
    return (
        f"<div class='tan-explorer-gallery'>{head}<div style='display:flex;flex-wrap:wrap'>{''.join(cells)}</div></div>"
    )


def _hover_text(points: pd.DataFrame) -> list[str]:
    out = []
    for _, row in points.iterrows():
        text = f"given {row['label_name']}, pred. {row['pred_name']}"
        if row["wrong"]:
            text += f"<br>wrong label: is {row['clean_name']}"
        if np.isfinite(row["attention"]):
            text += f"<br>attention {row['attention']:.3f}"
        out.append(text)
    return out


class EmbeddingExplorer:
    """The explorer widget over several runs (``{method: Run}``); see the module's doc.
    ``explorer.widget`` is the ipywidgets box (a notebook cell showing the explorer shows
    it); ``data()`` the points shown, ``show_point(i)`` and ``show_selection(indices)``
    what hovering and selecting call."""

    def __init__(
        self,
        runs: Mapping,
        classes=None,
        space: str = "features",
        split: str = "test",
        colour: str = "class",
        max_points: int = 1000,
        seed: int = 0,
        n_neighbors: int = 15,
        project: Callable | None = None,
    ):
        import ipywidgets as widgets
        import plotly.graph_objects as go

        if not isinstance(runs, Mapping) or not runs:
            raise DataError("runs must be a non-empty dict {method: Run}")
        if colour not in COLOURINGS:
            raise ConfigError(f"colour={colour!r} is not allowed; choose one of {', '.join(COLOURINGS)}")
        if split not in SPLITS:
            raise ConfigError(f"split={split!r} is not allowed; choose one of {', '.join(SPLITS)}")
        self.runs = dict(runs)
        self.classes = list(classes or next(iter(self.runs.values())).classes)
        self.options = {"max_points": max_points, "seed": seed, "n_neighbors": n_neighbors, "project": project}
        self._cache: dict[tuple, pd.DataFrame] = {}
        method = next(iter(self.runs))
        if space == "embedding" and not self.runs[method].config.trains_embedding:
            trained = [m for m, r in self.runs.items() if r.config.trains_embedding]
            if not trained:
                raise ConfigError("space='embedding': no run has a trained embedding; use space='features'")
            method = trained[0]
        self.method = widgets.Dropdown(options=list(self.runs), value=method, description="method")
        self.space = widgets.ToggleButtons(
            options=[(label, key) for key, label in SPACES.items()], value=space, description="space"
        )
        self.split = widgets.ToggleButtons(options=list(SPLITS), value=split, description="faces")
        self.colour = widgets.Dropdown(
            options=[(label, key) for key, label in COLOURINGS.items()], value=colour, description="colour"
        )
        self.status = widgets.HTML()
        self.detail = widgets.HTML(
            "<div class='tan-explorer-point'>Hover over a point to see its face.</div>",
            layout=widgets.Layout(width="230px"),
        )
        self.gallery = widgets.HTML(gallery_html(pd.DataFrame()))
        self.figure = go.FigureWidget(
            data=[go.Scatter(x=[], y=[], mode="markers", name="faces", showlegend=False)],
            layout=go.Layout(
                width=640,
                height=520,
                dragmode="lasso",
                hovermode="closest",
                margin={"l": 10, "r": 10, "t": 75, "b": 10},
                xaxis={"visible": False},
                yaxis={"visible": False, "scaleanchor": "x"},
                legend={"itemsizing": "constant"},
                plot_bgcolor="white",
            ),
        )
        trace = self.figure.data[0]
        trace.on_hover(self._on_hover)
        trace.on_click(self._on_click)
        trace.on_selection(self._on_selection)
        for control in (self.method, self.space, self.split, self.colour):
            control.observe(self._on_control, names="value")
        controls = widgets.VBox([widgets.HBox([self.method, self.colour]), self.space, self.split, self.status])
        self.widget = widgets.VBox(
            [controls, widgets.HBox([self.figure, self.detail]), self.gallery],
            layout=widgets.Layout(width="100%"),
        )
        self.widget.add_class("tan-explorer")
        self.refresh()

    # ---- data
    def data(self) -> pd.DataFrame:
        """The points shown now (``explorer_points`` of the chosen method, space, split)."""
        key = (self.method.value, self.space.value, self.split.value)
        if key not in self._cache:
            self._cache[key] = explorer_points(self.runs[key[0]], space=key[1], split=key[2], **self.options)
        return self._cache[key]

    def _colours(self, points: pd.DataFrame) -> tuple[dict, list[tuple[str, str]]]:
        """The marker settings of the main trace and the legend entries (name, colour)."""
        kind = self.colour.value
        if kind == "attention":
            values = points["attention"].to_numpy(dtype=float)
            if not np.isfinite(values).any():
                return {"color": _GREY}, [("no attention module in this run", _GREY)]
            marker = {
                "color": np.nan_to_num(values, nan=0.0),
                "colorscale": "Viridis",
                "cmin": float(np.nanmin(values)),
                "cmax": float(np.nanmax(values)),
                "showscale": True,
                "colorbar": {"title": {"text": "attention"}, "thickness": 12},
            }
            return marker, []
        if kind == "class":
            palette = class_colors(len(self.classes))
            colour = [palette[i] for i in points["label"]]
            return {"color": colour}, list(zip(self.classes, palette))
        flag, yes, no = {
            "wrong": ("wrong", "wrong label", "label right"),
            "correct": ("correct", "predicted right", "predicted wrong"),
        }[kind]
        on = points[flag].to_numpy(dtype=bool)
        if kind == "correct":
            good, bad = OKABE_ITO["bluish_green"], OKABE_ITO["vermillion"]
            colour = np.where(on, good, bad)
            return {"color": list(colour)}, [(yes, good), (no, bad)]
        colour = np.where(on, OKABE_ITO["vermillion"], "#BBBBBB")
        return {"color": list(colour), "size": list(np.where(on, 9, 6))}, [
            (yes, OKABE_ITO["vermillion"]),
            (no, "#BBBBBB"),
        ]

    def refresh(self) -> None:
        """Draw the chosen method / space / split / colouring (computing its UMAP once)."""
        import plotly.graph_objects as go

        run = self.runs[self.method.value]
        if self.space.value == "embedding" and not run.config.trains_embedding:
            self.status.value = (
                f"<i>{html.escape(self.method.value)} has no trained embedding e (no metric term): "
                "showing the features h.</i>"
            )
            self.space.value = "features"  # observed: refresh runs again
            return
        self.status.value = "<i>computing the UMAP...</i>"
        points = self.data()
        marker, legend = self._colours(points)
        marker = {"size": 6, "opacity": 0.85, "line": {"width": 0}, "showscale": False, **marker}
        title = (
            f"{self.method.value}: UMAP of the {self.split.value} {SPACES[self.space.value]}<br>"
            f"{len(points)} faces, coloured by {COLOURINGS[self.colour.value]}"
        )
        with self.figure.batch_update():
            trace = self.figure.data[0]
            trace.x, trace.y = points["x"].to_numpy(), points["y"].to_numpy()
            trace.text = _hover_text(points)
            trace.hovertemplate = "%{text}<extra></extra>"
            trace.marker = marker
            trace.selectedpoints = None
            self.figure.data = self.figure.data[:1]
            for name, colour in legend:
                self.figure.add_trace(
                    go.Scatter(
                        x=[None],
                        y=[None],
                        mode="markers",
                        name=name,
                        marker={"color": colour, "size": 8},
                        hoverinfo="skip",
                    )
                )
            self.figure.layout.title = {"text": title, "font": {"size": 12}, "x": 0.02, "xanchor": "left", "y": 0.98}
        self.status.value = ""

    # ---- callbacks (plotly calls them with trace, points, state / selector)
    def show_point(self, index: int) -> str:
        """Show face ``index`` (a row of ``data()``) in the hover panel; return its HTML."""
        self.detail.value = point_html(self.data().iloc[int(index)])
        return self.detail.value

    def show_selection(self, indices) -> str:
        """List the faces ``indices`` (rows of ``data()``) in the gallery; return its HTML."""
        rows = self.data().iloc[[int(i) for i in indices]]
        self.gallery.value = gallery_html(rows)
        return self.gallery.value

    def _on_hover(self, trace, points, state) -> None:
        if points.point_inds:
            self.show_point(points.point_inds[0])

    def _on_click(self, trace, points, state) -> None:
        if points.point_inds:
            self.show_point(points.point_inds[0])
            self.show_selection(points.point_inds)

    def _on_selection(self, trace, points, selector) -> None:
        self.show_selection(points.point_inds)

    def _on_control(self, change) -> None:
        self.gallery.value = gallery_html(pd.DataFrame())
        self.refresh()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def explore_embeddings(runs: Mapping, **kwargs) -> EmbeddingExplorer:
    """An ``EmbeddingExplorer`` over ``runs`` (``{method: Run}``); keyword arguments as
    its constructor's (``space``, ``split``, ``colour``, ``max_points``, ``seed``,
    ``n_neighbors``). The last line of a notebook cell shows it."""
    return EmbeddingExplorer(runs, **kwargs)


__all__ = [
    "COLOURINGS",
    "SPACES",
    "SPLITS",
    "EmbeddingExplorer",
    "explore_embeddings",
    "explorer_points",
    "gallery_html",
    "point_html",
    "thumbnail_uri",
]
