"""Fixtures of the data-layer tests: a tiny RAF-DB tree (the small SynthFER set is
``synth_root`` of tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from datafix import small_entries, write_rafdb


@pytest.fixture
def rafdb_tree(tmp_path) -> Path:
    return write_rafdb(tmp_path / "rafdb", small_entries())
