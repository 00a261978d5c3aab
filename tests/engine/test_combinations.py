"""Every combination of the config's choice keys trains or is refused by name.

The choice keys (sampler, mining of both terms, threshold mode, metric, attention,
weighted CE, scheduler, optimiser, amp, data pipeline) span 15,552 combinations. All of
them go through ``Config`` validation: each is valid or raises a ``ConfigError`` that
names the keys in conflict. Training all valid ones is out of reach, so a pairwise
covering set (every pair of values of every two keys that can occur together appears in
at least one combination; most interaction faults involve two settings) is trained at
toy scale (one epoch of one 8-image batch) and each must write a complete run.
"""

import itertools
import json
import random

import pytest

from tanlib.config import Config, preset
from tanlib.errors import ConfigError

CHOICES = {
    "sampler": ["random", "m_per_class"],
    "triplet_mining": ["batch_hard", "semihard", "all"],
    "mahalanobis_mining": ["batch_hard", "semihard", "all"],
    "threshold_mode": ["quantile", "absolute", "none"],
    "metric": ["covariance", "learned", "identity"],
    "attention": [True, False],
    "weighted_ce": [True, False],
    "scheduler": ["exponential", "cosine", "none"],
    "optimizer": ["adam", "sgd"],
    "amp": ["none", "bf16"],
    "data_pipeline": ["tensor", "pil"],
}
KEYS = list(CHOICES)
BASE = dict(  # one step of 8 images (see _cost)
    image_size=32,
    epochs=1,
    batch_size=8,
    m_per_class=4,
    max_train_samples=8,
    embedding_dim=16,
    progress=False,
    num_threads=1,
    threshold=0.5,
)


def _config(combo: dict) -> Config:
    return preset("tan", "smoke", **BASE, **combo)


def _validity():
    """{combination: None or the ConfigError text} for the whole product."""
    out = {}
    for values in itertools.product(*CHOICES.values()):
        combo = dict(zip(KEYS, values))
        try:
            _config(combo)
            out[values] = None
        except ConfigError as exc:
            out[values] = str(exc)
    return out


VALIDITY = _validity()


def test_every_combination_is_valid_or_names_its_conflict():
    refused = {v: e for v, e in VALIDITY.items() if e is not None}
    assert 0 < len(refused) < len(VALIDITY)
    for values, message in refused.items():
        combo = dict(zip(KEYS, values))
        named = [k for k in KEYS if k in message]
        assert len(named) >= 2, (combo, message)  # the keys in conflict, by name
        # and the conflict is real: flipping one named key to another value makes it valid
        assert any(
            VALIDITY[tuple(dict(combo, **{k: v}).values())] is None for k in named for v in CHOICES[k] if v != combo[k]
        ), (combo, message)


def _cost(combo: dict) -> float:
    """Relative training time: bf16 autocast is about 5x slower than float32 on a CPU
    without bf16 instructions (a toy run of 16 images: 12.9 s against 2.2 s on the 2-core
    VM; of 8 images, the size trained here: 8.4 s against 1.9 s)."""
    return 5.0 if combo["amp"] == "bf16" else 1.0


def covering_set(seed: int = 0) -> list[dict]:
    """A greedy pairwise covering set of the valid combinations, each step taking the
    combination with the most uncovered pairs per unit of ``_cost``."""
    valid = [dict(zip(KEYS, v)) for v, e in VALIDITY.items() if e is None]
    pairs = lambda c: {(a, c[a], b, c[b]) for a, b in itertools.combinations(KEYS, 2)}  # noqa: E731
    todo = set().union(*(pairs(c) for c in valid))
    rng, chosen = random.Random(seed), []
    while todo:
        best = max(rng.sample(valid, 300), key=lambda c: len(pairs(c) & todo) / _cost(c))
        if not pairs(best) & todo:  # the sample missed the rest: take a combination covering one pair
            want = next(iter(todo))
            best = next(c for c in valid if (want[0], c[want[0]], want[2], c[want[2]]) == want)
        chosen.append(best)
        todo -= pairs(best)
    return chosen


COVER = covering_set()


def test_covering_set_covers_every_valid_pair():
    valid = [dict(zip(KEYS, v)) for v, e in VALIDITY.items() if e is None]
    for a, b in itertools.combinations(KEYS, 2):
        possible = {(c[a], c[b]) for c in valid}
        assert possible == {(c[a], c[b]) for c in COVER}, (a, b)
    assert len(COVER) <= 24
    # bf16 pairs with each of the 3 values of a 3-valued key: 3 is the fewest possible
    assert sum(c["amp"] == "bf16" for c in COVER) == 3


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    from tanlib.data import generate_synthfer

    return generate_synthfer(tmp_path_factory.mktemp("toy") / "sf", n_train=56, n_test=14, size=32, seed=2, workers=1)


@pytest.mark.slow(67)
@pytest.mark.parametrize("combo", COVER, ids=[f"cover{i}" for i in range(len(COVER))])
def test_pairwise_covering_combination_trains(combo, toy_root, tmp_path):
    from tanlib.engine import train

    out = train(_config(combo).replace(root=str(toy_root)), tmp_path / "run", log=lambda *a: None)
    metrics = json.loads((out / "metrics.json").read_text())
    assert "best_val" in metrics["results"] and "collapsed" in metrics, combo
