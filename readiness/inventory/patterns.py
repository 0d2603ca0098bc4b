"""Ansible host patterns: unions, ``&`` intersections, ``!`` exclusions, globs, ``~regex``, limits."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from readiness.errors import InventoryError

if TYPE_CHECKING:  # model imports this module to implement Inventory.select
    from .model import Group, Host

__all__ = ["LOCAL", "select_hosts"]

LOCAL = "local"
"""The host name that always resolves: to the inventory's ``local`` host, else ``local_host()``."""

_PATTERN_TERM = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_GLOB_CHARS = frozenset("*?[")


def select_hosts(
    hosts: Mapping[str, Host],
    groups: Mapping[str, Group],
    pattern: str,
    limit: str | None,
    *,
    local: Callable[[], Host],
) -> list[Host]:
    """Hosts matching ``pattern`` (and ``limit``, like ``--limit``), in inventory order.

    ``local`` makes the implicit ``local`` host when the inventory has none of that name.
    Raises InventoryError for an unknown name or when nothing is selected.
    """
    selector = _Selector(hosts, groups, local)
    chosen = selector.evaluate(pattern)
    if limit is not None:
        allowed = {host.name for host in selector.evaluate(limit)}
        chosen = [host for host in chosen if host.name in allowed]
    if not chosen:
        limited = f" limited by {limit!r}" if limit is not None else ""
        raise InventoryError(f"host pattern {pattern!r}{limited} selects no hosts")
    return chosen


@dataclass(frozen=True)
class _Selector:
    """One inventory's hosts and groups, resolving the terms of a pattern against them."""

    hosts: Mapping[str, Host]
    groups: Mapping[str, Group]
    local: Callable[[], Host]

    def evaluate(self, pattern: str) -> list[Host]:
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
            return {LOCAL: self.local()}
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
