"""A local port forwarder over an open SSH connection (paramiko "direct-tcpip" channels).

Controller-side checks (psycopg, requests) cannot reach a service that listens only on
the audited host's loopback. A :class:`Tunnel` listens on ``127.0.0.1:<ephemeral>`` of
the controller (never on any other address) and, for each client it accepts, opens a
"direct-tcpip" channel to ``(dest_host, dest_port)`` *as the host sees it* on the host's
already-open transport, then pumps bytes both ways.

Why our own forwarder: Fabric's ``Connection.forward_local`` is a context manager that
binds a port the caller must choose and cannot report an ephemeral one, so parallel
audits would race for ports. Here the kernel picks a free port and we report it.

Only the controller process may use a tunnel: while it is open, the audited host's
loopback services are reachable at a port of the controller's loopback, where any local
user could connect. Each accepted connection's peer socket is looked up in the kernel's
socket table (``/proc/net/tcp``: the client's inode) and must be one of the file
descriptors of this process or of a process it started (``pg_dump``), owned by the
controller's own uid; any other connection is closed at once, before
a channel is opened, and counted in :attr:`TunnelStats.refused`. (A Unix socket in a
0700 directory would do the same for libpq, but not for ``requests``.) Where there is no
``/proc/net/tcp`` (not Linux) the check cannot be made and every local connection is
accepted, as before.

Threads: one accept thread per tunnel, one select-based pump thread per client
connection. Each pump moves at most :data:`CHUNK` bytes at a time in each direction
(blocking sends with a timeout), so memory per connection is bounded. :meth:`Tunnel.close`
closes the listener, every channel and every client socket, and joins the threads
(bounded).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from paramiko.common import CONNECTION_FAILED_CODE, MSG_CHANNEL_OPEN_FAILURE, cMSG_CHANNEL_OPEN

from .errors import TunnelError
from .netaddr import endpoint

__all__ = [
    "CHUNK",
    "LISTEN_ADDRESS",
    "PendingOpen",
    "Tunnel",
    "TunnelStats",
    "check_destination",
    "peer_is_this_process",
]

LISTEN_ADDRESS = "127.0.0.1"  # the only address a tunnel ever listens on
CHUNK = 32 * 1024
# What one tunnelled connection may bring from the host before it is cut: the service at the
# other end is the app user's to choose (a DSN or URL in its files), and a client library
# (libpq, requests) buffers a message whole, so an endless DataRow grew the controller until
# the host's deadline. Far above any answer a check reads (a benchmark's keep-alive included).
MAX_BYTES_FROM_HOST = 256 * 1024 * 1024
# What every tunnelled connection open at once, all hosts together, may have brought. The
# bound above is per connection, and `forks` hosts are audited at once: 32 hostile hosts
# could still make the controller hold ~8 GB. Past this total the connection that has
# brought the most is cut (not the one whose chunk came last), so a host flooding the
# controller loses its connection and an honest host reading a small answer keeps its own.
MAX_BYTES_FROM_HOSTS = 1024 * 1024 * 1024
_POLL_S = 0.5  # how often a pump re-checks that its tunnel is still open
_JOIN_S = 2.0


@dataclass
class TunnelStats:
    """What went through a tunnel: connections accepted, channels that failed, bytes moved."""

    connections: int = 0
    failed: int = 0
    refused: int = 0  # connections from another process (another local user), closed
    cut: int = 0  # connections closed at MAX_BYTES_FROM_HOST or MAX_BYTES_FROM_HOSTS
    bytes_out: int = 0  # client → host
    bytes_in: int = 0  # host → client
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


class _Meter:
    """What one open tunnelled connection has brought from its host, and whether it is cut."""

    __slots__ = ("brought", "cut")

    def __init__(self) -> None:
        self.brought = 0
        self.cut = False


class _BroughtFromHosts:
    """The bytes every open tunnelled connection of this process has brought from its host.

    A connection is charged for each chunk before the chunk is passed on; a charge that takes
    the connection past MAX_BYTES_FROM_HOST, or all of them past MAX_BYTES_FROM_HOSTS, cuts a
    connection: this one, or the open one that has brought the most. A closed connection's
    bytes are forgotten (its client has what it read; the check holding it ends with it).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[_Meter] = set()
        self.total = 0

    def open(self) -> _Meter:
        meter = _Meter()
        with self._lock:
            self._open.add(meter)
        return meter

    def charge(self, meter: _Meter, n: int) -> bool:
        """Count ``n`` more bytes from ``meter``'s host; False when its connection is cut."""
        with self._lock:
            if meter.cut:
                return False
            meter.brought += n
            self.total += n
            if meter.brought > MAX_BYTES_FROM_HOST:
                self._cut(meter)
            while self.total > MAX_BYTES_FROM_HOSTS and self._open:
                self._cut(max(self._open, key=lambda m: m.brought))
            return not meter.cut

    def close(self, meter: _Meter) -> None:
        with self._lock:
            if meter in self._open:
                self._open.discard(meter)
                self.total -= meter.brought

    def _cut(self, meter: _Meter) -> None:
        meter.cut = True
        self._open.discard(meter)
        self.total -= meter.brought


_BROUGHT = _BroughtFromHosts()


def _open_channel(
    transport: paramiko.Transport,
    dest: tuple[str, int],
    origin: tuple[str, int],
    timeout: float,
    via: str,
) -> paramiko.Channel:
    """Open a direct-tcpip channel; every failure becomes a one-line :class:`TunnelError`."""
    return PendingOpen(transport, dest, origin, via).result(timeout)


def _tunnel_error(exc: Exception, dest: tuple[str, int], via: str) -> TunnelError:
    """The one-line :class:`TunnelError` for a channel open that failed with ``exc``."""
    where = endpoint(*dest)
    if isinstance(exc, TunnelError):
        return exc
    if isinstance(exc, paramiko.ChannelException):
        if exc.code == 1:  # OPEN_ADMINISTRATIVELY_PROHIBITED
            return TunnelError(
                f"cannot tunnel to {where}: the SSH server on {via} does not allow TCP "
                "forwarding (AllowTcpForwarding)"
            )
        # paramiko drops sshd's reason text; for the loopback addresses tunnels are made
        # for, "connect failed" means nothing listens there.
        return TunnelError(
            f"connection refused: {via} could not connect to {where} through SSH "
            f"({exc.text}: nothing listening there, or the address is unreachable from {via})",
            refused=True,
        )
    text = str(exc) or type(exc).__name__
    return TunnelError(f"cannot tunnel to {where} through {via}: {text}")


_FAILURES_LOCK = threading.Lock()


def _open_failures(transport: paramiko.Transport) -> dict[int, paramiko.ChannelException]:
    """Why each refused channel of ``transport`` was refused, by channel id.

    paramiko keeps one "saved exception" per transport: when several channel opens fail at
    once (a host's tunnels opened together), one caller takes another's reason and the
    last gets "Unable to open channel.". Recording each failure by its channel id (the
    transport's handler table is meant to be extended) keeps every reason with its own
    channel.
    """
    with _FAILURES_LOCK:
        failures: dict[int, paramiko.ChannelException] | None = getattr(
            transport, "_readiness_open_failures", None
        )
        if failures is not None:
            return failures
        table = transport._handler_table  # type: ignore[attr-defined]
        original = table[MSG_CHANNEL_OPEN_FAILURE]
        recorded: dict[int, paramiko.ChannelException] = {}

        def record(m: paramiko.Message) -> None:
            peek = paramiko.Message(m.get_remainder())
            chanid, reason = peek.get_int(), peek.get_int()
            text = CONNECTION_FAILED_CODE.get(reason, "(unknown code)")
            recorded[chanid] = paramiko.ChannelException(reason, text)
            original(m)

        table[MSG_CHANNEL_OPEN_FAILURE] = record
        transport._readiness_open_failures = recorded  # type: ignore[attr-defined]
        return recorded


class PendingOpen:
    """A direct-tcpip channel open sent to the server and not yet answered.

    Sending costs no wait, so several opens (a host's service tunnels) go out together
    and share one round trip; :meth:`result` then waits for this one's answer. The
    failure reason is this channel's own, even while other channels of the transport
    are being opened. Never answered (the transport closed, or no :meth:`result` call),
    the channel goes with the transport.
    """

    def __init__(
        self,
        transport: paramiko.Transport,
        dest: tuple[str, int],
        origin: tuple[str, int],
        via: str,
        *,
        send: bool = True,
    ) -> None:
        """Register the channel and build its open message; send it too unless ``send``
        is false (then :meth:`send` must follow: registering takes no I/O, so it can be
        done under a caller's lock)."""
        self.transport, self.dest, self.via = transport, dest, via
        self.chanid = -1
        self.error: TunnelError | None = None
        self._event = threading.Event()
        self._message: paramiko.Message | None = None
        self._channel: paramiko.Channel | None = None
        if not transport.is_active():
            self.error = TunnelError(
                f"cannot tunnel to {endpoint(*dest)}: the SSH connection to {via} is closed"
            )
            return
        self._failures = _open_failures(transport)
        t: Any = transport
        with t.lock:
            window_size = t._sanitize_window_size(None)
            max_packet_size = t._sanitize_packet_size(None)
            self.chanid = chanid = t._next_channel()
            m = paramiko.Message()
            m.add_byte(cMSG_CHANNEL_OPEN)
            m.add_string("direct-tcpip")
            m.add_int(chanid)
            m.add_int(window_size)
            m.add_int(max_packet_size)
            m.add_string(dest[0])
            m.add_int(dest[1])
            m.add_string(origin[0])
            m.add_int(origin[1])
            # paramiko's channel map holds its channels weakly: this reference keeps
            # the channel (and the answer to its open) alive until it is read.
            self._channel = chan = paramiko.Channel(chanid)
            t._channels.put(chanid, chan)
            t.channel_events[chanid] = self._event
            t.channels_seen[chanid] = True
            chan._set_transport(transport)  # type: ignore[attr-defined]
            chan._set_window(window_size, max_packet_size)  # type: ignore[attr-defined]
        self._message = m
        if send:
            self.send()

    def send(self) -> None:
        """Send the open (once); a failure is this open's answer."""
        m, self._message = self._message, None
        if m is None:
            return
        try:
            self.transport._send_user_message(m)  # type: ignore[attr-defined]
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.error = _tunnel_error(exc, self.dest, self.via)
            self._event.set()  # a caller already waiting in result() reads it now

    def result(self, timeout: float) -> paramiko.Channel:
        """The open channel, once the server answers (within ``timeout`` seconds); a
        refusal, a closed connection or no answer raises :class:`TunnelError`."""
        if self.error is not None:
            raise self.error
        transport, chanid, failures = self.transport, self.chanid, self._failures
        t: Any = transport
        deadline = time.monotonic() + timeout
        try:
            while not self._event.wait(0.1):
                if not transport.is_active():
                    raise failures.pop(chanid, None) or paramiko.SSHException(
                        "Unable to open channel."
                    )
                if time.monotonic() > deadline:
                    raise paramiko.SSHException("Timeout opening channel.")
            if self.error is not None:
                raise self.error
            opened = t._channels.get(chanid)
            if opened is not None:
                failures.pop(chanid, None)
                return opened  # type: ignore[no-any-return]
            raise failures.pop(chanid, None) or paramiko.SSHException("Unable to open channel.")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise _tunnel_error(exc, self.dest, self.via) from None

    def check(self, timeout: float) -> None:
        """:func:`check_destination` for this open: the channel closed once it is open."""
        self.result(timeout).close()


_PROC_TCP = Path("/proc/net/tcp")


def _hex_endpoint(address: tuple[str, int]) -> str:
    """``127.0.0.1:5432`` as the kernel prints it in /proc/net/tcp (``0100007F:1538``)."""
    (packed,) = struct.unpack("=I", socket.inet_aton(address[0]))
    return f"{packed:08X}:{address[1]:04X}"


def _socket_inode(local: tuple[str, int], remote: tuple[str, int]) -> tuple[int, int] | None:
    """(inode, owner uid) of the TCP socket bound to ``local`` and connected to ``remote``."""
    want = (_hex_endpoint(local), _hex_endpoint(remote))
    with _PROC_TCP.open(encoding="ascii") as table:
        next(table, None)  # header
        for line in table:
            fields = line.split()
            if len(fields) > 9 and (fields[1], fields[2]) == want:
                return int(fields[9]), int(fields[7])
    return None


_MAX_DESCENDANTS = 256


def _descendants() -> list[int]:
    """This process's children, grandchildren, ... (``pg_dump`` runs as a child and
    connects through the tunnel too); bounded in count."""
    found: list[int] = []
    parents = [os.getpid()]
    while parents and len(found) < _MAX_DESCENDANTS:
        pid = parents.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                children = [int(c) for c in (task / "children").read_text().split()]
                found.extend(children)
                parents.extend(children)
    return found[:_MAX_DESCENDANTS]


def _socket_inodes(pids: list[int]) -> set[int]:
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = str(fd.readlink())
                    if target.startswith("socket:["):
                        inodes.add(int(target[8:-1]))
    return inodes


def peer_is_this_process(origin: tuple[str, int], listener: tuple[str, int]) -> bool:
    """Whether the client that connected from ``origin`` to ``listener`` is this process
    (or a process it started, such as ``pg_dump``).

    True without checking where the kernel has no /proc/net/tcp (not Linux).
    """
    if not _PROC_TCP.exists():
        return True
    try:
        found = _socket_inode(origin, listener)
    except (OSError, ValueError):
        return False
    if found is None:
        return False
    inode, uid = found
    # inode 0: the client closed already (TIME_WAIT). Another uid: a process the
    # controller started may still have switched user (runuser, sudo): never served.
    if not inode or uid != os.geteuid():
        return False
    return inode in _socket_inodes([os.getpid()]) or inode in _socket_inodes(_descendants())


def check_destination(
    transport: paramiko.Transport, dest: tuple[str, int], *, timeout: float, via: str
) -> None:
    """Open and close one channel to ``dest``: raise :class:`TunnelError` if it cannot be reached.

    Clients of a tunnel whose destination is down would otherwise see only "server closed
    the connection", not the "connection refused" they would see directly.
    """
    PendingOpen(transport, dest, (LISTEN_ADDRESS, 0), via).check(timeout)


class Tunnel:
    """Forward ``127.0.0.1:<port>`` on the controller to ``dest`` as seen from the host."""

    def __init__(
        self,
        transport: paramiko.Transport,
        dest: tuple[str, int],
        *,
        timeout: float,
        via: str,
        send_timeout: float = 30.0,
    ) -> None:
        self.transport, self.dest, self.via = transport, dest, via
        self.timeout, self.send_timeout = timeout, send_timeout
        self.stats = TunnelStats()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._pumps: set[threading.Thread] = set()
        self._ends: set[socket.socket | paramiko.Channel] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((LISTEN_ADDRESS, 0))
        self._listener.listen(64)
        self._listener.settimeout(_POLL_S)
        self.address: tuple[str, int] = (LISTEN_ADDRESS, int(self._listener.getsockname()[1]))
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"readiness-tunnel-{self.address[1]}", daemon=True
        )
        self._acceptor.start()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def threads(self) -> list[threading.Thread]:
        """The tunnel's live threads (acceptor and pumps), for tests and diagnostics."""
        with self._lock:
            pumps = list(self._pumps)
        return [t for t in [self._acceptor, *pumps] if t.is_alive()]

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, origin = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was closed
                return
            if not peer_is_this_process(origin, self.address):
                self.stats.add(refused=1)  # another local user: no channel is ever opened
                _close_end(client)
                continue
            self.stats.add(connections=1)
            pump = threading.Thread(
                target=self._serve,
                args=(client, origin),
                name=f"readiness-tunnel-{self.address[1]}-{origin[1]}",
                daemon=True,
            )
            with self._lock:
                if self._closed.is_set():
                    client.close()
                    return
                self._pumps.add(pump)
                self._ends.add(client)
            pump.start()

    def _serve(self, client: socket.socket, origin: tuple[str, int]) -> None:
        chan: paramiko.Channel | None = None
        try:
            try:
                chan = _open_channel(self.transport, self.dest, origin, self.timeout, self.via)
            except TunnelError:
                self.stats.add(failed=1)
                return
            with self._lock:
                if self._closed.is_set():
                    return
                self._ends.add(chan)
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                # A reset, a closed tunnel or a stuck peer (send timeout) ends this connection.
                _pump(client, chan, self._closed, self.stats, self.send_timeout)
        finally:
            for end in (client, chan):
                if end is not None:
                    _close_end(end)
            with self._lock:
                self._ends.discard(client)
                if chan is not None:
                    self._ends.discard(chan)
                self._pumps.discard(threading.current_thread())

    def close(self) -> None:
        """Stop accepting, close every connection, join the threads (bounded). Idempotent."""
        self._closed.set()
        with contextlib.suppress(OSError):
            # shutdown first: it wakes the acceptor blocked in accept() at once; close
            # alone leaves it there until its next poll (0.5 s per tunnel, one tunnel
            # after another when a Ctrl-C hangs up every host)
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            ends, pumps = list(self._ends), list(self._pumps)
        for end in ends:
            _close_end(end)
        for thread in [self._acceptor, *pumps]:
            if thread is not threading.current_thread():
                thread.join(_JOIN_S)


def _close_end(end: socket.socket | paramiko.Channel) -> None:
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
        if isinstance(end, socket.socket):
            # shutdown first: it wakes a thread blocked in send/recv, close alone may not.
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        end.close()


def _pump(
    client: socket.socket,
    chan: paramiko.Channel,
    closed: threading.Event,
    stats: TunnelStats,
    send_timeout: float,
) -> None:
    """Move bytes both ways until both sides have sent EOF (half-close is honoured), or
    the connection is cut: it has brought MAX_BYTES_FROM_HOST, or it has brought the most
    when all open connections together pass MAX_BYTES_FROM_HOSTS (then it is closed: the
    client sees the server go away)."""
    client.settimeout(send_timeout)
    chan.settimeout(send_timeout)
    meter = _BROUGHT.open()
    try:
        _move(client, chan, closed, stats, meter)
    finally:
        _BROUGHT.close(meter)


def _move(
    client: socket.socket,
    chan: paramiko.Channel,
    closed: threading.Event,
    stats: TunnelStats,
    meter: _Meter,
) -> None:
    reading: list[socket.socket | paramiko.Channel] = [client, chan]
    while reading and not closed.is_set():
        if meter.cut:  # cut while idle: another connection's chunk passed the total
            stats.add(cut=1)
            return
        ready, _, _ = select.select(reading, [], [], _POLL_S)
        if client in ready:
            data = client.recv(CHUNK)
            if data:
                chan.sendall(data)
                stats.add(bytes_out=len(data))
            else:
                reading.remove(client)
                chan.shutdown_write()
        if chan in ready:
            data = chan.recv(CHUNK)
            if data:
                if not _BROUGHT.charge(meter, len(data)):
                    stats.add(cut=1)
                    return
                client.sendall(data)
                stats.add(bytes_in=len(data))
            else:
                reading.remove(chan)
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_WR)
