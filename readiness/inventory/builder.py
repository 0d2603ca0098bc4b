"""Accumulates groups and hosts from every source, checks the group graph, builds the Inventory.

The graph follows Ansible's rules: groups no one adopts become children of ``all`` (after
``ungrouped``), hosts in no group but ``all`` belong to ``ungrouped``, and a name that is both a
host and a group is kept as both, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any

from readiness.errors import ProfileError

from .model import IMPLICIT, PROFILE_KEY, Inventory
from .precedence import ADDRESS_KEYS, Resolver, final_group, first_set
from .source import Where

__all__ = ["GROUP_PRIORITY", "Builder", "RawGroup", "RawHost", "check_profile"]

GROUP_PRIORITY = "ansible_group_priority"  # sets a group's rank; inline inventory vars only
_log = logging.getLogger("readiness.inventory")


@dataclass
class RawGroup:
    name: str
    where: Where
    hosts: dict[str, None] = field(default_factory=dict)  # an ordered set
    children: list[str] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)  # inline inventory vars
    file_layers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (source, vars)
    priority: int = 1


@dataclass
class RawHost:
    name: str
    where: Where
    groups: list[str] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    file_layers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    address: tuple[str, Where] | None = None


class Builder:
    """Accumulates groups and hosts from every source, then resolves them into an Inventory."""

    def __init__(self) -> None:
        self.groups: dict[str, RawGroup] = {}
        self.hosts: dict[str, RawHost] = {}
        for name in ("all", "ungrouped"):
            self.groups[name] = RawGroup(name, Where(IMPLICIT))
        self.groups["all"].children.append("ungrouped")

    def group(self, name: str, where: Where) -> RawGroup:
        _check_name(name, "group", where)
        raw = self.groups.setdefault(name, RawGroup(name, where))
        if raw.where.path == IMPLICIT:  # 'all'/'ungrouped' written out in a file
            raw.where = where
        return raw

    def add_child(self, parent: str, child: str, where: Where) -> None:
        if child in ("all", parent):
            raise where.error(f"group {child!r} cannot be a child of {parent!r}")
        self.group(child, where)
        children = self.groups[parent].children
        if child not in children:
            children.append(child)

    def add_group_vars(self, group: str, values: dict[str, Any], where: Where) -> None:
        """Inline inventory vars of a group; ``ansible_group_priority`` ranks it (as Ansible)."""
        if GROUP_PRIORITY in values:
            values = dict(values)
            self.groups[group].priority = _priority(values.pop(GROUP_PRIORITY), group, where)
        check_profile(values, where)
        self.groups[group].layers.append(values)

    def add_group_vars_file(
        self, group: str, values: dict[str, Any], where: Where, source: int
    ) -> None:
        """A group_vars file: an ordinary layer (its ansible_group_priority ranks nothing)."""
        check_profile(values, where)
        self.groups[group].file_layers.append((source, values))

    def add_host_vars_file(
        self, host: str, values: dict[str, Any], where: Where, source: int
    ) -> None:
        check_profile(values, where)
        self.hosts[host].file_layers.append((source, values))

    def add_host(
        self,
        group: str,
        name: str,
        values: dict[str, Any],
        where: Where,
        port: int | None = None,
        *,
        vars_where: Where | None = None,
    ) -> None:
        """A host line; ``port`` (from ``name:port``) counts only where the host first appears.

        ``vars_where`` points at the host's ``readiness`` key when it is on another line.
        """
        _check_name(name, "host", where)
        check_profile(values, vars_where or where)
        raw = self.hosts.get(name)
        if raw is None:
            raw = self.hosts[name] = RawHost(name, where)
            if port:
                raw.layers.append({"ansible_port": port})
        _check_address(raw, values, where)
        raw.layers.append(values)
        if group not in raw.groups:
            raw.groups.append(group)
        self.groups[group].hosts[name] = None

    def build(self, sources: tuple[str, ...]) -> Inventory:
        self._place_ungrouped()
        self._attach_top_level()
        self._check_cycles()
        parents = self._parents()
        groups = {name: final_group(raw) for name, raw in self.groups.items()}
        resolver = Resolver(self.groups, parents, len(sources))
        hosts = {name: resolver.host(raw) for name, raw in self.hosts.items()}
        warnings = tuple(
            f"{name!r} is both a group and a host; a pattern {name!r} selects the host "
            f"(as Ansible), '{name}*' or '&{name}' reach the group"
            for name in self.groups
            if name in self.hosts
        )
        for warning in warnings:
            _log.warning("%s", warning)
        return Inventory(MappingProxyType(hosts), MappingProxyType(groups), sources, warnings)

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
        """Groups without a parent become children of 'all', in the order they were defined."""
        adopted = {child for raw in self.groups.values() for child in raw.children}
        top = self.groups["all"].children
        for name in self.groups:
            if name != "all" and name not in adopted and name not in top:
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


def _check_name(name: str, kind: str, where: Where) -> None:
    if not name or any(char.isspace() for char in name):
        raise where.error(f"invalid {kind} name {name!r}")


def _priority(value: Any, group: str, where: Where) -> int:
    """``int(value)``, as Ansible ranks a group; what int() refuses is an error here too."""
    if isinstance(value, bool | int | float | str):
        try:
            return int(value)
        except (ValueError, OverflowError):
            pass
    raise where.error(f"{GROUP_PRIORITY} of group {group!r} must be an integer, got {value!r}")


def check_profile(values: dict[str, Any], where: Where) -> None:
    """``readiness`` must be a mapping of profile settings; it is checked here so that a wrong
    key is reported at the inventory file and line that wrote it."""
    if PROFILE_KEY not in values:
        return
    if values[PROFILE_KEY] is None:
        values[PROFILE_KEY] = {}
    layer = values[PROFILE_KEY]
    if not isinstance(layer, Mapping):
        raise where.error(f"{PROFILE_KEY!r} must be a mapping of profile settings")
    from readiness.profile import merge_layers

    defaults = _profile_defaults()
    # Only the settings the layer touches are merged (copying every default per host made
    # loading 1000 hosts cost 0.6 s); an unknown key gets the full list for its hint.
    touched = {key: defaults[key] for key in layer if key in defaults}
    try:
        # whole=False: this layer alone may tune a quality gate the profile file defines
        merge_layers(
            touched if len(touched) == len(layer) else defaults,
            [(PROFILE_KEY, layer)],
            whole=False,
        )
    except ProfileError as exc:
        raise where.error(str(exc)) from None


@cache
def _profile_defaults() -> Mapping[str, Any]:
    from readiness.registry import default_profile

    return MappingProxyType(default_profile())


def _check_address(raw: RawHost, values: Mapping[str, Any], where: Where) -> None:
    address = first_set(values, ADDRESS_KEYS)
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
