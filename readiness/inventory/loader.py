"""``load_inventory``: inventory files and directories, then their group_vars and host_vars.

As Ansible: a directory is read in name order, descending into subdirectories and skipping
hidden names, ``group_vars``/``host_vars``/``vars_plugins`` and ignored extensions (``.cfg``,
``.retry``, ``.orig``, ``.md``, ``.txt``, ...). ``.yml``/``.yaml``/``.json`` files are YAML, a
file without extension is YAML when it reads as a YAML mapping and INI otherwise, and every
other file is INI. For each group and host the first of ``<name>``, ``<name>.yml``,
``<name>.yaml``, ``<name>.json`` in ``group_vars``/``host_vars`` is read; a directory is read
whole, in name order, descending into subdirectories.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from readiness.errors import InventoryError

from .builder import Builder
from .hostnames import split_address
from .ini import parse_ini
from .model import PROFILE_KEY, Inventory
from .source import Origin, Where, plain, read_text
from .strict_yaml import key_where, parse_yaml
from .yaml_inventory import parse_yaml_inventory

__all__ = ["is_host_list", "load_inventory"]

# Ansible's default inventory_ignore_extensions, and the names it never reads as inventory.
_IGNORED_SUFFIXES = (
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg",
    ".retry",
)  # fmt: skip
_IGNORED_NAMES = ("group_vars", "host_vars", "vars_plugins")
_VARS_SUFFIXES = ("", ".yml", ".yaml", ".json")
_YAML_SUFFIXES = (".yml", ".yaml", ".json")
_VAULT_HEADER = "$ANSIBLE_VAULT"  # how ansible-vault's files start (ansible's is_encrypted)
_DEPTH_LIMIT = 32  # nested inventory directories followed; stops symlink loops
# What a missing inventory *file* looks like: such a piece keeps "inventory not found"
# rather than becoming a host named 'prod.ini' (a typo must not be audited as a host).
_FILE_LIKE = (*_YAML_SUFFIXES, ".ini", ".cfg", ".toml", ".txt")
_HOST_LIST_MAX = 10_000


def is_host_list(text: str) -> bool:
    """Whether ``-i TEXT`` is Ansible's comma-separated host list (``-i 'web1,web2:2222,'``,
    its host_list plugin): a comma, the whole not a path, and no piece an existing path or
    one that looks like an inventory file (those are sources: ``-i a.ini,b.yml``)."""
    if "," not in text or Path(text).expanduser().exists():
        return False
    pieces = [piece.strip() for piece in text.split(",") if piece.strip()]
    return bool(pieces) and not any(
        "/" in piece or piece.lower().endswith(_FILE_LIKE) or Path(piece).expanduser().exists()
        for piece in pieces
    )


def _load_host_list(builder: Builder, text: str) -> None:
    """As Ansible's host_list plugin: each piece ``host``, ``host:port`` or ``[v6]:port``
    (no ranges), in order, into 'ungrouped'; a host's first port counts. A piece Ansible
    would keep whole as a name (``web[1:2]``, ``deploy@web1``) is refused: readiness would
    log in elsewhere than that name says."""
    where = Where("-i host list")
    pieces = [piece.strip() for piece in text.split(",") if piece.strip()]
    if len(pieces) > _HOST_LIST_MAX:
        raise where.error(f"more than {_HOST_LIST_MAX} hosts in one host list")
    for piece in pieces:
        parsed = split_address(piece)
        if parsed is None or "[" in parsed[0]:
            raise where.error(
                f"{piece!r} is not a host address (NAME, NAME:PORT or [IPv6]:PORT; a host "
                "list expands no ranges): write the hosts in an inventory file"
            )
        address, port = parsed
        if port is not None and (len(port.lstrip("0")) > 5 or int(port) > 65535):
            raise where.error(f"invalid port in host {piece!r}")
        builder.add_host("ungrouped", address, {}, where, int(port) if port else None)


def load_inventory(paths: str | Path | Sequence[str | Path]) -> Inventory:
    """Read one or more inventory files or directories into a single Inventory.

    Later sources add to earlier ones; ``group_vars``/``host_vars`` beside each source are
    applied after every source is read.
    """
    sources = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not sources:
        raise InventoryError("no inventory path given")
    builder = Builder()
    vars_dirs: list[tuple[Path, Origin]] = []
    for source in sources:
        if is_host_list(str(source)):  # no group_vars/host_vars: Ansible skips host lists
            _load_host_list(builder, str(source))
        elif source.is_dir():
            _load_directory(builder, source, 0)
            base = source.resolve()
            vars_dirs.append((base, Origin(base, base)))
        elif source.is_file():
            _load_file(builder, source)
            base = source.resolve().parent
            vars_dirs.append((base, Origin(base, source.resolve())))
        elif source.exists():  # /dev/null, a FIFO: it exists, so "not found" misled
            raise InventoryError("not a regular file or a directory", source=str(source))
        else:
            raise InventoryError("inventory not found", source=str(source))
    for index, (base, origin) in enumerate(vars_dirs):
        _apply_vars_dir(builder, base, origin, index)
    return builder.build(tuple(str(source) for source in sources))


def _load_directory(builder: Builder, directory: Path, depth: int) -> None:
    if depth > _DEPTH_LIMIT:
        raise InventoryError("inventory directories nested too deep", source=str(directory))
    for path in sorted(directory.iterdir(), key=lambda item: item.name):
        if _ignored(path.name):
            continue
        if path.is_dir():
            _load_directory(builder, path, depth + 1)
        elif path.is_file():
            _load_file(builder, path)


def _ignored(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES or name.endswith(_IGNORED_SUFFIXES)


def _load_file(builder: Builder, path: Path) -> None:
    where = Where(str(path))
    suffix = path.suffix.lower()
    if suffix == ".toml":
        raise where.error("TOML inventories are not supported; use YAML or INI")
    text = read_text(path, comments=suffix not in _YAML_SUFFIXES)
    _refuse_vault(text, where)
    if text.startswith("#!"):
        raise where.at(1).error(
            "looks like an executable inventory script; readiness never runs inventory scripts"
        )
    origin = Origin(path.resolve().parent, path.resolve())
    if suffix in _YAML_SUFFIXES or (not path.suffix and _reads_as_yaml_mapping(text)):
        data = parse_yaml(text, where, ansible=True)
        if isinstance(data, Mapping) and "plugin" in data:
            raise where.at(1).error(
                "inventory plugin configuration; readiness reads static inventories only"
            )
        parse_yaml_inventory(builder, data, where, origin)
    else:
        parse_ini(builder, text, where, origin)


def _refuse_vault(text: str, where: Where) -> None:
    """A file encrypted whole with ansible-vault (Ansible decrypts any file that starts with
    the header): read as INI, its lines were hosts named '$ANSIBLE_VAULT;1.1;AES256' and hex."""
    if text.startswith(_VAULT_HEADER):
        raise where.at(1).error(
            "encrypted with Ansible Vault, which readiness never decrypts: keep the hosts "
            "and the variables readiness reads (connection settings, readiness) in a plain file"
        )


def _reads_as_yaml_mapping(text: str) -> bool:
    """Ansible tries YAML first for a file without extension and falls back to INI."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)  # structure only: no values built
    except yaml.YAMLError:
        return False
    return isinstance(node, yaml.MappingNode) and bool(node.value)


def _apply_vars_dir(builder: Builder, base: Path, origin: Origin, source: int) -> None:
    for name in builder.groups:
        for path in _vars_files(base / "group_vars", name):
            values, where = _read_vars_file(path, origin)
            builder.add_group_vars_file(name, values, where, source)
    for name in builder.hosts:
        for path in _vars_files(base / "host_vars", name):
            values, where = _read_vars_file(path, origin)
            builder.add_host_vars_file(name, values, where, source)


def _vars_files(root: Path, name: str) -> list[Path]:
    """The first of name, name.yml, name.yaml, name.json; a directory is read whole."""
    if not root.is_dir() or "/" in name or "\\" in name or name in (".", ".."):
        return []  # never let a host name walk out of host_vars/
    for suffix in _VARS_SUFFIXES:
        path = root / f"{name}{suffix}"
        if path.is_dir():
            return _vars_directory(path, 0)
        if path.exists():
            return [path]
    return []


def _vars_directory(directory: Path, depth: int) -> list[Path]:
    if depth > _DEPTH_LIMIT:
        raise InventoryError("variables directories nested too deep", source=str(directory))
    found: list[Path] = []
    for path in sorted(directory.iterdir(), key=lambda item: item.name):
        if path.name.startswith(".") or path.name.endswith("~"):
            continue
        if path.is_dir() and not path.suffix:
            found += _vars_directory(path, depth + 1)
        elif path.is_file() and path.suffix in _VARS_SUFFIXES:
            found.append(path)
    return found


def _read_vars_file(path: Path, origin: Origin) -> tuple[dict[str, Any], Where]:
    where = Where(str(path))
    text = read_text(path)
    _refuse_vault(text, where)
    data = parse_yaml(text, where, ansible=True)
    if data is None:
        return {}, where
    if not isinstance(data, Mapping):
        raise where.at(1).error("a variables file must hold a mapping of names to values")
    values: dict[str, Any] = plain(data, origin)
    return values, key_where(data, PROFILE_KEY, where)
