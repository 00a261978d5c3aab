"""SynthFER's ceiling: gradient boosting on the generator's parameters (tanlib.data.ceiling)."""

import json

import numpy as np
import pandas as pd
import pytest

from tanlib.errors import DataError


def test_ceiling_reads_the_labels_from_the_parameters(synth_root):
    from sklearn.metrics import recall_score

    from tanlib.data.ceiling import ceiling_features, synthfer_ceiling
    from tanlib.data.rafdb import RAFDB_CLASSES

    res = synthfer_ceiling(synth_root)
    meta = pd.read_csv(synth_root / "synthfer_meta.csv")
    test = meta[meta["split"] == "test"]
    assert res["n_test"] == len(test) and res["n_train"] == (meta["split"] == "train").sum()
    majority = np.mean(test["clean_label"] == meta.loc[meta["split"] == "train", "label"].mode()[0])
    assert res["accuracy"] > majority + 0.3  # the action units carry the class
    # per-class recall and its mean against sklearn, from the same fitted model's predictions
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = ceiling_features(meta)
    cat = [c in ("blend_label", "occluder") for c in x.columns]
    clf = HistGradientBoostingClassifier(categorical_features=cat, random_state=0)
    train = (meta["split"] == "train").to_numpy()
    pred = clf.fit(x[train], meta.loc[train, "label"]).predict(x[~train])
    present = sorted(test["clean_label"].unique())
    want = recall_score(test["clean_label"], pred, labels=present, average=None)
    assert [res["recall"][RAFDB_CLASSES[k]] for k in present] == pytest.approx(want.tolist())
    assert res["mean_class_accuracy"] == pytest.approx(want.mean())
    assert res["accuracy"] == pytest.approx(np.mean(pred == test["clean_label"].to_numpy()))


def test_ceiling_errors_name_the_file(tmp_path, synth_root):
    from tanlib.data.ceiling import synthfer_ceiling

    with pytest.raises(DataError, match=r"synthfer_meta.csv does not exist"):
        synthfer_ceiling(tmp_path)
    meta = pd.read_csv(synth_root / "synthfer_meta.csv").drop(columns=["blend_weight", "occluder"])
    meta.to_csv(tmp_path / "synthfer_meta.csv", index=False)
    with pytest.raises(DataError, match=r"synthfer_meta.csv lacks the generator's parameters \['blend_weight', 'occ"):
        synthfer_ceiling(tmp_path)


def test_tan_data_ceiling_prints_json(synth_root, capsys):
    from tanlib.cli import main

    assert main(["data", "ceiling", "--root", str(synth_root)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["recall"]) <= {"Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"}
