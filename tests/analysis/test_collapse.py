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
