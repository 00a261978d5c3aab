"""The verdict's sequential design: seeds are added in batches until each claim is decided, so
each claim is looked at several times; the error rate is spent over those looks.

A claim is judged only at its *looks* (``SequentialDesign.looks``): after ``first`` paired
seeds, then every ``batch`` more, and at ``max_seeds``, the budget; the claims file's
``design`` sets them (``tanlib.analysis.claims.load_design``). A look of L seeds is reached at a
level when every method of the level's claims has seeds 0..L-1, and is judged on those seeds
(``tanlib.analysis.verdict.complete_seeds``): the same records give the same looks whatever
order they arrived in. Below the first look a claim is shown, not decided.

Each look spends a share ``weight`` of the error rate, from the Lan-DeMets spending function of
Pocock's type, alpha(t) = alpha * ln(1 + (e - 1) t) with t = L / max_seeds (Lan & DeMets 1983,
"Discrete sequential boundaries for clinical trials", Biometrika 70; Kim & DeMets 1987): the
shares sum to 1 over the looks up to the budget. A p-value at a look is divided by its share
(``adjust``, capped at 1) and the smallest over the looks so far is kept before Holm's
adjustment over the family: by the union bound over the looks, the chance that a true null is
ever rejected at any look is at most alpha, whatever the correlation between looks
(conservative: consecutive looks share most of their seeds), and a test that has rejected stays
rejected. The same holds for the equivalence (TOST) p-values. So a decided claim stays decided;
its label can still change at a later look, from supported or contradicted to equivalent where
the equivalence test rejects too (``tanlib.analysis.verdict.decide`` checks equivalence first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: The first look: the fewest seeds that give an interval with more than one degree of freedom.
FIRST_SEEDS = 3
#: Seeds added between looks (a claims file's ``design.batch``).
DEFAULT_BATCH = 5
#: The budget: the last look (a claims file's ``design.max_seeds``).
DEFAULT_MAX_SEEDS = 20


@dataclass(frozen=True)
class SequentialDesign:
    """Looks at ``first``, ``first + batch``, ... seeds, and at ``max_seeds``."""

    first: int = FIRST_SEEDS
    batch: int = DEFAULT_BATCH
    max_seeds: int = DEFAULT_MAX_SEEDS

    def __post_init__(self):
        if self.first < 2 or self.batch < 1 or self.max_seeds < self.first:
            raise ValueError(
                f"a sequential design needs first >= 2, batch >= 1 and max_seeds >= first; got first={self.first}, "
                f"batch={self.batch}, max_seeds={self.max_seeds}"
            )

    def looks(self) -> list[int]:
        """The seed counts at which a claim is judged, the last one the budget."""
        out = list(range(self.first, self.max_seeds, self.batch))
        return out + [self.max_seeds] if not out or out[-1] != self.max_seeds else out

    def look_size(self, n: int) -> int | None:
        """The seeds of the last look reached with ``n`` seeds recorded; None below the first."""
        reached = [size for size in self.looks() if size <= n]
        return reached[-1] if reached else None

    def next_look(self, n: int) -> int | None:
        """The seed count of the first look after ``n`` seeds; None when the budget is spent."""
        later = [size for size in self.looks() if size > n]
        return later[0] if later else None

    def spent(self, n: int) -> float:
        """The share of the error rate spent up to ``n`` seeds (Pocock type), 1 at the budget."""
        t = min(max(n / self.max_seeds, 0.0), 1.0)
        return math.log1p((math.e - 1.0) * t)

    def weight(self, size: int) -> float:
        """The share of the error rate of the look at ``size`` seeds."""
        looks = self.looks()
        if size not in looks:
            raise ValueError(f"{size} seeds is not a look of this design ({looks})")
        k = looks.index(size)
        return self.spent(size) - (self.spent(looks[k - 1]) if k else 0.0)

    def adjust(self, p: float, size: int | None) -> float:
        """``p`` of the look at ``size`` seeds, divided by that look's share (at most 1);
        NaN below the first look (nothing is decided there)."""
        if size is None or not math.isfinite(p):
            return math.nan
        return min(1.0, p / self.weight(size))

    def seeds_to_decide(self, seeds_for, n: int, alpha: float = 0.05) -> tuple[int | None, bool]:
        """(seeds, within budget): the first look after ``n`` seeds at which a claim would be
        decided, where ``seeds_for(a)`` gives the seeds that decide it at error rate ``a`` (here the
        look's share of ``alpha``); (look, True). When no look within the budget would: (the seeds
        at the whole ``alpha``, a lower bound under any spending, False); (None, False) when no
        number of seeds would or the budget is spent."""
        later = [size for size in self.looks() if size > n]
        for size in later:
            need = seeds_for(alpha * self.weight(size))
            if need is not None and need <= size:
                return size, True
        return (seeds_for(alpha) if later else None), False

    def null_error_rates(self, n_sim: int = 4000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
        """By simulation: the share of experiments without any effect (paired differences drawn from
        N(0, 1), a one-sample t test at every look, stopped at the first rejection) rejected at some
        look, (p < alpha as is, p adjusted by ``adjust`` < alpha). Optional stopping inflates the first."""
        from scipy import stats

        x = np.random.default_rng(seed).normal(size=(n_sim, self.max_seeds))
        naive = np.zeros(n_sim, bool)
        adjusted = np.zeros(n_sim, bool)
        for size in self.looks():
            p = stats.ttest_1samp(x[:, :size], 0.0, axis=1).pvalue
            naive |= p < alpha
            adjusted |= np.minimum(1.0, p / self.weight(size)) < alpha
        return float(naive.mean()), float(adjusted.mean())


__all__ = ["DEFAULT_BATCH", "DEFAULT_MAX_SEEDS", "FIRST_SEEDS", "SequentialDesign"]
