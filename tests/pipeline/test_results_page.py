"""docs/results.md and the README's results paragraph are what the committed run records
under results/ generate (``python docs/make_results.py --check``), once every record checks
against results/INDEX.json: a damaged, altered, missing or unindexed record stops the
generator, naming the file, and nothing is written."""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("make_results", REPO / "docs" / "make_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow(110)  # the file's CPU seconds: this full page build, the arm's, the damage cases
def test_committed_results_page_and_readme_match_the_records():
    gen = _generator()
    out = gen.build(write_figures=False)  # what `make_results.py --check` compares
    assert gen.stale_outputs(out) == []  # page, README block and reports/reference/
    assert out.page.rstrip().endswith(gen.index_line(out.index))  # the digest --check compares first
    assert "n/a (fewer than two paired seeds)" not in out.block  # every published comparison is paired over seeds
    recipe = gen._records(gen.RESULTS / "recipe")
    assert not (recipe["collapsed"] == True).any()  # noqa: E712  (the recipe's promise at the quick preset)
    assert len(recipe) >= 12 and set(recipe.groupby("name")["seed"].nunique()) == {3}
    assert (REPO / "reports" / "reference" / "figures" / "claims.png").is_file()


def _generator_on_a_copy(tmp_path, monkeypatch, verdict: bool = True):
    """The generator pointed at a copy of results/ (its index included) and at copies of
    everything it writes, so a test can damage records and see what is written. Without
    ``verdict``, the copy leaves out results/verdict/ (most of the records) and their
    entries of the index: a consistent tree of the quick preset's records only."""

    gen = _generator()
    copy = tmp_path / "results"
    top = REPO / "results"
    shutil.copytree(top, copy, ignore=lambda d, names: [] if verdict or Path(d) != top else ["verdict"])
    if not verdict:
        index = json.loads((copy / "INDEX.json").read_text())
        index["records"] = {k: v for k, v in index["records"].items() if not k.startswith("verdict/")}
        (copy / "INDEX.json").write_text(json.dumps(index, indent=2))
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
    gen, copy, out = _generator_on_a_copy(tmp_path, monkeypatch, verdict=False)
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


VERDICT_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _a_tan_verdict(copy: Path, name: str = "synthfer-calibrated") -> Path:
    """``results/verdict/<name>/`` in the copy as ``tan verdict`` writes it: ``ce``, ``scn`` and
    ``tan`` at 10 and 30 % label noise, seeds 0 and 1 (committed records copied, renamed as a
    sweep names them), every run from one clean commit; indexed."""

    from tanlib.report.records import reindex

    folder = copy / "verdict" / name
    for method, at_10 in (("ce", "recipe"), ("tan", "recipe"), ("scn", "ablation")):
        for seed in (0, 1):
            for level, source in (
                (0.1, copy / at_10 / f"{method}-seed{seed}"),
                (0.3, copy / "label_noise" / f"{method}-seed{seed}-synth_label_noise=0.3"),
            ):
                target = folder / f"{method}-seed{seed}-synth_label_noise={level}"
                shutil.copytree(source, target)
                env = json.loads((target / "env.json").read_text())
                env.update(git_commit=VERDICT_COMMIT, git_dirty=False)
                (target / "env.json").write_text(json.dumps(env, indent=2))
    reindex(copy)
    return folder


def test_the_claims_are_judged_on_tan_verdicts_records_when_there_are_some(tmp_path, monkeypatch):
    """Issue 29: once results/verdict/<dataset>-<preset>/ holds records, the page judges the
    claims on them alone (as ``tan verdict`` does), names their commit, and labels the quick
    preset's folders as earlier records outside the claims; without such a folder they are
    judged on the quick preset's folders."""
    import tanlib.analysis.difficulty as difficulty
    from tanlib.analysis.verdict import claims_frame
    from tanlib.pipeline.verdict import Verdict
    from tanlib.report import to_markdown

    gen, copy, _ = _generator_on_a_copy(tmp_path, monkeypatch, verdict=False)  # this test makes its own verdict
    shutil.copy(REPO / "docs" / "difficulty_baseline.json", tmp_path / "docs")
    monkeypatch.setattr(gen, "DIFFICULTY_FILE", tmp_path / "docs" / "difficulty_baseline.json")
    (copy / "verdict" / "synthfer-smoke").mkdir(parents=True)  # an empty verdict folder counts for nothing
    assert gen.claims_source().verdict is None
    assert gen.claims_source().folders == gen.VERDICT_FOLDERS
    folder = _a_tan_verdict(copy)

    source = gen.claims_source()
    assert source.verdict == "synthfer-calibrated" and source.folders == ("verdict/synthfer-calibrated",)
    assert source.commits == (VERDICT_COMMIT,) and source.clean
    assert gen.reference_params()["runs_from"] == ["results/verdict/synthfer-calibrated"]
    assert gen.reference_params()["repeats_from"] == []  # the noise floor repeats the quick preset's cells
    assert gen.repeat_records() is None

    page, block = gen.build(write_figures=False)[:2]
    # the claims table is tan verdict's own judgement of its records (the same difficulty baseline)
    baseline = difficulty.claim_baseline  # drawn from the page's cached AUCs, as the page does
    monkeypatch.setattr(difficulty, "claim_baseline", lambda rec: baseline(rec, gen.difficulty_baseline(rec)))
    verdict = Verdict(preset="calibrated", results=str(copy), log=lambda *_: None)
    assert verdict.records == folder
    table = claims_frame(verdict.judge())
    assert to_markdown(table) in page
    judged = table[table["verdict"] != "n/a"]
    assert len(judged) and set(judged["seeds"]) == {2}  # seeds 0 and 1 of the verdict, not the quick preset's 3
    assert set(table[table["verdict"] == "n/a"]["comparison"]) <= {
        f"{a} - {b}"
        for a in ("tan", "triplet", "attention")
        for b in ("attention", "ce", "tan-nothreshold", "tan-euclid")
    }
    # claims.yaml's levels without a record are named, not silently left out of the table
    from tanlib.analysis.verdict import CLAIMS

    at_0 = [c for c in CLAIMS if 0.0 in c.levels]
    assert len(at_0) and "| 0 % |" not in to_markdown(table)
    n_primary = sum(c.family == "primary" for c in at_0)
    assert f"No run is recorded yet at 0 % label noise: those {len(at_0)} cells ({n_primary} primary)" in page
    # the commit and the folder are named; the old quick-preset framing is gone from the claims
    assert f"commit `{VERDICT_COMMIT[:12]}` (a clean tree)" in page
    assert "# Results: the verdict on TAN's claims, on SynthFER (`tan verdict`, calibrated preset)" in page
    assert "**The claims are judged on `tan verdict`'s records alone**: the 12 records in" in page
    assert "These are the old `quick` preset's records" not in page
    assert "## The earlier records: the quick preset (not part of the claims)" in page
    assert page.index("## The verdict") < page.index("## The earlier records") < page.index("## Pretrained regime")
    # the class-accuracy controls and the label-noise table read the verdict's records: its three methods
    classes = page.split("## Where the mean class accuracy goes")[1].split("## The earlier records")[0]
    assert "| 10 % | `ce` | 2 |" in classes and "| 30 % | `scn` | 2 |" in classes and "`triplet`" not in classes
    noise = page.split("## Label noise")[1].split("## Where the mean class")[0]
    assert "results/verdict/synthfer-calibrated" in noise and "(2)" in noise and "triplet" not in noise
    # the README block says which records the counts come from
    assert "`tan verdict`'s 12 records at the `calibrated` preset (`results/verdict/synthfer-calibrated/`" in block
    assert "are pending" not in block and "the old quick preset (3 seeds" not in block
    # a RAF-DB verdict beside it is named, not judged
    shutil.copytree(folder, copy / "verdict" / "rafdb-paper")
    assert gen.claims_source().verdict == "synthfer-calibrated"
    assert gen.claims_source().others == ("rafdb-paper",)
    from tanlib.report.records import reindex

    reindex(copy)
    (arm,) = gen.other_arms(gen.claims_source())
    assert arm.folder == "rafdb-paper" and not arm.judged and arm.results == []


def test_the_difficulty_cache_holds_one_entry_per_level_and_draws_only_what_it_lacks(tmp_path, monkeypatch):
    """docs/difficulty_baseline.json: one entry per level's SynthFER settings, so records on a
    subset of the levels (an arm at 10 % alone) read the verdict's entries, and only a level
    whose settings it lacks is drawn (then added, the other entries kept)."""

    import tanlib.analysis.difficulty as difficulty

    gen = _generator()
    cached = json.loads(gen.DIFFICULTY_FILE.read_text())
    rec = gen.verdict_records()
    settings = difficulty.record_settings(rec)
    assert {e["settings"] for e in cached["entries"]} == {json.dumps(v, sort_keys=True) for v in settings.values()}
    drawn = []

    def draw(missing):
        drawn.append(sorted(missing))
        return {level: {"ambiguity": 0.5, "intensity": 0.5, "n": 1, "n_noisy": 0} for level in missing}

    monkeypatch.setattr(difficulty, "difficulty_by_level", draw)
    monkeypatch.setattr(gen, "DIFFICULTY_FILE", tmp_path / "difficulty_baseline.json")
    gen.DIFFICULTY_FILE.write_text(json.dumps(cached))
    full = gen.difficulty_baseline(rec)
    assert drawn == [] and sorted(full) == sorted(settings)
    assert gen.difficulty_baseline(rec[rec["synth_label_noise"] == 0.1]) == {0.1: full[0.1]} and drawn == []
    keep = json.dumps(settings[0.1], sort_keys=True)
    gen.DIFFICULTY_FILE.write_text(json.dumps({"entries": [e for e in cached["entries"] if e["settings"] == keep]}))
    again = gen.difficulty_baseline(rec)
    assert drawn == [[0.3]] and again[0.1] == full[0.1] and again[0.3]["n"] == 1
    assert len(json.loads(gen.DIFFICULTY_FILE.read_text())["entries"]) == 2


def test_the_attention_auc_reading_follows_the_records_noise_model():
    """Annotator noise: difficulty finds wrong labels; random flips: it finds them by chance and
    the claim against it is not judged; variants and clean levels do not count."""
    import pandas as pd

    gen = _generator()

    def rec(*rows):
        return pd.DataFrame(rows, columns=["variant", "synth_label_noise", "synth_noise_model"])

    annotators = gen.noise_model_reading(rec(("", 0.1, "annotators"), ("lr=0.01", 0.1, "random")))
    random = gen.noise_model_reading(rec(("", 0.3, "random"), ("", 0.0, "annotators")))
    assert "grows with its ambiguity" in annotators and "random flips" not in annotators
    assert "chosen without looking at the face" in random and "grows with" not in random
    assert "not judged" in random
    control = "tests/losses/test_attention_control.py"  # the attention's positive control, named beside the reading
    assert control in random and (REPO / control).is_file() and control not in annotators
    assert (
        gen.noise_model_reading(rec(("", 0.0, "annotators"))) == "No record of the methods has wrong training labels."
    )


def test_the_attention_per_class_section_lists_a_figure_per_level(tmp_path):
    """Only records whose history has attention_class<j> enter (variants left out), one figure
    per label-noise level, methods in METHODS order; nothing without such a record."""
    import pandas as pd

    gen = _generator()
    rows = []
    for i, (method, level, variant, has) in enumerate(
        [("tan", 0.1, "", True), ("scn", 0.1, "", True), ("ce", 0.1, "", False), ("tan", 0.3, "lr=0.01", True)]
    ):
        run = tmp_path / f"r{i}"
        run.mkdir()
        history = pd.DataFrame({"epoch": [1, 2], "val_acc": [0.5, 0.6]})
        if has:
            history["attention_class0"] = [0.4, 0.5]
        history.to_csv(run / "history.csv", index=False)
        rows.append({"path": str(run), "method": method, "seed": 0, "synth_label_noise": level, "variant": variant})
    rec = pd.DataFrame(rows)
    got = gen.attention_histories(rec)
    assert list(got) == [0.1] and sorted(got[0.1]) == ["scn", "tan"]
    lines = gen.attention_class_lines(rec, write_figures=False)
    assert [line for line in lines if line.startswith("![")] == [
        "![mean attention per class, 10 % label noise](figures/attention_by_class_10.png)"
    ]
    assert gen.attention_class_lines(rec[rec["method"] == "ce"], write_figures=False) == []


def test_the_ceiling_sits_beside_the_accuracy_tables_of_its_own_datasets(tmp_path):
    """SynthFER's ceiling (docs/calibration_ceiling.json) is shown for a level only when the
    records trained on the dataset it was computed on (noise model, level, sizes)."""

    import pandas as pd

    gen = _generator()
    table = json.loads(gen.CEILING_FILE.read_text())
    rows = []
    for i, (n_train, level) in enumerate([(10000, 0.1), (2500, 0.3)]):
        run = tmp_path / f"r{i}"
        run.mkdir()
        settings = {"noise_model": "random", "label_noise": level, "n_train": n_train, "n_test": 6300}
        (run / "data.json").write_text(json.dumps(settings))
        rows.append(
            {"path": str(run), "method": "ce", "seed": 0, "variant": "", "synth_label_noise": level, "accuracy": 0.8}
        )
    rec = pd.DataFrame(rows)
    got = gen.ceilings(rec)
    assert list(got) == [0.1] and got[0.1] == table["random"]["0.1"]
    last = gen.label_noise_rows(rec)[-1]
    assert last["method"] == gen.CEILING_LABEL
    assert last["10 % noise"] == f"{100 * table['random']['0.1']['accuracy']:.1f}" and last["30 % noise"] == "n/a"
    assert "not shown" in gen.ceiling_note(rec.iloc[[1]]) and "oracle" in gen.ceiling_note(rec)


def test_pending_levels_name_what_has_no_record():
    """The claims' levels without a verdict record, matched as the claims are (isclose); none for
    records without label-noise levels (a real dataset's verdict judges every claim on all runs)."""
    import pandas as pd

    from tanlib.analysis.verdict import CLAIMS

    gen = _generator()
    levels = sorted({lv for c in CLAIMS for lv in c.levels})
    assert levels == [0.0, 0.1, 0.3]
    text = gen.pending_levels(pd.DataFrame({"method": ["tan"], "synth_label_noise": [0.1 + 1e-12]}))
    assert text.startswith(" No run is recorded yet at 0 % and 30 % label noise")
    assert gen.pending_levels(pd.DataFrame({"method": "tan", "synth_label_noise": levels})) == ""
    assert gen.pending_levels(pd.DataFrame({"method": ["tan"]})) == ""


def test_the_attention_state_table_counts_each_methods_runs_per_level(tmp_path):
    """Per label-noise level, each attention method's runs by attention_state with their mean
    final attention_mean (history.csv); methods without attention, variants and levels without
    attention runs left out; the sentence naming the saturated levels follows the table."""
    import pandas as pd

    from tanlib.analysis.collapse import ATTENTION_SATURATED

    gen = _generator()
    runs = [  # method, level, variant, attention_state, final attention_mean
        ("tan", 0.0, "", "saturated", 0.95),
        ("tan", 0.0, "", "saturated", 0.99),
        ("attention", 0.0, "", "saturated", 0.91),
        ("scn", 0.0, "", "ok", 0.8),
        ("ce", 0.0, "", "none", None),
        ("triplet", 0.0, "", None, None),
        ("tan", 0.1, "", "ok", 0.7),
        ("tan", 0.1, "", "saturated", 0.93),
        ("tan", 0.1, "", "ok", 0.6),
        ("scn", 0.1, "", "ok", 0.85),
        ("tan", 0.1, "lr=0.01", "saturated", 0.99),  # a variant: not counted
        ("ce", 0.3, "", "none", None),  # no attention run at 30 %: no row
        ("triplet", 0.3, "", "", None),
    ]
    rows = []
    for i, (method, level, variant, state, final) in enumerate(runs):
        run = tmp_path / f"r{i}"
        run.mkdir()
        history = pd.DataFrame({"epoch": [1, 2], "val_acc": [0.5, 0.6]})
        if final is not None:
            history["attention_mean"] = [0.5, final]
        history.to_csv(run / "history.csv", index=False)
        rows.append(
            {
                "path": str(run),
                "method": method,
                "seed": i,
                "synth_label_noise": level,
                "variant": variant,
                "attention_state": state,
            }
        )
    rec = pd.DataFrame(rows)

    expected = {}  # level -> method -> (states, finals), by hand
    for method, level, variant, state, final in runs:
        if variant == "" and state not in (None, "", "none"):
            states, finals = expected.setdefault(level, {}).setdefault(method, ([], []))
            states.append(state)
            finals.append(final)
    assert sorted(expected) == [0.0, 0.1]
    order = ["scn", "attention", "tan"]  # METHODS order; ce and triplet have no attention
    got = gen.attention_state_rows(gen.attention_states(rec))
    assert [r["label noise"] for r in got] == ["0 %", "10 %"]
    for row, level in zip(got, sorted(expected)):
        assert list(row) == ["label noise"] + [f"`{m}`" for m in order]
        for method in order:
            if method not in expected[level]:
                assert row[f"`{method}`"] == "n/a"
                continue
            states, finals = expected[level][method]
            counts = {}
            for s in states:
                counts[s] = counts.get(s, 0) + 1
            ranked = sorted(counts, key=lambda s: (-counts[s], s))
            cell = ", ".join(f"{s} {counts[s]}/{len(states)}" for s in ranked)
            assert row[f"`{method}`"] == f"{cell} ({sum(finals) / len(finals):.2f})"
    assert got[1]["`tan`"] == "ok 2/3, saturated 1/3 (0.74)"  # (0.7 + 0.93 + 0.6) / 3

    lines = gen.attention_state_lines(rec)
    text = " ".join(lines)
    assert f"above {ATTENTION_SATURATED}," in text
    assert (
        "At 0 % every attention method except `scn` ends saturated; at 10 % 1 of 4 attention runs end saturated."
        in text
    )
    # a level where a method's runs are mostly saturated carries the caveat (0 %); one where the
    # saturated runs are fewer than half of every method's (10 %: one run of three) is named as such
    assert "A claim at 0 % about the attention" in text and "With clean labels" in text
    assert "At 10 % fewer than half of each method's runs end saturated." in text
    one = rec[(rec["synth_label_noise"].fillna(0) == 0.1) & (rec["method"] == "scn")]
    assert "At 10 % the one attention run ends ok." in " ".join(gen.attention_state_lines(one))
    assert gen.attention_state_rows(gen.attention_states(rec))[0]["`tan`"] == "saturated 2/2 (0.97)"
    assert gen.attention_state_lines(rec[rec["method"].isin(["ce", "triplet"])]) == []


def test_the_readme_says_which_look_each_level_has_reached():
    import pandas as pd

    gen = _generator()
    claims = pd.DataFrame(
        {
            "label noise": ["0 %", "0 %", "10 %", "10 %", "30 %", "30 %"],
            "look": ["before the first", "n/a", "8 seeds", "8 seeds", "20 seeds", "n/a"],
            "family": ["primary", "primary", "primary", "secondary", "primary", "primary"],
            "comparison": ["tan - ce"] * 6,
            "measure": ["accuracy"] * 4 + ["noisy auc"] * 2,
            "effect": ["+1.00", "n/a", "+0.50", "-0.30", "+0.020", "n/a"],
            "95 % interval (seeds + test images)": [
                "[-1, +3]",
                "n/a",
                "[-0.10, +1.10]",
                "x",
                "[+0.010, +0.030]",
                "n/a",
            ],
        }
    )
    text = gen.looks_text(claims)
    assert "looks at 3, 8, 13, 18, 20 seeds" in text  # claims.yaml's design
    assert "0 % before the first look (next at 3 seeds)" in text
    assert "10 % at the look of 8 seeds (next at 13 seeds)" in text
    assert "30 % at the look of 20 seeds (the budget, spent)" in text
    # the primary cells at a look, with their effects: not below the first look, not the secondary ones
    assert text.endswith(
        "The primary claims at their look (effect, 95 % interval): 10 %: tan - ce accuracy +0.50 points "
        "[-0.10, +1.10]; 30 %: tan - ce noisy auc +0.020 [+0.010, +0.030]. "
    )
    # levels at the same look are named together
    same = claims.assign(look=["before the first", "n/a", "before the first", "n/a", "before the first", "n/a"])
    assert "0 %, 10 % and 30 % before the first look" in gen.looks_text(same)


def _accuracy_rows_match_the_records(lines: list[str], runs: list) -> None:
    """One row per (level, method) of an arm's accuracy table, its mean the mean of the
    records' metrics.json accuracy (the primary checkpoint's, on test)."""

    import numpy as np

    cells: dict = {}
    for run in runs:
        config = json.loads((run / "config.json").read_text())
        level = json.loads((run / "data.json").read_text())["label_noise"]
        metrics = json.loads((run / "metrics.json").read_text())
        cells.setdefault((level, config["method"]), []).append(metrics["results"][metrics["primary"]]["accuracy"])
    # "| 10 % | `tan` | ...": the attention-state table has as many columns, no method in its second
    rows = [x for x in lines if x.startswith("| ") and x.count("|") == 7 and re.match(r"\| \d+ % \| `", x)]
    assert len(rows) == len(cells)
    for (level, method), values in cells.items():
        row = next(r for r in rows if r.startswith(f"| {100 * level:.0f} % | `{method}` |"))
        assert row.split("|")[4].strip() == f"{100 * np.mean(values):.2f}"


def test_another_verdict_folder_is_judged_on_its_own_once_it_reaches_a_look():
    """A folder of results/verdict/ beside the judged one (the float32 runs of a GPU) is never
    read by the claims; once its own format has seeds 0..n-1 of every method up to a look, it
    gets its own verdict (its own Holm family, the same rule), else it is described only. Both
    sections name its machines and numeric format and give, per level and method, its seeds and
    mean test accuracy beside the judged records'."""

    from tanlib.analysis.verdict import claim_results, claims_frame, decide

    gen = _generator()
    source = gen.claims_source()
    arms = gen.other_arms(source)
    if not arms:
        pytest.skip("no other verdict folder committed")
    judged_paths = set(gen.verdict_records()["path"])
    assert all(f"{gen.VERDICT_ROOT}/{a.folder}" not in source.folders for a in arms)
    assert not judged_paths & {p for a in arms for p in a.records["path"]}
    for arm in arms:  # every arm, judged or not
        folder = gen.RESULTS / gen.VERDICT_ROOT / arm.folder
        runs = [p for p in sorted(folder.iterdir()) if p.is_dir()]
        lines = gen.other_arm_lines([arm], [])
        heading = (
            f"### Another arm, judged on its own: `results/{gen.VERDICT_ROOT}/{arm.folder}/`"
            if arm.judged
            else f"### Not judged: `results/{gen.VERDICT_ROOT}/{arm.folder}/`"
        )
        intro = lines[lines.index(heading) + 2]
        assert intro.startswith(f"{len(runs)} records (commit ")
        for run in runs:  # every machine the folder's env.json files name
            env = json.loads((run / "env.json").read_text())
            assert f"{env.get('cuda') or 'CPU'}, torch {env['torch']}" in intro
        _accuracy_rows_match_the_records(lines, runs)
        if arm.judged:  # its claims table is claims_frame of its own results
            table = claims_frame(arm.results)
            rows = "\n".join(lines).splitlines()
            assert sum(x.startswith(f"| {c} |") for x in rows for c in set(table["claim"])) == len(table)
            assert "judged on its own" in gen.arms_text(arms) and arm.folder in gen.arms_text(arms)
            # agreement with itself: every decided cell agrees; with no judged results: none
            decided = [r for r in arm.results if decide(r) in ("supported", "contradicted", "equivalent")]
            agree = gen.arm_agreement(arm, arm.results)
            assert len(agree) == len(decided) and not any("disagree" in a for a in agree)
            assert gen.arm_agreement(arm, []) == []
            # the arm's own attention-state table (saturation read before its claims)
            states = gen.attention_state_lines(arm.records)
            assert states and "\n".join(states) in "\n".join(lines)
            # which primary decisions hold at 5 % for the verdict and its arms together
            assert gen.arms_alpha(arms) == 0.05 / (1 + sum(a.judged for a in arms))
            primary = [r for r in decided if r["claim"].primary]
            if primary:
                assert gen.held_text(arm.results, 1.0) == f"all {len(primary)} hold"
                held = gen.held_text(arm.results, 0.0)
                assert held.startswith(f"0 of {len(primary)} hold (not: ") and held.count(";") == len(primary) - 1
                assert held.count(", inconclusive there") == len(primary)
        # the same folder's later seeds alone reach no look: described, not judged
        late = arm.records[arm.records["seed"] >= 3]
        if len(late):
            part = gen.Arm(arm.folder, late, claim_results(late, bootstrap=False), arm.envs, arm.kind)
            assert not part.judged and gen.arms_text([part]) == ""
            assert f"### Not judged: `results/{gen.VERDICT_ROOT}/{arm.folder}/`" in gen.other_arm_lines([part], [])
    assert gen.other_arm_lines([], []) == []


def test_the_readme_claims_table_has_a_row_per_primary_claim_and_a_column_per_level():
    """The README's table: one row per primary claim, one column per level with the look it
    reached, each cell the verdict (bold when decided), effect and interval; a level where the
    claim has no test shows "-", a secondary claim has no row but a clause when decided."""
    import pandas as pd

    gen = _generator()
    claims = pd.DataFrame(
        {
            "claim": ["A beats B", "A beats B", "A finds noise", "A finds noise", "A is tighter"],
            "family": ["primary", "primary", "primary", "primary", "secondary"],
            "label noise": ["0 %", "10 %", "0 %", "10 %", "10 %"],
            "comparison": ["a - b", "a - b", "a - 0.5", "a - 0.5", "a - b"],
            "measure": ["accuracy", "accuracy", "noisy auc", "noisy auc", "feature ratio"],
            "look": ["3 seeds", "before the first", "n/a", "before the first", "before the first"],
            "effect": ["-1.16", "+0.50", "n/a", "+0.020", "-0.2"],
            "95 % interval (seeds + test images)": ["[-1.66, -0.65]", "[-1, +2]", "n/a", "[-0.1, +0.1]", "[-1, 1]"],
            "verdict": ["contradicted", "inconclusive", "n/a", "inconclusive", "supported"],
            "delta": ["1.37", "1.37", "0.050", "0.050", "0.020"],
        }
    )
    heading = gen.margins_text(claims, [])
    assert "1.37 points for accuracy, 0.050 for noisy auc)." in heading and "feature ratio" not in heading
    lines = gen.readme_claims_table(claims, []).splitlines()
    assert lines[0] == "| primary claim | 0 %: look of 3 seeds | 10 %: before the first look |"
    assert lines[2] == ("| A beats B (`a - b`) | **contradicted** -1.16 [-1.66, -0.65] | inconclusive +0.50 [-1, +2] |")
    assert lines[3] == "| A finds noise (`a - 0.5`) | - | inconclusive +0.020 [-0.1, +0.1] |"
    assert len(lines) == 4  # no row for the secondary claim
    assert gen.secondary_text(claims, []) == "Secondary claims decided: A is tighter: supported at 10 %."
    assert gen.secondary_text(claims[claims["family"] == "primary"], []) == "No secondary claim is decided."


def test_the_page_says_why_a_level_has_no_pooled_row_and_reads_one_row_out():
    """unpooled_note: a level with accuracy claims but no pooled row names Levene's p, or that the
    test could not be run; a level in the pooled table gets no sentence. example_row_lines: the
    first primary cell at a reached look that is still open, its numbers as the table has them."""
    import math
    from types import SimpleNamespace

    import pandas as pd

    gen = _generator()
    acc = SimpleNamespace(measure="accuracy")
    results = [
        {"level": 0.1, "claim": acc, "model": object(), "levene_p": 0.0123},
        {"level": 0.3, "claim": acc, "model": object(), "levene_p": math.nan},
        {"level": 0.0, "claim": acc, "model": object(), "levene_p": 0.4},
        {"level": 0.3, "claim": SimpleNamespace(measure="noisy_auc"), "model": None, "levene_p": math.nan},
    ]
    lines = gen.unpooled_note(results, {"0 %"})
    assert lines[0].startswith("No pooled row at 10 %: Levene's test rejected") and "(p = 0.012)" in lines[0]
    assert lines[1].startswith("No pooled row at 30 %: Levene's test could not be run") and lines[2] == ""
    assert gen.unpooled_note(results, {"0 %", "10 %", "30 %"}) == []

    def row(look, verdict, effect):
        return {
            "family": "primary",
            "comparison": "tan - ce",
            "measure": "accuracy",
            "label noise": "10 %",
            "look": look,
            "effect": effect,
            "95 % interval (seeds + test images)": "[-1.00, +0.50]",
            "delta": "1.37",
            "p": "0.250",
            "p, looks": "0.800",
            "p, look + Holm": "1.000",
            "p equivalence (TOST), adjusted": "0.200",
            "verdict": verdict,
            "seeds to decide": "look at 13",
        }

    table = pd.DataFrame(
        [row("before the first", "not judged", "+9.99"), row("8 seeds", "contradicted", "-5.00")]
        + [row("8 seeds", "inconclusive", "-0.39")]
    )
    text = gen.example_row_lines(table)[0]
    assert "the effect is -0.39 points" in text and "look of 8 seeds" in text and "plus or minus 1.37 points" in text
    assert "0.800" in text and "Verdict: inconclusive; seeds to decide: look at 13." in text
    assert "the effect is -5.00" in gen.example_row_lines(table.iloc[:2])[0]  # no open cell: the decided one
    assert gen.example_row_lines(table.iloc[:1]) == []  # below the first look: nothing to read out
    mixed = pd.DataFrame({"primary": ["last", "last", None]})
    assert gen.primary_words(mixed) == (
        "each run's primary epoch (the best-validation epoch for 1 run; the last epoch for 2 runs)"
    )
    assert gen.primary_words(mixed.iloc[:2]) == "each run's primary epoch (the last epoch)"


def test_the_page_names_equivalent_cells_whose_difference_test_also_rejects_zero():
    """small_but_nonzero: a cell decided as equivalent (TOST first) whose adjusted difference p is
    also below 5 % is named with that p and its side; other equivalent or decided cells are not."""
    from types import SimpleNamespace

    gen = _generator()

    def result(text, primary, p_eq, p_diff, sign, level=0.1):
        return {
            "claim": SimpleNamespace(text=text, primary=primary),
            "level": level,
            "test": SimpleNamespace(p=0.01, effect=-0.02 * sign),
            "look": 13,
            "direction": 1,
            "sign": sign,
            "p_equivalence_adjusted": p_eq,
            "p_adjusted": p_diff,
        }

    results = [
        result("AUC above chance", True, 0.001, 0.018, -1),
        result("B helps", False, 0.01, 0.0004, 1, level=0.3),
        result("C helps", True, 0.01, 0.2, 1),  # equivalent, difference not rejected
        result("D helps", True, 0.3, 0.001, -1),  # contradicted, not equivalent
    ]
    text = gen.small_but_nonzero(results)
    assert "AUC above chance at 10 % (p, look + Holm 0.018, on the side against the claim)" in text
    assert "B helps at 30 % (p, looks < 0.001, on the side the claim predicts)" in text
    assert "C helps" not in text and "D helps" not in text
    assert gen.small_but_nonzero(results[2:]) == ""


def test_drift_rows_pair_each_comparison_once_against_a_loop(tmp_path):
    """drift_rows: per pair of methods and level (once, whatever the number of claims on it; a
    claim against a number left out), each side's change over the last 3 epochs and the
    paired difference with its 95 % t interval, against explicit loops over the histories."""
    import statistics
    from types import SimpleNamespace

    import numpy as np
    from scipy import stats

    from tanlib.analysis.claims import Claim

    gen = _generator()
    rng = np.random.default_rng(0)
    paths = {}
    for method in ("tan", "ce"):
        for seed in range(4):
            run = tmp_path / f"{method}-seed{seed}"
            run.mkdir()
            val = np.clip(0.5 + np.cumsum(rng.normal(0.01, 0.01, 6)), 0, 1)
            lines = ["epoch,val_acc"] + [f"{e + 1},{v:.3f}" for e, v in enumerate(val)]
            (run / "history.csv").write_text("\n".join(lines) + "\n")
            paths[method, seed] = str(run)
    pairs = SimpleNamespace(paths=[(paths["tan", s], paths["ce", s]) for s in range(4)])

    def claim(measure, baseline, delta=0.0137):
        return Claim("k", "t", "tan", baseline, measure, 1, (0.1,), delta, "primary")

    results = [
        {"claim": claim("accuracy", "ce"), "diff": pairs, "level": 0.1, "verdict": "supported"},
        {"claim": claim("mean_class_accuracy", "ce"), "diff": pairs, "level": 0.1},  # the same pair: once
        {"claim": claim("noisy_auc", None, 0.05), "diff": SimpleNamespace(paths=[]), "level": 0.1},
    ]
    rows = gen.drift_rows(results)
    assert len(rows) == 1 and rows[0]["comparison"] == "`tan` - `ce`" and rows[0]["seeds"] == 4

    def change(path):
        with open(Path(path) / "history.csv") as f:
            val = [float(line.split(",")[1]) for line in f.read().split("\n")[1:] if line]
        return 100 * val[-1] - 100 * val[-3]

    diffs = [change(paths["tan", s]) - change(paths["ce", s]) for s in range(4)]
    mean = sum(diffs) / 4
    half = stats.t.ppf(0.975, 3) * statistics.stdev(diffs) / 2
    assert abs(rows[0]["_mean"] - mean) < 1e-9
    assert abs(rows[0]["_lo"] - (mean - half)) < 1e-9 and abs(rows[0]["_hi"] - (mean + half)) < 1e-9
    assert abs(float(rows[0]["change, a"]) - sum(change(paths["tan", s]) for s in range(4)) / 4) <= 0.005 + 1e-9
    text = "\n".join(gen.drift_lines(results))
    assert "`tan` - `ce` | 10 % | 4 |" in text and "1.37 points" in text
    excludes = rows[0]["_lo"] > 0 or rows[0]["_hi"] < 0
    assert ("No interval excludes 0." in text) != excludes
    assert rows[0]["_verdicts"] == ["accuracy: supported", "mean class accuracy: n/a"]


def test_drift_lines_name_the_claims_of_a_comparison_whose_interval_excludes_zero(tmp_path):
    """A pair where one side climbs by 2 points at its end and the other falls by 1 on every
    seed: the page names the comparison, its interval and the verdicts of its claims there."""
    from types import SimpleNamespace

    from tanlib.analysis.claims import Claim

    gen = _generator()
    paths = []
    for seed in range(3):
        pair = []
        for method, end in (("tan", [0.80, 0.81, 0.82 + 0.001 * seed]), ("scn", [0.80, 0.795, 0.79])):
            run = tmp_path / f"{method}-seed{seed}"
            run.mkdir()
            rows = ["epoch,val_acc"] + [f"{e + 1},{v}" for e, v in enumerate([0.5] + end)]
            (run / "history.csv").write_text("\n".join(rows) + "\n")
            pair.append(str(run))
        paths.append(tuple(pair))
    claim = Claim("k", "t", "tan", "scn", "accuracy", 1, (0.0,), 0.0137, "primary")
    text = "\n".join(
        gen.drift_lines([{"claim": claim, "diff": SimpleNamespace(paths=paths), "level": 0.0, "verdict": "equivalent"}])
    )
    assert "one side was still moving more when training stopped: `tan` - `scn` at 0 % (+3.10 [" in text
    assert "its claims there: accuracy: equivalent)" in text and "No interval excludes 0." not in text


def test_the_page_says_how_the_verdicts_records_depart_from_todays_preset(tmp_path):
    """``preset_words``: the records of a verdict trained before the preset's last change are
    named by how they depart from it; records of today's preset add nothing."""
    gen = _generator()
    verdict = (
        REPO
        / "results"
        / "verdict"
        / "synthfer-calibrated"
        / "ce-seed0-num_threads=1-synth_label_noise=0.1-synth_noise_model=random"
    )
    today = (
        REPO
        / "results"
        / "calibration"
        / "ce-seed0-ema_decay=0.995-num_threads=1-synth_label_noise=0.1-synth_noise_model=random"
    )
    plain = gen.preset_words("calibrated")
    assert gen.preset_words("calibrated", [today]) == plain
    assert gen.preset_words("calibrated", [verdict, today]) == (
        plain + " They depart from it by `ema_decay=0.0`, trained before the preset adopted `ema_decay=0.995` "
        "(docs/protocol.md)."
    )
    # a departure the verdict asked for (its --set, in each run's job.json) says so
    asked = tmp_path / "run"
    shutil.copytree(today, asked)
    config = json.loads((asked / "config.json").read_text())
    config["lr"] = 0.01
    (asked / "config.json").write_text(json.dumps(config))
    job = json.loads((asked / "job.json").read_text())
    job["overrides"]["lr"] = 0.01
    (asked / "job.json").write_text(json.dumps(job))
    assert gen.departure_words([asked], "calibrated") == "`lr=0.01`, their verdict's `--set`"
    # a data setting asked with --synth (unprefixed in job.json, as in the departure)
    data = json.loads((asked / "data.json").read_text())
    data["noise_model"] = "annotators"
    (asked / "data.json").write_text(json.dumps(data))
    job["synthfer"]["noise_model"] = "annotators"
    (asked / "job.json").write_text(json.dumps(job))
    assert gen.departure_words([asked], "calibrated") == (
        "`lr=0.01`, their verdict's `--set`; `noise_model=\"annotators\"`, their verdict's `--synth`"
    )
    assert gen.departure_words([today], "calibrated") == ""


def test_an_arm_is_judged_on_its_own_for_another_format_or_another_protocol():
    """``arm_kind``: a folder of this verdict (``<verdict>-<suffix>``) in one numeric format is an
    arm when its format is not the judged records' (``float32``) or its protocol is not theirs
    (``ema``: today's preset, where the judged records read ``ema_decay=0.0``); the judged
    records' own format and protocol, two formats, or another verdict's folder are not."""
    import pandas as pd

    from tanlib.report import collect_records

    gen, root, verdict = _generator(), REPO / "results" / "verdict", "synthfer-calibrated"
    judged = collect_records([root / verdict])
    f32, ema = (collect_records([root / f"{verdict}-{arm}"]) for arm in ("float32", "ema"))
    assert gen.protocols(ema["path"]) == {""} and gen.protocols(judged["path"]) == {"ema_decay=0.0"}
    assert gen.arm_kind(f"{verdict}-float32", f32, judged, verdict) == "format"
    assert gen.arm_kind(f"{verdict}-ema", ema, judged, verdict) == "protocol"
    assert gen.arm_kind(f"{verdict}-more", judged.head(7), judged, verdict) is None
    assert gen.arm_kind(f"{verdict}-mixed", pd.concat([ema, f32]), judged, verdict) is None
    assert gen.arm_kind("rafdb-paper-ema", ema, judged, verdict) is None
    arm = gen.Arm(f"{verdict}-ema", ema, [], [], "protocol")
    assert (arm.label, gen.Arm(f"{verdict}-float32", f32, [], [], "format").label) == ("ema", "fp32")


def test_an_arm_names_its_next_batch_and_the_runs_to_the_judged_looks(monkeypatch):
    """``arm_plan_text``: the arm's next batch is ``tan verdict --plan``'s, and the runs to the judged
    records' looks are counted against a loop over the arm's records; ``missing_levels``;
    ``shared_records`` against the index."""
    import pandas as pd

    from tanlib.analysis.verdict import CLAIMS, NOISE_COLUMN, claim_results
    from tanlib.pipeline.verdict import Verdict
    from tanlib.report import collect_records

    gen = _generator()
    rec = collect_records([gen.RESULTS / gen.VERDICT_ROOT / "synthfer-calibrated-ema"])
    arm = gen.Arm("synthfer-calibrated-ema", rec, claim_results(rec, bootstrap=False), [], "protocol")
    # the judged records' looks: the largest look per level (a cell below the first has none)
    judged = [
        {"level": 0.0, "look": 3},
        {"level": 0.1, "look": 8},
        {"level": 0.1, "look": 13},
        {"level": 0.3, "look": None},
    ]
    judged.append({"level": 0.3, "look": 13})
    text = gen.arm_plan_text(arm, judged)
    plan = Verdict(preset="calibrated", arm="ema", results=str(gen.RESULTS), log=lambda *_: None).plan(arm.results)
    assert f"seeds {plan['seeds_done']}..{plan['seeds'] - 1} of the {len(plan['methods'])} methods" in text
    assert f" ({len(plan['missing'])} runs, about " in text
    looks = {}
    for r in judged:
        if r["look"] is not None:
            looks[r["level"]] = max(looks.get(r["level"], 0), r["look"])
    have = set(zip(arm.records["method"], arm.records["seed"].astype(int), arm.records[NOISE_COLUMN].astype(float)))
    lacking = 0
    for level, n in looks.items():
        for m in {m for c in CLAIMS if level in c.levels for m in c.methods}:
            for s in range(n):
                lacking += (m, s, level) not in have
    assert f"to reach the judged records' looks at every level (0 %: {looks[0.0]} seeds, " in text
    assert f"): {lacking} runs, about " in text
    # missing_levels: a level without records is named; records without levels name none
    rec = pd.DataFrame({"method": ["ce"], "seed": [0], NOISE_COLUMN: [0.1]})
    levels = sorted({lv for c in CLAIMS for lv in c.levels})
    assert gen.missing_levels(rec) == [lv for lv in levels if lv != 0.1]
    assert gen.missing_levels(rec.assign(**{NOISE_COLUMN: float("nan")})) == []
    # the calibration's runs recorded in both folders: the same files under results/calibration/
    index = json.loads((gen.RESULTS / "INDEX.json").read_text())["records"]
    for folder in ("synthfer-calibrated-ema", "synthfer-calibrated-float32"):
        both = [
            k
            for k in index
            if k.startswith(f"verdict/{folder}/") and index.get(f"calibration/{k.split('/')[-1]}") == index[k]
        ]
        assert sorted(gen.shared_records(folder)) == sorted(both)
    assert gen.shared_records("synthfer-calibrated-ema") and not gen.shared_records("synthfer-calibrated-float32")
