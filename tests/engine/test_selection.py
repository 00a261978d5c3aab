"""The primary checkpoint (``selection``) and a test split evaluated only at the end
(``test_every_epoch=false``): the calibrated preset's protocol (docs/protocol.md)."""

import numpy as np
import pandas as pd
import pytest

from tanlib.config import preset


def test_calibrated_preset_takes_the_last_epoch_and_tests_at_the_end():
    c = preset("ce", "calibrated")
    assert (c.selection, c.test_every_epoch, c.scheduler, c.amp) == ("last", False, "cosine", "auto")
    assert preset("ce", "quick").selection == "best_val" and preset("ce", "quick").test_every_epoch


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
