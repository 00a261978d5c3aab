"""Fixtures of the data-layer tests: a tiny RAF-DB tree and a small SynthFER set."""

from __future__ import annotations

from pathlib import Path

import pytest
from datafix import small_entries, write_rafdb

from tanlib.data.synthfer import generate_synthfer


@pytest.fixture
def rafdb_tree(tmp_path) -> Path:
    return write_rafdb(tmp_path / "rafdb", small_entries())


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "sf"
    return generate_synthfer(out, n_train=140, n_test=35, size=48, seed=3, workers=2)
