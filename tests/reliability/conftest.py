"""Fixtures of the reliability suite: smoke-scale runs on ``tests/conftest.py``'s
``synth_root``.

Every reliability test declares what it tries with the ``case`` fixture (defined in
``tests/conftest.py``, so a test of another folder can declare a case too: F5 lives beside
the smoke pipeline it shares)::

    def test_x(case):
        case("F1", "fault", "what was done", "expected error class / exit code / state")
        ...
        case.observed("what actually happened (exit code, message head)")

``make_report.py`` turns the recorded cases into the table of docs/reliability.md.
"""

from __future__ import annotations

import pytest
from reliafix import NetworkGuard, quiet


# ------------------------------------------------- smoke-scale runs (on tests/conftest.py's synth_root)
@pytest.fixture(scope="session")
def small(synth_root):
    """``small(method, **overrides)``: the smoke preset cut further (32 px, 64 train images,
    2 steps per epoch, one thread, deterministic)."""
    from tanlib.config import preset

    def make(method="tan", **kw):
        base = dict(
            root=str(synth_root),
            image_size=32,
            max_train_samples=64,
            batch_size=32,
            epochs=3,
            num_threads=1,
            progress=False,
            deterministic=True,
        )
        return preset(method, "smoke", **{**base, **kw})

    return make


@pytest.fixture(scope="session")
def reference_run(small, tmp_path_factory):
    """An uninterrupted deterministic 3-epoch tan run: the yardstick of every resume."""
    from tanlib.engine import train

    return train(small("tan", epochs=3), tmp_path_factory.mktemp("rel-ref") / "whole", log=quiet)


@pytest.fixture(scope="session")
def finished_run(small, tmp_path_factory):
    """A finished 1-epoch ce run, trained and evaluated with every network connection
    refused; returns (run dir, recorded connection attempts)."""
    from tanlib.engine import train

    with NetworkGuard() as guard:
        out = train(small("ce", epochs=1), tmp_path_factory.mktemp("rel-finished") / "run", log=quiet)
    return out, guard.attempts
