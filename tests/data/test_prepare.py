"""tanlib.data.prepare: SynthFER generated once, atomically, by every caller."""

from __future__ import annotations

import pytest

import tanlib.data
import tanlib.data.prepare as prepare
from tanlib.config import preset
from tanlib.engine.train import prepare_manifest


def _interrupted_generator(out_dir, **settings):
    """Writes part of a dataset, then fails as a killed generator would."""
    out_dir.mkdir(parents=True)
    (out_dir / "train").mkdir()
    (out_dir / "train" / "00000.png").write_bytes(b"half")
    raise KeyboardInterrupt


def test_engine_generation_leaves_no_half_dataset(tmp_path, monkeypatch):
    """A training run whose SynthFER folder is missing generates it through the same
    atomic path as the pipeline: interrupted, it leaves no folder a later run would
    take for a dataset (it used to write straight into the root)."""
    monkeypatch.setattr(prepare, "generate_synthfer", _interrupted_generator)
    monkeypatch.setattr(tanlib.data, "generate_synthfer", _interrupted_generator)
    root = tmp_path / "sf"
    config = preset("ce", "smoke", root=str(root))
    with pytest.raises(KeyboardInterrupt):
        prepare_manifest(config, log=lambda *_: None)
    assert not root.exists()


def test_ensure_dataset_passes_any_generator_setting(tmp_path, monkeypatch):
    """ensure_dataset forwards every generator setting (the defaults live in the
    generator alone) and checks them all against an existing folder."""
    from tanlib.data.synthfer import SETTINGS_FILE
    from tanlib.errors import DataError

    seen = {}

    def fake_generate(out_dir, **settings):
        seen.update(settings)
        out_dir.mkdir(parents=True)
        (out_dir / "synthfer_meta.csv").write_text("x\n")
        (out_dir / SETTINGS_FILE).write_text(__import__("json").dumps(prepare.synthfer_settings(**settings)))
        return out_dir

    monkeypatch.setattr(prepare, "generate_synthfer", fake_generate)
    root = tmp_path / "sf"
    monkeypatch.setitem(prepare.SYNTHFER_DEFAULTS, "smoke", {**prepare.SYNTHFER_DEFAULTS["smoke"], "root": str(root)})
    assert prepare.ensure_dataset("synthfer", root, n_train=14, noise_model="uniform") == root
    assert seen == {"n_train": 14, "noise_model": "uniform"}
    with pytest.raises(DataError, match="noise_model: 'uniform' there, 'annotators' wanted"):
        prepare.ensure_dataset("synthfer", root, n_train=14)


def test_scale_defaults_are_the_generators():
    """quick and paper use the generator's own default size (one definition)."""
    settings = prepare.synthfer_settings()
    for scale in ("quick", "paper"):
        assert prepare.SYNTHFER_DEFAULTS[scale]["synth_n_train"] == settings["n_train"]
        assert prepare.SYNTHFER_DEFAULTS[scale]["synth_n_test"] == settings["n_test"]


def test_synthfer_departures():
    """What a dataset's settings change against its scale: calibrated fixes the sizes and
    the random noise model (ignored at 0 % noise, where every model draws the same data);
    the other scales' data is the user's choice (a smoke run on a smaller SynthFER is a
    smoke run)."""
    calibrated = {"n_train": 10000, "n_test": 6300}
    settings = prepare.synthfer_settings(**calibrated, noise_model="annotators", label_noise=0.3)
    assert prepare.synthfer_departures(settings, "calibrated") == {"noise_model": "annotators"}
    settings = prepare.synthfer_settings(**calibrated, noise_model="annotators", label_noise=0.0)
    assert prepare.synthfer_departures(settings, "calibrated") == {}
    settings = prepare.synthfer_settings(**calibrated, noise_model="random", label_noise=0.3)
    assert prepare.synthfer_departures(settings, "calibrated") == {}
    settings = prepare.synthfer_settings(n_train=5000, n_test=6300, noise_model="random", label_noise=0.3)
    assert prepare.synthfer_departures(settings, "calibrated") == {"n_train": 5000}
    for model in ("annotators", "uniform", "random"):
        for noise in (0.0, 0.1, 0.3):
            settings = prepare.synthfer_settings(noise_model=model, label_noise=noise)
            assert prepare.synthfer_departures(settings, "quick") == {}
    assert prepare.synthfer_departures(prepare.synthfer_settings(n_train=280, n_test=70), "smoke") == {}
