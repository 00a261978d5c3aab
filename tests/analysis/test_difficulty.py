"""The label-blind difficulty baseline draws the generator's training faces again without
writing images: the same given labels and wrong-label flags as the generated dataset, and
AUCs equal to scikit-learn's on the generator's own columns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tanlib.analysis.difficulty import difficulty_aucs, difficulty_by_level, synthfer_train_meta
from tanlib.data.synthfer import META_FILE, SETTINGS_FILE, ambiguity, generate_synthfer


@pytest.mark.parametrize("noise_model", ["annotators", "random", "uniform"])
def test_the_faces_drawn_again_match_the_generated_dataset(tmp_path, noise_model):
    root = generate_synthfer(
        tmp_path / "s", n_train=120, n_test=35, size=32, label_noise=0.3, workers=1, noise_model=noise_model
    )
    settings = json.loads((root / SETTINGS_FILE).read_text())
    meta = synthfer_train_meta(settings)
    written = pd.read_csv(root / META_FILE)
    written = written[written["split"] == "train"].set_index("image")
    again = meta.set_index("image")
    assert (again["label"] == written.loc[again.index, "label"]).all()
    assert (again["noisy"] == written.loc[again.index, "noisy"].astype(str).str.lower().eq("true")).all()
    assert again["intensity"].to_numpy() == pytest.approx(written.loc[again.index, "intensity"].to_numpy())
    got = difficulty_aucs(settings, meta)
    train = meta[meta["split"] == "train"]
    assert got["n"] == len(train) and got["n_noisy"] == int(train["noisy"].sum()) > 0
    assert got["ambiguity"] == pytest.approx(
        roc_auc_score(train["noisy"], ambiguity(train, settings["intensity_floor"]))
    )
    assert got["intensity"] == pytest.approx(roc_auc_score(train["noisy"], -train["intensity"].to_numpy()))
    by_level = difficulty_by_level({0.3: settings, 0.1: {**settings, "label_noise": 0.1}})
    assert by_level[0.3] == pytest.approx(got)
    assert by_level[0.1]["n_noisy"] < by_level[0.3]["n_noisy"] and np.isfinite(by_level[0.1]["ambiguity"])


def _records(tmp_path, rows):
    out = []
    for i, (model, level, variant) in enumerate(rows):
        run = tmp_path / f"run{i}"
        run.mkdir(parents=True)
        (run / "data.json").write_text(json.dumps({"label_noise": level, "noise_model": model}))
        out.append({"synth_label_noise": level, "path": str(run), "variant": variant})
    return pd.DataFrame(out)


def test_records_of_one_level_on_two_noise_models_are_refused(tmp_path):
    from tanlib.analysis.difficulty import record_settings
    from tanlib.errors import DataError

    rows = [("annotators", 0.1, ""), ("random", 0.1, "")]
    assert record_settings(_records(tmp_path / "a", rows[1:]))[0.1]["noise_model"] == "random"
    with pytest.raises(DataError, match=r"data\.json: noise_model='random' at label noise 0.1.*'annotators'"):
        record_settings(_records(tmp_path / "b", rows))
    # a variant (the calibration's annotator candidates) is not a record of the methods
    mixed = _records(tmp_path / "c", [("random", 0.1, ""), ("annotators", 0.1, 'noise_model="annotators"')])
    assert record_settings(mixed)[0.1]["noise_model"] == "random"


def test_the_claim_baseline_exists_only_where_the_noise_depends_on_the_face(tmp_path):
    from tanlib.analysis.difficulty import claim_baseline

    records = _records(tmp_path, [("annotators", 0.1, ""), ("random", 0.3, ""), ("annotators", 0.0, "")])
    aucs = {0.1: {"intensity": 0.55, "ambiguity": 0.6}, 0.3: {"intensity": 0.51, "ambiguity": 0.5}}
    assert claim_baseline(records, aucs) == {0.1: 0.55}


def test_an_unknown_noise_model_is_refused_by_name():
    from tanlib.analysis.difficulty import given_labels
    from tanlib.errors import DataError

    with pytest.raises(DataError, match="noise_model='votes'.*expected annotators, random or uniform"):
        given_labels(pd.DataFrame({"clean_label": [0]}), {"noise_model": "votes", "label_noise": 0.1, "seed": 0})
