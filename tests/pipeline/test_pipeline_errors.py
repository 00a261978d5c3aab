"""Parameter validation before anything runs, and a failing cell's error."""

from __future__ import annotations

import pytest

from tanlib.cli import main
from tanlib.errors import PipelineError
from tanlib.pipeline import (
    NotebookJob,
    notebook_dir,
    notebook_parameters,
    run_notebooks,
    run_pipeline,
    validate_parameters,
)


def _notebook(path, *sources, tag_first=True):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

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
    with pytest.raises(
        PipelineError, match=r"03_evaluate.ipynb: parameter n_mistakes='many' has type str; expected int"
    ):
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


def test_failing_cell_names_notebook_and_cell_and_keeps_output(tmp_path, capfd):
    """... and the kernel is quiet: no transport warning (IPC sockets in a private folder,
    removed after, none in the working directory), while what the kernel itself writes to
    stderr still shows."""
    src = _notebook(
        tmp_path / "boom.ipynb",
        "factor = 2",
        "value = factor * 21\nimport os\nos.write(2, b'the kernel wrote this to stderr\\n')",
        "raise ValueError(f'boom {value}')",
        "print('never')",
    )
    job = NotebookJob("boom", {"factor": 2}, "boom-run.ipynb", source=src)
    with pytest.raises(PipelineError) as info:
        run_notebooks([job], tmp_path / "out", cwd=tmp_path)
    err = capfd.readouterr().err
    assert "without encryption" not in err and "IPKernelApp" not in err, err
    assert "the kernel wrote this to stderr" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boom.ipynb", "out"]  # no socket files left in cwd
    message = str(info.value)
    assert "notebook boom failed in code cell 2" in message
    assert "raise ValueError" in message and "ValueError: boom 42" in message
    kept = tmp_path / "out" / "boom-run.ipynb"
    assert str(kept) in message and kept.is_file()
    import nbformat

    executed = nbformat.read(str(kept), as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors and errors[0]["evalue"] == "boom 42"


def test_kernel_transport_is_ipc_in_a_private_folder_removed_after():
    import os
    import stat

    from tanlib.pipeline.notebooks import kernel_transport

    with kernel_transport() as kwargs:
        manager = kwargs["config"]["KernelManager"]
        folder = os.path.dirname(manager["ip"])
        assert manager["transport"] == "ipc" and os.path.isdir(folder)
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700  # only this user reaches the sockets
    assert not os.path.exists(folder)


def test_stage_runs_notebooks_at_once_with_split_threads(tmp_path, monkeypatch):
    """Jobs of one stage run at the same time (each sees the other's marker file before it
    finishes), each kernel gets its share of the cores, later stages wait for earlier
    ones, records come back in job order, and a failure in a parallel stage stops the
    pipeline while the other notebook of the stage still completes."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    meet = (
        "import os, pathlib, time\n"
        "pathlib.Path(f'{me}.started').write_text(os.environ.get('OMP_NUM_THREADS', 'unset'))\n"
        "deadline = time.time() + 60\n"
        "while not pathlib.Path(f'{other}.started').exists() and time.time() < deadline:\n"
        "    time.sleep(0.05)\n"
        "assert pathlib.Path(f'{other}.started').exists(), 'the other notebook never ran alongside'"
    )
    src = _notebook(tmp_path / "meet.ipynb", "me = 'a'\nother = 'b'", meet)
    after = _notebook(
        tmp_path / "after.ipynb",
        "x = 0",
        "import pathlib\nassert pathlib.Path('a.started').exists() and pathlib.Path('b.started').exists()",
    )
    jobs = [
        NotebookJob("meet", {"me": "a", "other": "b"}, "a.ipynb", source=src, stage=0),
        NotebookJob("meet", {"me": "b", "other": "a"}, "b.ipynb", source=src, stage=0),
        NotebookJob("after", {}, "after.ipynb", source=after, stage=1),
    ]
    records = run_notebooks(jobs, tmp_path / "out", cwd=tmp_path, workers=2)
    assert [r["output"].rsplit("/", 1)[-1] for r in records] == ["a.ipynb", "b.ipynb", "after.ipynb"]
    assert (tmp_path / "a.started").read_text() == "2" and (tmp_path / "b.started").read_text() == "2"

    boom = _notebook(tmp_path / "boom.ipynb", "x = 0", "raise RuntimeError('stage boom')")
    ok = _notebook(
        tmp_path / "ok.ipynb", "x = 0", "import pathlib, time\ntime.sleep(1)\npathlib.Path('ok.done').touch()"
    )
    never = _notebook(tmp_path / "never.ipynb", "x = 0", "import pathlib\npathlib.Path('never.done').touch()")
    jobs = [
        NotebookJob("boom", {}, "boom.ipynb", source=boom, stage=0),
        NotebookJob("ok", {}, "ok.ipynb", source=ok, stage=0),
        NotebookJob("never", {}, "never.ipynb", source=never, stage=1),
    ]
    with pytest.raises(PipelineError, match="notebook boom failed.*stage boom"):
        run_notebooks(jobs, tmp_path / "out2", cwd=tmp_path, workers=2)
    assert (tmp_path / "ok.done").exists() and not (tmp_path / "never.done").exists()
    assert (tmp_path / "out2" / "boom.ipynb").is_file()
    with pytest.raises(Exception, match="workers must be an int >= 1"):
        run_notebooks(jobs, tmp_path / "out3", cwd=tmp_path, workers=0)


def test_kernel_is_shut_down_without_an_interrupt(tmp_path):
    """jupyter_client interrupts a kernel (SIGINT) before shutting it down; when the signal
    lands inside a message handler ipykernel logs ``[IPKernelApp] ERROR | KeyboardInterrupt
    caught in kernel.`` under the pipeline's own lines. The pipeline's kernels
    (``execute_notebook``) are shut down without it; plain papermill, the control, sends it."""
    import papermill

    from tanlib.pipeline.notebooks import ensure_kernel, execute_notebook, kernel_transport

    mark = tmp_path / "sigint.txt"
    src = _notebook(
        tmp_path / "sig.ipynb",
        "x = 1",
        # ipykernel swaps SIGINT handlers around every message it handles; keep this one
        "import signal\nkernel = get_ipython().kernel\n"
        "kernel.pre_handler_hook = kernel.post_handler_hook = lambda: None\n"
        f"signal.signal(signal.SIGINT, lambda *a: open({str(mark)!r}, 'a').write('int'))",
    )
    kernel = ensure_kernel()
    with kernel_transport() as transport:
        papermill.execute_notebook(
            str(src), str(tmp_path / "plain.ipynb"), kernel_name=kernel, progress_bar=False, **transport
        )
    assert mark.exists(), "control: plain papermill interrupts the kernel at shutdown"
    mark.unlink()
    job = NotebookJob("sig", {"x": 1}, "sig-run.ipynb", source=src)
    execute_notebook(job, tmp_path / "out", kernel, cwd=tmp_path, log=lambda *_: None)
    assert (tmp_path / "out" / "sig-run.ipynb").is_file() and not mark.exists()
