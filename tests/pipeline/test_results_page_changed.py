"""A change to a record that the index accepts still has to reach docs/results.md: the page
names the digest of the index it was generated from, and ``--check`` finds another one before
building anything (the full build's comparison is test_results_page.py's)."""

from test_results_page import _generator_on_a_copy


def test_a_changed_record_makes_the_check_fail(tmp_path, monkeypatch, capsys):
    """A change the index accepts (reindexed: deliberate) still has to reach the page."""
    from tanlib.report.records import reindex

    gen, copy, _ = _generator_on_a_copy(tmp_path, monkeypatch)
    metrics = copy / "recipe" / "ce-seed0" / "metrics.json"
    metrics.write_text(metrics.read_text().replace('"accuracy": 0.', '"accuracy": 0.9', 1))
    assert gen.main(["--check"]) == 1
    assert "recipe/ce-seed0/metrics.json: changed since it was indexed" in capsys.readouterr().err
    reindex(copy)
    assert gen.main(["--check"]) == 1  # the page names the digest of another index: stale, nothing built
    err = capsys.readouterr().err
    assert "results.md differs from what the records in results/ generate" in err and "index digest" in err
