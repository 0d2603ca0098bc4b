"""SSH transport: one verified Fabric connection per host, one remote process per probe.

``SshConnector`` is built once per run. It parses known_hosts, the user's OpenSSH
config and the private keys once, then gives each connection only its own host's
keys: re-parsing them per connection costs O(hosts²) (see docs/performance.md).

Host keys are always verified. An unknown key fails with a fix-it message unless
``accept_new_host_keys`` (trust on first use) is set, in which case the key is
appended to the known_hosts file and reported on stderr. A changed key always fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import logging
import os
import re
import select
import shlex
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import paramiko
from fabric import Config, Connection
from paramiko.common import cMSG_CHANNEL_REQUEST

from .errors import HostKeyError, TransportError
from .runner import HostLike, RunOptions
from .transport import DEFAULT_MAX_OUTPUT, CommandResult, LocalTransport, Transport
from .tunnel import Tunnel, check_destination

__all__ = ["KnownHosts", "SshConnector", "SshStats", "SshTarget", "SshTransport"]

log = logging.getLogger("readiness.ssh")
# paramiko logs every failed handshake at ERROR from its transport thread; we report the
# failure ourselves, so keep its records off Python's last-resort stderr handler.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

_DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
_PORT_KEYS = ("readiness_port", "ansible_port", "ansible_ssh_port")
_ADDRESS_KEYS = ("readiness_host", "ansible_host", "ansible_ssh_host")
# ssh_config ``Match exec`` interpolates the host name into a shell command: only look up
# names that cannot carry shell syntax.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._:%@\[\]-]+$")
_STDERR_CAP = 65536
_READ_CHUNK = 65536


def _lookup_name(address: str, port: int) -> str:
    """The known_hosts spelling of a host: ``addr`` on port 22, ``[addr]:port`` otherwise."""
    return address if port == 22 else f"[{address}]:{port}"


class KnownHosts:
    """A known_hosts file parsed once, indexed by host name (hashed entries supported)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._plain: dict[str, list[paramiko.PKey]] = {}
        self._hashed: list[tuple[str, paramiko.PKey]] = []
        self._lock = threading.Lock()
        if path.is_file():
            for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                self._add_line(line, lineno)

    def _add_line(self, line: str, lineno: int) -> None:
        text = line.strip()
        if not text or text.startswith(
            ("#", "@")
        ):  # markers (@revoked, @cert-authority) unsupported
            return
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(text, lineno)
        except (paramiko.SSHException, ValueError):
            return
        if entry is None or entry.key is None:
            return
        for name in entry.hostnames:
            if name.startswith("|1|"):
                self._hashed.append((name, entry.key))
            else:
                self._plain.setdefault(name, []).append(entry.key)

    def keys_for(self, name: str) -> list[paramiko.PKey]:
        found = list(self._plain.get(name, ()))
        for hashed, key in self._hashed:
            salt = hashed.split("|")[2]
            if paramiko.HostKeys.hash_host(name, salt) == hashed:
                found.append(key)
        return found

    def record(self, name: str, key: paramiko.PKey) -> None:
        """Append ``name``'s key to the file (locked: other runs may be writing too)."""
        line = f"{name} {key.get_name()} {key.get_base64()}\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    fh.write(line)
                    fh.flush()
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
            self._plain.setdefault(name, []).append(key)


class _RejectUnknown(paramiko.RejectPolicy):
    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> NoReturn:
        raise HostKeyError(
            f"unknown host key for {hostname} ({key.get_name()} {key.fingerprint}): not in "
            "known_hosts; verify it and add it (ssh-keyscan -p PORT HOST >> known_hosts) "
            "or rerun with --accept-new-host-keys"
        )


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Records an unknown key (never a changed one: paramiko raises BadHostKeyException)."""

    def __init__(self, known: KnownHosts) -> None:
        self.known = known

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        self.known.record(hostname, key)
        log.warning(
            "readiness: recorded new host key for %s (%s %s) in %s",
            hostname,
            key.get_name(),
            key.fingerprint,
            self.known.path,
        )


@dataclass(frozen=True)
class SshTarget:
    """Where and how to connect: inventory values, then ssh_config, then defaults."""

    name: str
    address: str
    port: int
    user: str
    key_files: tuple[str, ...]

    @property
    def known_hosts_name(self) -> str:
        return _lookup_name(self.address, self.port)


@dataclass
class SshStats:
    """Counters for one run: how many connections and commands each host cost."""

    connections: Counter[str] = field(default_factory=Counter)
    commands: Counter[str] = field(default_factory=Counter)
    tunnels: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, counter: Counter[str], host: str) -> None:
        with self.lock:
            counter[host] += 1


class SshConnector:
    """Opens verified SSH transports; build once per run (parses files once)."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        home = Path.home()
        self.known = KnownHosts(
            Path(options.known_hosts).expanduser()
            if options.known_hosts
            else home / ".ssh" / "known_hosts"
        )
        self.ssh_config = _load_ssh_config(options.ssh_config, home)
        self.stats = SshStats()
        self._keys: dict[str, paramiko.PKey | TransportError] = {}
        self._keys_lock = threading.Lock()
        self._default_user = getpass.getuser()
        self._allow_agent = bool(os.environ.get("SSH_AUTH_SOCK"))
        # The Fabric config is built once (no ssh_config files loaded per connection).
        self._fabric_config = Config(
            ssh_config=paramiko.SSHConfig(), overrides={"load_ssh_configs": False}
        )
        self._policy: paramiko.MissingHostKeyPolicy = (
            _TrustOnFirstUse(self.known) if options.accept_new_host_keys else _RejectUnknown()
        )

    def target(self, host: HostLike) -> SshTarget:
        """Resolve a host: explicit inventory values win over ssh_config, then defaults."""
        hvars: Mapping[str, Any] = getattr(host, "vars", None) or {}
        cfg: dict[str, Any] = {}
        if self.ssh_config is not None and _SAFE_NAME.match(host.address):
            cfg = dict(self.ssh_config.lookup(host.address))
        explicit_addr = any(hvars.get(k) is not None for k in _ADDRESS_KEYS)
        address = host.address if explicit_addr else str(cfg.get("hostname", host.address))
        explicit_port = any(hvars.get(k) is not None for k in _PORT_KEYS) or (
            not hvars and host.port not in (0, 22)
        )
        port = host.port if explicit_port else int(cfg.get("port", host.port or 22))
        user = host.user or cfg.get("user") or self._default_user
        keys = self._key_files(host, cfg)
        return SshTarget(host.name, address, port, str(user), keys)

    def _key_files(self, host: HostLike, cfg: Mapping[str, Any]) -> tuple[str, ...]:
        for explicit in (host.key_file, self.options.identity_file):
            if explicit:
                return (str(Path(explicit).expanduser()),)
        from_cfg = [str(Path(p).expanduser()) for p in cfg.get("identityfile", ())]
        found = [p for p in from_cfg if Path(p).is_file()]
        if found:
            return tuple(found[:1])
        ssh_dir = Path.home() / ".ssh"
        return tuple(str(ssh_dir / n) for n in _DEFAULT_KEYS if (ssh_dir / n).is_file())[:1]

    def load_key(self, path: str) -> paramiko.PKey:
        """Each private key file is read once per run, however many hosts use it."""
        with self._keys_lock:
            cached = self._keys.get(path)
            if cached is None:
                cached = _read_key(path)
                self._keys[path] = cached
        if isinstance(cached, TransportError):
            raise cached
        return cached

    def open(self, host: HostLike) -> Transport:
        if host.local:
            return LocalTransport()
        target = self.target(host)
        pkey = self.load_key(target.key_files[0]) if target.key_files else None
        conn = self._connection(target, pkey)
        _connect(conn, target, self.options.connect_timeout)
        self.stats.count(self.stats.connections, host.name)
        return SshTransport(conn, target, self.stats, tunnel_timeout=self.options.connect_timeout)

    def _connection(self, target: SshTarget, pkey: paramiko.PKey | None) -> Connection:
        timeout = self.options.connect_timeout
        conn = Connection(
            host=target.address,
            user=target.user,
            port=target.port,
            # A clone per connection (0.1 ms): Fabric writes to a Connection's config, and
            # invoke re-merges a Config on every write, so a shared one is briefly empty
            # for the other threads ("No attribute or config key found for 'gateway'").
            config=self._fabric_config.clone(),
            # Only bounds the key exchange (the TCP connect is ours): the banner's own
            # timeout must fire first so a silent socket says "no SSH banner".
            connect_timeout=timeout * 2,
            connect_kwargs={
                "pkey": pkey,
                "allow_agent": self._allow_agent and pkey is None,
                "look_for_keys": False,  # keys are loaded once, above
                "banner_timeout": timeout,
                "auth_timeout": timeout,
                "channel_timeout": timeout,
            },
        )
        host_keys = conn.client.get_host_keys()
        for key in self.known.keys_for(target.known_hosts_name):
            host_keys.add(target.known_hosts_name, key.get_name(), key)
        conn.client.set_missing_host_key_policy(self._policy)
        return conn

    def close(self) -> None:
        return None


def _load_ssh_config(path: str | None, home: Path) -> paramiko.SSHConfig | None:
    if path == "":
        return None
    chosen = Path(path).expanduser() if path else home / ".ssh" / "config"
    if not chosen.is_file():
        if path:
            raise TransportError(f"ssh config not found: {chosen}")
        return None
    try:
        return paramiko.SSHConfig.from_path(str(chosen))
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise TransportError(f"cannot read ssh config {chosen}: {exc}") from None


def _read_key(path: str) -> paramiko.PKey | TransportError:
    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        return TransportError(f"private key {path} is encrypted: load it into ssh-agent")
    except FileNotFoundError:
        return TransportError(f"private key not found: {path}")
    except (OSError, paramiko.SSHException, ValueError) as exc:
        return TransportError(f"cannot read private key {path}: {exc}")


def _connect(conn: Connection, target: SshTarget, timeout: float) -> None:
    """Open ``conn`` eagerly; every failure becomes a TransportError with a clear reason."""
    where = f"{target.address}:{target.port}"
    try:
        sock = socket.create_connection((target.address, target.port), timeout=timeout)
    except ConnectionRefusedError:
        raise TransportError(f"connection refused by {where}") from None
    except TimeoutError:
        raise TransportError(
            f"connect timeout: {where} did not answer within {timeout:g}s"
        ) from None
    except socket.gaierror as exc:
        raise TransportError(f"cannot resolve {target.address}: {exc.strerror}") from None
    except OSError as exc:
        raise TransportError(f"cannot connect to {where}: {exc.strerror or exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.connect_kwargs["sock"] = sock
    try:
        conn.open()
    except BaseException as exc:
        with contextlib.suppress(Exception):
            conn.close()
        sock.close()
        if isinstance(exc, Exception):
            raise _map_error(exc, target, where, timeout) from None
        raise


def _map_error(exc: Exception, target: SshTarget, where: str, timeout: float) -> TransportError:
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyError(
            f"host key CHANGED for {target.known_hosts_name} (now {exc.key.get_name()} "
            f"{exc.key.fingerprint}): possible man-in-the-middle attack; if the change is "
            f"expected, remove the old key (ssh-keygen -R '{target.known_hosts_name}') and verify the new one"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        keys = ", ".join(target.key_files) or "no key file, ssh-agent"
        return TransportError(f"authentication failed for {target.user}@{where} ({keys})")
    return TransportError(_handshake_reason(exc, where, timeout))


def _handshake_reason(exc: Exception, where: str, timeout: float) -> str:
    text = str(exc)
    if "protocol banner" in text:
        return f"no SSH banner from {where} within {timeout:g}s: is it an SSH server?"
    if isinstance(exc, paramiko.SSHException):
        return f"SSH negotiation with {where} failed: {text}"
    if isinstance(exc, EOFError | ConnectionError):
        return f"{where} closed the connection during the SSH handshake"
    if isinstance(exc, TimeoutError):
        return f"SSH handshake with {where} timed out after {timeout:g}s"
    return f"cannot open SSH connection to {where}: {type(exc).__name__}: {text}"


# RFC 4254 section 8 terminal modes, all translation off: input bytes reach the command
# unchanged (no echo, no line editing, no ^C/^Z/^S meaning) and output is not rewritten
# (no CR added before LF). Opcode, then a uint32 value; 0 ends the list.
_RAW_MODES = (
    (30, 0),  # ISTRIP
    (34, 0),  # IGNCR
    (35, 0),  # INLCR
    (36, 0),  # ICRNL
    (38, 0),  # IXON
    (39, 0),  # IXANY
    (40, 0),  # IXOFF
    (50, 0),  # ISIG
    (51, 0),  # ICANON
    (53, 0),  # ECHO
    (54, 0),  # ECHOE
    (55, 0),  # ECHOK
    (56, 0),  # ECHONL
    (57, 0),  # NOFLSH
    (62, 0),  # IEXTEN
    (70, 0),  # OPOST
    (72, 0),  # ONLCR
    (91, 1),  # CS8
)
_RAW_MODE_BYTES = b"".join(bytes([op]) + struct.pack(">I", v) for op, v in _RAW_MODES) + b"\0"


def request_raw_pty(chan: paramiko.Channel) -> None:
    """A pseudo-terminal whose only effect is a hang-up when the channel closes.

    Closing a channel without a pty sends the remote command nothing, and OpenSSH refuses
    ``signal`` requests for forced commands; closing a pty hangs it up, and the kernel
    sends SIGHUP to the session (see docs/fleet.md). paramiko's ``get_pty`` sends no
    terminal modes, so this builds the same request with every translation turned off.
    Raises ``paramiko.SSHException`` when the server refuses (``PermitTTY no``).
    """
    m = paramiko.Message()
    m.add_byte(cMSG_CHANNEL_REQUEST)
    m.add_int(chan.remote_chanid)
    m.add_string("pty-req")
    m.add_boolean(True)
    m.add_string("dumb")
    for size in (0, 0, 0, 0):  # columns, rows, width and height in pixels: unknown
        m.add_int(size)
    m.add_string(_RAW_MODE_BYTES)
    chan._event_pending()  # type: ignore[attr-defined]
    chan.transport._send_user_message(m)  # type: ignore[union-attr]
    chan._wait_for_event()  # type: ignore[attr-defined]


class SshTransport:
    """Runs argv on one host over its single open connection (one channel per command).

    Every command gets a raw pty (when the server allows one), so giving up on it — a
    timeout, a host deadline, Ctrl-C, the controller exiting — hangs the remote session
    up and ends it, even when it hangs before any of our code runs. The same connection
    carries the host's tunnels (:meth:`tunnel`), closed with it.
    """

    is_local = False

    def __init__(
        self,
        conn: Connection,
        target: SshTarget,
        stats: SshStats | None = None,
        *,
        tunnel_timeout: float = 10.0,
    ) -> None:
        self.conn, self.target = conn, target
        self.stats = stats or SshStats()
        self.tunnel_timeout = tunnel_timeout
        self.tunnels: dict[tuple[str, int], Tunnel] = {}
        self._tunnels_lock = threading.Lock()
        self._closed = threading.Event()
        self.pty = True  # turned off for this host once its server refuses a pty

    def tunnel(self, host: str, port: int) -> tuple[str, int]:
        """``("127.0.0.1", local_port)`` forwarding to ``host:port`` as this host sees it.

        One tunnel per destination, reused by every check of the host and closed with the
        transport. The destination is tried once when the tunnel is made: a
        :class:`~readiness.errors.TunnelError` says why it cannot be reached (``refused``
        when nothing listens there).
        """
        transport = self.conn.transport
        with self._tunnels_lock:
            existing = self.tunnels.get((host, port))
        if existing is not None and not existing.closed:
            return existing.address
        if self._closed.is_set() or transport is None or not transport.is_active():
            raise TransportError(f"connection to {self.target.name} is closed")
        # Outside the lock: close() (a host deadline) must not wait for a slow destination.
        check_destination(
            transport, (host, port), timeout=self.tunnel_timeout, via=self.target.name
        )
        made = Tunnel(transport, (host, port), timeout=self.tunnel_timeout, via=self.target.name)
        with self._tunnels_lock:
            if self._closed.is_set():
                made.close()
                raise TransportError(f"connection to {self.target.name} is closed")
            previous = self.tunnels.get((host, port))
            self.tunnels[(host, port)] = made
        if previous is not None:
            previous.close()
        self.stats.count(self.stats.tunnels, self.target.name)
        return made.address

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes = b"",
        timeout: float,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> CommandResult:
        """Run ``shlex.join(argv)`` (never Fabric's unquoted ``env=``), feeding ``stdin``."""
        started = time.monotonic()
        deadline = started + timeout
        transport = self.conn.transport
        if transport is None or not transport.is_active():
            raise TransportError(f"connection to {self.target.name} is closed")
        self.stats.count(self.stats.commands, self.target.name)
        chan = self._session(transport, deadline)
        try:
            return self._exchange(
                chan,
                shlex.join(argv),
                stdin=stdin,
                started=started,
                deadline=deadline,
                max_output=max_output,
            )
        finally:
            chan.close()  # on a pty: the remote session is hung up, whatever it was doing

    def _session(self, transport: paramiko.Transport, deadline: float) -> paramiko.Channel:
        for _attempt in range(2):
            try:
                chan = transport.open_session(timeout=max(0.1, deadline - time.monotonic()))
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise TransportError(
                    f"cannot open a session on {self.target.name}: {exc}"
                ) from None
            if not self.pty:
                return chan
            try:
                request_raw_pty(chan)
                return chan
            except (paramiko.SSHException, EOFError, OSError):
                # Refused (PermitTTY no) and paramiko closed the channel: go on without.
                log.warning(
                    "readiness: %s refuses a pty: a command that hangs there before the "
                    "probe starts cannot be stopped from here",
                    self.target.name,
                )
                chan.close()
                self.pty = False
        raise TransportError(f"cannot open a session on {self.target.name}")

    def _exchange(
        self,
        chan: paramiko.Channel,
        command: str,
        *,
        stdin: bytes,
        started: float,
        deadline: float,
        max_output: int,
    ) -> CommandResult:
        try:
            chan.settimeout(max(0.1, deadline - time.monotonic()))
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            if not self.pty:  # a terminal has no end of input: the bootstrap counts bytes
                chan.shutdown_write()
        except TimeoutError:
            return _result(-1, [], [], started, timed_out=True)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransportError(f"command failed to start on {self.target.name}: {exc}") from None
        out, err, state = _read_both(chan, deadline, max_output)
        if state:
            return _result(-1, out, err, started, **{state: True})
        remaining = deadline - time.monotonic()
        if not chan.status_event.wait(max(0.0, remaining)):
            return _result(-1, out, err, started, timed_out=True)
        return _result(chan.exit_status, out, err, started)

    def close(self) -> None:
        with self._tunnels_lock:
            self._closed.set()
            tunnels, self.tunnels = list(self.tunnels.values()), {}
        for made in tunnels:
            made.close()
        self.conn.close()


def _read_both(
    chan: paramiko.Channel, deadline: float, max_output: int
) -> tuple[list[bytes], list[bytes], str]:
    """Drain stdout and stderr until EOF; stop at the deadline or past ``max_output``."""
    out: list[bytes] = []
    err: list[bytes] = []
    n_out = n_err = 0
    fd = chan.fileno()  # readable when either stream has data, EOF or close
    while True:
        progressed = False
        if chan.recv_ready():
            data = chan.recv(_READ_CHUNK)
            n_out += len(data)
            if n_out > max_output:
                out.append(data[: max(0, max_output - (n_out - len(data)))])
                return out, err, "truncated"
            out.append(data)
            progressed = True
        if chan.recv_stderr_ready():
            data = chan.recv_stderr(_READ_CHUNK)
            if n_err < _STDERR_CAP:
                err.append(data[: _STDERR_CAP - n_err])
            n_err += len(data)
            if n_err > max_output:
                return out, err, "truncated"
            progressed = True
        if progressed:
            continue
        if chan.eof_received or chan.closed:
            return out, err, ""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return out, err, "timed_out"
        select.select([fd], [], [], min(remaining, 1.0))


def _result(
    code: int,
    out: list[bytes],
    err: list[bytes],
    started: float,
    *,
    timed_out: bool = False,
    truncated: bool = False,
) -> CommandResult:
    return CommandResult(
        exit_code=code,
        stdout=b"".join(out),
        stderr=b"".join(err),
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
        truncated=truncated,
    )
