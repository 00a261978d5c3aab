"""``git_state``: the checkout's commit and whether tanlib/ has uncommitted changes, the one
rule behind env.json's git_commit/git_dirty, tan record's refusal, tan verdict and tan sweep
--record; checked against git itself and in a folder without git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tanlib.engine.rundir import git_state


def _git(root, *args) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_state_is_what_git_says(tmp_path):
    root = tmp_path / "kit"
    (root / "tanlib").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'kit'\n")
    (root / "tanlib" / "a.py").write_text("x = 1\n")
    _git(root, "init", "-q")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = _git(root, "rev-parse", "HEAD")
    assert git_state(root) == (head, False)
    (root / "notes.md").write_text("outside tanlib/: not a code change\n")
    assert git_state(root) == (head, False)
    (root / "tanlib" / "a.py").write_text("x = 2\n")
    assert git_state(root) == (head, True)
    plain = tmp_path / "plain"  # a checkout without git
    plain.mkdir()
    (plain / "pyproject.toml").write_text("[project]\nname = 'kit'\n")
    assert git_state(plain) == (None, None)
    # an installed package (no pyproject.toml beside it) has no checkout, even inside a repository
    (root / "site" / "tanlib").mkdir(parents=True)
    assert git_state(root / "site") == (None, None)


def test_this_checkout_is_the_package_s_not_the_current_directory(tmp_path, monkeypatch):
    """env.json's commit is the kit's, whatever folder the command runs from."""
    kit = Path(__file__).resolve().parents[2]
    if shutil.which("git") is None or not (kit / ".git").exists():
        pytest.skip("the kit is not a git checkout here")
    monkeypatch.chdir(tmp_path)
    assert git_state() == git_state(kit) and git_state()[0] == _git(kit, "rev-parse", "HEAD")
