"""``host:port`` as people and URLs write it: an IPv6 address in brackets (``[::1]:5432``).

``f"{host}:{port}"`` turns ``::1`` and port 38991 into ``::1:38991``, which reads as an
address with no port (or a different address).
"""

from __future__ import annotations

__all__ = ["bracket", "endpoint"]


def bracket(host: str) -> str:
    """An IPv6 address in brackets; names, IPv4 addresses, socket paths unchanged."""
    return f"[{host}]" if ":" in host and not host.startswith(("[", "/")) else host


def endpoint(host: str, port: int | str) -> str:
    return f"{bracket(host)}:{port}"
