"""REPORT.md: the Markdown report of a pipeline run or a sweep.

What this module owns: ``write_report``, which writes ``REPORT.md`` in a folder with the
per-run table (``tanlib.report.tables.runs_table``, every number from the runs'
``metrics.json``), the claims, summary and paper-comparison tables written by
``05_report`` (read from their files under ``tables/``), and every figure of the run
tree (``_figures``: data first, then each run's, embeddings, report) copied beside it
and embedded with relative links.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..atomicio import atomic_write_text
from .records import collect_records
from .tables import collapse_lines, runs_table, to_markdown

_FIGURE_ORDER = (
    "data_",
    "learning_curves",
    "confusion",
    "per_class",
    "attention",
    "hardest",
    "gradcam",
    "embeddings_",
    "ablation",
    "claims",
)


def _figures(folder: Path) -> list[Path]:
    """PNG figures under ``folder``: data first, then each run's, embeddings, report."""

    def key(path: Path):
        rank = next((i for i, p in enumerate(_FIGURE_ORDER) if path.name.startswith(p)), len(_FIGURE_ORDER))
        group = 1 if "runs" in path.relative_to(folder).parts else (0 if rank == 0 else 2)
        return (group, str(path.parent), rank, path.name)

    return sorted(folder.rglob("*.png"), key=key)


def _shown_path(path: Path) -> str:
    """A path as a report shows it: relative to the project root when inside it, so a
    committed report does not name the machine it was written on."""
    from ..paths import project_root

    try:
        return Path(path).resolve().relative_to(project_root()).as_posix()
    except ValueError:
        return str(path)


def _claims_table(path: Path, records) -> str:
    """The claims table, or one sentence when nothing was judged (an empty table: every
    run a variant of its method, e.g. a smoke run at another image size)."""
    text = path.read_text().strip()
    if sum(1 for line in text.splitlines() if line.strip("|-: ")) >= 2:  # a header and a row
        return text
    variants = sorted({v for v in records.get("variant", []) if isinstance(v, str) and v})
    why = f" (these runs depart from their presets: {'; '.join(variants)})" if variants else ""
    return f"No claim was judged: no claim has runs of the methods' presets to compare{why}."


def write_report(
    out_dir: str | Path,
    run_root: str | Path,
    runs_from=None,
    replace: bool = False,
    title: str | None = None,
    on_error: str = "raise",
) -> Path:
    """Write ``out_dir/REPORT.md`` for the runs under ``runs_from`` (default: ``run_root``).

    ``run_root`` is the folder whose ``tables/`` and figures the report shows: a
    pipeline run folder, or a sweep's ``report/`` folder. Every number of the per-run
    table comes from the runs' ``metrics.json``; the summary and paper-comparison
    tables are read from ``run_root/tables/`` (written by ``05_report``). Figures (PNG)
    under ``run_root`` are copied to ``out_dir/figures/`` (unless ``out_dir`` is
    ``run_root``) and embedded with relative links. ``replace`` empties ``out_dir``
    first (used for ``reports/latest``). A damaged run record raises ``RecordError``;
    with ``on_error="skip"`` it is left out and the report lists it and why
    (``collect_records``).
    """
    out_dir, run_root = Path(out_dir), Path(run_root)
    runs_from = [Path(p) for p in (runs_from or [run_root])]
    records = collect_records(runs_from, on_error=on_error)
    if replace and out_dir.exists() and out_dir.resolve() != run_root.resolve():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = run_root / "tables"
    lines = [f"# {title or 'TAN reproducibility kit: report'}", ""]
    pipeline = run_root / "pipeline.json"
    if pipeline.is_file():
        info = json.loads(pipeline.read_text())
        lines += [
            f"Pipeline run `{info.get('run_id')}`: preset `{info.get('preset')}`, dataset "
            f"`{info.get('dataset')}`, methods {', '.join(info.get('methods', []))}, seed {info.get('seed')}.",
            "",
        ]
    datasets = sorted(set(records["dataset"].astype(str)))
    lines += [
        f"Runs: {len(records)} from {', '.join('`' + _shown_path(p) + '`' for p in runs_from)}. "
        f"Datasets: {', '.join(datasets)}. Accuracies are on the test split; 'best-val' uses the epoch "
        "with the best validation accuracy, 'last' the last epoch.",
        "",
    ]
    if "synthfer" in datasets:
        lines += [
            "> SynthFER is the kit's synthetic dataset: its numbers compare methods with each other and "
            "are **not** RAF-DB or FERPlus numbers.",
            "",
        ]
    lines += [
        "## Runs (from each run's metrics.json)",
        "",
        "Geometry: intra/inter of the L2-normalised backbone features h compares every method in one "
        "space; that of the embedding e exists only where a metric term trained it.",
        "",
        to_markdown(runs_table(records)),
        "",
    ]
    lines += collapse_lines(records)
    skipped = records.attrs.get("skipped") or []
    if skipped:
        lines += [
            f"## Left out: {len(skipped)} damaged run record(s)",
            "",
            'The caller asked to go on without them (`on_error="skip"`): no table of this report reads them.',
            "",
            *[f"- `{s['record']}`: {s['reason']}" for s in skipped],
            "",
        ]
    if (tables / "claims.md").is_file():
        from ..analysis.verdict import VERDICT_RULE  # on use: tanlib.analysis imports tanlib.report

        lines += [
            "## The paper's claims",
            "",
            "One row per pre-registered claim (`claims.yaml`) and label-noise level: the effect of a mixed "
            "model of the seeds (same seed: same data order and initial weights), its 95 % interval with the "
            "test images' sampling added, the hierarchical bootstrap over seeds and test images, p-values "
            "adjusted for the claim's look (tanlib.analysis.sequential) and Holm-adjusted over the primary "
            "family, and the equivalence test against the claim's delta. The "
            "verdict: " + VERDICT_RULE,
            "",
            _claims_table(tables / "claims.md", records),
            "",
        ]
    for name, heading in (
        ("results.md", "Results: mean ± std over seeds"),
        ("paper_comparison.md", "Comparison with the paper's reported numbers"),
        ("per_class_distances.md", "Per-class embedding distances"),
    ):
        if (tables / name).is_file():
            lines += [f"## {heading}", "", (tables / name).read_text().strip(), ""]
    figures = _figures(run_root)
    if figures:
        lines += ["## Figures", ""]
        copy = out_dir.resolve() != run_root.resolve()
        for fig in figures:
            rel = fig.relative_to(run_root)
            short = Path(*[p for p in rel.parts if p != "figures"])
            if copy:
                target = out_dir / "figures" / short
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(fig, target)
                pdf = fig.with_suffix(".pdf")
                if pdf.is_file():
                    shutil.copy2(pdf, target.with_suffix(".pdf"))
                link = (Path("figures") / short).as_posix()
            else:
                link = rel.as_posix()
            caption = " / ".join(p for p in short.with_suffix("").parts if p != "runs")
            lines += [f"### {caption}", "", f"![{caption}]({link})", ""]
    report = out_dir / "REPORT.md"
    atomic_write_text(report, "\n".join(lines).rstrip() + "\n")
    return report


__all__ = ["write_report"]
