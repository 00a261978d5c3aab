"""Run records, tables, the paper's numbers and the Markdown report (docs/pipeline.md).

- ``tanlib.report.records``: the finished runs under a set of folders, one flat record
  per run (every number from its ``metrics.json``), the committed run records of
  ``results/``, their index (``results/INDEX.json``: checked before a record is read) and
  the ``tan record`` sub-command.
- ``tanlib.report.tables``: mean ± std over seeds, Markdown and LaTeX rendering, and
  the tables of REPORT.md and the notebooks built from run records.
- ``tanlib.report.paper``: the numbers of Gou et al., ICAC 2023 and of the baselines
  its abstract compares with, and a kit run's numbers set beside them (docs/method.md).
- ``tanlib.report.markdown``: ``write_report``, REPORT.md with its tables and figures.
- ``tanlib.report.rundocs``: ``parse_run_dirs``, the command line of the docs generators that
  read finished run directories (docs/make_isotropy.py, docs/make_attention_scale.py).

Every public name is re-exported here (``from tanlib.report import collect_records``).
Nothing in this package imports ``tanlib.analysis`` at import time: ``tanlib.analysis``
re-exports the summaries, tables and paper numbers from here.
"""

from tanlib.report.markdown import write_report
from tanlib.report.paper import PAPER_RESULTS, paper_comparison, paper_records
from tanlib.report.records import (
    DATA_FILE,
    HISTORY_COLUMNS,
    INDEX_NAME,
    ON_ERROR,
    PREDICTION_COLUMNS,
    RECORD_EXTRAS,
    RECORD_FILES,
    RecordSkipped,
    add_to_index,
    check_record,
    collect_records,
    data_settings,
    find_runs,
    index_file_for,
    read_index,
    read_record_csv,
    read_record_json,
    record_entry,
    register,
    reindex,
    reindex_command,
    run_record,
    save_record,
    verify_index,
)
from tanlib.report.rundocs import parse_run_dirs
from tanlib.report.tables import (
    DEFAULT_SUMMARY_METRICS,
    MEASURES,
    RUN_COLUMNS,
    ablation_groups,
    collapse_lines,
    embedding_state,
    format_mean_std,
    group_columns,
    metrics_table,
    per_class_distances,
    results_tables,
    runs_table,
    summarise_runs,
    to_latex,
    to_markdown,
)

__all__ = [
    "DATA_FILE",
    "DEFAULT_SUMMARY_METRICS",
    "HISTORY_COLUMNS",
    "INDEX_NAME",
    "MEASURES",
    "ON_ERROR",
    "PAPER_RESULTS",
    "PREDICTION_COLUMNS",
    "RECORD_EXTRAS",
    "RECORD_FILES",
    "RUN_COLUMNS",
    "RecordSkipped",
    "ablation_groups",
    "add_to_index",
    "check_record",
    "collapse_lines",
    "collect_records",
    "data_settings",
    "embedding_state",
    "find_runs",
    "format_mean_std",
    "group_columns",
    "index_file_for",
    "metrics_table",
    "paper_comparison",
    "paper_records",
    "parse_run_dirs",
    "per_class_distances",
    "read_index",
    "read_record_csv",
    "read_record_json",
    "record_entry",
    "register",
    "reindex",
    "reindex_command",
    "results_tables",
    "run_record",
    "runs_table",
    "save_record",
    "summarise_runs",
    "to_latex",
    "to_markdown",
    "verify_index",
    "write_report",
]
