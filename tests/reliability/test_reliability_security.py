"""Security: no code execution on load, no eval of parameters, paths stay inside the
dataset root, no network connection at run time."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pandas as pd
import pytest
from reliafix import NetworkGuard

import tanlib
from tanlib.cli import main
from tanlib.data import Manifest
from tanlib.errors import CheckpointError, DataError

PACKAGE = Path(tanlib.__file__).resolve().parent


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else (f.attr if isinstance(f, ast.Attribute) else "")
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            yield node, owner, name


def _kw(node, key):
    for k in node.keywords:
        if k.arg == key:
            return k.value
    return None


def test_source_has_no_eval_and_only_safe_loaders(case):
    case(
        "S1",
        "security",
        "AST scan of every tanlib/*.py for eval/exec/compile/__import__, pickle.load(s), "
        "torch.load without weights_only=True, yaml.load, np.load(allow_pickle=True), shell=True",
        "none found (parameters are parsed with json/ast.literal_eval only)",
    )
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    bad = []
    torch_loads = 0
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, owner, name in _calls(tree):
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            if isinstance(node.func, ast.Name) and name in ("eval", "exec", "compile", "__import__"):  # not x().eval()
                bad.append(f"{where}: {name}()")
            if owner in ("pickle", "cPickle", "dill", "marshal") and name in ("load", "loads"):
                bad.append(f"{where}: {owner}.{name}()")
            if owner == "torch" and name == "load":
                torch_loads += 1
                wo = _kw(node, "weights_only")
                if not (isinstance(wo, ast.Constant) and wo.value is True):
                    bad.append(f"{where}: torch.load without weights_only=True")
            if owner == "yaml" and name in ("load", "unsafe_load", "full_load"):
                bad.append(f"{where}: yaml.{name}()")
            if owner == "np" and name == "load":
                ap = _kw(node, "allow_pickle")
                if ap is not None and not (isinstance(ap, ast.Constant) and ap.value is False):
                    bad.append(f"{where}: np.load(allow_pickle=...)")
            sh = _kw(node, "shell")
            if sh is not None and not (isinstance(sh, ast.Constant) and sh.value is False):
                bad.append(f"{where}: shell=True")
    assert bad == []
    assert torch_loads >= 1  # the one safe loader (models.pretrained.safe_torch_load) is really seen by the scan
    case.observed(f"{len(files)} files scanned, {torch_loads} torch.load calls all weights_only=True, 0 findings")


def test_parameters_are_never_evaluated(case, synth_root, tmp_path, capsys):
    case(
        "S2",
        "security",
        "`tan train --set lr=__import__('os').getcwd()` and a notebook parameter `-p n_mistakes=__import__('os')`",
        "kept as plain strings and refused by type: ConfigError exit 2 / PipelineError exit 7",
    )
    rc = main(
        [
            "train",
            "--preset",
            "smoke",
            "--root",
            str(synth_root),
            "--out",
            str(tmp_path / "r"),
            "--set",
            "lr=__import__('os').getcwd()",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "has type str; expected float" in err
    rc2 = main(["run", "--preset", "smoke", "--out", str(tmp_path / "runs"), "-p", "n_mistakes=__import__('os')"])
    err2 = capsys.readouterr().err
    assert rc2 == 7 and "has type str; expected int" in err2
    case.observed(f"exit {rc}: {err.strip().splitlines()[0][:120]}; exit {rc2}")


def test_manifest_paths_stay_inside_the_dataset_root(case, finished_run, tmp_path, capsys):
    case(
        "S3",
        "security",
        "a run folder's manifest.csv edited so that one image path points outside the "
        "dataset root (/etc/hostname); `tan evaluate`",
        "DataError, exit 3, naming manifest.csv, the line and the path; the file is never opened",
    )
    src, _ = finished_run
    run = tmp_path / "run"
    shutil.copytree(src, run, ignore=shutil.ignore_patterns("last.pt"))
    frame = pd.read_csv(run / "manifest.csv", keep_default_na=False, na_values=[""])
    row = int(frame.index[frame["split"] == "test"][0])
    frame.loc[row, "path"] = "/etc/hostname"
    frame.to_csv(run / "manifest.csv", index=False)
    with pytest.raises(DataError, match="outside the dataset root"):
        Manifest.load(run / "manifest.csv")
    rc = main(["evaluate", str(run)])
    err = capsys.readouterr().err
    assert rc == 3 and f"manifest.csv:{row + 2}" in err and "/etc/hostname" in err
    case.observed(f"exit {rc}: {err.strip().splitlines()[0][-160:]}")


def test_no_network_connection_at_run_time(case, finished_run):
    case(
        "S4",
        "security",
        "a full `train` + test evaluation (tanlib.engine.train) with socket connect, "
        "create_connection and getaddrinfo replaced by functions that record and refuse",
        "the run finishes; zero connection or name-lookup attempts",
    )
    out, attempts = finished_run
    assert (out / "metrics.json").is_file() and (out / "predictions.csv").is_file()
    assert attempts == []
    case.observed("run finished; 0 connection attempts")


def test_imagenet_download_is_the_only_network_use_and_fails_clearly_offline(
    case, small, tmp_path, monkeypatch, capsys
):
    case(
        "S5",
        "security",
        "`tan train --set pretrained=imagenet` with an empty torch hub cache and the network refused",
        "the opt-in download is attempted (recorded) and fails as CheckpointError, exit 4, with offline instructions",
    )
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    cfg = tmp_path / "config.json"
    small("ce", epochs=1).save(cfg)
    with NetworkGuard() as guard:
        rc = main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--set", "pretrained=imagenet"])
    err = capsys.readouterr().err
    assert rc == CheckpointError.exit_code and "Offline, download https://" in err
    assert guard.attempts, "the download should have been attempted"
    case.observed(f"exit {rc}; {len(guard.attempts)} refused attempt(s); {err.strip().splitlines()[0][:140]}")
