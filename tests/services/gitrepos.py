"""Real git repositories for tests: a pinned identity, no system config, bounded commands."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

__all__ = ["GIT_ENV", "git", "make_repo"]

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    res = subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
        env=GIT_ENV,
    )
    return res.stdout


def make_repo(path: Path, commits: int, files: Mapping[str, str] | None = None) -> Path:
    """``git init`` on branch main, ``files`` written once, then ``commits`` README revisions."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for name, text in (files or {}).items():
        (path / name).write_text(text)
    for i in range(commits):
        (path / "README.md").write_text(f"revision {i}\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", f"revision {i}")
    return path
