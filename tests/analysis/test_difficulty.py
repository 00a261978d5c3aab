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


def test_records_of_one_level_on_two_noise_models_are_refused(tmp_path):
    from tanlib.analysis.difficulty import record_settings

    rows = []
    for model in ("annotators", "random"):
        run = tmp_path / model
        run.mkdir()
        (run / "data.json").write_text(json.dumps({"label_noise": 0.1, "noise_model": model}))
        rows.append({"synth_label_noise": 0.1, "path": str(run)})
    assert record_settings(pd.DataFrame(rows[1:]))[0.1]["noise_model"] == "random"
    with pytest.raises(ValueError, match="random.*at label noise 0.1.*annotators"):
        record_settings(pd.DataFrame(rows))
