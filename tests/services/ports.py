"""Loopback ports for tests, found so that chance cannot change what a test sees.

A released port number can come round again: the kernel hands any free port to the next
``bind(port 0)`` (a tunnel's listener, a test server, a service), so a port found by binding
and releasing it is "closed" only until something else happens to get it, and two ports
found one after the other can be the same port.

- :func:`closed_port` keeps its socket bound, never listening, until the test ends: a
  connection to it is refused (as to a port nobody listens on), and no other socket can be
  given that port meanwhile. :func:`held_closed_port` does the same for a fixture's scope.
- :func:`free_ports` finds several ports for servers at once, so they differ.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

_held: list[socket.socket] = []


def _bound(address: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((address, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def closed_port(address: str = "127.0.0.1") -> int:
    """A port of ``address`` nothing listens on, and nothing can, until the running test ends."""
    sock = _bound(address)
    _held.append(sock)
    return int(sock.getsockname()[1])


def closed_ports(count: int, address: str = "127.0.0.1") -> list[int]:
    """``count`` different ports as :func:`closed_port` gives them."""
    return [closed_port(address) for _ in range(count)]


@contextlib.contextmanager
def held_closed_port(address: str = "127.0.0.1") -> Iterator[int]:
    """A closed port for the ``with`` block (a fixture's lifetime), not just one test."""
    with _bound(address) as sock:
        yield int(sock.getsockname()[1])


def free_ports(count: int, address: str = "127.0.0.1") -> list[int]:
    """``count`` different ports nothing listens on, for servers to bind: all are bound at
    once before any is released, so the kernel cannot give one out twice."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(_bound(address)) for _ in range(count)]
        return [int(s.getsockname()[1]) for s in sockets]


@pytest.fixture(autouse=True)
def _closed_ports_stay_closed() -> Iterator[None]:
    """Release the ports :func:`closed_port` held for the test (after its other fixtures)."""
    yield
    while _held:
        _held.pop().close()
