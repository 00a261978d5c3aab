"""Fixtures of the pipeline tests: one smoke-scale pipeline run shared by the session."""

from __future__ import annotations

import time

import pytest
from pipelinefix import SYNTH, TINY_TRAINING


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """``tan run --preset smoke`` (through ``run_pipeline``) on a small SynthFER in a
    temporary folder, its training cut to 32 px and 128 images (``02_train.overrides``,
    ``TINY_TRAINING``); returns (run folder, latest report folder, wall seconds)."""
    from tanlib.pipeline import run_pipeline

    base = tmp_path_factory.mktemp("smoke")
    start = time.perf_counter()
    run_root = run_pipeline(
        preset="smoke",
        root=str(base / "synthfer"),
        out=str(base / "runs"),
        run_id="smoke",
        latest=str(base / "latest"),
        params={**SYNTH, "02_train.overrides": TINY_TRAINING},
    )
    return run_root, base / "latest", time.perf_counter() - start
