"""The commands a user types, run as subprocesses from this interpreter's environment, and
the one-host inventory most command-line tests audit (the local host on an app tree)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

__all__ = ["BIN", "ROOT", "local_inventory", "run_cli"]

BIN = Path(sys.executable).parent  # readiness and invoke of this environment
ROOT = Path(__file__).resolve().parents[2]  # the repository: its tasks.py and ./inventories


def local_inventory(path: Path, app_root: Path | str) -> Path:
    """An inventory of one host, ``local`` (``ansible_connection: local``) on ``app_root``."""
    host = {"ansible_connection": "local", "readiness": {"app_root": str(app_root)}}
    path.write_text(yaml.safe_dump({"all": {"hosts": {"local": host}}}), encoding="utf-8")
    return path


def run_cli(
    *args: str,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    tool: str = "readiness",
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``readiness ARGS`` (or ``invoke ARGS``) as a user runs it: stdin closed, text output,
    any exit code returned (``env``: the whole environment, None: this one)."""
    return subprocess.run(
        [str(BIN / tool), *args],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
