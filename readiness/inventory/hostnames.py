"""Host entries: ``web[01:03]:2222`` → web01..web03 on port 2222, as Ansible's parse_address reads them.

Ranges follow Ansible: ``[start:end]`` or ``[start:end:step]``, inclusive; an empty start is 0;
a start with a leading zero sets the width (and then start and end must be as wide); single
letters count through ``a..z`` then ``A..Z``. Several ranges in one name multiply.
"""

from __future__ import annotations

import ipaddress
import re
import string

from .source import Where

__all__ = ["expand_host", "split_address"]

_RANGE_BUDGET = 10_000  # hosts one name like web[0001:9999] may expand to
_MAX_DIGITS = 30  # a port or range bound longer than this is refused (int() of >4300 fails)
_BRACKETED_WITH_PORT = re.compile(r"\[(?P<host>[^\[\]]+)\](?::(?P<port>[^:\[\]]*))?")
_NAME_WITH_PORT = re.compile(r"(?P<host>(?:[^:\[\]]|\[[^\]]*\])+):(?P<port>[^:\[\]]*)")

# Ansible's parse_address(text, allow_ranges=True), written out: an optional port (after
# "[address]:" or after a name without ':'), then an IPv4 or IPv6 address or a host name, each
# of which may hold ranges. Text that is not one of these is no address to Ansible: it takes
# the whole text as one host name, ':port' included.
_PORT_FORMS = (
    re.compile(r"^\[(.+)\]:([0-9]+)$"),
    re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$"),
)
_NUMERIC_RANGE = r"\[[0-9]+:[0-9]+(?::[0-9]+)?\]"
_HEX_RANGE = r"\[[0-9a-f]+:[0-9a-f]+(?::[0-9]+)?\]"
_NAME_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_V4 = rf"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{_NUMERIC_RANGE})"
_V6 = rf"(?:[0-9a-f]{{1,4}}|{_HEX_RANGE})"
_IPV4 = rf"(?:{_V4}\.){{3}}{_V4}"
_IPV6 = "|".join(
    (
        rf"(?:{_V6}:){{7}}{_V6}",
        rf"(?:{_V6}:){{1,6}}:",
        *(rf"(?:{_V6}:){{{a}}}(?::{_V6}){{1,{7 - a}}}" for a in range(1, 7)),
        rf":(?::{_V6}){{1,6}}",
        rf"{_V6}?::",
        rf"(?:0:){{6}}(?:{_V6}\.){{3}}{_V6}",
        rf"::(?:ffff:)?(?:{_V6}\.){{3}}{_V6}",
        rf"(?:0:){{5}}ffff:(?:{_V6}\.){{3}}{_V6}",
    )
)
_LABEL = rf"(?:\w|{_NAME_RANGE})(?:[\w-]|{_NAME_RANGE})*(?<![_-])"
_ADDRESS = re.compile(rf"^(?:{_IPV4}|(?:{_IPV6})|{_LABEL}(?:\.{_LABEL})*)$", re.IGNORECASE)


def split_address(text: str) -> tuple[str, str | None] | None:
    """``(address, port digits or None)`` as Ansible's ``parse_address`` reads ``text`` with
    ranges allowed; None when Ansible does not read it as an address."""
    address, port = text, None
    for form in _PORT_FORMS:
        match = form.match(address)
        if match:
            address, port = match[1], match[2]
    return (address, port) if _ADDRESS.match(address) else None


def expand_host(text: str, where: Where) -> tuple[list[str], int | None]:
    """Names and port of a host entry: ``web[01:03]:2222`` → web01..web03 on port 2222."""
    name, port = _split_port(text, where)
    names = _expand_ranges(name, text, where)
    if len(names) > _RANGE_BUDGET:
        raise where.error(f"host range {text!r} expands to more than {_RANGE_BUDGET} hosts")
    return names, port


def _split_port(text: str, where: Where) -> tuple[str, int | None]:
    """As Ansible: ``name:port`` and ``[address]:port`` only when what is before the port is
    a valid host name or address; other text is one host name, ranges still expanded."""
    parsed = split_address(text)
    if parsed is not None:
        address, port = parsed
        return address, None if port is None else _port_number(port, text, where)
    bracketed = _BRACKETED_WITH_PORT.fullmatch(text)
    if bracketed and _is_ip(bracketed["host"]) and bracketed["port"] is None:
        # As Ansible: brackets only ever set an address apart from its port ([::1]:2222).
        # Accepting [::1] alone would make an inventory that Ansible refuses.
        raise where.error(
            f"invalid host {text!r}: brackets need a port ({text}:22); "
            f"without one write {bracketed['host']}"
        )
    with_port = bracketed or _NAME_WITH_PORT.fullmatch(text)
    if with_port and with_port["port"] is not None:
        host, port = with_port["host"], with_port["port"]
        if not port:
            raise where.error(f"invalid host {text!r}: a trailing ':' must be followed by a port")
        if not re.fullmatch("[0-9]+", port):
            raise where.error(f"invalid port in host {text!r} (write host:PORT with a number)")
        # Ansible reads no port here: it makes one host named {text}, whose address is that
        # whole text; readiness would log in to another name than Ansible's.
        raise where.error(
            f"invalid host {text!r}: Ansible reads ':{port}' as a port only after a valid "
            f"host name or address, and {host!r} is not one (a label does not start with '-' "
            f"nor end in '-' or '_'); fix the name, or set ansible_port"
        )
    if text.endswith(":"):
        raise where.error(f"invalid host {text!r}: a trailing ':' must be followed by a port")
    return text, None


def _port_number(digits: str, text: str, where: Where) -> int:
    if len(digits.lstrip("0")) > 5:
        raise where.error(f"invalid port in host {text!r}")
    return int(digits)


def _number(text: str) -> bool:
    """Decimal digits (of any script, as int() reads them), few enough to compute with."""
    return text.isdecimal() and len(text) <= _MAX_DIGITS


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
    if not (_number(start) and _number(end)):
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
