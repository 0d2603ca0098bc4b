"""Host entries: ``web[01:03]:2222`` → web01..web03 on port 2222, and bracketed IPv6 addresses.

Ranges follow Ansible: ``[start:end]`` or ``[start:end:step]``, inclusive; an empty start is 0;
a start with a leading zero sets the width (and then start and end must be as wide); single
letters count through ``a..z`` then ``A..Z``. Several ranges in one name multiply.
"""

from __future__ import annotations

import ipaddress
import re
import string

from .source import Where

__all__ = ["expand_host"]

_RANGE_BUDGET = 10_000  # hosts one name like web[0001:9999] may expand to
_BRACKETED_WITH_PORT = re.compile(r"\[(?P<host>[^\[\]]+)\](?::(?P<port>\d+))?")
_NAME_WITH_PORT = re.compile(r"(?P<host>(?:[^:\[\]]|\[[^\]]*\])+):(?P<port>[^:\[\]]*)")


def expand_host(text: str, where: Where) -> tuple[list[str], int | None]:
    """Names and port of a host entry: ``web[01:03]:2222`` → web01..web03 on port 2222."""
    name, port = _split_port(text, where)
    names = _expand_ranges(name, text, where)
    if len(names) > _RANGE_BUDGET:
        raise where.error(f"host range {text!r} expands to more than {_RANGE_BUDGET} hosts")
    return names, port


def _split_port(text: str, where: Where) -> tuple[str, int | None]:
    bracketed = _BRACKETED_WITH_PORT.fullmatch(text)
    if bracketed and _is_ip(bracketed["host"]):
        if not bracketed["port"]:
            # As Ansible: brackets only ever set an address apart from its port ([::1]:2222).
            # Accepting [::1] alone would make an inventory that Ansible refuses.
            raise where.error(
                f"invalid host {text!r}: brackets need a port ({text}:22); "
                f"without one write {bracketed['host']}"
            )
        return bracketed["host"], int(bracketed["port"])
    if _is_ip(text):
        return text, None
    with_port = _NAME_WITH_PORT.fullmatch(text)
    if with_port:
        if not with_port["port"].isdigit():
            raise where.error(f"invalid port in host {text!r} (write host:PORT with a number)")
        return with_port["host"], int(with_port["port"])
    if text.endswith(":"):
        raise where.error(f"invalid host {text!r}: a trailing ':' must be followed by a port")
    return text, None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _expand_ranges(name: str, text: str, where: Where) -> list[str]:
    if "[" not in name:
        if "]" in name:
            raise where.error(f"invalid host name {text!r}: ']' without '['")
        return [name]
    head, _, rest = name.partition("[")
    spec, closed, tail = rest.partition("]")
    if not closed:
        raise where.error(f"invalid host range in {text!r}: '[' without ']'")
    if "]" in head:
        raise where.error(f"invalid host name {text!r}: ']' without '['")
    items = _range_items(spec, text, where)
    if not items:
        raise where.error(f"host range [{spec}] in {text!r} expands to no hosts")
    names: list[str] = []
    for item in items:
        names += _expand_ranges(head + item + tail, text, where)
        if len(names) > _RANGE_BUDGET:
            break
    return names


def _range_items(spec: str, text: str, where: Where) -> list[str]:
    bounds = spec.split(":")
    if len(bounds) not in (2, 3) or not bounds[1]:
        raise where.error(f"invalid host range [{spec}] in {text!r} (expected [start:end:step])")
    start, end = bounds[0] or "0", bounds[1]
    try:
        step = int(bounds[2]) if len(bounds) == 3 else 1
    except ValueError:
        raise where.error(f"invalid step in host range [{spec}] in {text!r}") from None
    if step < 1:
        raise where.error(f"invalid step in host range [{spec}] in {text!r}")
    letters = string.ascii_letters
    if len(start) == 1 and len(end) == 1 and start in letters and end in letters:
        first, last = letters.index(start), letters.index(end)
        if first > last:
            raise where.error(f"invalid host range [{spec}] in {text!r}: start after end")
        return list(letters[first : last + 1 : step])
    if not (start.isdigit() and end.isdigit()):
        raise where.error(f"invalid host range [{spec}] in {text!r}")
    width = len(start) if start.startswith("0") and len(start) > 1 else 0
    if width and len(end) != width:
        raise where.error(
            f"invalid host range [{spec}] in {text!r}: a zero-padded start and the end "
            "must have the same width"
        )
    if (int(end) - int(start)) // step >= _RANGE_BUDGET:
        raise where.error(f"host range {text!r} expands to more than {_RANGE_BUDGET} hosts")
    return [str(number).zfill(width) for number in range(int(start), int(end) + 1, step)]
