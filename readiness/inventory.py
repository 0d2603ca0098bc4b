"""Ansible-compatible inventories: YAML/INI parsing, variable precedence and host patterns.

Everything here is pure data. Nothing opens a connection or runs a command, and no value is
ever evaluated: ``{{ inventory_dir }}`` and ``{{ inventory_file }}`` are the only substitutions,
and every other ``{{ ... }}`` is kept as written. See ``docs/inventories.md``.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from readiness.errors import InventoryError

__all__ = ["LOCAL", "Group", "Host", "Inventory", "load_inventory", "local_host"]

LOCAL = "local"
"""The host name that always resolves: to the inventory's ``local`` host, else ``local_host()``."""

_ALIAS_BUDGET = 100  # YAML alias expansions allowed per file; stops "billion laughs" documents
_RANGE_BUDGET = 10_000  # hosts one name like web[0001:9999] may expand to
_LITERAL_MAX = 65_536  # longest INI value handed to ast.literal_eval
_IMPLICIT = "<implicit>"
_IGNORED_SUFFIXES = (
    "~", ".md", ".retry", ".txt", ".rst", ".orig", ".bak", ".swp", ".pyc", ".pyo", ".rpm",
)  # fmt: skip
_VARS_SUFFIXES = ("", ".yml", ".yaml", ".json")
_YAML_SUFFIXES = (".yml", ".yaml", ".json")
_ADDRESS_KEYS = ("readiness_host", "ansible_host", "ansible_ssh_host")
_PORT_KEYS = ("readiness_port", "ansible_port", "ansible_ssh_port")
_USER_KEYS = ("readiness_user", "ansible_user", "ansible_ssh_user")
_KEY_FILE_KEYS = ("readiness_ssh_private_key_file", "ansible_ssh_private_key_file")
_CONNECTION_KEYS = ("readiness_connection", "ansible_connection")
_PROFILE_KEY = "readiness"


# --------------------------------------------------------------------------- public model


@dataclass(frozen=True)
class Host:
    """One host, with its connection settings and effective variables."""

    name: str
    address: str
    port: int
    user: str | None
    key_file: str | None
    vars: Mapping[str, Any] = field(hash=False)
    groups: tuple[str, ...]
    local: bool
    source: str

    @property
    def profile_vars(self) -> Mapping[str, Any]:
        """The merged ``readiness`` dict of this host, ``{}`` when it has none."""
        value = self.vars.get(_PROFILE_KEY)
        return value if isinstance(value, Mapping) else MappingProxyType({})


@dataclass(frozen=True)
class Group:
    """One group: its direct hosts and child groups, and its own (unmerged) variables."""

    name: str
    hosts: tuple[str, ...]
    children: tuple[str, ...]
    vars: Mapping[str, Any] = field(hash=False)
    source: str


@dataclass(frozen=True, eq=False)
class Inventory:
    """Hosts and groups in inventory order; ``select`` resolves Ansible host patterns."""

    hosts: Mapping[str, Host]
    groups: Mapping[str, Group]
    sources: tuple[str, ...] = ()

    def select(self, pattern: str, limit: str | None = None) -> list[Host]:
        """Hosts matching ``pattern`` (and ``limit``, like ``--limit``), in inventory order.

        Raises InventoryError for an unknown name or when nothing is selected.
        """
        chosen = self._evaluate(pattern)
        if limit is not None:
            allowed = {host.name for host in self._evaluate(limit)}
            chosen = [host for host in chosen if host.name in allowed]
        if not chosen:
            limited = f" limited by {limit!r}" if limit is not None else ""
            raise InventoryError(f"host pattern {pattern!r}{limited} selects no hosts")
        return chosen

    def _evaluate(self, pattern: str) -> list[Host]:
        terms = _order_terms(self._split(pattern))
        chosen: dict[str, Host] = {}
        for term in terms:
            if term.startswith("!"):
                for name in self._match(term[1:], pattern):
                    chosen.pop(name, None)
            elif term.startswith("&"):
                keep = self._match(term[1:], pattern)
                chosen = {name: host for name, host in chosen.items() if name in keep}
            else:
                chosen.update(self._match(term, pattern))
        order = {name: index for index, name in enumerate(self.hosts)}
        return sorted(chosen.values(), key=lambda host: order.get(host.name, len(order)))

    def _split(self, pattern: str) -> list[str]:
        text = pattern.strip()
        if "," in text:
            parts = text.split(",")
        elif text in self.hosts:  # an IPv6 host name is one term, colons and all
            parts = [text]
        else:
            parts = _PATTERN_TERM.findall(text)
        terms = [part.strip() for part in parts if part.strip()]
        if not terms:
            raise InventoryError(f"empty host pattern {pattern!r}")
        return terms

    def _match(self, term: str, pattern: str) -> dict[str, Host]:
        if not term:
            raise InventoryError(f"empty term in host pattern {pattern!r}")
        if term in ("all", "*"):
            return dict(self.hosts)
        if term in self.groups:
            return self._members(term)
        if term in self.hosts:
            return {term: self.hosts[term]}
        if term == LOCAL:
            return {LOCAL: local_host()}
        found = self._search(term, pattern)
        if not found:
            known = ", ".join(self.groups)
            raise InventoryError(
                f"unknown host or group {term!r} in pattern {pattern!r}; known groups: {known}"
            )
        return found

    def _search(self, term: str, pattern: str) -> dict[str, Host]:
        matches = _matcher(term, pattern)
        if matches is None:
            return {}
        found: dict[str, Host] = {}
        for group in filter(matches, self.groups):
            found.update(self._members(group))
        found.update((name, host) for name, host in self.hosts.items() if matches(name))
        return found

    def _members(self, group: str) -> dict[str, Host]:
        return {
            name: host
            for name, host in self.hosts.items()
            if group == "all" or group in host.groups
        }


def local_host() -> Host:
    """The implicit controller host ``local``: audited in place, without SSH."""
    return Host(
        name=LOCAL,
        address="localhost",
        port=0,
        user=None,
        key_file=None,
        vars=MappingProxyType({}),
        groups=(),
        local=True,
        source=_IMPLICIT,
    )


def load_inventory(paths: str | Path | Sequence[str | Path]) -> Inventory:
    """Read one or more inventory files or directories into a single Inventory.

    Later sources add to earlier ones; ``group_vars``/``host_vars`` beside each source are
    applied after every source is read.
    """
    sources = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not sources:
        raise InventoryError("no inventory path given")
    builder = _Builder()
    vars_dirs: dict[Path, _Origin] = {}
    for source in sources:
        _load_source(builder, source, vars_dirs)
    for base, origin in vars_dirs.items():
        _apply_vars_dir(builder, base, origin)
    return builder.build(tuple(str(source) for source in sources))


# --------------------------------------------------------------------------- patterns

_PATTERN_TERM = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_GLOB_CHARS = frozenset("*?[")


def _order_terms(terms: list[str]) -> list[str]:
    """Ansible's order: unions first, then intersections, then exclusions."""
    regular = [term for term in terms if term[0] not in "&!"]
    intersections = [term for term in terms if term[0] == "&"]
    exclusions = [term for term in terms if term[0] == "!"]
    return (regular or ["all"]) + intersections + exclusions


def _matcher(term: str, pattern: str) -> Callable[[str], bool] | None:
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise InventoryError(
                f"invalid regular expression {term!r} in {pattern!r}: {exc}"
            ) from None
        return lambda name: regex.match(name) is not None
    if _GLOB_CHARS.intersection(term):
        return lambda name: fnmatchcase(name, term)
    return None


# --------------------------------------------------------------------------- where things are


@dataclass(frozen=True)
class _Where:
    path: str
    line: int | None = None

    @property
    def text(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    def at(self, line: int | None) -> _Where:
        return _Where(self.path, line)

    def error(self, message: str) -> InventoryError:
        return InventoryError(message, source=self.path, line=self.line)


@dataclass(frozen=True)
class _Origin:
    """What ``{{ inventory_dir }}`` and ``{{ inventory_file }}`` mean for values from one file."""

    directory: Path
    file: Path


_INVENTORY_REF = re.compile(r"\{\{\s*inventory_(dir|file)\s*\}\}")


def _plain(value: Any, origin: _Origin) -> Any:
    """A plain copy of a loaded value with the inventory_dir/inventory_file references filled in."""
    if isinstance(value, str):
        return _INVENTORY_REF.sub(lambda m: str(_origin_part(origin, m.group(1))), value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item, origin) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, origin) for item in value]
    return value


def _origin_part(origin: _Origin, part: str) -> Path:
    return origin.directory if part == "dir" else origin.file


# --------------------------------------------------------------------------- strict YAML


class _LineDict(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}


def _line_of(mapping: Any, key: Any) -> int | None:
    if isinstance(mapping, _LineDict):
        return mapping.key_lines.get(str(key), mapping.line)
    return None


class _Refused(Exception):
    """The strict loader refused a document it could parse (aliases out of budget)."""

    def __init__(self, message: str, event: yaml.Event) -> None:
        super().__init__(message)
        self.line = event.start_mark.line + 1 if event.start_mark else None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, recursive aliases and alias bombs."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._expansions = 0
        self._anchor_cost: dict[str, int] = {}
        self._open_anchors: set[str] = set()
        self._cost_stack = [0]

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        if isinstance(event, yaml.AliasEvent):
            self._charge_alias(event)
            return super().compose_node(parent, index)
        anchor = getattr(event, "anchor", None)
        self._cost_stack.append(0)
        if anchor:
            self._open_anchors.add(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._open_anchors.discard(anchor or "")
            inner = self._cost_stack.pop()
        if anchor:
            self._anchor_cost[anchor] = inner
        self._cost_stack[-1] += inner
        return node

    def _charge_alias(self, event: yaml.AliasEvent) -> None:
        """Count what expanding this alias costs: itself plus every alias inside its anchor."""
        anchor = event.anchor or ""
        if anchor in self._open_anchors:
            raise _Refused(f"recursive alias *{anchor} is not allowed", event)
        cost = 1 + self._anchor_cost.get(anchor, 0)
        self._expansions += cost
        self._cost_stack[-1] += cost
        if self._expansions > _ALIAS_BUDGET:
            raise _Refused(
                f"too many alias expansions (more than {_ALIAS_BUDGET}); refusing a YAML alias bomb",
                event,
            )

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # keys merged in with << may legitimately be overridden
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:
                continue  # unhashable: SafeLoader reports it
            if first != line:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first defined on line {first})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _construct_line_dict(loader: _StrictLoader, node: yaml.MappingNode) -> Iterator[_LineDict]:
    data = _LineDict(node.start_mark.line + 1)
    yield data
    data.update(loader.construct_mapping(node))
    for key_node, _ in node.value:
        data.key_lines.setdefault(str(key_node.value), key_node.start_mark.line + 1)


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_line_dict)


def _parse_yaml(text: str, where: _Where) -> Any:
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise where.at(exc.line).error(f"invalid YAML: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise where.at(line).error(f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise where.error(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"cannot read inventory: {exc}", source=str(path)) from None


# --------------------------------------------------------------------------- the builder


@dataclass
class _RawGroup:
    name: str
    where: _Where
    defined: bool
    hosts: dict[str, None] = field(default_factory=dict)  # an ordered set
    children: list[str] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _RawHost:
    name: str
    where: _Where
    groups: list[str] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    address: tuple[str, _Where] | None = None


class _Builder:
    """Accumulates groups and hosts from every source, then resolves them into an Inventory."""

    def __init__(self) -> None:
        self.groups: dict[str, _RawGroup] = {}
        self.hosts: dict[str, _RawHost] = {}
        for name in ("all", "ungrouped"):
            self.groups[name] = _RawGroup(name, _Where(_IMPLICIT), defined=True)

    def group(self, name: str, where: _Where, *, defined: bool = True) -> _RawGroup:
        _check_name(name, "group", where)
        raw = self.groups.setdefault(name, _RawGroup(name, where, defined))
        if raw.where.path == _IMPLICIT:  # 'all'/'ungrouped' written out in a file
            raw.where = where
        raw.defined = raw.defined or defined
        return raw

    def add_child(self, parent: str, child: str, where: _Where) -> None:
        if child in ("all", parent):
            raise where.error(f"group {child!r} cannot be a child of {parent!r}")
        self.group(child, where)
        children = self.groups[parent].children
        if child not in children:
            children.append(child)

    def add_group_vars(self, group: str, values: dict[str, Any], where: _Where) -> None:
        _check_profile(values, where)
        self.groups[group].layers.append(values)

    def add_host(self, group: str, name: str, values: dict[str, Any], where: _Where) -> None:
        _check_name(name, "host", where)
        _check_profile(values, where)
        raw = self.hosts.setdefault(name, _RawHost(name, where))
        _check_address(raw, values, where)
        raw.layers.append(values)
        if group not in raw.groups:
            raw.groups.append(group)
        self.groups[group].hosts[name] = None

    def build(self, sources: tuple[str, ...]) -> Inventory:
        self._check_defined()
        self._place_ungrouped()
        self._attach_top_level()
        self._check_cycles()
        parents = self._parents()
        groups = {name: _final_group(raw) for name, raw in self.groups.items()}
        resolver = _Resolver(self.groups, groups, parents)
        hosts = {name: resolver.host(raw) for name, raw in self.hosts.items()}
        return Inventory(MappingProxyType(hosts), MappingProxyType(groups), sources)

    def _check_defined(self) -> None:
        for raw in self.groups.values():
            if not raw.defined:
                raise raw.where.error(f"variables given for undefined group {raw.name!r}")

    def _place_ungrouped(self) -> None:
        """Hosts in no group but 'all' belong to 'ungrouped'; others leave it (as Ansible)."""
        ungrouped = self.groups["ungrouped"]
        for raw in self.hosts.values():
            grouped = set(raw.groups) - {"all", "ungrouped"}
            if grouped and "ungrouped" in raw.groups:
                raw.groups.remove("ungrouped")
                ungrouped.hosts.pop(raw.name, None)
            elif not grouped and "ungrouped" not in raw.groups:
                raw.groups.append("ungrouped")
                ungrouped.hosts[raw.name] = None

    def _attach_top_level(self) -> None:
        children = {child for raw in self.groups.values() for child in raw.children}
        top = self.groups["all"].children
        for name in self.groups:
            if name != "all" and name not in children and name not in top:
                top.append(name)

    def _check_cycles(self) -> None:
        done: set[str] = set()

        def visit(name: str, path: list[str]) -> None:
            if name in path:
                loop = " -> ".join([*path[path.index(name) :], name])
                raise self.groups[name].where.error(f"group cycle: {loop}")
            if name in done:
                return
            for child in self.groups[name].children:
                visit(child, [*path, name])
            done.add(name)

        for name in self.groups:
            visit(name, [])

    def _parents(self) -> dict[str, list[str]]:
        parents: dict[str, list[str]] = {name: [] for name in self.groups}
        for raw in self.groups.values():
            for child in raw.children:
                parents[child].append(raw.name)
        return parents


class _Resolver:
    """Applies Ansible's precedence to produce each host's effective variables."""

    def __init__(
        self,
        raw_groups: Mapping[str, _RawGroup],
        groups: Mapping[str, Group],
        parents: Mapping[str, list[str]],
    ) -> None:
        self._raw = raw_groups
        self._parents = parents
        self._order = {name: index for index, name in enumerate(raw_groups)}
        self._depth: dict[str, int] = {}
        self._priority = {name: _priority(group) for name, group in groups.items()}

    def host(self, raw: _RawHost) -> Host:
        member_of = self._ancestry(raw.groups)
        values: dict[str, Any] = {}
        for group in sorted(member_of | {"all"}, key=self._precedence):
            for layer in self._raw[group].layers:
                _merge_into(values, layer)
        for layer in raw.layers:
            _merge_into(values, layer)
        groups = tuple(sorted(member_of - {"all"}, key=self._order.__getitem__))
        return _make_host(raw, copy.deepcopy(values), groups)

    def _precedence(self, group: str) -> tuple[int, int, str]:
        """Ansible sorts groups by (depth, ansible_group_priority, name); later ones win."""
        return (self._depth_of(group), self._priority[group], group)

    def _depth_of(self, group: str) -> int:
        if group not in self._depth:
            parents = self._parents[group]
            self._depth[group] = 1 + max(map(self._depth_of, parents)) if parents else 0
        return self._depth[group]

    def _ancestry(self, direct: list[str]) -> set[str]:
        found: set[str] = set()
        pending = list(direct)
        while pending:
            group = pending.pop()
            if group not in found:
                found.add(group)
                pending.extend(self._parents[group])
        return found


def _final_group(raw: _RawGroup) -> Group:
    values: dict[str, Any] = {}
    for layer in raw.layers:
        _merge_into(values, layer)
    return Group(
        name=raw.name,
        hosts=tuple(raw.hosts),
        children=tuple(raw.children),
        vars=MappingProxyType(values),
        source=raw.where.text,
    )


def _priority(group: Group) -> int:
    value = group.vars.get("ansible_group_priority", 1)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InventoryError(
            f"ansible_group_priority of group {group.name!r} must be an integer, got {value!r}"
        ) from None


def _merge_into(values: dict[str, Any], layer: Mapping[str, Any]) -> None:
    """Later layers replace variables, except ``readiness``, which is merged recursively."""
    for key, value in layer.items():
        if key == _PROFILE_KEY and isinstance(values.get(key), Mapping):
            values[key] = _deep_merge(values[key], value)
        else:
            values[key] = value


def _deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(old, value)
        else:
            merged[key] = value
    return merged


def _make_host(raw: _RawHost, values: dict[str, Any], groups: tuple[str, ...]) -> Host:
    connection = _first(values, _CONNECTION_KEYS)
    user = _first(values, _USER_KEYS)
    key_file = _first(values, _KEY_FILE_KEYS)
    return Host(
        name=raw.name,
        address=str(_first(values, _ADDRESS_KEYS) or raw.name),
        port=_port(values, raw.where),
        user=None if user is None else str(user),
        key_file=None if key_file is None else str(Path(str(key_file)).expanduser()),
        vars=MappingProxyType(values),
        groups=groups,
        local=raw.name == LOCAL or connection == "local",
        source=raw.where.text,
    )


def _first(values: Mapping[str, Any], keys: Sequence[str]) -> Any:
    """The first of ``keys`` that is set: readiness_* spellings win over ansible_* ones."""
    return next((values[key] for key in keys if values.get(key) is not None), None)


def _port(values: Mapping[str, Any], where: _Where) -> int:
    value = _first(values, _PORT_KEYS)
    if value is None:
        return 22
    port = int(value) if isinstance(value, int | str) and str(value).isdigit() else -1
    if not 0 < port < 65536:
        raise where.error(f"invalid port {value!r}")
    return port


def _check_name(name: str, kind: str, where: _Where) -> None:
    if not name or any(char.isspace() for char in name):
        raise where.error(f"invalid {kind} name {name!r}")


def _check_profile(values: dict[str, Any], where: _Where) -> None:
    if _PROFILE_KEY in values and values[_PROFILE_KEY] is None:
        values[_PROFILE_KEY] = {}
    if not isinstance(values.get(_PROFILE_KEY, {}), Mapping):
        raise where.error(f"{_PROFILE_KEY!r} must be a mapping of profile settings")


def _check_address(raw: _RawHost, values: Mapping[str, Any], where: _Where) -> None:
    address = _first(values, _ADDRESS_KEYS)
    if address is None:
        return
    if raw.address is None:
        raw.address = (str(address), where)
    elif raw.address[0] != str(address):
        first, first_where = raw.address
        raise where.error(
            f"host {raw.name!r} has conflicting addresses: {first!r} at {first_where.text} "
            f"and {str(address)!r} at {where.text}"
        )


# --------------------------------------------------------------------------- sources


def _load_source(builder: _Builder, source: Path, vars_dirs: dict[Path, _Origin]) -> None:
    if source.is_dir():
        for path in sorted(source.iterdir()):
            if path.is_file() and not _ignored(path.name):
                _load_file(builder, path)
        vars_dirs.setdefault(source.resolve(), _Origin(source.resolve(), source.resolve()))
    elif source.is_file():
        _load_file(builder, source)
        base = source.resolve().parent
        vars_dirs.setdefault(base, _Origin(base, source.resolve()))
    else:
        raise InventoryError("inventory not found", source=str(source))


def _ignored(name: str) -> bool:
    return name.startswith(".") or name.endswith(_IGNORED_SUFFIXES)


def _load_file(builder: _Builder, path: Path) -> None:
    text = _read_text(path)
    where = _Where(str(path))
    if text.startswith("#!"):
        raise where.at(1).error(
            "looks like an executable inventory script; readiness never runs inventory scripts"
        )
    origin = _Origin(path.resolve().parent, path.resolve())
    if _is_yaml(path, text):
        _parse_yaml_inventory(builder, _parse_yaml(text, where), where, origin)
    else:
        _parse_ini(builder, text, where, origin)


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


def _apply_vars_dir(builder: _Builder, base: Path, origin: _Origin) -> None:
    for name in builder.groups:
        for path in _vars_files(base / "group_vars", name):
            builder.add_group_vars(name, _read_vars_file(path, origin), _Where(str(path)))
    for name, host in builder.hosts.items():
        for path in _vars_files(base / "host_vars", name):
            values = _read_vars_file(path, origin)
            _check_profile(values, _Where(str(path)))
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


def _read_vars_file(path: Path, origin: _Origin) -> dict[str, Any]:
    where = _Where(str(path))
    data = _parse_yaml(_read_text(path), where)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise where.at(1).error("a variables file must hold a mapping of names to values")
    values: dict[str, Any] = _plain(data, origin)
    return values


# --------------------------------------------------------------------------- YAML inventories

_GROUP_KEYS = ("hosts", "children", "vars")


def _parse_yaml_inventory(builder: _Builder, data: Any, where: _Where, origin: _Origin) -> None:
    if data is None:
        return
    if not isinstance(data, Mapping):
        raise where.at(1).error("a YAML inventory must be a mapping of group names")
    for name, body in data.items():
        _parse_yaml_group(builder, str(name), body, where.at(_line_of(data, name)), origin)


def _parse_yaml_group(
    builder: _Builder, name: str, body: Any, where: _Where, origin: _Origin
) -> None:
    builder.group(name, where)
    if body is None:
        return
    if not isinstance(body, Mapping):
        raise where.error(f"group {name!r} must be a mapping with hosts, children or vars")
    for key, value in body.items():
        at = where.at(_line_of(body, key))
        if key == "vars":
            builder.add_group_vars(
                name, _yaml_vars(value, at, f"vars of group {name!r}", origin), at
            )
        elif key == "hosts":
            _parse_yaml_hosts(builder, name, value, at, origin)
        elif key == "children":
            for child, child_body in _yaml_mapping(value, at, f"children of {name!r}").items():
                child_at = at.at(_line_of(value, child))
                builder.add_child(name, str(child), child_at)
                _parse_yaml_group(builder, str(child), child_body, child_at, origin)
        else:
            expected = ", ".join(_GROUP_KEYS)
            raise at.error(f"unknown key {key!r} in group {name!r} (expected {expected})")


def _parse_yaml_hosts(
    builder: _Builder, group: str, value: Any, where: _Where, origin: _Origin
) -> None:
    hosts = _yaml_mapping(value, where, f"hosts of group {group!r}")
    for pattern, host_body in hosts.items():
        at = where.at(_line_of(hosts, pattern))
        values = _yaml_vars(host_body, at, f"host {pattern!r}", origin)
        for name, port in _expand_host(str(pattern), at):
            builder.add_host(group, name, _with_port(values, port), at)


def _yaml_mapping(value: Any, where: _Where, what: str) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.error(f"{what} must be a mapping")
    return value


def _yaml_vars(value: Any, where: _Where, what: str, origin: _Origin) -> dict[str, Any]:
    values: dict[str, Any] = _plain(_yaml_mapping(value, where, what), origin)
    return values


def _with_port(values: dict[str, Any], port: int | None) -> dict[str, Any]:
    """``host:2222`` sets ansible_port; an explicit ansible_port on the same line wins."""
    return values if port is None else {"ansible_port": port, **values}


# --------------------------------------------------------------------------- host names

_BRACKETED_IPV6 = re.compile(r"\[(?P<address>[0-9A-Fa-f:.]+)\](?::(?P<port>\d+))?")
_HOST_RANGE = re.compile(r"\[([^\[\]]*)\]")
_NUMERIC_RANGE = re.compile(r"(\d+):(\d+)(?::(\d+))?")
_ALPHA_RANGE = re.compile(r"([a-zA-Z]):([a-zA-Z])(?::(\d+))?")


def _expand_host(text: str, where: _Where) -> list[tuple[str, int | None]]:
    """Names (and port) for a host entry: ``web[01:03]:2222`` → web01..web03 on port 2222."""
    ipv6 = _BRACKETED_IPV6.fullmatch(text)
    if ipv6:
        return [(ipv6["address"], int(ipv6["port"]) if ipv6["port"] else None)]
    name, port = text, None
    if _HOST_RANGE.sub("", text).count(":") == 1:  # one colon outside ranges: host:port
        name, _, port_text = text.rpartition(":")
        if not port_text.isdigit():
            raise where.error(f"invalid port in host {text!r}")
        port = int(port_text)
    return [(expanded, port) for expanded in _expand_ranges(name, where)]


def _expand_ranges(name: str, where: _Where) -> list[str]:
    names = [""]
    position = 0
    for match in _HOST_RANGE.finditer(name):
        items = _range_items(match.group(1), name, where)
        literal = name[position : match.start()]
        names = [prefix + literal + item for prefix in names for item in items]
        if len(names) > _RANGE_BUDGET:
            raise where.error(f"host range {name!r} expands to more than {_RANGE_BUDGET} hosts")
        position = match.end()
    if "[" in name[position:] or "]" in name[position:]:
        raise where.error(f"invalid host range in {name!r}")
    return [prefix + name[position:] for prefix in names]


def _range_items(spec: str, name: str, where: _Where) -> list[str]:
    numeric = _NUMERIC_RANGE.fullmatch(spec)
    alpha = _ALPHA_RANGE.fullmatch(spec)
    match = numeric or alpha
    if match is None:
        raise where.error(f"invalid host range [{spec}] in {name!r}")
    start, end, step_text = match.groups()
    step = int(step_text or 1)
    low, high = (int(start), int(end)) if numeric else (ord(start), ord(end))
    if low > high or step < 1 or (high - low) // step >= _RANGE_BUDGET:
        raise where.error(f"invalid host range [{spec}] in {name!r}")
    width = len(start) if numeric and start.startswith("0") else 0
    convert: Callable[[int], str] = (lambda n: str(n).zfill(width)) if numeric else chr
    return [convert(n) for n in range(low, high + 1, step)]


# --------------------------------------------------------------------------- INI inventories

_SECTION = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?")
_TOKEN = re.compile(r"""(?:[^\s"']+|"(?:[^"\\]|\\.)*"|'[^']*')+""")
_DOUBLE_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_SINGLE_QUOTED = re.compile(r"'([^']*)'")
_ANY_QUOTED = re.compile(r""""((?:[^"\\]|\\.)*)"|'([^']*)'""")
_INTEGER = re.compile(r"[-+]?(?:0|[1-9]\d*)")
_IniLineHandler = Callable[[_Builder, str, str, _Where, _Origin], None]


def _parse_ini(builder: _Builder, text: str, where: _Where, origin: _Origin) -> None:
    group, kind = "ungrouped", "hosts"
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        at = where.at(number)
        if not line or line.startswith(("#", ";")):
            continue
        section = _SECTION.fullmatch(line)
        if section:
            group, kind = _enter_section(builder, section, at)
        elif line.startswith("[") and line.endswith("]"):
            raise at.error(f"invalid section header {line!r}")
        else:
            _INI_HANDLERS[kind](builder, group, line, at, origin)


def _enter_section(builder: _Builder, section: re.Match[str], where: _Where) -> tuple[str, str]:
    name, tag = section.group(1), section.group(2) or "hosts"
    if tag not in _INI_HANDLERS or (tag == "hosts" and section.group(2)):
        raise where.error(f"unknown section type [{name}:{tag}] (expected :children or :vars)")
    builder.group(name, where, defined=tag != "vars")
    return name, tag


def _ini_host_line(
    builder: _Builder, group: str, line: str, where: _Where, origin: _Origin
) -> None:
    tokens, _ = _ini_split(line, where)
    values: dict[str, Any] = _plain(dict(_ini_pair(token, where) for token in tokens[1:]), origin)
    for name, port in _expand_host(tokens[0], where):
        builder.add_host(group, name, _with_port(values, port), where)


def _ini_child_line(builder: _Builder, group: str, line: str, where: _Where, _: _Origin) -> None:
    tokens, _body = _ini_split(line, where)
    if len(tokens) != 1:
        raise where.error(f"expected one group name per line in [{group}:children], got {line!r}")
    builder.add_child(group, tokens[0], where)


def _ini_var_line(builder: _Builder, group: str, line: str, where: _Where, origin: _Origin) -> None:
    key, sep, rest = line.partition("=")
    key = key.strip()
    if not sep or not key or any(char.isspace() for char in key):
        raise where.error(f"expected key=value in [{group}:vars], got {line!r}")
    tokens, body = _ini_split(rest, where)
    value = _ini_value(tokens[0]) if len(tokens) == 1 else _ini_value(body)
    builder.add_group_vars(group, _plain({key: value}, origin), where)


_INI_HANDLERS: dict[str, _IniLineHandler] = {
    "hosts": _ini_host_line,
    "children": _ini_child_line,
    "vars": _ini_var_line,
}


def _ini_split(text: str, where: _Where) -> tuple[list[str], str]:
    """Shell-like tokens of an INI line (quotes kept), and the line without its # comment."""
    tokens: list[str] = []
    end = len(text)
    for match in _TOKEN.finditer(text):
        if match.group().startswith("#"):
            end = match.start()
            break
        tokens.append(match.group())
    body = text[:end].strip()
    if re.sub(r"\s", "", body) != re.sub(r"\s", "", "".join(tokens)):
        raise where.error(f"unterminated quote in {body!r}")
    return tokens, body


def _ini_pair(token: str, where: _Where) -> tuple[str, Any]:
    key, sep, raw = token.partition("=")
    if not sep or not key or "'" in key or '"' in key:
        raise where.error(f"expected key=value, got {token!r}")
    return key, _ini_value(raw)


def _ini_value(raw: str) -> Any:
    """Ansible-style INI value: quoted → str, true/false → bool, integer → int, [..]/{..} → data.

    Anything else (including floats such as version numbers) stays the string as written.
    """
    quoted = _DOUBLE_QUOTED.fullmatch(raw) or _SINGLE_QUOTED.fullmatch(raw)
    if quoted:
        return re.sub(r'\\([\\"])', r"\1", quoted.group(1)) if raw[0] == '"' else quoted.group(1)
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if _INTEGER.fullmatch(raw):
        return int(raw)
    if raw.startswith(("[", "{")):
        return _ini_literal(raw)
    return _ANY_QUOTED.sub(lambda m: m.group(1) or m.group(2) or "", raw)


def _ini_literal(raw: str) -> Any:
    """A list or dict written as a Python/JSON literal; parsed, never evaluated."""
    if len(raw) > _LITERAL_MAX:
        return raw
    try:
        value = ast.literal_eval(raw)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return raw
    return value if isinstance(value, list | dict) else raw
