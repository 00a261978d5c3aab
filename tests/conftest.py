"""Fixtures shared by every test folder (docs/architecture.md, "Tests").

- ``synth_root``: a small SynthFER (140 train / 35 test faces, 48 px, seed 3), generated
  once per session. Folders that need another size define their own (the engine's
  210-face set at 32 px, the inference tests' 100 px JPEGs, the combinations' 32 px toy set).
- Figures are drawn with the Agg backend and closed after every test.
- ``case``: the recorder behind docs/reliability.md. A test declares what it tries with
  ``case(id, category, action, expected)`` and ``case.observed(text)``; when the environment
  variable ``TAN_RELIABILITY_JSON`` names a file, the outcome of every declared case
  (passed / failed / skipped) is written there at the end of the session, and
  ``tests/reliability/make_report.py`` renders it.
- Files with a test marked ``slow(cpu_s)`` are collected first, the costliest first
  (``pytest_collection_modifyitems``): ``--dist loadfile --no-loadscope-reorder`` hands
  whole files to the workers in collection order, so the longest start first and the short
  ones fill in at the end (longest-first scheduling). Without ``--no-loadscope-reorder``
  pytest-xdist puts the files with the most tests first instead.
- Under pytest-xdist (``make test`` runs ``pytest -n 2 --dist loadfile``) every worker
  uses one core, its subprocesses and notebook kernels included. A test file runs on one
  worker, so a session fixture used by one file only (the smoke pipeline run) is built
  once; one shared by several files (the inference run) at most once per worker.
  (``--dist loadgroup`` would group across files, but it does not group under pytest 9
  with pytest-xdist 3.8 here.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):  # one core per worker: 2 workers on 2 cores, not 4 threads
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


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


def pytest_collection_modifyitems(items):
    """Files holding a test marked ``slow(cpu_s)`` first, the costliest first (``cpu_s``: the
    file's CPU seconds on one core, measured), each file's tests kept together and in order."""
    cost: dict = {}
    for item in items:
        marker = item.get_closest_marker("slow")
        if marker is not None:
            cost[item.path] = max(cost.get(item.path, 0), marker.args[0] if marker.args else 1)
    items.sort(key=lambda item: -cost.get(item.path, 0))  # stable


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A small SynthFER (140 train / 35 test, 48 px) shared by the whole session."""
    from tanlib.data.synthfer import generate_synthfer

    return generate_synthfer(
        tmp_path_factory.mktemp("synth") / "synthfer", n_train=140, n_test=35, size=48, seed=3, workers=2
    )


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")
