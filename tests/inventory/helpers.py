"""Helpers shared by the inventory tests."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

from readiness.inventory import Host, Inventory, load_inventory


def write(base: Path, name: str, text: str) -> Path:
    path = base / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def names(hosts: list[Host]) -> list[str]:
    return [host.name for host in hosts]


def load_text(base: Path, name: str, text: str) -> Inventory:
    """The inventory of one file ``name`` holding ``text`` (dedented) under ``base``."""
    return load_inventory(write(base, name, text))


def write_files(base: Path, files: Mapping[str, str]) -> None:
    """Each ``relative path: text`` under ``base`` (an inventory with its vars directories)."""
    for name, text in files.items():
        write(base, name, text)
