"""A change to a record that the index accepts still has to reach docs/results.md: a file of
its own, so that its full page build runs beside test_results_page.py's on the other worker
(``--dist loadfile``)."""

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
    assert gen.main(["--check"]) == 1
    assert "differs from what the records in results/ generate" in capsys.readouterr().err
