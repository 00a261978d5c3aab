"""Manifests: every dataset becomes one table ``path, label, split, class_name, ...``.

``build_manifest`` runs a reader (rafdb, ferplus, folder, synthfer), validates every
listed image, carves a stratified seeded validation split when the source has none,
and returns a ``Manifest``; ``check_dataset`` runs the same validation and returns a
report instead of raising. Every loader after this point reads only manifests.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DATASETS
from ..errors import ConfigError, DataError
from .ferplus import read_ferplus
from .folder import read_folder
from .problems import Problem, check_image, raise_problems
from .rafdb import read_rafdb

SPLIT_ORDER = ["train", "val", "test"]


@dataclass
class Manifest:
    """A dataset as one table plus its class list; see the module docstring."""

    frame: pd.DataFrame
    classes: list[str]
    dataset: str
    root: str
    skipped: list[Problem] = field(default_factory=list)
    subgroups: list[str] = field(default_factory=list)
    cache_dir: str | None = None  # where decoded images live when not under root (FERPlus pixels)

    def split(self, name: str) -> pd.DataFrame:
        if name not in SPLIT_ORDER:
            raise DataError(f"unknown split {name!r}; expected one of {SPLIT_ORDER}")
        return self.frame[self.frame["split"] == name].reset_index(drop=True)

    def counts(self) -> pd.DataFrame:
        """Images per split (rows) and class (columns), with totals."""
        return counts_table(self.frame, self.classes)

    def save(self, path: str | Path) -> Path:
        """Write the table as CSV and the rest as a JSON sidecar (same stem, ``.json``)."""
        path = Path(path)
        meta = {
            "dataset": self.dataset,
            "root": self.root,
            "classes": self.classes,
            "subgroups": self.subgroups,
            "skipped": [p.to_dict() for p in self.skipped],
        }
        if self.cache_dir:
            meta["cache_dir"] = self.cache_dir
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.frame.to_csv(path, index=False)
            path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
        except OSError as exc:
            from ..errors import RunDirError

            raise RunDirError(f"cannot write manifest {path}: {exc.strerror or exc}") from None
        return path

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        path = Path(path)
        sidecar = path.with_suffix(".json")
        if not path.is_file() or not sidecar.is_file():
            raise DataError(f"manifest {path} or its sidecar {sidecar.name} is missing")
        meta = json.loads(sidecar.read_text())
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        missing = {"path", "label", "split", "class_name"} - set(frame.columns)
        if missing:
            raise DataError(f"{path}:1: manifest lacks columns {sorted(missing)}")
        allowed = [Path(meta["root"]).resolve()] + (
            [Path(meta["cache_dir"]).resolve()] if meta.get("cache_dir") else []
        )
        for i, p in enumerate(frame["path"]):  # a manifest never leads outside its dataset root
            if not any(Path(str(p)).resolve().is_relative_to(a) for a in allowed):
                raise DataError(f"{path}:{i + 2}: image path {p} resolves outside the dataset root {meta['root']}")
        return cls(
            frame=frame,
            classes=meta["classes"],
            dataset=meta["dataset"],
            root=meta["root"],
            skipped=[Problem(**p) for p in meta.get("skipped", [])],
            subgroups=meta.get("subgroups", []),
            cache_dir=meta.get("cache_dir"),
        )


def counts_table(frame: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    splits = [s for s in SPLIT_ORDER if s in set(frame["split"])] if len(frame) else []
    table = pd.DataFrame(0, index=splits, columns=classes, dtype=int)
    if len(frame):
        got = frame.groupby(["split", "label"]).size()
        for (s, lab), n in got.items():
            table.loc[s, classes[int(lab)]] = int(n)
    table["total"] = table.sum(axis=1)
    return table


def stratified_val_split(frame: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """Move ``fraction`` of each class of the train split to ``val`` (seeded, by path order)."""
    frame = frame.copy()
    rng = np.random.default_rng(seed)
    train = frame[frame["split"] == "train"].sort_values("path")
    for label in sorted(train["label"].unique()):
        idx = train.index[train["label"] == label].to_numpy()
        n_val = min(int(round(fraction * len(idx))), len(idx) - 1)
        if n_val > 0:
            frame.loc[rng.permutation(idx)[:n_val], "split"] = "val"
    return frame


def _read(dataset: str, root: Path, protocol: str, class_names, cache_dir):
    if dataset == "rafdb":
        return read_rafdb(root)
    if dataset == "synthfer":
        from .synthfer import read_synthfer

        return read_synthfer(root)
    if dataset == "ferplus":
        return read_ferplus(root, protocol=protocol, cache_dir=cache_dir)
    if dataset == "folder":
        return read_folder(root, class_names)
    raise DataError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")


def _validate(dataset, root, val_fraction, seed, protocol, class_names, cache_dir, train_label_file=None):
    """Read and validate; return (frame of good rows, classes, problems)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset root {root} does not exist or is not a folder")
    frame, classes, problems = _read(dataset, root, protocol, class_names, cache_dir)
    if train_label_file:
        if dataset != "rafdb":
            raise ConfigError(
                f"noisy_train_labels={str(train_label_file)!r} is for dataset 'rafdb' (a train label "
                f"list in RAF-DB's format), not {dataset!r}"
            )
        from .rafdb import apply_train_label_file

        if len(frame):
            frame, more = apply_train_label_file(frame, Path(train_label_file).expanduser())
            problems = problems + more
    if any(p.kind == "layout" for p in problems) or not len(frame):
        return frame, classes, problems
    dup = frame["path"].duplicated().to_numpy()
    for _, row in frame[dup].iterrows():
        line = None if pd.isna(row["_line"]) else int(row["_line"])
        problems.append(Problem("duplicate", row["_file"], line, f"{row['path']} is listed more than once"))
    frame = frame[~dup]
    allowed = [root.resolve()] + ([Path(cache_dir).resolve()] if cache_dir else [])
    paths = [Path(p) for p in frame["path"]]
    escapes = [not any(p.resolve().is_relative_to(a) for a in allowed) for p in paths]
    with ThreadPoolExecutor(max_workers=4) as pool:
        checks = list(pool.map(lambda pe: None if pe[1] else check_image(pe[0]), zip(paths, escapes)))
    good = []
    for (_, row), path, esc, chk in zip(frame.iterrows(), paths, escapes, checks):
        line = None if pd.isna(row["_line"]) else int(row["_line"])
        if esc:
            problems.append(
                Problem(
                    "escapes_root", row["_file"], line, f"image path {path} resolves outside the dataset root {root}"
                )
            )
        elif chk is not None:
            problems.append(Problem(chk[0], row["_file"], line, chk[1]))
        good.append(not esc and chk is None)
    frame = frame[good]
    source_file = str(frame["_file"].iloc[0]) if len(frame) and dataset != "folder" else str(root)
    for split in sorted(set(frame["split"]), key=SPLIT_ORDER.index):
        present = set(frame.loc[frame["split"] == split, "label"])
        for i, name in enumerate(classes):
            if i not in present:
                problems.append(
                    Problem("empty_class", source_file, None, f"class {name!r} has no usable image in split {split!r}")
                )
    frame = frame.drop(columns=["_file", "_line"]).reset_index(drop=True)
    if val_fraction and "val" not in set(frame["split"]):
        frame = stratified_val_split(frame, val_fraction, seed)
    order = frame["split"].map(SPLIT_ORDER.index)
    frame = frame.assign(_o=order).sort_values(["_o", "path"], kind="stable").drop(columns="_o")
    return frame.reset_index(drop=True), classes, problems


def build_manifest(
    dataset: str,
    root: str | Path,
    val_fraction: float = 0.1,
    seed: int = 0,
    protocol: str = "default",
    skip_problems: bool = False,
    class_names: list[str] | None = None,
    cache_dir: str | Path | None = None,
    train_label_file: str | Path | None = None,
) -> Manifest:
    """Read ``dataset`` at ``root`` into a validated Manifest.

    ``train_label_file`` (RAF-DB only): a list of training labels in the label file's
    format, e.g. a published flipped-label list of the noisy-label protocol; its labels
    replace the training labels, the original ones stay as ``clean_label`` and ``noisy``
    marks where they differ.

    Raises DataError listing every problem (file and line) unless ``skip_problems``,
    in which case the problem images are left out and listed in ``Manifest.skipped``.
    """
    frame, classes, problems = _validate(
        dataset, root, val_fraction, seed, protocol, class_names, cache_dir, train_label_file
    )
    layout = [p for p in problems if p.kind == "layout"]
    raise_problems(layout, f"{dataset} at {root}")
    if not skip_problems:
        raise_problems(problems, f"{dataset} at {root}")
    if not len(frame):
        raise DataError(f"{dataset} at {root}: no usable images")
    frame["path"] = frame["path"].astype(str)
    frame["label"] = frame["label"].astype(int)
    subgroups = ["occluder", "pose_bin", "intensity_bin"] if dataset == "synthfer" else []
    return Manifest(
        frame=frame,
        classes=list(classes),
        dataset=dataset,
        root=str(Path(root).resolve()),
        skipped=problems,
        subgroups=subgroups,
        cache_dir=str(Path(cache_dir).resolve()) if cache_dir else None,
    )


@dataclass
class CheckReport:
    """Outcome of ``check_dataset``: counts per split and class, and every problem."""

    dataset: str
    root: str
    problems: list[Problem]
    counts: pd.DataFrame

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [f"{self.dataset} at {self.root}", "", "images per split and class:"]
        lines.append(self.counts.to_string() if len(self.counts) else "  (none)")
        lines.append("")
        if self.ok:
            lines.append("no problems found")
        else:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def check_dataset(
    dataset: str,
    root: str | Path,
    val_fraction: float = 0.1,
    seed: int = 0,
    protocol: str = "default",
    skip_problems: bool = False,
    class_names: list[str] | None = None,
    cache_dir: str | Path | None = None,
) -> CheckReport:
    """Validate a dataset and report every problem instead of raising on them.

    ``skip_problems`` is accepted for symmetry with build_manifest; a report always lists all.
    """
    frame, classes, problems = _validate(dataset, root, val_fraction, seed, protocol, class_names, cache_dir)
    counts = counts_table(frame, classes) if len(frame) and "label" in frame else pd.DataFrame()
    return CheckReport(dataset=dataset, root=str(root), problems=problems, counts=counts)
