"""Accumulates groups and hosts from every source, checks the group graph, builds the Inventory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .model import IMPLICIT, PROFILE_KEY, Inventory
from .precedence import ADDRESS_KEYS, Resolver, final_group, first_set
from .source import Where

__all__ = ["Builder", "RawGroup", "RawHost", "check_profile"]


@dataclass
class RawGroup:
    name: str
    where: Where
    defined: bool
    hosts: dict[str, None] = field(default_factory=dict)  # an ordered set
    children: list[str] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RawHost:
    name: str
    where: Where
    groups: list[str] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    address: tuple[str, Where] | None = None


class Builder:
    """Accumulates groups and hosts from every source, then resolves them into an Inventory."""

    def __init__(self) -> None:
        self.groups: dict[str, RawGroup] = {}
        self.hosts: dict[str, RawHost] = {}
        for name in ("all", "ungrouped"):
            self.groups[name] = RawGroup(name, Where(IMPLICIT), defined=True)

    def group(self, name: str, where: Where, *, defined: bool = True) -> RawGroup:
        _check_name(name, "group", where)
        raw = self.groups.setdefault(name, RawGroup(name, where, defined))
        if raw.where.path == IMPLICIT:  # 'all'/'ungrouped' written out in a file
            raw.where = where
        raw.defined = raw.defined or defined
        return raw

    def add_child(self, parent: str, child: str, where: Where) -> None:
        if child in ("all", parent):
            raise where.error(f"group {child!r} cannot be a child of {parent!r}")
        self.group(child, where)
        children = self.groups[parent].children
        if child not in children:
            children.append(child)

    def add_group_vars(self, group: str, values: dict[str, Any], where: Where) -> None:
        check_profile(values, where)
        self.groups[group].layers.append(values)

    def add_host(self, group: str, name: str, values: dict[str, Any], where: Where) -> None:
        _check_name(name, "host", where)
        check_profile(values, where)
        raw = self.hosts.setdefault(name, RawHost(name, where))
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
        groups = {name: final_group(raw) for name, raw in self.groups.items()}
        resolver = Resolver(self.groups, groups, parents)
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


def _check_name(name: str, kind: str, where: Where) -> None:
    if not name or any(char.isspace() for char in name):
        raise where.error(f"invalid {kind} name {name!r}")


def check_profile(values: dict[str, Any], where: Where) -> None:
    if PROFILE_KEY in values and values[PROFILE_KEY] is None:
        values[PROFILE_KEY] = {}
    if not isinstance(values.get(PROFILE_KEY, {}), Mapping):
        raise where.error(f"{PROFILE_KEY!r} must be a mapping of profile settings")


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
