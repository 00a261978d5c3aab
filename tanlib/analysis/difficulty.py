"""The label-blind difficulty baseline of the noisy-label AUC (SynthFER only).

In SynthFER's ``annotators`` noise model (its default) a face's chance of a wrong label grows with its
ambiguity (``tanlib.data.synthfer.ambiguity``: weak intensity, a blended second
expression, an occluder, the pose), so any score that ranks faces by difficulty finds
wrong labels better than chance without looking at a label. ``difficulty_aucs`` gives the
AUC of the generator's own ambiguity and of the intensity alone (low intensity: suspect)
for the wrong training labels, on the training faces a run trains on (the validation
split carved as ``tanlib.data.manifest.stratified_val_split`` carves it): the oracle a
label-blind detector such as the attention has to beat to show it sees more than
difficulty. The faces are drawn again from the generator's settings (a record's
``data.json``): about 10 s for 2,500 faces on one core; no image is written.

Under the ``random`` and ``uniform`` models the wrong labels are chosen without looking at
the face, so these AUCs sit at 0.5 up to sampling; they are measured all the same
(``given_labels``) and shown, but a claim against the difficulty baseline is judged only
where the noise depends on the face (``FACE_DEPENDENT_NOISE``, ``claim_baseline``):
elsewhere it would repeat the claim against chance.
"""

from __future__ import annotations

import pandas as pd

from ..errors import DataError

#: Noise models whose wrong labels depend on the face (its ambiguity): where a claim against
#: the difficulty baseline means something other than a claim against chance.
FACE_DEPENDENT_NOISE = frozenset({"annotators"})


def synthfer_train_meta(settings: dict) -> pd.DataFrame:
    """The generator's per-face parameters of the training faces of ``settings`` (a
    ``synthfer_settings`` dict) with the given labels of its noise model, ``noisy`` and
    ``split`` after the validation carve (10 %, seed 0)."""
    from ..data.manifest import stratified_val_split
    from ..data.synthdraw import sample_image
    from ..data.synthfer import plan_synthfer

    s = dict(settings)
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
            render=False,
        )[1]
        for r in train.itertuples()
    ]
    meta = pd.concat([train, pd.DataFrame(recs)], axis=1)
    meta["label"] = given_labels(meta, s)
    meta["noisy"] = meta["label"] != meta["clean_label"]
    meta["path"] = meta["image"]  # the carve sorts by path: the image names sort the same way
    return stratified_val_split(meta, 0.1, 0)


def given_labels(meta: pd.DataFrame, settings: dict):
    """The given labels of the training faces ``meta`` (in the generator's order) under the
    noise model of ``settings``, drawn as ``generate_synthfer`` draws them."""
    from ..data.synthfer import annotator_votes, plan_synthfer, random_flips

    model, level, seed = settings.get("noise_model", "annotators"), settings["label_noise"], settings["seed"]
    if model == "annotators":
        return annotator_votes(meta, level, seed, settings["n_annotators"], settings["intensity_floor"])[1]
    if model == "random":
        return random_flips(meta["clean_label"].to_numpy(), level, seed)
    if model == "uniform":
        plan = plan_synthfer(settings["n_train"], settings["n_test"], level, seed, settings["images_per_identity"])
        return plan.loc[plan["split"] == "train", "label"].to_numpy()
    raise DataError(f"noise_model={model!r}: no difficulty baseline for it; expected annotators, random or uniform")


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
    the noise level (the level changes only the given labels)."""
    from ..data.manifest import stratified_val_split

    out, drawn = {}, {}
    for level, settings in sorted(settings_by_level.items()):
        faces = json_key({k: v for k, v in settings.items() if k != "label_noise"})
        if faces not in drawn:
            drawn[faces] = synthfer_train_meta(settings)
        m = drawn[faces].drop(columns=["split"]).copy()  # generator order: the carve sorts by path
        m["label"] = given_labels(m, settings)
        m["noisy"] = m["label"] != m["clean_label"]
        m = stratified_val_split(m.assign(split="train"), 0.1, 0)
        out[level] = difficulty_aucs(settings, m)
    return out


def json_key(value: dict) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def record_settings(records) -> dict:
    """level -> the SynthFER settings (a record's ``data.json``) of the methods' records
    (``variant`` empty, where the column exists) with wrong labels, under every noise model;
    other records (other datasets, level 0) have no difficulty baseline. Two records of one
    level on two noise models raise ``DataError`` naming the file: one comparison, one model."""
    import json
    from pathlib import Path

    out = {}
    if "variant" in records:
        records = records[records["variant"].fillna("") == ""]
    for _, r in records.iterrows():
        level, path = r.get("synth_label_noise"), Path(str(r.get("path", "")))
        if level is None or not level or not (path / "data.json").is_file():
            continue
        settings = json.loads((path / "data.json").read_text())
        seen = out.setdefault(float(level), settings)
        model = settings.get("noise_model", "annotators")
        if seen.get("noise_model", "annotators") != model:
            raise DataError(
                f"{path / 'data.json'}: noise_model={model!r} at label noise {float(level):g}, where another "
                f"record has {seen.get('noise_model', 'annotators')!r}: judge one noise model at a time"
            )
    return out


def claim_baseline(records, aucs: dict | None = None) -> dict:
    """level -> the AUC a claim against the difficulty baseline compares with (the
    expression intensity's), at the levels whose noise depends on the face
    (``FACE_DEPENDENT_NOISE``); ``aucs``: ``difficulty_by_level``'s result when already at
    hand (drawn here otherwise). The one rule for ``tan verdict``, 05_report and the page."""
    settings = record_settings(records)
    judged = {lv: s for lv, s in settings.items() if s.get("noise_model", "annotators") in FACE_DEPENDENT_NOISE}
    aucs = difficulty_by_level(judged) if aucs is None else aucs
    return {lv: aucs[lv]["intensity"] for lv in judged if lv in aucs}


def difficulty_for_records(records) -> dict:
    """``difficulty_by_level`` of the records' SynthFER settings (``record_settings``)."""
    return difficulty_by_level(record_settings(records))


__all__ = [
    "FACE_DEPENDENT_NOISE",
    "claim_baseline",
    "difficulty_aucs",
    "given_labels",
    "difficulty_by_level",
    "difficulty_for_records",
    "record_settings",
    "synthfer_train_meta",
]
