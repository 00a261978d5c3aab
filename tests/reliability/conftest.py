"""Fixtures of the reliability suite, and the recorder behind docs/reliability.md.

Every test of this folder declares what it tries with the ``case`` fixture::

    def test_x(case):
        case("F1", "fault", "what was done", "expected error class / exit code / state")
        ...
        case.observed("what actually happened (exit code, message head)")

When the environment variable ``TAN_RELIABILITY_JSON`` names a file, the outcome of
every declared case (passed / failed / skipped) is written there at the end of the
session; ``make_report.py`` turns that JSON into the table of docs/reliability.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from reliafix import NetworkGuard, quiet

_RESULTS: dict[str, dict] = {}


class _Case:
    def __init__(self, node):
        self.node = node

    def __call__(self, case_id: str, category: str, action: str, expected: str) -> _Case:
        self.node.user_properties.append(
            ("case", {"id": case_id, "category": category, "action": action, "expected": expected})
        )
        return self

    def observed(self, text: str) -> None:
        self.node.user_properties.append(("observed", " ".join(str(text).split())[:240]))


@pytest.fixture
def case(request):
    return _Case(request.node)


def pytest_runtest_logreport(report):
    props = dict(report.user_properties)
    if "case" not in props:
        return
    entry = _RESULTS.setdefault(
        report.nodeid, {**props["case"], "outcome": "passed", "observed": "", "test": report.nodeid}
    )
    if props.get("observed"):
        entry["observed"] = props["observed"]
    if report.failed:
        entry["outcome"] = "FAILED" + ("" if report.when == "call" else f" ({report.when})")
        if not entry["observed"]:
            entry["observed"] = " ".join(str(report.longrepr).split())[-240:]
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        entry["observed"] = reason.replace("Skipped: ", "")


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("TAN_RELIABILITY_JSON")
    if path and _RESULTS:
        Path(path).write_text(json.dumps(sorted(_RESULTS.values(), key=lambda r: r["test"]), indent=2) + "\n")


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
