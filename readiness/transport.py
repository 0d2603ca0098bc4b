"""How a command reaches a host: one small interface, a local and an SSH implementation.

A transport runs an *argv* (never a shell string) with bytes on stdin, a timeout
and an output cap. Parameters travel on stdin as data, so no inventory value or
check parameter is ever interpolated into a remote command line.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
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
    "Session",
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
    running: bool = False  # a session's exchange ended with the process waiting for more

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

    Optionally, ``start(argv, *, timeout, stdin) -> Session`` starts one process that answers
    several requests (the probe's rounds: one command per host); callers fall back to
    :meth:`run` per request without it. Optionally, ``tunnel(host, port) -> (host, port)`` makes a service that the host
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


class Session(Protocol):
    """One running remote process fed several requests (see ``Transport.start``)."""

    @property
    def alive(self) -> bool: ...

    def exchange(
        self,
        stdin: bytes,
        *,
        until: Callable[[bytes], bool],
        timeout: float,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> CommandResult:
        """Send ``stdin``; read stdout until ``until(chunk)`` says the answer is complete
        (the result is then ``running``), the process exits, ``timeout`` or ``max_output``."""
        ...

    def close(self) -> None: ...


class Connector(Protocol):
    """Opens a transport to a host; built once per run (parses known_hosts/keys once)."""

    def open(self, host: HostLike) -> Transport: ...

    def close(self) -> None: ...


class LocalTransport:
    """Runs commands on the controller itself (the inventory's ``local`` host).

    :meth:`close` ends what is still running, as closing an SSH pty does on a host:
    SIGHUP to each command's process group (the bootstrap then kills what it started),
    SIGKILL after a short grace. A controller that dies without closing it (SIGKILL) hangs
    its commands up too (``PR_SET_PDEATHSIG``, Linux).
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
        proc = self._spawn(argv)
        timed_out = False
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _hang_up(proc)
            out, err = _drain(proc)
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

    def start(self, argv: Sequence[str], *, timeout: float, stdin: bytes = b"") -> LocalSession:
        """One local process for several requests (see :class:`Session`); ``stdin`` is
        its first request."""
        proc = self._spawn(argv)
        session = LocalSession(proc, lambda: self._forget(proc))
        session.send(stdin)
        return session

    def _spawn(self, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        """A child with pipes, in a new session so a timeout or close kills the whole
        process group, not just the leader; tracked until it is reaped or forgotten."""
        with self._lock:
            if self._closed:
                raise TransportError("local transport is closed")
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=_hang_up_with_parent(),  # noqa: PLW1509 - one prctl call, below
            )
            self._running.add(proc)
        return proc

    def _forget(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.discard(proc)

    def tunnel(self, host: str, port: int) -> tuple[str, int]:
        """The controller is the host: its services are reached where they are."""
        return host, port

    def close(self) -> None:
        with self._lock:
            self._closed = True
            running = list(self._running)
        for proc in running:
            _hang_up(proc)


class LocalSession:
    """A local process fed request after request; closing it ends it (SIGHUP, SIGKILL)."""

    def __init__(self, proc: subprocess.Popen[bytes], forget: Callable[[], None]) -> None:
        self.proc, self._forget = proc, forget

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, data: bytes) -> None:
        if not data or self.proc.stdin is None:
            return
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it has exited: what it wrote and its exit code say why

    def exchange(
        self,
        stdin: bytes,
        *,
        until: Callable[[bytes], bool],
        timeout: float,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> CommandResult:
        import selectors

        started = time.monotonic()
        deadline = started + timeout
        proc = self.proc
        if proc.stdout is None or proc.stderr is None:
            raise TransportError("local session has no pipes")
        self.send(stdin)
        out: list[bytes] = []
        err: list[bytes] = []
        n_out, state, complete = 0, "", False
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ, out)
            sel.register(proc.stderr, selectors.EVENT_READ, err)
            while sel.get_map() and not complete:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    state = "timed_out"
                    break
                for key, _ in sel.select(min(remaining, 1.0)):
                    data = os.read(key.fd, 65536)
                    if not data:
                        sel.unregister(key.fileobj)
                        continue
                    if key.data is err:
                        if sum(map(len, err)) < 65536:
                            err.append(data)
                        continue
                    n_out += len(data)
                    if n_out > max_output:
                        out.append(data[: max(0, max_output - (n_out - len(data)))])
                        state = "truncated"
                        break
                    out.append(data)
                    complete = until(data)
                if state:
                    break
        code = -1
        if not complete and not state:
            try:
                code = proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                state = "timed_out"
        return CommandResult(
            exit_code=code,
            stdout=b"".join(out),
            stderr=b"".join(err)[:65536],
            duration_s=time.monotonic() - started,
            timed_out=state == "timed_out",
            truncated=state == "truncated",
            running=complete,
        )

    def close(self) -> None:
        proc = self.proc
        if proc.poll() is None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.write(b"\n")  # "no more requests": it exits by itself
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(_GRACE_S)
        if proc.poll() is None:
            _hang_up(proc)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(_GRACE_S)
        self._forget()


def _identity(host: str, port: int) -> tuple[str, int]:
    return host, port


def reach_through(transport: object) -> Reach:
    """``transport.tunnel`` when it has one, else the identity (nothing is tunnelled)."""
    tunnel = getattr(transport, "tunnel", None)
    return tunnel if callable(tunnel) else _identity


_GRACE_S = 0.5
_DRAIN_S = 1.0  # how long a hung-up command's pipes are still read (see _drain)
_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl (Linux), resolved once in the controller; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def _hang_up_with_parent() -> Callable[[], None] | None:
    """For the child, before exec: SIGHUP when the thread that started it ends, the whole
    controller killed (SIGKILL, the OOM killer) included, as closing an SSH pty hangs up a
    remote probe; the bootstrap then ends what it started and exits. Through pipes a local
    probe got no word of that, and ran on until its own deadline (docs/fleet.md). None
    (posix_spawn stays possible) where there is no prctl."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent, hup = os.getpid(), int(signal.SIGHUP)

    def arm() -> None:  # in the child between fork and exec: no imports
        prctl(_PR_SET_PDEATHSIG, hup, 0, 0, 0)
        if os.getppid() != parent:  # the controller died before the call above
            os.kill(os.getpid(), hup)

    return arm


def _drain(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """What a hung-up command still had in its pipes, read for at most ``_DRAIN_S``: its
    group is dead, but a process it moved to a session of its own (``setsid``, SIGHUP
    ignored) can hold the pipes open for as long as it likes. Past the bound the pipes
    are closed and what was read is kept."""
    try:
        return proc.communicate(timeout=_DRAIN_S)
    except subprocess.TimeoutExpired as exc:
        out, err = exc.stdout or b"", exc.stderr or b""
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(_GRACE_S)  # the leader was SIGKILLed: reaped at once
    return (
        out if isinstance(out, bytes) else out.encode(),
        err if isinstance(err, bytes) else err.encode(),
    )


def _hang_up(proc: subprocess.Popen[bytes]) -> None:
    """SIGHUP the command's group, SIGKILL it when it is still there after a short grace."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGHUP)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(_GRACE_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
