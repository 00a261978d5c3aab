import pytest
import torch

from tanlib.data import generate_synthfer


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A small SynthFER (210 train / 70 test, 32 px) shared by the engine tests."""
    return generate_synthfer(
        tmp_path_factory.mktemp("synth") / "synthfer", n_train=210, n_test=70, size=32, seed=1, workers=1
    )


@pytest.fixture(scope="session")
def smoke(synth_root):
    from tanlib.config import preset

    def make(method="tan", **kw):
        """The smoke preset at 32 px on 64 training images (2 steps an epoch): what a
        test checks is the run's behaviour, never its accuracy."""
        kw.setdefault("image_size", 32)
        kw.setdefault("max_train_samples", 64)
        kw.setdefault("progress", False)
        kw.setdefault("num_threads", torch.get_num_threads())  # 1 per xdist worker (tests/conftest.py)
        kw.setdefault("root", str(synth_root))
        return preset(method, "smoke", **kw)

    return make


@pytest.fixture(scope="module")
def smoke_run(smoke, tmp_path_factory):
    """``smoke_run(method)``: the run of ``smoke(method)`` (2 epochs), trained on first use
    and shared by the tests of a module, which read it or copy it before changing it."""
    from tanlib.engine import train

    runs = {}

    def get(method):
        if method not in runs:
            runs[method] = train(smoke(method), tmp_path_factory.mktemp(method) / method, log=lambda *a: None)
        return runs[method]

    return get
