"""SynthFER's ceiling: how much of the label the generator's own parameters carry.

A gradient-boosting classifier (scikit-learn's ``HistGradientBoostingClassifier``) is
fitted to the *given* (possibly noisy) labels of the training faces from the parameters
the generator drew for each face (action units, intensity, the blend partner and its
weight, pose, scale, shift, blur, illumination, noise, occluder, JPEG quality; never the
pixels, the identity or the votes) and scored on the test faces' clean labels. A network
that reads the faces cannot know more about the label than these parameters do, so this
is the dataset's ceiling: when a CNN's accuracy is far below it, what is missing is
learning (faces, epochs, resolution), not ambiguity in the labels (docs/protocol.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .rafdb import RAFDB_CLASSES
from .synthfer import META_FILE

#: The generator's per-face parameters the oracle reads (synthfer_meta.csv columns).
NUMERIC = [
    "intensity",
    "blend_weight",
    "yaw",
    "roll",
    "scale",
    "shift_x",
    "shift_y",
    "blur",
    "brightness",
    "light_grad",
    "noise",
    "jpeg_quality",
]
CATEGORICAL = ["blend_label", "occluder"]


def ceiling_features(meta: pd.DataFrame, where: str = META_FILE) -> pd.DataFrame:
    """The oracle's inputs: action units, the numeric parameters, and the categorical ones
    as integer codes (a fixed order, so train and test share it)."""
    aus = [c for c in meta.columns if c.startswith("au") and c[2:].isdigit()]
    missing = [c for c in [*NUMERIC, *CATEGORICAL, "split", "label", "clean_label"] if c not in meta.columns]
    if missing or not aus:
        raise DataError(
            f"{where} lacks the generator's parameters {missing or ['au*']}: the ceiling needs a SynthFER "
            "meta file of generator version 3 or later (tan data synth)"
        )
    x = meta[aus + NUMERIC].astype(float).copy()
    x["blend_label"] = meta["blend_label"].astype(int) + 1  # -1 (no blend) -> 0
    x["occluder"] = meta["occluder"].map({k: i for i, k in enumerate(sorted(meta["occluder"].unique()))})
    return x


def synthfer_ceiling(root: str | Path, seed: int = 0) -> dict:
    """Fit the oracle on the training faces' given labels, score the test faces' clean
    labels: ``accuracy``, ``mean_class_accuracy`` and ``recall`` per class name, with the
    numbers of faces. ``root``: a SynthFER folder (its ``synthfer_meta.csv``)."""
    path = Path(root) / META_FILE
    if not path.is_file():
        raise DataError(f"{path} does not exist: the ceiling reads a SynthFER folder made by `tan data synth`")
    meta = pd.read_csv(path)
    x = ceiling_features(meta, str(path))
    train, test = (meta["split"] == "train").to_numpy(), (meta["split"] == "test").to_numpy()
    if not train.any() or not test.any():
        raise DataError(f"{path} needs both train and test rows, has {int(train.sum())} and {int(test.sum())}")
    from sklearn.ensemble import HistGradientBoostingClassifier  # imported on use: sklearn takes seconds
    from threadpoolctl import threadpool_limits

    categorical = [c in CATEGORICAL for c in x.columns]
    clf = HistGradientBoostingClassifier(categorical_features=categorical, random_state=seed)
    # one OpenMP thread: about 4 s for 10,000 faces; beside trainings that hold the cores, OpenMP's
    # spinning threads took 15 minutes for the same fit
    with threadpool_limits(limits=1):
        clf.fit(x[train], meta.loc[train, "label"].to_numpy())
        pred = clf.predict(x[test])
    clean = meta.loc[test, "clean_label"].to_numpy()
    recall = {RAFDB_CLASSES[k]: float(np.mean(pred[clean == k] == k)) for k in range(7) if (clean == k).any()}
    return {
        "accuracy": float(np.mean(pred == clean)),
        "mean_class_accuracy": float(np.mean(list(recall.values()))),
        "recall": recall,
        "n_train": int(train.sum()),
        "n_test": int(test.sum()),
        "train_label_noise": float(meta.loc[train, "noisy"].mean()),
        "model": "HistGradientBoostingClassifier on the generator parameters: given train labels -> clean test labels",
        "seed": seed,
    }
