"""``host:port`` as people and URLs write it: an IPv6 address in brackets (``[::1]:5432``).

``f"{host}:{port}"`` turns ``::1`` and port 38991 into ``::1:38991``, which reads as an
address with no port (or a different address).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import unquote

__all__ = ["bracket", "endpoint", "loopback_host", "url_host"]


def bracket(host: str) -> str:
    """An IPv6 address in brackets; names, IPv4 addresses, socket paths unchanged."""
    return f"[{host}]" if ":" in host and not host.startswith(("[", "/")) else host


def endpoint(host: str, port: int | str) -> str:
    return f"{bracket(host)}:{port}"


def url_host(hostname: str) -> str:
    """The host an HTTP client connects to for a URL's ``hostname`` (``urlsplit``'s):
    percent-decoded, as urllib3 decodes it (``%31%32%37.0.0.1`` is ``127.0.0.1``)."""
    return unquote(hostname)


def loopback_host(host: str) -> bool:
    """True when connecting to ``host`` reaches this machine: every spelling the client's
    ``getaddrinfo`` reads as a loopback or unspecified address (``127.1``, ``0x7f.1``,
    ``2130706433``, ``0177.0.0.1``, ``0``, ``[::ffff:127.0.0.1]``, ``[::]``), ``localhost``
    and ``*.localhost`` (with or without the trailing dot), percent-encoded or not, a unix
    socket directory, and a name this machine's resolver maps to one of those (Debian's
    ``127.0.1.1 <hostname>``).

    ``ipaddress`` alone knows only the dotted-quad form, so ``http://0x7f.1:8080/`` of a
    remote host was asked from the controller, where requests connected to the
    controller's own loopback (tests/security/test_url_host_spellings.py compares this
    with where requests really connects).
    """
    name = unquote(host).strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not name or name.startswith("/"):
        return True
    bare = name.rstrip(".")
    if bare == "localhost" or bare.endswith(".localhost"):
        return True
    for candidate in dict.fromkeys((name.split("%", 1)[0], bare)):
        numeric = _addresses(candidate, socket.AI_NUMERICHOST)
        if numeric:
            return any(_this_machine(a) for a in numeric)
    return any(_this_machine(a) for a in _addresses(name, 0))


def _addresses(name: str, flags: int) -> list[str]:
    """The addresses ``getaddrinfo`` gives ``name`` (what the client connects to), [] when
    it gives none."""
    if not name or len(name) > 253:
        return []
    try:
        found = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM, flags=flags)
    except (OSError, UnicodeError, ValueError):
        return []
    return [str(info[4][0]) for info in found]


def _this_machine(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified
