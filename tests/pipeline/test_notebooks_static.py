"""The committed notebooks: valid nbformat, no outputs, a flat-JSON parameters cell first."""

from __future__ import annotations

import pytest

from tanlib.pipeline import NOTEBOOKS, notebook_dir, notebook_parameters


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_valid_and_clean(name):
    path = notebook_dir() / f"{name}.ipynb"
    import nbformat  # imported here: a worker that runs no notebook test does not import it

    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has outputs; clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), f"{path.name}: first code cell must be tagged parameters"
    params = notebook_parameters(path)
    assert params, f"{path.name}: empty parameters cell"


def test_notebook_defaults_share_one_smoke_workspace():
    """Run top to bottom in JupyterLab, the defaults chain: 01 and 02 use the same data and
    run folder, 05 reports it; 03 and 04 read the newest finished run under reports/runs,
    which that folder is once 02 has run there (or a `tan run` folder after `make reproduce`)."""
    from tanlib.paths import NEWEST

    p = {name: notebook_parameters(notebook_dir() / f"{name}.ipynb") for name in NOTEBOOKS}
    assert p["01_data"]["root"] == p["02_train"]["root"]
    roots = {p[n]["run_root"] for n in ("01_data", "02_train")}
    assert roots == {p["05_report"]["report_dir"]} == set(p["05_report"]["runs_from"])
    assert roots.pop().startswith("reports/runs/")
    assert p["03_evaluate"]["run_root"] == p["04_embeddings"]["run_root"] == NEWEST
    assert p["04_embeddings"]["methods"] == []  # every finished method of that folder
    assert p["02_train"]["preset"] == "smoke"


def test_notebooks_declare_the_kits_kernel():
    """The kernel `make lab` and `tan run` install (``tanlib``, this environment), so a
    notebook opened in JupyterLab imports tanlib on its first Run All."""
    import nbformat

    from tanlib.pipeline import ensure_kernel
    from tanlib.pipeline.notebooks import KERNEL_NAME

    for name in NOTEBOOKS:
        nb = nbformat.read(str(notebook_dir() / f"{name}.ipynb"), as_version=4)
        assert nb.metadata["kernelspec"]["name"] == KERNEL_NAME, name
    assert ensure_kernel() == KERNEL_NAME
