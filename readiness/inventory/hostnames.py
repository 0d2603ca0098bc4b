"""Host entries: ``web[01:03]:2222`` → web01..web03 on port 2222, and bracketed IPv6 addresses."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .source import Where

__all__ = ["expand_host", "with_port"]

_RANGE_BUDGET = 10_000  # hosts one name like web[0001:9999] may expand to
_BRACKETED_IPV6 = re.compile(r"\[(?P<address>[0-9A-Fa-f:.]+)\](?::(?P<port>\d+))?")
_HOST_RANGE = re.compile(r"\[([^\[\]]*)\]")
_NUMERIC_RANGE = re.compile(r"(\d+):(\d+)(?::(\d+))?")
_ALPHA_RANGE = re.compile(r"([a-zA-Z]):([a-zA-Z])(?::(\d+))?")


def expand_host(text: str, where: Where) -> list[tuple[str, int | None]]:
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


def _expand_ranges(name: str, where: Where) -> list[str]:
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


def _range_items(spec: str, name: str, where: Where) -> list[str]:
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


def with_port(values: dict[str, Any], port: int | None) -> dict[str, Any]:
    """``host:2222`` sets ansible_port; an explicit ansible_port on the same line wins."""
    return values if port is None else {"ansible_port": port, **values}
