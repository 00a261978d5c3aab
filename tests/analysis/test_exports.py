"""The packages that import their names on first use (``tanlib.lazy``): every exported
name resolves to the object of the module that defines it, an unknown name is an
AttributeError, and the processes that only orchestrate or read records (``tan run``, the
01_data and 05_report kernels) do not import torch."""

import importlib
import subprocess
import sys

import pytest

LAZY = ["tanlib.analysis", "tanlib.data", "tanlib.engine"]


@pytest.mark.parametrize("package", LAZY)
def test_every_export_is_the_defining_modules_object(package):
    pkg = importlib.import_module(package)
    assert pkg.__all__ == sorted(pkg._EXPORTS)
    for name, module in pkg._EXPORTS.items():
        assert getattr(pkg, name) is getattr(importlib.import_module(module), name), name
    assert set(pkg.__all__) <= set(dir(pkg))


@pytest.mark.parametrize("package", LAZY)
def test_unknown_name_is_an_attribute_error(package):
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nonexistent'"):
        importlib.import_module(package).nonexistent  # noqa: B018


def test_orchestration_and_records_do_not_import_torch():
    """In a fresh interpreter, ``tan run``'s modules and the record readers load no torch."""
    code = (
        "import sys\n"
        "import tanlib.cli, tanlib.pipeline, tanlib.report, tanlib.analysis.figures\n"
        "from tanlib.data import build_manifest, check_dataset, decode_images\n"
        "from tanlib.engine import Run\n"
        "print(sorted(m for m in ('torch', 'scipy', 'sklearn', 'pytorch_metric_learning') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_submodule_imported_first_does_not_hide_its_namesake(tmp_path, monkeypatch):
    """``tanlib.engine.train`` (a module) defines ``train`` (the function the package
    exports): importing the module first must not make ``from tanlib.engine import train``
    return the module. Checked on a fresh package of the same shape."""
    pkg = tmp_path / "lazypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from tanlib.lazy import lazy_exports\n"
        "_EXPORTS = {'train': 'lazypkg.train'}\n"
        "__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)\n"
    )
    (pkg / "train.py").write_text("def train():\n    return 'trained'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("lazypkg.train")  # the import system binds lazypkg.train = <module>
    from lazypkg import train

    assert train() == "trained"
    monkeypatch.delitem(sys.modules, "lazypkg")
    monkeypatch.delitem(sys.modules, "lazypkg.train")
