"""The pre-registered claims: ``claims.yaml`` at the repository root, read and checked.

``load_claims`` returns one ``Claim`` per entry, or raises ``ConfigError`` naming the file,
the claim and the key when an entry is malformed: a missing or unknown key, a method that
is not one of ``tanlib.config.METHODS``, a measure the records do not hold, a direction,
family, level or delta out of range, a duplicated id, or the same test (a, b, measure)
listed twice. The file's comments say how each delta was chosen. ``load_design`` returns
the file's sequential design (``design``: the looks at which each claim is judged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

#: What a claim may measure: record columns (``tanlib.report.records.run_record``).
MEASURES = ("accuracy", "mean_class_accuracy", "feature_ratio", "noisy_auc")
DIRECTIONS = {"greater": +1, "less": -1}
FAMILIES = ("primary", "secondary")
#: ``b`` naming the label-blind difficulty baseline of the noisy-label AUC.
DIFFICULTY = "difficulty"
_REQUIRED = ("id", "text", "a", "b", "measure", "direction", "levels", "delta", "family")


@dataclass(frozen=True)
class Claim:
    """One pre-registered test: ``a - b`` of ``measure`` at each of ``levels``."""

    key: str
    text: str
    method: str
    baseline: str | None  # a method; None: a one-sample claim against ``reference`` or the difficulty baseline
    measure: str
    direction: int  # +1: a > b predicted; -1: a < b
    levels: tuple
    delta: float
    family: str
    reference: float | str = 0.0  # a number, or DIFFICULTY

    @property
    def primary(self) -> bool:
        return self.family == "primary"

    @property
    def comparison(self) -> str:
        if self.baseline:
            return f"{self.method} - {self.baseline}"
        return f"{self.method} - {self.reference if isinstance(self.reference, str) else f'{self.reference:g}'}"

    @property
    def test(self) -> tuple:
        """What makes two claims the same test: the same pair of methods (in either order:
        ``a - b`` and ``b - a`` are one test) and measure, or the same method and reference."""
        pair = (self.method, self.baseline) if self.baseline else (self.method, self.reference)
        return (tuple(sorted(pair)) if self.baseline else pair, self.measure)

    @property
    def methods(self) -> tuple:
        return (self.method,) + ((self.baseline,) if self.baseline else ())


def default_claims_file() -> Path:
    from ..paths import project_root

    return project_root() / "claims.yaml"


def _read(path: Path):
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: the claims file does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_design(path: str | Path | None = None):
    """The sequential design of ``path``'s verdict (``tanlib.analysis.sequential.SequentialDesign``):
    its optional ``design`` mapping of ``first``, ``batch`` and ``max_seeds`` (whole numbers; the
    looks at which each claim is judged), the defaults of ``SequentialDesign`` for keys left out."""
    from .sequential import SequentialDesign

    path = Path(path) if path is not None else default_claims_file()
    data = _read(path)
    block = data.get("design", {}) if isinstance(data, dict) else {}
    keys = ("first", "batch", "max_seeds")
    if not isinstance(block, dict) or set(block) - set(keys):
        raise ConfigError(f"{path}, key 'design': expected a mapping of {', '.join(keys)}, got {block!r}")
    for key, value in block.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{path}, key 'design.{key}': {value!r} must be a whole number of seeds")
    try:
        return SequentialDesign(**block)
    except ValueError as exc:
        raise ConfigError(f"{path}, key 'design': {exc}") from None


def load_claims(path: str | Path | None = None) -> tuple[Claim, ...]:
    """The claims of ``path`` (default: ``claims.yaml`` at the project root), checked."""
    from ..config import METHODS

    path = Path(path) if path is not None else default_claims_file()
    shown = str(path)
    data = _read(path)
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list) or not data["claims"]:
        raise ConfigError(f"{shown}: expected a mapping with a non-empty list under 'claims'")
    if set(data) - {"claims", "design"}:
        raise ConfigError(
            f"{shown}: unknown top-level key(s) {sorted(set(data) - {'claims', 'design'})}; only 'claims' and 'design'"
        )
    out: list[Claim] = []
    seen_ids: dict[str, int] = {}
    seen_tests: dict[tuple, str] = {}
    for i, entry in enumerate(data["claims"], 1):
        where = f"{shown}: claim {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping of {', '.join(_REQUIRED)}")
        if isinstance(entry.get("id"), str):
            where = f"{shown}: claim {entry['id']!r}"

        def bad(key, what, where=where):
            return ConfigError(f"{where}, key {key!r}: {what}")

        missing = [k for k in _REQUIRED if k not in entry]
        if missing:
            raise bad(missing[0], f"missing (a claim needs {', '.join(_REQUIRED)})")
        unknown = sorted(set(entry) - set(_REQUIRED))
        if unknown:
            raise bad(unknown[0], f"unknown key (allowed: {', '.join(_REQUIRED)})")
        key = entry["id"]
        if not isinstance(key, str) or not key.replace("_", "").replace("-", "").isalnum():
            raise bad("id", f"{key!r} must be a name of letters, digits, '_' or '-'")
        if key in seen_ids:
            raise bad("id", f"duplicates claim {seen_ids[key]}")
        seen_ids[key] = i
        if not isinstance(entry["text"], str) or not entry["text"].strip():
            raise bad("text", "must be a non-empty sentence")
        if entry["a"] not in METHODS:
            raise bad("a", f"{entry['a']!r} is not a method; choose one of {', '.join(METHODS)}")
        b = entry["b"]
        baseline, reference = None, 0.0
        if isinstance(b, str) and b in METHODS:
            baseline = b
            if b == entry["a"]:
                raise bad("b", f"compares {b!r} with itself")
        elif b == DIFFICULTY:
            reference = DIFFICULTY
            if entry["measure"] != "noisy_auc":
                raise bad("b", f"{DIFFICULTY!r} is a baseline of the measure noisy_auc only")
        elif isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b):
            reference = float(b)
        else:
            raise bad("b", f"{b!r} must be a method ({', '.join(METHODS)}), a number or {DIFFICULTY!r}")
        if entry["measure"] not in MEASURES:
            raise bad("measure", f"{entry['measure']!r}; choose one of {', '.join(MEASURES)}")
        if entry["direction"] not in DIRECTIONS:
            raise bad("direction", f"{entry['direction']!r}; choose greater or less")
        levels = entry["levels"]
        if (
            not isinstance(levels, list)
            or not levels
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1 for v in levels)
            or len(set(levels)) != len(levels)
        ):
            raise bad("levels", f"{levels!r} must be a non-empty list of distinct fractions in [0, 1)")
        delta = entry["delta"]
        if not isinstance(delta, (int, float)) or isinstance(delta, bool) or not 0 < delta < math.inf:
            raise bad("delta", f"{delta!r} must be a positive number in the measure's units (accuracy: a fraction)")
        if entry["measure"] in ("accuracy", "mean_class_accuracy") and delta >= 0.5:
            raise bad("delta", f"{delta!r}: accuracies are fractions (1.37 points is 0.0137)")
        if entry["family"] not in FAMILIES:
            raise bad("family", f"{entry['family']!r}; choose primary or secondary")
        claim = Claim(
            key,
            entry["text"].strip(),
            entry["a"],
            baseline,
            entry["measure"],
            DIRECTIONS[entry["direction"]],
            tuple(float(v) for v in sorted(levels)),
            float(delta),
            entry["family"],
            reference,
        )
        if claim.test in seen_tests:
            raise bad("b", f"{claim.comparison} of {claim.measure} is already claim {seen_tests[claim.test]!r}")
        seen_tests[claim.test] = key
        out.append(claim)
    return tuple(out)


__all__ = [
    "Claim",
    "DIFFICULTY",
    "DIRECTIONS",
    "FAMILIES",
    "MEASURES",
    "default_claims_file",
    "load_claims",
    "load_design",
]
