"""docs/results.md and the README's results paragraph are what the committed run records
under results/ generate (``python docs/make_results.py --check``)."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("make_results", REPO / "docs" / "make_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_results_page_and_readme_match_the_records():
    gen = _generator()
    page, block = gen.build(write_figures=False)  # what `make_results.py --check` compares
    assert gen.stale_outputs(page, block) == []  # page, README block and reports/reference/
    assert "n/a (fewer than two paired seeds)" not in block  # every published comparison is paired over seeds
    recipe = gen._records(gen.RESULTS / "recipe")
    assert not (recipe["collapsed"] == True).any()  # noqa: E712  (the recipe's promise at the quick preset)
    assert len(recipe) >= 12 and set(recipe.groupby("name")["seed"].nunique()) == {3}
    assert (REPO / "reports" / "reference" / "figures" / "claims.png").is_file()


def test_a_changed_record_makes_the_check_fail(tmp_path, monkeypatch, capsys):
    import shutil

    gen = _generator()
    copy = tmp_path / "results"
    shutil.copytree(REPO / "results", copy)
    metrics = copy / "recipe" / "ce-seed0" / "metrics.json"
    metrics.write_text(metrics.read_text().replace('"accuracy": 0.', '"accuracy": 0.9', 1))
    monkeypatch.setattr(gen, "RESULTS", copy)
    monkeypatch.setattr(gen, "REPO", tmp_path)
    (tmp_path / "docs").mkdir()
    shutil.copy(REPO / "docs" / "sanity_baseline.json", tmp_path / "docs")
    monkeypatch.setattr(gen, "REFERENCE", REPO / "reports" / "reference")
    monkeypatch.setattr(gen, "PAGE", REPO / "docs" / "results.md")
    monkeypatch.setattr(gen, "README", REPO / "README.md")
    assert gen.main(["--check"]) == 1
    assert "differs from what the records in results/ generate" in capsys.readouterr().err
