"""The label-blind difficulty baseline of the noisy-label AUC (SynthFER only).

In SynthFER's ``annotators`` noise model a face's chance of a wrong label grows with its
ambiguity (``tanlib.data.synthfer.ambiguity``: weak intensity, a blended second
expression, an occluder, the pose), so any score that ranks faces by difficulty finds
wrong labels better than chance without looking at a label. ``difficulty_aucs`` gives the
AUC of the generator's own ambiguity and of the intensity alone (low intensity: suspect)
for the wrong training labels, on the training faces a run trains on (the validation
split carved as ``tanlib.data.manifest.stratified_val_split`` carves it): the oracle a
label-blind detector such as the attention has to beat to show it sees more than
difficulty. The faces are drawn again from the generator's settings (a record's
``data.json``): about 10 s for 2,500 faces on one core; no image is written.
"""

from __future__ import annotations

import pandas as pd


def synthfer_train_meta(settings: dict) -> pd.DataFrame:
    """The generator's per-face parameters of the training faces of ``settings`` (a
    ``synthfer_settings`` dict) with the given labels of its noise model, ``noisy`` and
    ``split`` after the validation carve (10 %, seed 0)."""
    from ..data.manifest import stratified_val_split
    from ..data.synthdraw import sample_image
    from ..data.synthfer import annotator_votes, plan_synthfer

    s = dict(settings)
    if s.get("noise_model", "annotators") != "annotators":
        raise ValueError("the difficulty baseline is defined for the 'annotators' noise model")
    plan = plan_synthfer(s["n_train"], s["n_test"], 0.0, s["seed"], s["images_per_identity"])
    train = plan[plan["split"] == "train"].reset_index(drop=True)
    recs = [
        sample_image(
            s["seed"],
            "train",
            int(r.index),
            int(r.clean_label),
            int(r.identity),
            s["occluder_fraction"],
            s["size"],
            s["intensity_floor"],
            s["resting_bias"],
            s["blend_fraction"],
        )[1]
        for r in train.itertuples()
    ]
    meta = pd.concat([train, pd.DataFrame(recs)], axis=1)
    _, given = annotator_votes(meta, s["label_noise"], s["seed"], s["n_annotators"], s["intensity_floor"])
    meta["label"] = given
    meta["noisy"] = meta["label"] != meta["clean_label"]
    meta["path"] = meta["image"]  # the carve sorts by path: the image names sort the same way
    return stratified_val_split(meta, 0.1, 0)


def difficulty_aucs(settings: dict, meta: pd.DataFrame | None = None) -> dict:
    """AUC for the wrong training labels of the generator's ambiguity (high: suspect) and of
    the intensity (low: suspect), on the training faces after the validation carve."""
    from ..data.synthfer import ambiguity
    from .metrics import noisy_label_auc

    meta = synthfer_train_meta(settings) if meta is None else meta
    train = meta[meta["split"] == "train"]
    noisy = train["noisy"].to_numpy(bool)
    amb = ambiguity(train, settings["intensity_floor"])
    return {
        "ambiguity": noisy_label_auc(-amb, noisy),  # noisy_label_auc: low score = suspected
        "intensity": noisy_label_auc(train["intensity"].to_numpy(float), noisy),
        "n": int(len(train)),
        "n_noisy": int(noisy.sum()),
    }


def difficulty_by_level(settings_by_level: dict) -> dict:
    """``difficulty_aucs`` per label-noise level; faces are drawn once per setting apart from
    the noise level (the level changes only the votes)."""
    from ..data.manifest import stratified_val_split
    from ..data.synthfer import annotator_votes

    out, drawn = {}, {}
    for level, settings in sorted(settings_by_level.items()):
        faces = json_key({k: v for k, v in settings.items() if k != "label_noise"})
        if faces not in drawn:
            drawn[faces] = synthfer_train_meta(settings)
        m = drawn[faces].copy()
        _, given = annotator_votes(
            m, settings["label_noise"], settings["seed"], settings["n_annotators"], settings["intensity_floor"]
        )
        m["label"] = given
        m["noisy"] = m["label"] != m["clean_label"]
        m = stratified_val_split(m.assign(split="train"), 0.1, 0)
        out[level] = difficulty_aucs(settings, m)
    return out


def json_key(value: dict) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def record_settings(records) -> dict:
    """level -> the SynthFER settings (a record's ``data.json``) of the records with wrong
    labels drawn by the ``annotators`` model; other records (other datasets, level 0, the
    ``uniform`` model) have no difficulty baseline."""
    import json
    from pathlib import Path

    out = {}
    for _, r in records.iterrows():
        level, path = r.get("synth_label_noise"), Path(str(r.get("path", "")))
        if level is None or not level or float(level) in out or not (path / "data.json").is_file():
            continue
        settings = json.loads((path / "data.json").read_text())
        if settings.get("noise_model", "annotators") == "annotators":
            out[float(level)] = settings
    return out


def difficulty_for_records(records) -> dict:
    """``difficulty_by_level`` of the records' SynthFER settings (``record_settings``)."""
    return difficulty_by_level(record_settings(records))


__all__ = ["difficulty_aucs", "difficulty_by_level", "difficulty_for_records", "record_settings", "synthfer_train_meta"]
