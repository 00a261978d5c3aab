"""The paper's published numbers and how a kit run's numbers compare with them.

What this module owns:

- ``PAPER_RESULTS``: the numbers of Gou et al., ICAC 2023 (abstract only) and of the
  baselines its "+1.37 / +0.18" refers to (SCN, Wang et al., CVPR 2020; RAN, Wang et
  al., IEEE TIP 2020; docs/method.md section 1), each with the dataset, protocol and
  source it was measured with.
- ``paper_comparison``: those numbers set beside a kit run's (mean ± std over seeds),
  with the dataset and protocol of every number spelled out and a plain-language
  ``comparable`` column, so that a SynthFER number is never read as a RAF-DB number.
- ``paper_records``: the rows ``paper_comparison`` takes, from run records
  (``tanlib.report.records``): each run's best-validation and test-selected accuracy.
"""

from __future__ import annotations

import math

import pandas as pd

from ..errors import DataError
from .tables import _records_frame

_RAFDB_PROTOCOL = "RAF-DB basic, 7 classes, official test set (3,068 images), overall accuracy"
_FERPLUS_PROTOCOL = "FERPlus, 8 classes, majority-vote labels, PrivateTest, overall accuracy"

PAPER_RESULTS: list[dict] = [
    {
        "method": "TAN",
        "dataset": "RAF-DB",
        "protocol": _RAFDB_PROTOCOL + "; backbone and epoch selection not stated (most likely ResNet-18 pretrained "
        "on MS-Celeb-1M, SCN's training script)",
        "accuracy": 88.40,
        "source": "Gou et al., ICAC 2023, abstract",
    },
    {
        "method": "TAN",
        "dataset": "FERPlus",
        "protocol": _FERPLUS_PROTOCOL + "; backbone and epoch selection not stated (most likely ResNet-18 pretrained "
        "on MS-Celeb-1M)",
        "accuracy": 88.73,
        "source": "Gou et al., ICAC 2023, abstract",
    },
    {
        "method": "SCN",
        "dataset": "RAF-DB",
        "protocol": _RAFDB_PROTOCOL + "; ResNet-18 pretrained on MS-Celeb-1M; SCN's script keeps the epoch with "
        "the best test accuracy (test-selected)",
        "accuracy": 87.03,
        "source": "Wang et al., CVPR 2020 (SCN); = 88.40 - 1.37 in TAN's abstract",
    },
    {
        "method": "RAN",
        "dataset": "FERPlus",
        "protocol": _FERPLUS_PROTOCOL + "; ResNet-18 pretrained on MS-Celeb-1M; trained on Training + PublicTest "
        "(the kit's ferplus protocol 'ran')",
        "accuracy": 88.55,
        "source": "Wang et al., IEEE TIP 2020 (RAN); = 88.73 - 0.18 in TAN's abstract",
    },
]

_DATASET_NAMES = {
    "synthfer": "SynthFER",
    "rafdb": "RAF-DB",
    "raf-db": "RAF-DB",
    "raf_db": "RAF-DB",
    "ferplus": "FERPlus",
    "fer+": "FERPlus",
    "folder": "folder",
}

#: a run record's epoch selection (``selection``/``primary``), in words
SELECTION_TEXT = {
    "last": "last epoch",
    "best_val": "best-validation epoch",
    "test_selected": "best-test epoch (test-selected, for comparison with papers)",
}


def _dataset_name(value) -> str:
    text = str(value)
    return _DATASET_NAMES.get(text.strip().lower(), text)


def paper_comparison(run_records) -> pd.DataFrame:
    """The paper's numbers beside a kit run's, with where each number comes from.

    ``run_records``: one flat dict per run with at least ``method``, ``dataset`` and
    ``accuracy`` (a fraction in [0, 1], as ``classification_metrics`` returns), and
    optionally ``protocol`` (free text, e.g. the preset), ``selection`` ("last",
    "best_val" or "test_selected") and ``seed``. Runs sharing method, dataset,
    protocol and selection are aggregated (mean ± std over seeds).

    Returns a DataFrame with one row per paper number and per run configuration:
    ``origin`` ("paper" or "this kit"), ``method``, ``dataset``, ``number_from``
    (which dataset, split and protocol the number was measured on), ``accuracy`` (%),
    ``std`` (%, NaN for paper numbers and single runs), ``n_runs``, ``source`` and
    ``comparable`` (plain language: whether and with what caveat the run's number may
    be set beside the paper's).
    """
    df = _records_frame(run_records)
    required = ["method", "dataset", "accuracy"]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"run_records lack the keys {missing}; each run needs method, dataset and accuracy")
    acc = pd.to_numeric(df["accuracy"], errors="coerce")
    if acc.isna().any() or ((acc < 0) | (acc > 1)).any():
        raise DataError(
            "run_records accuracy must be a fraction in [0, 1] (as classification_metrics "
            f"returns), got {df['accuracy'].tolist()[:5]}"
        )
    df = df.assign(accuracy=acc * 100.0, dataset=df["dataset"].map(_dataset_name))
    for col, default in (("protocol", "not stated"), ("selection", "last")):
        if col not in df.columns:
            df[col] = default
        df[col] = df[col].fillna(default).astype(str)
    bad_sel = sorted(set(df["selection"]) - set(SELECTION_TEXT))
    if bad_sel:
        raise DataError(f"run_records selection must be one of {list(SELECTION_TEXT)}, got {bad_sel}")

    rows = [
        {
            "origin": "paper",
            "method": r["method"],
            "dataset": r["dataset"],
            "number_from": f"{r['dataset']}: {r['protocol']}",
            "accuracy": r["accuracy"],
            "std": math.nan,
            "n_runs": 1,
            "source": r["source"],
            "comparable": "reference: number reported in the literature",
        }
        for r in PAPER_RESULTS
    ]
    paper_by_dataset: dict[str, list[dict]] = {}
    for r in PAPER_RESULTS:
        paper_by_dataset.setdefault(r["dataset"], []).append(r)

    keys = ["method", "dataset", "protocol", "selection"]
    for key, group in df.groupby(keys, sort=False):
        method, dataset, protocol, selection = key
        values = group["accuracy"].to_numpy(dtype=float)
        seeds = ""
        if "seed" in group.columns:
            seed_list = group["seed"].tolist()
            seeds = (", seeds " if len(seed_list) > 1 else ", seed ") + ", ".join(str(s) for s in seed_list)
        rows.append(
            {
                "origin": "this kit",
                "method": method,
                "dataset": dataset,
                "number_from": f"{dataset} test split; kit protocol: {protocol}; {SELECTION_TEXT[selection]}",
                "accuracy": float(values.mean()),
                "std": float(values.std(ddof=1)) if values.size > 1 else math.nan,
                "n_runs": int(values.size),
                "source": f"this kit ({values.size} run{'s' if values.size != 1 else ''}{seeds})",
                "comparable": _comparable_text(dataset, selection, paper_by_dataset),
            }
        )
    return pd.DataFrame(
        rows,
        columns=["origin", "method", "dataset", "number_from", "accuracy", "std", "n_runs", "source", "comparable"],
    )


def _comparable_text(dataset: str, selection: str, paper_by_dataset) -> str:
    if dataset not in paper_by_dataset:
        reported = " and ".join(sorted(paper_by_dataset))
        if dataset == "SynthFER":
            why = "SynthFER is the kit's synthetic dataset"
        else:
            why = f"{dataset} is not a dataset the paper reports"
        return (
            f"no: {why}; the paper reports only {reported}, so none of its numbers can "
            "be compared with this one (compare methods with each other inside the kit instead)"
        )
    refs = ", ".join(f"{r['method']} {r['accuracy']:.2f}" for r in paper_by_dataset[dataset])
    if selection == "test_selected":
        sel = "epoch chosen on the test set as SCN's script does, so it matches the paper's likely selection rule"
    else:
        sel = (
            f"epoch chosen as {SELECTION_TEXT[selection]}, which is stricter than the "
            "test-selected epoch of SCN's script, so expect a slightly lower number"
        )
    return (
        f"partly: same dataset and test set as the paper's {refs}; comparable only if "
        f"the backbone (ResNet-18 pretrained on MS-Celeb-1M), input size and schedule "
        f"match the paper protocol; {sel}"
    )


def paper_records(records: pd.DataFrame) -> list[dict]:
    """Rows for ``paper_comparison``: each run's best-validation and
    test-selected accuracy, with the kit preset as its protocol."""
    out = []
    for _, r in records.iterrows():
        protocol = f"{r['scale']} preset"
        for selection, key in (("best_val", "accuracy"), ("test_selected", "accuracy_test_selected")):
            if math.isfinite(r[key]):
                out.append(
                    {
                        "method": r["method"],
                        "dataset": r["dataset"],
                        "accuracy": r[key],
                        "seed": r["seed"],
                        "protocol": protocol,
                        "selection": selection,
                    }
                )
    return out


__all__ = ["PAPER_RESULTS", "SELECTION_TEXT", "paper_comparison", "paper_records"]
