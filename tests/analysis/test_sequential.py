"""The sequential design of the verdict (tanlib.analysis.sequential): its looks, the share of
the error rate each spends, and, by simulation under the null, that repeated looks with the
adjustment keep the error rate while repeated looks without it do not."""

import math

import pytest
from scipy import stats

from tanlib.analysis.sequential import SequentialDesign


def test_looks_are_the_first_then_every_batch_then_the_budget():
    assert SequentialDesign().looks() == [3, 8, 13, 18, 20]
    assert SequentialDesign(3, 5, 18).looks() == [3, 8, 13, 18]
    assert SequentialDesign(2, 1, 2).looks() == [2]
    d = SequentialDesign()
    for n in range(0, 25):
        reached = [k for k in d.looks() if k <= n]
        later = [k for k in d.looks() if k > n]
        assert d.look_size(n) == (reached[-1] if reached else None)
        assert d.next_look(n) == (later[0] if later else None)
    with pytest.raises(ValueError, match="max_seeds >= first"):
        SequentialDesign(3, 5, 2)


def test_shares_follow_pocock_type_spending_and_sum_to_one():
    d = SequentialDesign()
    spent = [math.log(1 + (math.e - 1) * k / 20) for k in d.looks()]
    want = [spent[0]] + [b - a for a, b in zip(spent, spent[1:])]
    got = [d.weight(k) for k in d.looks()]
    assert got == pytest.approx(want)
    assert sum(got) == pytest.approx(1.0)
    assert d.adjust(0.01, 3) == pytest.approx(0.01 / want[0])
    assert d.adjust(0.5, 3) == 1.0 and math.isnan(d.adjust(0.01, None))
    with pytest.raises(ValueError, match="not a look"):
        d.weight(4)


def test_seeds_to_decide_is_the_first_look_that_would_decide():
    d = SequentialDesign()

    def seeds_for(alpha):  # a stand-in power rule: fewer seeds for a larger alpha
        return math.ceil(0.15 / alpha)

    # naive: the first look after 3 whose own share of 0.05 decides within its seeds
    want = next(k for k in d.looks() if k > 3 and seeds_for(0.05 * d.weight(k)) <= k)
    assert d.seeds_to_decide(seeds_for, 3) == (want, True) and want == 18  # 8 and 13 fall short
    assert d.seeds_to_decide(lambda alpha: 1000, 3) == (1000, False)  # beyond the budget: at the full alpha
    assert d.seeds_to_decide(lambda alpha: math.ceil(0.15 / alpha), 3, alpha=0.01) == (math.ceil(15), False)
    assert d.seeds_to_decide(lambda alpha: None, 3) == (None, False)  # no number of seeds
    assert d.seeds_to_decide(lambda alpha: 5, 20) == (None, False)  # the budget is spent


def test_repeated_looks_keep_the_error_rate_only_with_the_adjustment():
    naive, adjusted = SequentialDesign().null_error_rates(n_sim=4000, seed=0)
    se = math.sqrt(0.05 * 0.95 / 4000)
    assert naive > 0.05 + 5 * se  # optional stopping without an adjustment: about 0.1
    assert adjusted <= 0.05 + 2 * se


def test_the_simulated_null_matches_a_loop_over_experiments():
    """null_error_rates against an explicit loop: the same draws, one experiment at a time,
    stopped at its first rejection."""
    import numpy as np

    d = SequentialDesign(3, 5, 13)
    naive, adjusted = d.null_error_rates(n_sim=300, seed=1)
    x = np.random.default_rng(1).normal(size=(300, 13))
    n_naive = n_adjusted = 0
    for row in x:
        ps = [(k, stats.ttest_1samp(row[:k], 0.0).pvalue) for k in d.looks()]
        n_naive += any(p < 0.05 for _, p in ps)
        n_adjusted += any(min(1.0, p / d.weight(k)) < 0.05 for k, p in ps)
    assert (naive, adjusted) == (n_naive / 300, n_adjusted / 300)
