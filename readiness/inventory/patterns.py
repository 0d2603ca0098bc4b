"""Ansible host patterns: unions, ``&``, ``!``, globs, ``~regex``, ``[i:j]`` slices and limits.

Hosts come back in Ansible's order: term by term, and within a group its own hosts before its
children's (breadth first). Where readiness is stricter than Ansible (a term that matches
nothing, an index out of range, ``[:j]``), the pattern is refused instead of silently selecting
other hosts; ``docs/inventories.md`` lists every such difference.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import translate
from pathlib import Path
from typing import TYPE_CHECKING

from readiness.errors import InventoryError

from .hostnames import split_address

if TYPE_CHECKING:  # model imports this module to implement Inventory.select
    from .model import Group, Host

__all__ = ["ANSIBLE_LOCALHOST", "LOCAL", "group_host_order", "select_hosts", "split_pattern"]

LOCAL = "local"
"""The host name that always resolves: to the inventory's ``local`` host, else ``local_host()``."""

ANSIBLE_LOCALHOST = ("localhost", "127.0.0.1", "::1")  # Ansible's implicit localhost names

# A ':'-separated pattern: words, where a bracketed part (a range or slice) may hold ':'.
_COLON_TERM = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
# A term ending in a subscript: [i], [-i], [i:j], [i:], and Ansible's old inclusive [i-j].
_SUBSCRIPT = re.compile(
    r"(?P<expr>.+)\[(?:(?P<index>-?[0-9]+)|(?P<start>[0-9]+)(?P<sep>[:-])(?P<end>[0-9]*))\]",
    re.DOTALL,
)  # ASCII digits only, as Ansible: web[１] is a glob there, not host 1 of web
_OPEN_START_SLICE = re.compile(r".+\[:[0-9]+\]")
_HOST_SEARCH_CHARS = frozenset(".?*[")  # a term with these also matches host names (as Ansible)


def split_pattern(pattern: str) -> list[str]:
    """The terms of a pattern, split as Ansible splits them.

    Commas always separate. Without a comma, a pattern that reads as one address (a host name,
    IPv4/IPv6 address or range, with an optional port) is one term; otherwise ``:`` separates,
    except inside brackets. Text that no term can hold (an unbalanced ``[``) is refused: Ansible
    would silently drop it, so ``~[`` would select every host.
    """
    text = pattern.strip()
    if "," in text:
        parts = text.split(",")
    elif split_address(text) is not None:  # as Ansible's parse_address
        parts = [text]
    else:
        leftover = _COLON_TERM.sub("", text)
        if leftover.replace(":", "").strip():
            raise InventoryError(f"unbalanced '[' or ']' in host pattern {pattern!r}")
        parts = _COLON_TERM.findall(text)
    terms = [part.strip() for part in parts if part.strip()]
    if not terms:
        raise InventoryError(f"empty host pattern {pattern!r}")
    return terms


def group_host_order(groups: Mapping[str, Group], name: str) -> list[str]:
    """The hosts of a group in Ansible's order: its own, then each level of descendants.

    Within one level, groups come in the order their parents list them. (Ansible walks a level
    as a set from the second level of descendants on, so its own order there can vary.)
    """
    order = [name]
    seen = {name}
    level = [name]
    while level:
        following: list[str] = []
        for group in level:
            for child in groups[group].children:
                if child not in seen:
                    seen.add(child)
                    following.append(child)
        order += following
        level = following
    hosts: dict[str, None] = {}
    for group in order:
        hosts.update(dict.fromkeys(groups[group].hosts))
    return list(hosts)


def select_hosts(
    hosts: Mapping[str, Host],
    groups: Mapping[str, Group],
    pattern: str,
    limit: str | None,
    *,
    local: Callable[[], Host],
    sources: Iterable[str] = (),
) -> list[Host]:
    """Hosts matching ``pattern`` (and ``limit``, like ``--limit``), in Ansible's order.

    ``local`` makes the implicit ``local`` host when the inventory has none of that name.
    ``limit`` may name files with ``@path``: one pattern per line. Raises InventoryError for an
    unknown name, a bad subscript or regex, or when nothing is selected.
    """
    selector = _Selector(hosts, groups, local)
    chosen = selector.evaluate(split_pattern(pattern), pattern)
    if limit is not None:
        allowed = {host.name for host in selector.evaluate(_limit_terms(limit), limit)}
        chosen = [host for host in chosen if host.name in allowed]
    if not chosen:
        limited = f" limited by {limit!r}" if limit is not None else ""
        where = ", ".join(sources)
        empty = f"; the inventory {where} defines no hosts" if not hosts and where else ""
        raise InventoryError(f"host pattern {pattern!r}{limited} selects no hosts{empty}")
    return chosen


def _limit_terms(limit: str) -> list[str]:
    """``--limit`` terms; ``@file`` reads one pattern per line, as ``ansible --limit @file``."""
    terms: list[str] = []
    for term in split_pattern(limit):
        if not term.startswith("@"):
            terms.append(term)
            continue
        path = Path(term[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InventoryError(f"cannot read limit file: {reason}", source=str(path)) from None
        terms += [line.strip() for line in text.split("\n") if line.strip()]
    if not terms:
        raise InventoryError(f"limit {limit!r} names no hosts")
    return terms


@dataclass
class _Selector:
    """One inventory's hosts and groups, resolving the terms of a pattern against them."""

    hosts: Mapping[str, Host]
    groups: Mapping[str, Group]
    local: Callable[[], Host]
    _order: dict[str, list[str]] = field(default_factory=dict)

    def evaluate(self, terms: list[str], pattern: str) -> list[Host]:
        chosen: dict[str, Host] = {}
        for term in _order_terms(terms):
            if term in self.hosts:  # a host name wins over a group of the same name (as Ansible)
                chosen.setdefault(term, self.hosts[term])
                continue
            found = self._match(term[1:] if term[0] in "&!" else term, pattern)
            if term[0] == "!":
                names = {host.name for host in found}
                chosen = {name: host for name, host in chosen.items() if name not in names}
            elif term[0] == "&":
                names = {host.name for host in found}
                chosen = {name: host for name, host in chosen.items() if name in names}
            else:
                for host in found:
                    chosen.setdefault(host.name, host)
        return list(chosen.values())

    def _match(self, term: str, pattern: str) -> list[Host]:
        if not term:
            raise InventoryError(f"empty term in host pattern {pattern!r}")
        if term[0] != "~" and _OPEN_START_SLICE.fullmatch(term):
            start = term[: term.rindex("[")]
            raise InventoryError(
                f"{term!r} in pattern {pattern!r}: Ansible reads [:j] as a glob, not a slice; "
                f"write {start}[0:{term[term.rindex(':') + 1 : -1]}] for the first hosts"
            )
        subscript = _SUBSCRIPT.fullmatch(term) if term[0] != "~" else None
        expr = subscript["expr"] if subscript else term
        found = self._enumerate(expr, term, pattern)
        return _apply_subscript(found, subscript, term, pattern) if subscript else found

    def _enumerate(self, expr: str, term: str, pattern: str) -> list[Host]:
        """Hosts of every matching group (duplicates kept, as the subscript sees them), then
        matching host names when no group matched or the term is a glob or regex."""
        matches = _matcher(expr, pattern)
        matched_groups = [name for name in self.groups if matches(name)]
        found: list[Host] = []
        for group in matched_groups:
            found += [self.hosts[name] for name in self._group_hosts(group)]
        if not matched_groups or expr[0] == "~" or _HOST_SEARCH_CHARS.intersection(expr):
            found += [host for name, host in self.hosts.items() if matches(name)]
        if not found and expr == LOCAL:
            found = [self.local()]
        if not found and not matched_groups:
            raise InventoryError(self._unknown(term, pattern))
        return found

    def _group_hosts(self, group: str) -> list[str]:
        if group not in self._order:
            self._order[group] = group_host_order(self.groups, group)
        return self._order[group]

    def _unknown(self, term: str, pattern: str) -> str:
        message = f"unknown host or group {term!r} in pattern {pattern!r}"
        if term in ANSIBLE_LOCALHOST:
            return f"{message}; readiness calls the controller 'local' (Ansible's implicit {term})"
        return f"{message}; known groups: {', '.join(self.groups)}"


def _apply_subscript(
    found: list[Host], subscript: re.Match[str], term: str, pattern: str
) -> list[Host]:
    """Ansible's subscripts: ``[i]`` one host (negative from the end), ``[i:j]``/``[i-j]``
    inclusive, ``[i:]`` to the end. Out of range or empty is refused, never silently empty."""
    if not found:
        return found
    if subscript["index"] is not None:
        index = _whole(subscript["index"])
        if not -len(found) <= index < len(found):
            raise InventoryError(
                f"{term!r} in pattern {pattern!r}: index {index} is out of range "
                f"({subscript['expr']!r} has {len(found)} hosts)"
            )
        return [found[index]]
    start = _whole(subscript["start"])
    end = _whole(subscript["end"]) if subscript["end"] else len(found) - 1
    chosen = found[start : end + 1]
    if end < start or not chosen:
        raise InventoryError(
            f"{term!r} in pattern {pattern!r} selects no hosts "
            f"({subscript['expr']!r} has {len(found)} hosts, numbered from 0)"
        )
    return chosen


def _whole(text: str) -> int:
    """A subscript's number; one of more than 18 digits is past the end of any inventory
    (int() refuses more than 4300)."""
    digits = text.lstrip("-")
    value = int(digits) if len(digits) <= 18 else 10**18
    return -value if text.startswith("-") else value


def _order_terms(terms: list[str]) -> list[str]:
    """Ansible's order: unions first, then intersections, then exclusions."""
    regular = [term for term in terms if term[0] not in "&!"]
    intersections = [term for term in terms if term[0] == "&"]
    exclusions = [term for term in terms if term[0] == "!"]
    return (regular or ["all"]) + intersections + exclusions


def _matcher(expr: str, pattern: str) -> Callable[[str], bool]:
    """``~regex`` matches from the start of a name; anything else is a shell glob on the whole."""
    source = expr[1:] if expr.startswith("~") else translate(expr)
    try:
        regex = re.compile(source)
    except re.error as exc:
        raise InventoryError(
            f"invalid regular expression {expr!r} in host pattern {pattern!r}: {exc}"
        ) from None
    return lambda name: regex.match(name) is not None
