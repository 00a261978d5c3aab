"""``git_state``: the checkout's commit and whether tanlib/ has uncommitted changes, the one
rule behind env.json's git_commit/git_dirty, tan record's refusal, tan verdict and tan sweep
--record; checked against git itself and in a folder without git."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tanlib import paths
from tanlib.engine.rundir import git_state


def _git(root, *args) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_state_is_what_git_says(tmp_path, monkeypatch):
    root = tmp_path / "kit"
    (root / "tanlib").mkdir(parents=True)
    (root / "tanlib" / "a.py").write_text("x = 1\n")
    _git(root, "init", "-q")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    monkeypatch.setattr(paths, "project_root", lambda: root)
    head = _git(root, "rev-parse", "HEAD")
    assert git_state() == (head, False)
    (root / "notes.md").write_text("outside tanlib/: not a code change\n")
    assert git_state() == (head, False)
    (root / "tanlib" / "a.py").write_text("x = 2\n")
    assert git_state() == (head, True)
    (tmp_path / "plain").mkdir()
    monkeypatch.setattr(paths, "project_root", lambda: tmp_path / "plain")  # no repository
    assert git_state() == (None, None)
