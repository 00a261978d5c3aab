"""The collapse criterion: the one rule of tanlib.analysis.collapse, on hand-made runs."""

from tanlib.analysis.collapse import COLLAPSE_SPREAD, attention_verdict, collapse_verdict
from tanlib.config import preset


def _metrics(best, last):
    return {
        "results": {"best_val": {"geometry": {"mean_distance": best}}, "last": {"geometry": {"mean_distance": last}}}
    }


def test_a_point_like_embedding_is_collapsed_and_says_why():
    history = [{"loss_triplet": 0.209, "loss_mahalanobis": 0.207}]
    collapsed, reason = collapse_verdict(preset("tan"), _metrics(0.9, 0.028), history)
    assert collapsed
    assert "last checkpoint" in reason and "0.028 < 0.2" in reason
    assert "final triplet loss 0.209 against its margin 0.2" in reason


def test_spread_embeddings_and_untrained_ones_are_not_collapsed():
    assert collapse_verdict(preset("tan"), _metrics(1.05, 0.98), []) == (False, "test embedding spread 0.980 >= 0.2")
    collapsed, reason = collapse_verdict(preset("ce"), _metrics(0.01, 0.01), [])
    assert not collapsed and "not trained" in reason
    assert COLLAPSE_SPREAD < 1.41 / 2  # far below the spread of random unit vectors


def test_attention_states_from_the_last_epoch():
    tan = preset("tan")
    assert (
        attention_verdict(tan, [{"attention_mean": 0.3}, {"attention_mean": 0.97, "attention_std": 0.01}])[0]
        == "saturated"
    )
    state, reason = attention_verdict(tan, [{"attention_mean": 0.005, "attention_std": 0.004}])
    assert state == "dead" and "0.005" in reason and "stalls" in reason
    assert attention_verdict(tan, [{"attention_mean": 0.6, "attention_std": 0.15}])[0] == "ok"
    assert attention_verdict(preset("ce"), [{"attention_mean": 1.0}]) == ("none", "no attention module")


def _committed_val_histories(n: int = 40) -> list[tuple]:
    """(path, validation accuracies) of the first ``n`` committed verdict records' history.csv."""
    import csv
    from pathlib import Path

    histories = sorted((Path(__file__).resolve().parents[2] / "results" / "verdict").glob("*/*/history.csv"))
    assert histories
    out = []
    for path in histories[:n]:
        with open(path) as f:
            out.append((path, [float(row["val_acc"]) for row in csv.DictReader(f)]))
    return out


def test_last_epochs_range_against_the_committed_histories():
    """last_epochs_range: max - min of the last 3 validation accuracies in points, against a
    loop over every committed verdict record's history.csv; a move of exactly 10 faces in
    1,000 is 1 point (within the target), and one epoch moves by 0."""
    import math

    from tanlib.analysis.collapse import CONVERGED_POINTS, last_epochs_range

    assert last_epochs_range([0.5, 0.81, 0.80, 0.805]) == 1.0 <= CONVERGED_POINTS
    assert last_epochs_range([0.7]) == 0.0 and math.isnan(last_epochs_range([]))
    for path, val in _committed_val_histories():
        last = val[-3:]
        naive = 100 * max(last) - 100 * min(last)
        assert abs(last_epochs_range(val) - naive) < 1e-6, path


def test_last_epochs_change_is_the_signed_move_of_the_last_3_epochs():
    """last_epochs_change: the last validation accuracy minus the one 2 epochs before, in points
    (positive: still climbing), against a loop over committed verdict histories; its size never
    exceeds last_epochs_range, and a climb and a fall of the same range have opposite signs."""
    import math

    from tanlib.analysis.collapse import last_epochs_change, last_epochs_range

    assert last_epochs_change([0.5, 0.80, 0.81, 0.82]) == 2.0
    assert last_epochs_change([0.5, 0.82, 0.81, 0.80]) == -2.0
    assert last_epochs_change([0.5, 0.80, 0.83, 0.80]) == 0.0 < last_epochs_range([0.5, 0.80, 0.83, 0.80])
    assert last_epochs_change([0.7]) == 0.0 and math.isnan(last_epochs_change([]))
    for path, val in _committed_val_histories():
        naive = 100 * val[-1] - 100 * val[-3]
        assert abs(last_epochs_change(val) - naive) < 1e-6, path
        assert abs(last_epochs_change(val)) <= last_epochs_range(val) + 1e-9
