"""Fixtures of the inference tests: one tiny smoke-trained run shared by the session (and its workers)
(TensorBoard on when the package is installed), its torch export, and image folders."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


@pytest.fixture(scope="session")
def inference_run(tmp_path_factory, worker_id):
    """A 2-epoch ``tan`` smoke run at 32 px on 128 images of a tiny SynthFER whose images
    are 100 px JPEGs, so that evaluation's JPEG draft and resize are exercised.

    Trained once per session: under pytest-xdist the first worker to need it trains it in
    the session's shared temporary folder, holding a file lock, and the other reuses it.
    The tests only read it (a test that writes into a run copies it first)."""
    from filelock import FileLock

    from tanlib.config import preset
    from tanlib.data import generate_synthfer
    from tanlib.engine import train
    from tanlib.engine.rundir import run_is_complete

    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # popen-gwN's parent: this session's folder, common to the workers
        shared = shared.parent
    base = shared / "inference"
    with FileLock(str(shared / "inference.lock")):
        if run_is_complete(base / "run"):
            return base / "run"
        root = generate_synthfer(base / "synthfer", n_train=210, n_test=70, size=100, seed=3, workers=1)
        config = preset(
            "tan",
            "smoke",
            root=str(root),
            image_size=32,
            max_train_samples=128,
            progress=False,
            num_threads=1,
            tensorboard=HAS_TENSORBOARD,
        )
        return train(config, base / "run", log=lambda *a, **k: None, overwrite=True)


@pytest.fixture(scope="session")
def exported(inference_run, tmp_path_factory):
    """``export_run`` of the run's best checkpoint (torch format)."""
    from tanlib.inference import export_run

    return export_run(inference_run, tmp_path_factory.mktemp("export") / "tan-smoke.pt")


@pytest.fixture(scope="session")
def manifest_test_paths(inference_run):
    from tanlib.data import Manifest

    return list(Manifest.load(inference_run / "manifest.csv").split("test")["path"])


@pytest.fixture(scope="session")
def write_gradient():
    """``write_gradient(path)``: an image without a face (a smooth horizontal gradient)."""

    def write(path, size=(240, 200)):
        w, h = size
        arr = np.tile(np.linspace(0, 255, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
        Image.fromarray(arr).save(path)
        return path

    return write
