"""The verdict reads a record's history and test predictions, and never takes a missing or
damaged file for a run that learned, or a bootstrap it could not compute for none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from tanlib.analysis import verdict as V
from tanlib.errors import RecordError

RESULTS = Path(__file__).resolve().parents[2] / "results"


def _claim_records(tmp_path: Path) -> pd.DataFrame:
    """tan and ce at seeds 0-2, from committed records copied to ``tmp_path``."""
    rows = []
    for method in ("ce", "tan"):
        for seed in range(3):
            folder = tmp_path / f"{method}-seed{seed}"
            shutil.copytree(RESULTS / "recipe" / folder.name, folder)
            rows.append(
                {
                    "run": folder.name,
                    "path": str(folder),
                    "variant": "",
                    "method": method,
                    "seed": seed,
                    "accuracy": 0.5 + 0.01 * seed + (0.05 if method == "tan" else 0),
                    "mean_class_accuracy": 0.5,
                    "feature_ratio": 0.7,
                    "noisy_auc": 0.6,
                    "synth_label_noise": 0.1,
                }
            )
    return pd.DataFrame(rows)


def test_learning_check_names_a_missing_or_damaged_file(tmp_path):
    record = tmp_path / "ce-seed0"
    shutil.copytree(RESULTS / "recipe" / "ce-seed0", record)
    best, majority = V.learning_check(record)
    assert 0 < majority < best <= 1
    predictions = record / "test_predictions.csv"
    predictions.write_bytes(predictions.read_bytes()[:700])  # cut inside a row
    with pytest.raises(RecordError, match=r"ce-seed0/test_predictions.csv"):
        V.learning_check(record)
    (record / "test_predictions.csv").unlink()
    with pytest.raises(RecordError, match="ce-seed0 has neither test_predictions.csv nor predictions.csv"):
        V.test_correct(record)


def test_claims_raise_on_a_record_without_test_predictions(tmp_path):
    """Before: a missing test_predictions.csv made the run count as learned and dropped
    the bootstrap, silently."""
    records = _claim_records(tmp_path)
    full = V.claim_results(records, bootstrap=True)
    acc = next(r for r in full if r["claim"].key == "acc_tan_ce")
    assert acc["bootstrap"] is not None and acc["did_not_learn"] == []
    (tmp_path / "ce-seed1" / "test_predictions.csv").unlink()
    for bootstrap in (True, False):
        with pytest.raises(RecordError, match="ce-seed1 has neither test_predictions.csv"):
            V.claim_results(records, bootstrap=bootstrap)


def test_claims_raise_on_a_damaged_prediction_row(tmp_path):
    records = _claim_records(tmp_path)
    path = tmp_path / "tan-seed2" / "test_predictions.csv"
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3].rsplit(",", 1)[0] + ",x\n"
    path.write_text("".join(lines))
    with pytest.raises(RecordError, match=r"tan-seed2/test_predictions.csv line 4: column pred holds 'x'"):
        V.claim_results(records, bootstrap=False)
