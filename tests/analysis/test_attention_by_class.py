"""The mean attention per given class and epoch over a method's seeds (history.csv's
``attention_class<j>``), checked against explicit loops."""

import math

import numpy as np
import pandas as pd
import pytest

from tanlib.analysis.figures import attention_by_class, plot_attention_by_class
from tanlib.errors import DataError


def _history(seed, classes=3, epochs=4, missing=None):
    rng = np.random.default_rng(seed)
    h = pd.DataFrame({"epoch": np.arange(1, epochs + 1), "val_acc": rng.random(epochs)})
    for j in range(classes):
        h[f"attention_class{j}"] = rng.random(epochs)
    if missing is not None:  # a class absent from every batch of an epoch: NaN, as runstate writes it
        h.loc[0, f"attention_class{missing}"] = float("nan")
    return h


def test_attention_by_class_is_the_mean_over_seeds_per_epoch_and_class():
    hs = [_history(0), _history(1), _history(2, missing=1)]
    got = attention_by_class(hs)
    for epoch in range(1, 5):
        for j in range(3):
            values = [float(h.loc[h["epoch"] == epoch, f"attention_class{j}"].iloc[0]) for h in hs]
            values = [v for v in values if not math.isnan(v)]
            assert got.loc[epoch, j] == pytest.approx(sum(values) / len(values))
    # classes sort by index, not as strings (class10 after class9)
    wide = _history(0, classes=11)
    assert list(attention_by_class(wide).columns) == list(range(11))


def test_histories_without_class_attention_are_refused():
    with pytest.raises(DataError, match="attention_class"):
        attention_by_class([pd.DataFrame({"epoch": [1], "val_acc": [0.5]})])
    with pytest.raises(DataError, match="non-empty mapping"):
        plot_attention_by_class({}, ["a", "b"])


def test_one_panel_per_method_with_a_line_per_class():
    fig = plot_attention_by_class({"scn": [_history(0)], "tan": [_history(1), _history(2)]}, ["a", "b", "c"])
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["scn (1 seed)", "tan (2 seeds)"]
    assert all(len(ax.lines) == 3 for ax in axes)
    np.testing.assert_allclose(axes[1].lines[2].get_ydata(), attention_by_class([_history(1), _history(2)])[2])
