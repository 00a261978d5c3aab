"""Seed summaries against numpy, their Markdown and LaTeX rendering, and the paper's numbers
beside the kit's."""

import math

import numpy as np
import pytest

from tanlib.errors import ConfigError, DataError
from tanlib.report.paper import PAPER_RESULTS, paper_comparison
from tanlib.report.tables import format_mean_std, summarise_runs, to_latex, to_markdown

CLASSES = ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]


def _records():
    rng = np.random.default_rng(3)
    recs = []
    for method in ["ce", "tan"]:
        for seed in range(3):
            recs.append(
                {"method": method, "seed": seed, "accuracy": float(rng.random()), "noisy_auc": float(rng.random())}
            )
    recs.append({"method": "scn", "seed": 0, "accuracy": 0.5, "noisy_auc": None})
    return recs


def test_summarise_runs_matches_numpy():
    recs = _records()
    s = summarise_runs(recs, by="method")
    assert s["method"].tolist() == ["ce", "tan", "scn"]
    for method in ["ce", "tan"]:
        acc = np.array([r["accuracy"] for r in recs if r["method"] == method])
        row = s.set_index("method").loc[method]
        assert row["accuracy_mean"] == pytest.approx(acc.mean())
        assert row["accuracy_std"] == pytest.approx(np.std(acc, ddof=1))
        assert row["accuracy_n"] == 3 and row["n_runs"] == 3
    scn = s.set_index("method").loc["scn"]
    assert scn["accuracy_mean"] == 0.5 and math.isnan(scn["accuracy_std"])
    assert scn["noisy_auc_n"] == 0 and math.isnan(scn["noisy_auc_mean"])
    with pytest.raises(DataError, match="macro_f1"):
        summarise_runs(recs, metrics=["macro_f1"])
    with pytest.raises(DataError, match="by columns"):
        summarise_runs(recs, by=("dataset",))


def test_format_and_tables():
    s = summarise_runs(
        [
            {"method": "tan", "accuracy": 0.884},
            {"method": "tan", "accuracy": 0.886},
            {"method": "ce_x", "accuracy": 0.8},
        ],
        metrics=["accuracy"],
    )
    f = format_mean_std(s, digits=2, scale={"accuracy": 100})
    assert f["accuracy"].tolist() == ["88.50 ± 0.14", "80.00"]
    assert list(f.columns) == ["method", "n_runs", "accuracy"]
    md = to_markdown(f)
    assert md.splitlines()[0] == "| method | n_runs | accuracy |"
    assert md.splitlines()[1] == "| --- | ---: | --- |"
    assert "| tan | 2 | 88.50 ± 0.14 |" in md
    tex = to_latex(f, caption="Results", label="tab:res")
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"88.50 $\pm$ 0.14" in tex and r"ce\_x" in tex and r"n\_runs" in tex
    assert r"\begin{tabular}{lrl}" in tex and r"\label{tab:res}" in tex
    with pytest.raises(ConfigError, match="digits"):
        format_mean_std(s, digits=-1)


def test_paper_results_and_comparison():
    by_key = {(r["method"], r["dataset"]): r["accuracy"] for r in PAPER_RESULTS}
    assert by_key == {
        ("TAN", "RAF-DB"): 88.40,
        ("TAN", "FERPlus"): 88.73,
        ("SCN", "RAF-DB"): 87.03,
        ("RAN", "FERPlus"): 88.55,
    }
    assert all(set(r) == {"method", "dataset", "protocol", "accuracy", "source"} for r in PAPER_RESULTS)
    runs = [
        {"method": "tan", "dataset": "synthfer", "seed": 0, "accuracy": 0.70, "protocol": "quick"},
        {"method": "tan", "dataset": "synthfer", "seed": 1, "accuracy": 0.72, "protocol": "quick"},
        {
            "method": "tan",
            "dataset": "rafdb",
            "seed": 0,
            "accuracy": 0.87,
            "protocol": "paper",
            "selection": "test_selected",
        },
    ]
    out = paper_comparison(runs)
    assert {"origin", "number_from", "comparable", "accuracy", "dataset"} <= set(out.columns)
    paper = out[out.origin == "paper"]
    assert len(paper) == 4
    kit = out[out.origin == "this kit"].reset_index(drop=True)
    assert kit.loc[0, "dataset"] == "SynthFER"
    assert kit.loc[0, "accuracy"] == pytest.approx(71.0)
    assert kit.loc[0, "std"] == pytest.approx(np.std([70, 72], ddof=1))
    assert kit.loc[0, "comparable"].startswith("no:")
    assert "SynthFER" in kit.loc[0, "number_from"]
    assert kit.loc[1, "dataset"] == "RAF-DB"
    assert kit.loc[1, "comparable"].startswith("partly:") and "88.40" in kit.loc[1, "comparable"]
    assert "RAF-DB" in kit.loc[1, "number_from"]
    with pytest.raises(DataError, match="fraction"):
        paper_comparison([{"method": "tan", "dataset": "rafdb", "accuracy": 88.4}])
