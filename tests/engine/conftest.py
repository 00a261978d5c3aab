import pytest
import torch

from tanlib.data import generate_synthfer


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A small SynthFER (300 train / 140 test, 48 px) shared by the engine tests."""
    return generate_synthfer(
        tmp_path_factory.mktemp("synth") / "synthfer", n_train=300, n_test=140, size=48, seed=1, workers=1
    )


@pytest.fixture
def smoke(synth_root):
    from tanlib.config import preset

    def make(method="tan", **kw):
        kw.setdefault("progress", False)
        kw.setdefault("num_threads", torch.get_num_threads())  # 1 per xdist worker (tests/conftest.py)
        kw.setdefault("root", str(synth_root))
        return preset(method, "smoke", **kw)

    return make
