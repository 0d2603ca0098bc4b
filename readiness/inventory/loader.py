"""``load_inventory``: inventory files and directories, then their group_vars and host_vars."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from readiness.errors import InventoryError

from .builder import Builder, check_profile
from .ini import parse_ini
from .model import Inventory
from .source import Origin, Where, plain, read_text
from .strict_yaml import parse_yaml
from .yaml_inventory import parse_yaml_inventory

__all__ = ["load_inventory"]

_IGNORED_SUFFIXES = (
    "~", ".md", ".retry", ".txt", ".rst", ".orig", ".bak", ".swp", ".pyc", ".pyo", ".rpm",
)  # fmt: skip
_VARS_SUFFIXES = ("", ".yml", ".yaml", ".json")
_YAML_SUFFIXES = (".yml", ".yaml", ".json")


def load_inventory(paths: str | Path | Sequence[str | Path]) -> Inventory:
    """Read one or more inventory files or directories into a single Inventory.

    Later sources add to earlier ones; ``group_vars``/``host_vars`` beside each source are
    applied after every source is read.
    """
    sources = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not sources:
        raise InventoryError("no inventory path given")
    builder = Builder()
    vars_dirs: dict[Path, Origin] = {}
    for source in sources:
        _load_source(builder, source, vars_dirs)
    for base, origin in vars_dirs.items():
        _apply_vars_dir(builder, base, origin)
    return builder.build(tuple(str(source) for source in sources))


def _load_source(builder: Builder, source: Path, vars_dirs: dict[Path, Origin]) -> None:
    if source.is_dir():
        for path in sorted(source.iterdir()):
            if path.is_file() and not _ignored(path.name):
                _load_file(builder, path)
        vars_dirs.setdefault(source.resolve(), Origin(source.resolve(), source.resolve()))
    elif source.is_file():
        _load_file(builder, source)
        base = source.resolve().parent
        vars_dirs.setdefault(base, Origin(base, source.resolve()))
    else:
        raise InventoryError("inventory not found", source=str(source))


def _ignored(name: str) -> bool:
    return name.startswith(".") or name.endswith(_IGNORED_SUFFIXES)


def _load_file(builder: Builder, path: Path) -> None:
    text = read_text(path)
    where = Where(str(path))
    if text.startswith("#!"):
        raise where.at(1).error(
            "looks like an executable inventory script; readiness never runs inventory scripts"
        )
    origin = Origin(path.resolve().parent, path.resolve())
    if _is_yaml(path, text):
        parse_yaml_inventory(builder, parse_yaml(text, where), where, origin)
    else:
        parse_ini(builder, text, where, origin)


def _is_yaml(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in _YAML_SUFFIXES:
        return True
    if suffix in (".ini", ".cfg"):
        return False
    for line in text.splitlines():
        stripped = re.sub(r"\s+#.*$", "", line).strip()
        if stripped and not stripped.startswith(("#", ";")):
            return stripped.startswith(("---", "{")) or (
                stripped.endswith(":") and not stripped.startswith("[")
            )
    return False


def _apply_vars_dir(builder: Builder, base: Path, origin: Origin) -> None:
    for name in builder.groups:
        for path in _vars_files(base / "group_vars", name):
            builder.add_group_vars(name, _read_vars_file(path, origin), Where(str(path)))
    for name, host in builder.hosts.items():
        for path in _vars_files(base / "host_vars", name):
            values = _read_vars_file(path, origin)
            check_profile(values, Where(str(path)))
            host.layers.append(values)


def _vars_files(root: Path, name: str) -> list[Path]:
    if "/" in name or "\\" in name or name in (".", ".."):
        return []  # never let a host name walk out of host_vars/
    found = [root / f"{name}{suffix}" for suffix in _VARS_SUFFIXES]
    files = [path for path in found if path.is_file()]
    folder = root / name
    if folder.is_dir():
        files += sorted(
            path
            for path in folder.iterdir()
            if path.is_file() and path.suffix in _VARS_SUFFIXES and not _ignored(path.name)
        )
    return files


def _read_vars_file(path: Path, origin: Origin) -> dict[str, Any]:
    where = Where(str(path))
    data = parse_yaml(read_text(path), where)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise where.at(1).error("a variables file must hold a mapping of names to values")
    values: dict[str, Any] = plain(data, origin)
    return values
