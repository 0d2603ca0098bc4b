"""How a command reaches a host: one small interface, a local and an SSH implementation.

A transport runs an *argv* (never a shell string) with bytes on stdin, a timeout
and an output cap. Parameters travel on stdin as data, so no inventory value or
check parameter is ever interpolated into a remote command line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .errors import TransportError

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "CommandResult",
    "ConnectionSettings",
    "Connector",
    "HostLike",
    "LocalTransport",
    "Reach",
    "Transport",
    "reach_through",
]

DEFAULT_MAX_OUTPUT = 8 * 1024 * 1024


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    duration_s: float
    timed_out: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.truncated

    def stderr_text(self, limit: int = 2000) -> str:
        return self.stderr[:limit].decode("utf-8", "replace").strip()


class HostLike(Protocol):
    """What the transport layer needs to know about a host (inventory hosts are one)."""

    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def user(self) -> str | None: ...
    @property
    def key_file(self) -> str | None: ...
    @property
    def groups(self) -> tuple[str, ...]: ...
    @property
    def local(self) -> bool: ...


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach hosts: the connect bound, host-key trust, ssh_config, identity."""

    connect_timeout: float = 10.0
    known_hosts: str | None = None
    ssh_config: str | None = None  # "" reads none; None reads ~/.ssh/config
    identity_file: str | None = None
    accept_new_host_keys: bool = False


# (host, port) as the audited host sees it → (host, port) the controller should connect to.
Reach = Callable[[str, int], tuple[str, int]]


class Transport(Protocol):
    """Runs commands on one host. Implementations must honour timeout and max_output.

    Optionally, ``tunnel(host, port) -> (host, port)`` makes a service that the host
    reaches at ``host:port`` reachable from the controller (see :func:`reach_through`);
    transports without it are used as they are.
    """

    @property
    def is_local(self) -> bool: ...

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes = b"",
        timeout: float,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> CommandResult: ...

    def close(self) -> None: ...


class Connector(Protocol):
    """Opens a transport to a host; built once per run (parses known_hosts/keys once)."""

    def open(self, host: HostLike) -> Transport: ...

    def close(self) -> None: ...


class LocalTransport:
    """Runs commands on the controller itself (the inventory's ``local`` host).

    :meth:`close` ends what is still running, as closing an SSH pty does on a host:
    SIGHUP to each command's process group (the bootstrap then kills what it started),
    SIGKILL after a short grace.
    """

    is_local = True

    def __init__(self) -> None:
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._closed = False

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes = b"",
        timeout: float,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> CommandResult:
        started = time.monotonic()
        # A new session so a timeout kills the whole process group, not just the leader.
        with self._lock:
            if self._closed:
                raise TransportError("local transport is closed")
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            self._running.add(proc)
        timed_out = False
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _hang_up(proc)
            out, err = proc.communicate()
        finally:
            with self._lock:
                self._running.discard(proc)
        truncated = len(out) > max_output
        return CommandResult(
            exit_code=proc.returncode if proc.returncode is not None else -1,
            stdout=out[:max_output],
            stderr=err[:65536],
            duration_s=time.monotonic() - started,
            timed_out=timed_out,
            truncated=truncated,
        )

    def tunnel(self, host: str, port: int) -> tuple[str, int]:
        """The controller is the host: its services are reached where they are."""
        return host, port

    def close(self) -> None:
        with self._lock:
            self._closed = True
            running = list(self._running)
        for proc in running:
            _hang_up(proc)


def _identity(host: str, port: int) -> tuple[str, int]:
    return host, port


def reach_through(transport: object) -> Reach:
    """``transport.tunnel`` when it has one, else the identity (nothing is tunnelled)."""
    tunnel = getattr(transport, "tunnel", None)
    return tunnel if callable(tunnel) else _identity


_GRACE_S = 0.5


def _hang_up(proc: subprocess.Popen[bytes]) -> None:
    """SIGHUP the command's group, SIGKILL it when it is still there after a short grace."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGHUP)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(_GRACE_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
