"""Helpers shared by the inventory tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from readiness.inventory import Host


def write(base: Path, name: str, text: str) -> Path:
    path = base / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def names(hosts: list[Host]) -> list[str]:
    return [host.name for host in hosts]
