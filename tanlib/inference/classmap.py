"""Class mapping for predictions: a model's classes -> another label order.

A model trained on RAF-DB (7 classes: Surprise, Fear, Disgust, Happiness, Sadness,
Anger, Neutral) and one trained on FERPlus (8: neutral, happiness, surprise, sadness,
anger, disgust, fear, contempt) name the same expressions in different orders, and
FERPlus has one more. ``ClassMapping`` turns a model's probabilities into a *target*
label order:

* the target is the model's own classes (default), a named order (``rafdb``,
  ``ferplus``) or an explicit list of names;
* model classes are matched to target classes by name, case-insensitively, and an
  explicit ``class_map`` ``{model class: target class, or null}`` renames or drops;
* several model classes may map to one target class (their probabilities add up);
* model classes with no target (e.g. FERPlus ``contempt`` into RAF-DB) are dropped:
  their probability is removed and the rest renormalised to sum to 1, and the mass that
  was kept is reported (``mapped_mass``);
* target classes that no model class maps to (e.g. ``contempt`` from a RAF-DB model)
  get probability 0 and can never be predicted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.ferplus import FERPLUS_CLASSES
from ..data.rafdb import RAFDB_CLASSES
from ..errors import ConfigError

NAMED_ORDERS = {"rafdb": list(RAFDB_CLASSES), "ferplus": list(FERPLUS_CLASSES)}  # the readers' label orders


@dataclass
class ClassMapping:
    """A (K model classes x T target classes) 0/1 matrix and its bookkeeping."""

    source: list[str]
    target: list[str]
    matrix: np.ndarray  # (K, T)
    dropped: list[str] = field(default_factory=list)  # model classes with no target
    unreachable: list[str] = field(default_factory=list)  # target classes no model class maps to

    @property
    def identity(self) -> bool:
        return self.source == self.target and np.array_equal(self.matrix, np.eye(len(self.source)))

    def apply(self, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (N, T) renormalised over the mapped classes, kept mass (N,))."""
        mapped = np.asarray(prob, dtype=np.float64) @ self.matrix
        mass = mapped.sum(1)
        return (mapped / np.maximum(mass, 1e-12)[:, None]).astype(np.float32), mass.astype(np.float32)

    def describe(self) -> str:
        parts = []
        if self.dropped:
            parts.append(
                f"model classes {self.dropped} have no counterpart among the target classes: their "
                "probability is dropped and the rest renormalised"
            )
        if self.unreachable:
            parts.append(f"target classes {self.unreachable} have no model class and get probability 0")
        return "; ".join(parts)


def _target_order(classes) -> list[str] | None:
    if classes is None:
        return None
    if isinstance(classes, str):
        if classes.lower() in NAMED_ORDERS:
            return list(NAMED_ORDERS[classes.lower()])
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    classes = [str(c) for c in classes]
    lowered = [c.lower() for c in classes]
    if not classes or len(set(lowered)) != len(lowered):
        raise ConfigError(
            f"target classes {classes} must be a non-empty list of distinct names, or one of {', '.join(NAMED_ORDERS)}"
        )
    return classes


def read_class_map(text: str | dict | None) -> dict | None:
    """A class map from a dict, a JSON string or the path of a JSON file."""
    if text is None or isinstance(text, dict):
        return text
    path = Path(text)
    source = "--class-map"
    if not text.lstrip().startswith("{") and path.is_file():
        text, source = path.read_text(), str(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{source} is neither a JSON object nor a JSON file ({exc}); "
            'expected e.g. \'{"contempt": null, "Happiness": "happy"}\''
        ) from None
    if not isinstance(value, dict) or not all(v is None or isinstance(v, str) for v in value.values()):
        raise ConfigError(f"{source} must be a JSON object of model class -> target class name or null")
    return value


def class_mapping(source: list[str], classes=None, class_map: dict | None = None) -> ClassMapping:
    """The mapping of a model's ``source`` classes to ``classes`` (see the module docstring)."""
    source = [str(c) for c in source]
    by_lower = {c.lower(): c for c in source}
    explicit: dict[str, str | None] = {}
    for key, goal in (class_map or {}).items():
        if str(key).lower() not in by_lower:
            raise ConfigError(f"class map key {key!r} is not a class of the model; its classes are {source}")
        explicit[by_lower[str(key).lower()]] = goal
    target = _target_order(classes)
    if target is None:  # the model's order, renamed by the map, merged targets kept once
        target = []
        for c in source:
            goal = explicit.get(c, c)
            if goal is not None and goal.lower() not in [t.lower() for t in target]:
                target.append(goal)
    column = {t.lower(): j for j, t in enumerate(target)}
    matrix = np.zeros((len(source), len(target)), dtype=np.float64)
    dropped = []
    for i, c in enumerate(source):
        goal = explicit.get(c, c)
        if goal is None:
            dropped.append(c)
        elif goal.lower() in column:
            matrix[i, column[goal.lower()]] = 1.0
        elif c in explicit:
            raise ConfigError(
                f"the class map sends {c!r} to {goal!r}, which is not a target class; the target classes are {target}"
            )
        else:
            dropped.append(c)
    if not matrix.any():
        raise ConfigError(
            f"no class of the model {source} maps to the target classes {target}; pass an explicit class map"
        )
    unreachable = [t for j, t in enumerate(target) if not matrix[:, j].any()]
    return ClassMapping(source, target, matrix, dropped, unreachable)


__all__ = ["ClassMapping", "NAMED_ORDERS", "class_mapping", "read_class_map"]
