"""The primary checkpoint (``selection``) and a test split evaluated only at the end
(``test_every_epoch=false``): the calibrated preset's protocol (docs/protocol.md)."""

import numpy as np
import pandas as pd
import pytest

from tanlib.config import preset
from tanlib.errors import DataError


def test_calibrated_preset_takes_the_last_epoch_and_tests_at_the_end():
    c = preset("ce", "calibrated")
    assert (c.selection, c.test_every_epoch, c.scheduler, c.amp) == ("last", False, "cosine", "auto")
    assert preset("ce", "quick").selection == "best_val" and preset("ce", "quick").test_every_epoch


def test_calibrated_preset_mines_every_triplet_and_ce_records_stay_the_preset():
    """At the calibrated scale every metric method mines all valid triplets (tan-euclid's
    stall, docs/method.md); the key is inert for ce, so a ce run written before it is still
    the preset, while a tan run with semi-hard mining is a variant of its method."""
    from tanlib.config import preset_variant

    for method in ("triplet", "tan-euclid", "tan-nothreshold", "tan"):
        c = preset(method, "calibrated")
        assert (c.triplet_mining, c.mahalanobis_mining) == ("all", "all"), method
    assert preset("tan", "quick").triplet_mining == "semihard"
    older = {**preset("ce", "calibrated").to_dict(), "triplet_mining": "semihard", "mahalanobis_mining": "semihard"}
    assert preset_variant(older) == ""
    semihard = {**preset("tan", "calibrated").to_dict(), "triplet_mining": "semihard"}
    assert preset_variant(semihard) == 'triplet_mining="semihard"'


def test_last_epoch_run_predicts_with_last_and_tests_once(smoke, tmp_path):
    from tanlib.engine import load_run, train
    from tanlib.report.records import run_record

    out = train(smoke("tan", selection="last", test_every_epoch=False), tmp_path / "run", log=lambda *a: None)
    run = load_run(out)
    m = run.metrics
    assert m["primary"] == "last" and m["test_selected"] is None
    assert run.history["test_acc"].isna().all() and run.history["val_acc"].notna().all()
    # predictions.csv (and the noise detection) come from last.pt, not best.pt
    assert m["results"]["last"]["accuracy"] == pytest.approx(run.predictions["correct"].mean())
    last = pd.read_csv(out / "predictions.csv")
    assert len(last) == m["results"]["last"]["n"] and (out / "predictions_best_val.csv").is_file()
    record = run_record(out)
    assert record["primary"] == "last" and record["accuracy"] == record["accuracy_last"]
    assert record["accuracy_best_val"] == pytest.approx(m["results"]["best_val"]["accuracy"])
    assert np.isnan(record["accuracy_test_selected"])
    # tan evaluate / tan export / Run.model read the primary checkpoint unless told otherwise
    from tanlib.engine.evaluate import run_checkpoint

    assert run_checkpoint(out) == "last" and run_checkpoint(out, "best") == "best"


def test_the_calibrated_preset_makes_its_own_sized_synthfer_when_missing(tmp_path, monkeypatch):
    from tanlib.data import prepare
    from tanlib.engine import inputs

    assert (
        preset("ce", "calibrated").root == "data/synthfer-calibrated" == prepare.SYNTHFER_DEFAULTS["calibrated"]["root"]
    )
    own = tmp_path / "synthfer-calibrated"  # the scale's location, not there yet
    monkeypatch.setitem(
        prepare.SYNTHFER_DEFAULTS, "calibrated", {**prepare.SYNTHFER_DEFAULTS["calibrated"], "root": str(own)}
    )
    made = []
    monkeypatch.setattr(prepare, "generate_atomically", lambda root, settings, check: made.append((settings, check)))
    for root in (own, tmp_path / "elsewhere"):
        with pytest.raises(DataError):  # nothing was written, so reading the manifest fails after the call
            inputs.prepare_manifest(preset("ce", "calibrated", root=str(root)), log=lambda *a: None)
    # its own location: the scale's size and noise model, checked; a folder the user names: the default dataset
    assert made == [({"n_train": 10000, "n_test": 6300, "noise_model": "random"}, True), ({}, False)]
