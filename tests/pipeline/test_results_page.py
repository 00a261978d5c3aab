"""docs/results.md and the README's results paragraph are what the committed run records
under results/ generate (``python docs/make_results.py --check``), once every record checks
against results/INDEX.json: a damaged, altered, missing or unindexed record stops the
generator, naming the file, and nothing is written."""

import importlib.util
import shutil
from pathlib import Path

import pytest

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


def _generator_on_a_copy(tmp_path, monkeypatch):
    """The generator pointed at a copy of results/ (its index included) and at copies of
    everything it writes, so a test can damage records and see what is written."""
    gen = _generator()
    copy = tmp_path / "results"
    shutil.copytree(REPO / "results", copy)
    monkeypatch.setattr(gen, "RESULTS", copy)
    monkeypatch.setattr(gen, "REPO", tmp_path)
    (tmp_path / "docs").mkdir()
    shutil.copy(REPO / "docs" / "sanity_baseline.json", tmp_path / "docs")
    out = tmp_path / "outputs"
    shutil.copytree(REPO / "reports" / "reference", out / "reference")
    shutil.copy(REPO / "docs" / "results.md", out / "results.md")
    shutil.copy(REPO / "README.md", out / "README.md")
    monkeypatch.setattr(gen, "REFERENCE", out / "reference")
    monkeypatch.setattr(gen, "PAGE", out / "results.md")
    monkeypatch.setattr(gen, "README", out / "README.md")
    monkeypatch.setattr(gen, "FIGURE", out / "figures" / "recipe_curves.png")
    monkeypatch.setattr(gen, "CLAIMS_FIGURE", out / "figures" / "claims.png")
    return gen, copy, out


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _truncate(path):
    path.write_bytes(path.read_bytes()[:300])


def _edit_csv(path):
    lines = path.read_text().splitlines(keepends=True)
    image, label, pred = lines[1].strip().split(",")
    lines[1] = f"{image},{label},{label if pred != label else (int(label) + 1) % 7}\n"
    path.write_text("".join(lines))


DAMAGE = {  # reliability case: (what is done, the damage, the path the error must name)
    "R1": (
        "truncated JSON: a committed record's metrics.json cut to its first 300 bytes",
        lambda r: _truncate(r / "recipe" / "ce-seed1" / "metrics.json"),
        "recipe/ce-seed1/metrics.json",
    ),
    "R2": (
        "an edited CSV: one test prediction of a record's test_predictions.csv changed",
        lambda r: _edit_csv(r / "label_noise" / "tan-seed2-synth_label_noise=0.3" / "test_predictions.csv"),
        "label_noise/tan-seed2-synth_label_noise=0.3/test_predictions.csv",
    ),
    "R3": (
        "a deleted file: a record's history.csv removed",
        lambda r: (r / "ablation" / "scn-seed0" / "history.csv").unlink(),
        "ablation/scn-seed0/history.csv",
    ),
    "R4": (
        "a deleted record: a whole record folder removed",
        lambda r: shutil.rmtree(r / "noise_floor" / "ce-seed0-repeat1"),
        "noise_floor/ce-seed0-repeat1",
    ),
    "R5": (
        "an unindexed record: a record folder copied into results/ by hand, not by tan record",
        lambda r: shutil.copytree(r / "recipe" / "ce-seed0", r / "recipe" / "ce-seed3"),
        "recipe/ce-seed3",
    ),
}


@pytest.mark.parametrize("cid", list(DAMAGE))
def test_a_damaged_record_stops_the_generator_and_nothing_is_written(cid, case, tmp_path, monkeypatch, capsys):
    """Issue 30: a truncated record used to vanish from the page, the README and the verdict."""
    action, damage, named = DAMAGE[cid]
    case(
        cid,
        "evidence: run records",
        f"{action}; then `python docs/make_results.py --check` and `python docs/make_results.py` (on a copy of "
        "results/ with its INDEX.json)",
        "both exit 1 before reading any record, with a message naming the record and the file and the reindex "
        "command; docs/results.md, README.md, reports/reference/ and the figures left byte for byte as they were",
    )
    gen, copy, out = _generator_on_a_copy(tmp_path, monkeypatch)
    damage(copy)
    before = _snapshot(out)
    for argv in (["--check"], []):
        assert gen.main(argv) == 1
        err = capsys.readouterr().err
        assert f"{copy / named}: " in err, err
        assert "nothing was written" in err and "tan record --reindex" in err
    assert _snapshot(out) == before  # page, README, reference report; no figure written
    line = next(ln for ln in err.splitlines() if f"{copy / named}: " in ln)
    case.observed(f"exit 1 (both); {line.strip().replace(str(copy), 'results')}; outputs unchanged")


def test_a_changed_record_makes_the_check_fail(tmp_path, monkeypatch, capsys):
    """A change the index accepts (reindexed: deliberate) still has to reach the page."""
    from tanlib.report.records import reindex

    gen, copy, _ = _generator_on_a_copy(tmp_path, monkeypatch)
    metrics = copy / "recipe" / "ce-seed0" / "metrics.json"
    metrics.write_text(metrics.read_text().replace('"accuracy": 0.', '"accuracy": 0.9', 1))
    assert gen.main(["--check"]) == 1
    assert "recipe/ce-seed0/metrics.json: changed since it was indexed" in capsys.readouterr().err
    reindex(copy)
    assert gen.main(["--check"]) == 1
    assert "differs from what the records in results/ generate" in capsys.readouterr().err


def test_the_page_lists_the_records_of_a_dirty_tree():
    gen = _generator()
    index = gen.verify_records()
    dirty = sorted(k for k, e in index["records"].items() if e["clean"] is False)
    assert dirty and all(e["clean"] is not None for e in index["records"].values())
    [text, _] = gen.evidence_lines(index)
    assert f"{len(dirty)} of the {len(index['records'])} records were trained from a working tree" in text
    for key in dirty:
        group, name = key.split("/")
        assert name in text.split(f"`{group}/` ")[1].split(";")[0], key
    assert text in (REPO / "docs" / "results.md").read_text()
