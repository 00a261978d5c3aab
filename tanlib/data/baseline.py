"""Pixel baseline: logistic regression on downscaled grayscale raw pixels.

The SynthFER sanity band (docs/synthfer.md) asks that this does much worse than a CNN;
it is also a quick check that any dataset's labels carry signal at all.
"""

from __future__ import annotations

import numpy as np

from .images import load_images
from .manifest import Manifest


def _features(frame, size):
    x = load_images(frame, size=size).float().numpy()
    gray = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    return gray.reshape(len(frame), -1)


def pixel_baseline(manifest: Manifest, size: int = 32, C: float = 0.01, seed: int = 0) -> dict:
    """Fit on train (+val), score on test: accuracy, balanced accuracy, majority-class accuracy."""
    train = manifest.frame[manifest.frame["split"] != "test"]
    test = manifest.split("test")
    from sklearn.linear_model import LogisticRegression  # imported on use: sklearn takes seconds
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    xtr = scaler.fit_transform(_features(train, size))
    xte = scaler.transform(_features(test, size))
    clf = LogisticRegression(C=C, max_iter=300, random_state=seed)
    clf.fit(xtr, train["label"].to_numpy())
    pred = clf.predict(xte)
    y = test["label"].to_numpy()
    majority = np.bincount(train["label"].to_numpy()).argmax()
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "majority_accuracy": float(np.mean(y == majority)),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "size": size,
        "C": C,
    }
