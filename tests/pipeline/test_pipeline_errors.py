"""Parameter validation before anything runs, and a failing cell's error."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tanlib.cli import main
from tanlib.errors import PipelineError
from tanlib.pipeline import (NotebookJob, notebook_parameters, notebook_dir, run_notebooks, run_pipeline,
                             validate_parameters)


def _notebook(path, *sources, tag_first=True):
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    for i, src in enumerate(sources):
        cell = new_code_cell(src)
        if i == 0 and tag_first:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


def test_unknown_parameter_names_notebook_and_parameter():
    nb = notebook_dir() / "03_evaluate.ipynb"
    with pytest.raises(PipelineError, match=r"03_evaluate.ipynb: unknown parameter 'n_mistake'.*n_mistakes"):
        validate_parameters(nb, {"n_mistake": 3})


def test_wrong_type_names_expected_type():
    nb = notebook_dir() / "03_evaluate.ipynb"
    with pytest.raises(PipelineError, match=r"03_evaluate.ipynb: parameter n_mistakes='many' has type str; expected int"):
        validate_parameters(nb, {"n_mistakes": "many"})
    with pytest.raises(PipelineError, match="expected int"):
        validate_parameters(nb, {"n_mistakes": True})  # a bool is not an int here
    assert validate_parameters(notebook_dir() / "01_data.ipynb", {"synth_label_noise": 0}) == {"synth_label_noise": 0.0}


def test_run_pipeline_validates_before_running(tmp_path):
    with pytest.raises(PipelineError, match="unknown parameter 'bogus'"):
        run_pipeline(preset="smoke", out=str(tmp_path / "runs"), run_id="x", params={"bogus": 1})
    with pytest.raises(PipelineError, match=r"02_train.ipynb: parameter overrides=\[1\] has type list; expected dict"):
        run_pipeline(preset="smoke", out=str(tmp_path / "runs"), run_id="x", params={"overrides": [1]})
    with pytest.raises(PipelineError, match="set by the pipeline"):
        run_pipeline(preset="smoke", out=str(tmp_path / "runs"), run_id="x", params={"run_root": "/elsewhere"})
    assert not (tmp_path / "runs").exists(), "nothing may run or be created before validation passes"


def test_cli_reports_bad_parameter_with_exit_code(tmp_path, capsys):
    code = main(["run", "--preset", "smoke", "--out", str(tmp_path), "--run-id", "x", "-p", "n_mistakes=many"])
    assert code == PipelineError.exit_code
    err = capsys.readouterr().err
    assert "03_evaluate.ipynb" in err and "n_mistakes" in err and "expected int" in err


def test_parameters_cell_must_be_flat_json(tmp_path):
    bad = _notebook(tmp_path / "bad.ipynb", "import os\nx = 1")
    with pytest.raises(PipelineError, match=r"bad.ipynb, parameters cell line 1: only 'name = literal'"):
        notebook_parameters(bad)
    untagged = _notebook(tmp_path / "untagged.ipynb", "x = 1", tag_first=False)
    with pytest.raises(PipelineError, match="no code cell is tagged 'parameters'"):
        notebook_parameters(untagged)
    expr = _notebook(tmp_path / "expr.ipynb", "x = 2 ** 3")
    with pytest.raises(PipelineError, match="x must be a literal"):
        notebook_parameters(expr)


def test_failing_cell_names_notebook_and_cell_and_keeps_output(tmp_path):
    src = _notebook(tmp_path / "boom.ipynb", "factor = 2", "value = factor * 21", "raise ValueError(f'boom {value}')",
                    "print('never')")
    job = NotebookJob("boom", {"factor": 2}, "boom-run.ipynb", source=src)
    with pytest.raises(PipelineError) as info:
        run_notebooks([job], tmp_path / "out", cwd=tmp_path)
    message = str(info.value)
    assert "notebook boom failed in code cell 2" in message
    assert "raise ValueError" in message and "ValueError: boom 42" in message
    kept = tmp_path / "out" / "boom-run.ipynb"
    assert str(kept) in message and kept.is_file()
    executed = nbformat.read(str(kept), as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors and errors[0]["evalue"] == "boom 42"
