"""SSH transport: one verified SSH connection per host, one remote process per probe.

``SshConnector`` is built once per run. It parses known_hosts, the user's OpenSSH
config and the private keys once, then gives each connection only its own host's
keys: re-parsing them per connection costs O(hosts²) (see docs/performance.md).

Host keys are always verified. An unknown key fails with a fix-it message unless
``accept_new_host_keys`` (trust on first use) is set, in which case the key is
appended to the known_hosts file and reported on stderr. A changed key always fails.
"""

from __future__ import annotations

import binascii
import contextlib
import dataclasses
import fcntl
import getpass
import hmac
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

import paramiko
from paramiko.common import MSG_CHANNEL_FAILURE, MSG_CHANNEL_SUCCESS, cMSG_CHANNEL_REQUEST

from .errors import HostKeyError, SshConfigUnusable, TransportError
from .netaddr import endpoint
from .ssh_config import (
    INCLUDE_END,
    INCLUDE_START,
    SshConfig,
    SshConfigError,
    argv_split,
    client_tokens,
    expand_dollars,
    expand_tokens,
    run_in_shell,
)
from .ssh_options import flag_arguments
from .transport import (
    DEFAULT_MAX_OUTPUT,
    CommandResult,
    ConnectionSettings,
    HostLike,
    LocalTransport,
    Transport,
)
from .tunnel import LISTEN_ADDRESS, PendingOpen, Tunnel

__all__ = [
    "LOGIN_VARS",
    "EncryptedKeyError",
    "KnownHosts",
    "SshConfigIndex",
    "SshConnector",
    "SshSession",
    "SshStats",
    "SshTarget",
    "SshTransport",
    "load_ssh_config_text",
]

log = logging.getLogger("readiness.ssh")
# paramiko logs every failed handshake at ERROR from its transport thread; we report the
# failure ourselves, so keep its records off Python's last-resort stderr handler.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

_DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
_PORT_KEYS = ("readiness_port", "ansible_port", "ansible_ssh_port")
_CONNECTION_VARS = ("readiness_connection", "ansible_connection")
# ssh_config ``Match exec`` interpolates the host name into a shell command: only look up
# names that cannot carry shell syntax.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._:%@\[\]-]+$")
_STDERR_CAP = 65536
_READ_CHUNK = 65536
_SHA1_SIZE = 20


def _lookup_name(address: str, port: int) -> str:
    """The known_hosts spelling of a host: ``addr`` on port 22, ``[addr]:port`` otherwise."""
    return address if port == 22 else f"[{address}]:{port}"


@dataclass(frozen=True)
class _Marker:
    """An ``@revoked`` or ``@cert-authority`` line: its host patterns, key and place."""

    patterns: tuple[str, ...]
    key: paramiko.PKey
    where: str


def _glob(pattern: str, name: str) -> bool:
    """OpenSSH wildcards: only ``*`` and ``?`` (``[`` is literal, as in ``[host]:port``)."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, name, re.IGNORECASE) is not None


def _matches(patterns: Sequence[str], name: str) -> bool:
    """OpenSSH host-pattern matching (``*``, ``?``, ``!negation``) on a known_hosts name;
    a pattern also matches the bare address of a ``[addr]:port`` name."""
    bare = name[1:].split("]", 1)[0] if name.startswith("[") else name
    hit = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        if _glob(body, name) or _glob(body, bare):
            if negated:
                return False
            hit = True
    return hit


_WILDCARDS = frozenset("*?")


def _line_matches(patterns: Sequence[str], name: str) -> bool:
    """Whether a known_hosts line's names apply to ``name`` exactly as ssh matches them:
    any pattern matches and no negated one does (``[addr]:port`` is matched as written)."""
    hit = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if _glob(pattern[1:], name):
                return False
        elif _glob(pattern, name):
            hit = True
    return hit


class KnownHosts:
    """A known_hosts file parsed once, line by line, indexed by host name.

    Hashed names are supported. A line that cannot be parsed is kept in :attr:`problems`
    (``file:line: why``) and skipped: the other lines still count. ``@revoked`` keys are
    never accepted (nor recorded by trust on first use) for the hosts they name;
    hosts named by ``@cert-authority`` lines are refused with "host certificates not
    supported" unless the file also has their own key.
    """

    def __init__(self, path: Path, system: Sequence[Path] = ()) -> None:
        """``path``: the user's file (trust on first use writes there); ``system``: the
        system-wide files ssh reads too (GlobalKnownHostsFile), whose keys and markers
        count the same and which are never written."""
        self.path = path
        self._plain: dict[str, list[paramiko.PKey]] = {}  # by lower-case name, as ssh
        # Lines whose names hold a pattern (*, ?, !negation): the line's whole name list.
        self._patterned: list[tuple[tuple[str, ...], paramiko.PKey]] = []
        # Hashed names (|1|salt|hmac) as (salt, HMAC-SHA1 digest, key), decoded once.
        self._hashed: list[tuple[bytes, bytes, paramiko.PKey]] = []
        self.revoked: list[_Marker] = []
        self.authorities: list[_Marker] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._load(path)
        # HashKnownHosts is read from the user's own file: new names are written there
        self._hashed_file = bool(self._hashed) and not self._plain and not self._patterned
        for other in system:
            with contextlib.suppress(OSError):  # unreadable: as ssh, read what can be
                self._load(other)
        for problem in self.problems:
            log.warning("readiness: known_hosts %s (line skipped)", problem)

    @property
    def hashed(self) -> bool:
        """Whether the file hashes its names (``HashKnownHosts yes``): new ones are too."""
        return self._hashed_file

    def _load(self, path: Path) -> None:
        if path.is_file():
            for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                self._add_line(line, f"{path}:{lineno}", lineno)

    def _add_line(self, line: str, where: str, lineno: int) -> None:
        text = line.strip()
        if not text or text.startswith("#"):
            return
        marker = ""
        # Fields are separated by runs of spaces and tabs, as ssh reads them (paramiko
        # splits on each single one: "@revoked\tNAME\tKEY" or a double space lost the line,
        # and with it the revocation).
        fields = text.split()
        if text.startswith("@"):
            marker, fields = fields[0], fields[1:]
            if marker not in ("@revoked", "@cert-authority"):
                self.problems.append(f"{where}: unknown marker {marker}")
                return
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(" ".join(fields), lineno)
        except paramiko.hostkeys.InvalidHostKey:
            self.problems.append(f"{where}: cannot be parsed (invalid key data)")
            return
        except Exception as exc:  # paramiko raises several unrelated types
            self.problems.append(f"{where}: cannot be parsed ({type(exc).__name__})")
            return
        if entry is None or entry.key is None:
            self.problems.append(f"{where}: cannot be parsed (unsupported key type or format)")
            return
        if marker:
            kind = self.revoked if marker == "@revoked" else self.authorities
            kind.append(_Marker(tuple(entry.hostnames), entry.key, where))
        else:
            self._add_entry(entry, where)

    def _add_entry(self, entry: paramiko.hostkeys.HostKeyEntry, where: str) -> None:
        # As ssh reads the name field: one starting with '|' is one hashed name as a whole
        # (with a ',' in it, it matches nothing); elsewhere '|1|...' is a pattern no name
        # matches. paramiko took each hashed item of a list as a hashed name, and the
        # plain names after a leading hashed one as names: keys ssh never uses.
        if entry.hostnames[0].startswith("|") and len(entry.hostnames) > 1:
            self.problems.append(f"{where}: a hashed host name in a list matches no host")
            return
        alone = len(entry.hostnames) == 1
        hashed = [_decode_hashed(name) for name in entry.hostnames if alone and name[0] == "|"]
        if None in hashed:
            self.problems.append(f"{where}: cannot be parsed (bad hashed host name)")
            return
        names = tuple(name for name in entry.hostnames if not name.startswith("|"))
        if any(name.startswith("!") or _WILDCARDS.intersection(name) for name in names):
            self._patterned.append((names, entry.key))
            names = ()
        for name in names:
            self._plain.setdefault(name.lower(), []).append(entry.key)
        self._hashed.extend((*h, entry.key) for h in hashed if h is not None)

    def revocation(self, name: str, key: paramiko.PKey) -> str | None:
        """Where ``key`` is revoked for ``name`` (``file:line``), or None."""
        for marker in self.revoked:
            if marker.key == key and (
                _marker_matches(marker.patterns, name) or "*" in marker.patterns
            ):
                return marker.where
        return None

    def authority_for(self, name: str) -> str | None:
        """Where an ``@cert-authority`` line covers ``name`` (``file:line``), or None."""
        for marker in self.authorities:
            if _marker_matches(marker.patterns, name):
                return marker.where
        return None

    def keys_for(self, name: str) -> list[paramiko.PKey]:
        """``name``'s keys, revoked ones left out (a revoked key is never trusted)."""
        return [key for key in self.listed_for(name) if self.revocation(name, key) is None]

    def listed_for(self, name: str) -> list[paramiko.PKey]:
        """Every key listed for ``name``, revoked or not."""
        found = list(self._plain.get(name.lower(), ()))
        found += [key for patterns, key in self._patterned if _line_matches(patterns, name)]
        if self._hashed:
            # Each hashed line has its own salt, so every one is tried (as ssh does); the
            # salts and digests were decoded once, so a try is one HMAC in C. paramiko's
            # hash_host re-decoded and re-encoded both per try: 4.3 ms per host against
            # a 1,000-line hashed file.
            # ssh hashes the lower-case name; one recorded as written is tried too
            names = {name.lower().encode(), name.encode()}
            found.extend(
                key
                for salt, digest, key in self._hashed
                if any(hmac.digest(salt, encoded, "sha1") == digest for encoded in names)
            )
        return found

    def record(self, name: str, key: paramiko.PKey) -> None:
        """Append ``name``'s key to the file: under an exclusive lock (other runs may be
        writing too), after a newline if the file lacks a final one, hashed when the file
        is hashed."""
        shown = paramiko.HostKeys.hash_host(name) if self.hashed else name
        line = f"{shown} {key.get_name()} {key.get_base64()}\n".encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a+b") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    fh.seek(0, os.SEEK_END)
                    if fh.tell() > 0:
                        fh.seek(-1, os.SEEK_END)
                        if fh.read(1) != b"\n":
                            line = b"\n" + line
                    fh.write(line)
                    fh.flush()
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
            decoded = _decode_hashed(shown) if self.hashed else None
            if decoded is not None:
                self._hashed.append((*decoded, key))
            else:
                self._plain.setdefault(name.lower(), []).append(key)


def _marker_matches(patterns: Sequence[str], name: str) -> bool:
    """Whether an ``@revoked``/``@cert-authority`` line's names cover ``name``: its patterns,
    or its one hashed name (``|1|salt|hmac``, of the lower-case name as ssh hashes it)."""
    if patterns[0].startswith("|"):
        decoded = _decode_hashed(patterns[0]) if len(patterns) == 1 else None
        return decoded is not None and hmac.compare_digest(
            hmac.digest(decoded[0], name.lower().encode(), "sha1"), decoded[1]
        )
    return _matches(patterns, name)


def _decode_hashed(name: str) -> tuple[bytes, bytes] | None:
    """``|1|salt|hmac`` (OpenSSH's HashKnownHosts form) as (salt, digest), both 20 bytes
    of base64 as paramiko reads them; None when it is not."""
    parts = name.split("|")
    if len(parts) != 4 or parts[1] != "1":
        return None
    try:
        salt, digest = (binascii.a2b_base64(part) for part in parts[2:])
    except (binascii.Error, ValueError):
        return None
    if len(salt) != _SHA1_SIZE or len(digest) != _SHA1_SIZE:
        return None
    return salt, digest


def _refuse_marked(known: KnownHosts, hostname: str, key: paramiko.PKey) -> None:
    """Raise for a revoked key, or a host only a certificate authority vouches for."""
    revoked_at = known.revocation(hostname, key)
    if revoked_at:
        raise HostKeyError(
            f"host key for {hostname} ({key.get_name()} {key.fingerprint}) is REVOKED "
            f"({revoked_at}): refusing to connect; the host must present another key"
        )
    authority = known.authority_for(hostname)
    if authority:
        raise HostKeyError(
            f"host certificates not supported: {hostname} is vouched for by a "
            f"@cert-authority line ({authority}); add the host's own key to known_hosts "
            f"({keyscan_command(hostname, known.path)}) to audit it"
        )


def keyscan_command(hostname: str, known_hosts: Path, *, alias: str = "") -> str:
    """The ``ssh-keyscan`` line that appends ``hostname``'s keys to ``known_hosts``, quoted
    for a POSIX shell (a name comes from the inventory). ``hostname`` as paramiko names a
    host in known_hosts: ``[address]:port`` unless the port is 22. With a ``HostKeyAlias``
    the keys are written under the alias, the name ssh looks them up by."""
    address, port = hostname, ""
    if hostname.startswith("[") and "]:" in hostname:
        address, _, port = hostname[1:].rpartition("]:")
    argv = ["ssh-keyscan", *(["-p", port] if port else []), "--", address]
    rename = f" | sed {shlex.quote('s/^[^ ]*/' + alias + '/')}" if alias else ""
    return f"{shlex.join(argv)}{rename} >> {shlex.quote(str(known_hosts))}"


def _unknown_suffix(known: KnownHosts) -> str:
    if not known.problems:
        return ""
    shown = "; ".join(known.problems[:3])
    more = f" (+{len(known.problems) - 3} more)" if len(known.problems) > 3 else ""
    return f" (known_hosts lines skipped: {shown}{more})"


class _RejectUnknown(paramiko.RejectPolicy):
    """``alias``: the host's ``HostKeyAlias``, the name its key is looked up and recorded by
    (paramiko names the host ``[address]:port``)."""

    def __init__(self, known: KnownHosts, alias: str = "") -> None:
        self.known, self.alias = known, alias

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> NoReturn:
        name = self.alias or hostname
        _refuse_marked(self.known, name, key)
        scan = keyscan_command(hostname, self.known.path, alias=self.alias)
        raise HostKeyError(
            f"unknown host key for {name} ({key.get_name()} {key.fingerprint}): not in "
            f"known_hosts; verify it and add it ({scan}) "
            f"or rerun with --accept-new-host-keys{_unknown_suffix(self.known)}"
        )


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Records an unknown key (never a changed one: paramiko raises BadHostKeyException;
    never a revoked one, nor one of a host a certificate authority is meant to vouch for)."""

    def __init__(self, known: KnownHosts, alias: str = "") -> None:
        self.known, self.alias = known, alias

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        name = self.alias or hostname
        _refuse_marked(self.known, name, key)
        self.known.record(name, key)
        log.warning(
            "readiness: recorded new host key for %s (%s %s) in %s",
            name,
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
    encrypted_key: str = ""  # a key file that needs a passphrase: ssh-agent is used instead
    proxy_jump: str = ""  # ssh_config ProxyJump: connect through that host's connection
    proxy_command: str = ""  # ssh_config ProxyCommand (refused: see _refuse_proxy_command)
    host_key_alias: str = ""  # ssh_config HostKeyAlias: the host's known_hosts name
    # ssh_config UserKnownHostsFile (expanded; unless --known-hosts names one): the files
    # the host's key is checked against, new keys written to the first
    known_hosts_files: tuple[str, ...] = ()

    @property
    def known_hosts_name(self) -> str:
        """The name the host's keys are looked up and recorded by: its ``HostKeyAlias``
        (lower-cased, as ssh does), else ``[address]:port`` (``address`` on port 22)."""
        return self.host_key_alias.lower() or _lookup_name(self.address, self.port)


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


class _HasConnection(Protocol):
    @property
    def connection(self) -> ConnectionSettings: ...


class SshConnector:
    """Opens verified SSH transports; build once per run (parses files once)."""

    def __init__(self, options: ConnectionSettings | _HasConnection) -> None:
        """``options``: the connection settings, or anything that has them (RunOptions)."""
        if not isinstance(options, ConnectionSettings):
            options = options.connection
        self.options = options
        home = Path.home()
        # ssh's default UserKnownHostsFile is ~/.ssh/known_hosts and ~/.ssh/known_hosts2
        # (read, never written); --known-hosts names the one file instead
        self.known = (
            KnownHosts(Path(options.known_hosts).expanduser(), SYSTEM_KNOWN_HOSTS)
            if options.known_hosts
            else KnownHosts(
                home / ".ssh" / "known_hosts",
                (home / ".ssh" / "known_hosts2", *SYSTEM_KNOWN_HOSTS),
            )
        )
        self.ssh_config = _load_ssh_config(options.ssh_config, home)
        self._default_user = getpass.getuser()
        self._ssh_index = (
            SshConfigIndex(self.ssh_config, local_user=self._default_user, home=str(home))
            if self.ssh_config
            else None
        )
        self.stats = SshStats()
        self._keys: dict[str, paramiko.PKey | TransportError] = {}
        self._keys_lock = threading.Lock()
        self._allow_agent = bool(os.environ.get("SSH_AUTH_SOCK"))
        self._policy_type: type[_TrustOnFirstUse | _RejectUnknown] = (
            _TrustOnFirstUse if options.accept_new_host_keys else _RejectUnknown
        )
        self._policy = self._policy_type(self.known)
        self._known_files: dict[tuple[str, ...], KnownHosts] = {}
        self._known_lock = threading.Lock()

    def _known_for(self, target: SshTarget) -> KnownHosts:
        """The known_hosts ``target`` is checked against: its ssh_config UserKnownHostsFile
        (each set parsed once per run; with ssh's system-wide files), else the run's."""
        files = target.known_hosts_files
        if not files:
            return self.known
        with self._known_lock:
            found = self._known_files.get(files)
            if found is None:
                found = KnownHosts(
                    Path(files[0]), (*(Path(f) for f in files[1:]), *SYSTEM_KNOWN_HOSTS)
                )
                self._known_files[files] = found
            return found

    def _tokens(self, *, original: str, address: str, port: int, user: str) -> dict[str, str]:
        """ssh's ``%`` tokens for this login (``client_tokens``), as both ``IdentityFile`` and
        ``UserKnownHostsFile`` expand them."""
        return client_tokens(
            host=address,
            original=original,
            port=str(port),
            user=user,
            local=self._default_user,
            home=str(Path.home()),
        )

    def _user_known_hosts(
        self,
        cfg: Mapping[str, Any],
        *,
        original: str,
        address: str,
        port: int,
        user: str,
        alias: str,
    ) -> tuple[str, ...]:
        """ssh_config's UserKnownHostsFile for a login, expanded as ssh expands it (``~``,
        ``%`` tokens, ``${VAR}``); ``none``: no file of the user's. () when --known-hosts
        names the file (as ``ssh -o UserKnownHostsFile=``, it wins) or none is set."""
        given = cfg.get("userknownhostsfile")
        if self.options.known_hosts or not given:
            return ()
        if [str(g).lower() for g in given] == ["none"]:
            return (os.devnull,)
        tokens = self._tokens(original=original, address=address, port=port, user=user)
        tokens["k"] = alias or original
        try:
            return tuple(
                expand_dollars(expand_tokens(str(Path(str(f)).expanduser()), tokens)) for f in given
            )
        except SshConfigError as exc:
            raise TransportError(f"ssh config UserKnownHostsFile for {original}: {exc}") from None

    def target(self, host: HostLike) -> SshTarget:
        """Resolve a host as Ansible's ssh command line would reach it: readiness_* values,
        then ``ansible_ssh_args``, then the inventory's address/port/user/key, then
        ``ansible_ssh_common_args``/``_extra_args``, then ssh_config, then defaults."""
        hvars: Mapping[str, Any] = getattr(host, "vars", None) or {}
        cfg = self._config_for(host.address, host.name)
        first: dict[str, str] = {}
        after: dict[str, str] = {}
        if hvars and any(hvars.get(var) for var in (*_SSH_ARGS_FIRST, *_SSH_ARGS_AFTER)):
            first = _ssh_args_options(hvars, host.name, _SSH_ARGS_FIRST)
            after = _ssh_args_options(hvars, host.name, _SSH_ARGS_AFTER)
        # ssh's command line wins over its config; the first value given wins
        hostname = first.get("hostname", after.get("hostname"))
        # ssh_config is looked up for the destination (ansible_host, else the name) and its
        # HostName replaces it, as when Ansible runs `ssh ... ANSIBLE_HOST`.
        address = str(cfg.get("hostname") or host.address)
        if hostname is not None and hvars.get("readiness_host") is None:
            # HostName replaces the destination (ansible_host) however it was given
            address = _hostname_option(hostname, host.address, host.name)
        explicit_port = any(hvars.get(k) is not None for k in _PORT_KEYS) or (
            not hvars and host.port not in (0, 22)
        )
        port = (
            host.port
            if explicit_port
            else int(after.get("port") or cfg.get("port", host.port or 22))
        )
        if "port" in first and hvars.get("readiness_port") is None:
            port = int(first["port"])
        user = host.user or after.get("user") or cfg.get("user") or self._default_user
        if "user" in first and hvars.get("readiness_user") is None:
            user = first["user"]
        keys = self._key_files(host, cfg, first, after)
        if keys is None:  # ssh_config's IdentityFile, expanded as ssh expands it for this login
            keys = self._config_keys(
                cfg, original=host.address, address=address.lower(), port=port, user=str(user)
            )
        jump, command = (str(cfg.get(k) or "") for k in ("proxyjump", "proxycommand"))
        alias = str(
            first.get("hostkeyalias") or after.get("hostkeyalias") or cfg.get("hostkeyalias") or ""
        )
        proxy = _first_proxy(first, after)
        if proxy is not None:
            jump, command = proxy
        return SshTarget(
            host.name,
            address.lower(),  # as ssh: its known_hosts name is lower-case (hashed or not)
            port,
            str(user),
            keys,
            proxy_jump="" if jump.lower() == "none" else jump,
            proxy_command="" if command.lower() == "none" else command,
            # the command line's (ansible_ssh_*_args) first, then ssh_config's
            host_key_alias=alias,
            known_hosts_files=self._user_known_hosts(
                cfg,
                original=host.address,
                address=address.lower(),
                port=port,
                user=str(user),
                alias=alias,
            ),
        )

    def _key_files(
        self,
        host: HostLike,
        cfg: Mapping[str, Any],
        first: Mapping[str, str],
        after: Mapping[str, str],
    ) -> tuple[str, ...] | None:
        """The key given by the inventory or its ssh arguments, or None: ssh_config's."""
        hvars: Mapping[str, Any] = getattr(host, "vars", None) or {}
        overridden = hvars.get("readiness_ssh_private_key_file") is not None
        from_first = None if overridden else first.get("identityfile")
        for explicit in (from_first, host.key_file, self.options.identity_file):
            if explicit:
                return (str(Path(explicit).expanduser()),)
        if after.get("identityfile"):
            return (str(Path(after["identityfile"]).expanduser()),)
        return None

    def _config_for(self, name: str, who: str) -> dict[str, Any]:
        """ssh_config's options for ``name`` ({} without a config, or for a name that
        could carry shell syntax into ``Match exec``)."""
        if self._ssh_index is None or not _SAFE_NAME.match(name):
            return {}
        try:
            return self._ssh_index.lookup(name)
        except SshConfigError as exc:
            raise TransportError(f"ssh config for {who}: {exc}") from None

    def _config_keys(
        self, cfg: Mapping[str, Any], *, original: str, address: str, port: int, user: str
    ) -> tuple[str, ...]:
        """The first ssh_config ``IdentityFile`` that exists (``~``, ``%`` tokens and
        ``${VAR}`` expanded as ssh expands them for this login; ``none`` skipped), else the
        first default key."""
        tokens = self._tokens(original=original, address=address, port=port, user=user)
        for given in cfg.get("identityfile", ()):
            if given.lower() == "none":
                continue
            try:
                path = expand_dollars(expand_tokens(str(Path(given).expanduser()), tokens))
            except SshConfigError as exc:
                raise TransportError(f"ssh config IdentityFile for {original}: {exc}") from None
            if Path(path).is_file():
                return (path,)
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

    def resolve(self, host: HostLike) -> SshTarget:
        """Where and as whom ``host`` is logged in to (no network), or the TransportError
        that makes it UNREACHABLE before any connection (another ansible_connection, a
        ProxyCommand, an unreadable ssh option)."""
        _refuse_other_connection(host)
        target = self.target(host)
        _refuse_proxy_command(target)
        _refuse_template(target)
        return target

    def open(self, host: HostLike) -> Transport:
        if host.local:
            return LocalTransport()
        target = self.resolve(host)
        jump = self._open_jump(target) if target.proxy_jump else None
        try:
            conn, target = self._authenticated(target)
            sock = self._jump_channel(jump, target) if jump is not None else None
            conn.jump = jump  # closed with it
            known = self._known_for(target)
            _connect(conn, target, self.options.connect_timeout, known, sock=sock)
        except BaseException:
            if jump is not None:
                jump.close()
            raise
        self.stats.count(self.stats.connections, host.name)
        return SshTransport(conn, target, self.stats, tunnel_timeout=self.options.connect_timeout)

    def _authenticated(self, target: SshTarget) -> tuple[Connection, SshTarget]:
        """A Connection for ``target`` with its key loaded (or the agent, for an encrypted
        key: the returned target then says so); not opened yet."""
        try:
            pkey = self.load_key(target.key_files[0]) if target.key_files else None
        except EncryptedKeyError as exc:
            if not self._allow_agent:
                raise TransportError(
                    f"{exc}, and no ssh-agent is running (SSH_AUTH_SOCK is not set): "
                    f"load it with `ssh-add {exc.path}`"
                ) from None
            pkey, target = None, dataclasses.replace(target, encrypted_key=exc.path)
        return self._connection(target, pkey), target

    def _open_jump(self, target: SshTarget) -> Connection:
        """An open, verified connection to ``target``'s ProxyJump host (one hop)."""
        spec = target.proxy_jump
        if "," in spec:
            raise TransportError(
                f"ProxyJump {spec} for {target.name} is a chain of jump hosts: readiness "
                "supports one jump host"
            )
        user, _, rest = spec.rpartition("@")
        name, port_text = rest, ""
        if rest.startswith("["):
            name, _, port_text = rest[1:].partition("]")
            port_text = port_text.lstrip(":")
        elif rest.count(":") == 1:
            name, _, port_text = rest.partition(":")
        cfg = self._config_for(name, f"jump host {name} of {target.name}")
        if any(str(cfg.get(k) or "none").lower() != "none" for k in ("proxyjump", "proxycommand")):
            raise TransportError(
                f"jump host {name} of {target.name} needs a jump host itself: readiness "
                "supports one jump host"
            )
        try:
            port = int(port_text or cfg.get("port", 22))
        except ValueError:
            raise TransportError(f"ProxyJump {spec} for {target.name}: bad port") from None
        address = str(cfg.get("hostname", name)).lower()  # as ssh -J names it in known_hosts
        # as the "ssh -W" that ssh -J runs: the jump host's own User, else the local user
        user = user or str(cfg.get("user") or self._default_user)
        keys: tuple[str, ...] = ()
        if cfg.get("identityfile"):
            keys = self._config_keys(cfg, original=name, address=address, port=port, user=user)
        jump = SshTarget(
            f"jump host {name} of {target.name}",
            address,
            port,
            user,
            keys or target.key_files,
            host_key_alias=str(cfg.get("hostkeyalias") or ""),
        )
        jump = dataclasses.replace(
            jump,
            known_hosts_files=self._user_known_hosts(
                cfg,
                original=name,
                address=address,
                port=port,
                user=user,
                alias=jump.host_key_alias,
            ),
        )
        conn, jump = self._authenticated(jump)
        try:
            _connect(conn, jump, self.options.connect_timeout, self._known_for(jump))
        except TransportError as exc:
            raise TransportError(f"jump host {name} ({spec}) of {target.name}: {exc}") from None
        return conn

    def _jump_channel(self, jump: Connection, target: SshTarget) -> paramiko.Channel:
        """A direct-tcpip channel through the jump host to ``target`` (its socket)."""
        where = endpoint(target.address, target.port)
        transport = jump.transport
        if transport is None:
            raise TransportError(f"jump host for {target.name} is not connected")
        try:
            channel: paramiko.Channel = transport.open_channel(
                "direct-tcpip",
                (target.address, target.port),
                ("127.0.0.1", 0),
                timeout=self.options.connect_timeout,
            )
            return channel
        except (paramiko.SSHException, EOFError, OSError) as exc:
            text = getattr(exc, "text", "") or str(exc) or type(exc).__name__
            raise TransportError(
                f"jump host {target.proxy_jump} could not connect to {where}: {text}"
            ) from None

    def _known_keys(self, target: SshTarget) -> list[paramiko.PKey]:
        """The keys ssh would accept for ``target``: those of ``[address]:port``, or when
        that name has none listed at all, those of the bare address (ssh's "checking
        without port identifier": one sshd key served on 22 and on 2222), unless revoked
        for either name."""
        name, known = target.known_hosts_name, self._known_for(target)
        if name == target.address or target.host_key_alias or known.listed_for(name):
            return known.keys_for(name)  # (ssh does not retry an alias without port)
        return [
            key for key in known.keys_for(target.address) if known.revocation(name, key) is None
        ]

    def _connection(self, target: SshTarget, pkey: paramiko.PKey | None) -> Connection:
        client = paramiko.SSHClient()
        known = self._known_keys(target)
        if known:  # under the name paramiko looks the host up by
            paramiko_name = _lookup_name(target.address, target.port)
            client._host_keys = _KnownKeys(paramiko_name, known)  # type: ignore[attr-defined]
        policy = self._policy
        if target.host_key_alias or target.known_hosts_files:
            alias = target.host_key_alias and target.known_hosts_name
            policy = self._policy_type(self._known_for(target), alias)
        client.set_missing_host_key_policy(policy)
        return Connection(target, client, pkey, self._allow_agent, self.options.connect_timeout)

    def close(self) -> None:
        return None


class _AnyOf:
    """Several known keys of one type (a name two machines answer for, a key being
    rolled over): equal to any of them, as ssh accepts any known key of the host.
    paramiko's ``HostKeys`` keeps one key per type and name, so the host presenting the
    other one was refused as "host key CHANGED"."""

    def __init__(self, keys: Sequence[paramiko.PKey]) -> None:
        self.keys = tuple(keys)

    def __eq__(self, other: object) -> bool:
        return any(key == other for key in self.keys)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def get_name(self) -> str:
        return str(self.keys[0].get_name())

    def get_base64(self) -> str:
        return str(self.keys[0].get_base64())


class _KnownKeys(dict[str, dict[str, _AnyOf]]):
    """What ``SSHClient.connect`` reads as its host keys for one name: ``get(name)``
    gives, per key type (in known_hosts order), every known key of that type."""

    def __init__(self, name: str, keys: Sequence[paramiko.PKey]) -> None:
        by_type: dict[str, list[paramiko.PKey]] = {}
        for key in keys:
            by_type.setdefault(key.get_name(), []).append(key)
        super().__init__({name: _TypedKeys({t: _AnyOf(k) for t, k in by_type.items()})})


class _TypedKeys(dict[str, _AnyOf]):
    """paramiko reads ``keys()[0]`` (the preferred type) and ``values()[0]``."""

    def keys(self) -> list[str]:  # type: ignore[override]
        return list(super().keys())

    def values(self) -> list[_AnyOf]:  # type: ignore[override]
        return list(super().values())


# ssh's GlobalKnownHostsFile default: read besides the user's known_hosts (an organisation
# distributes its hosts' keys, and revokes them, there).
SYSTEM_KNOWN_HOSTS = (Path("/etc/ssh/ssh_known_hosts"), Path("/etc/ssh/ssh_known_hosts2"))
# ssh reads the system-wide file after the user's (first value wins) when no -F is given;
# an ssh_config named explicitly (ssh -F) replaces both.
SYSTEM_SSH_CONFIG = Path("/etc/ssh/ssh_config")


def _load_ssh_config(path: str | None, home: Path) -> SshConfig | None:
    if path == "":
        return None
    if path:
        files = [(Path(path).expanduser(), home / ".ssh")]
        if not files[0][0].is_file():
            raise SshConfigUnusable(f"ssh config not found: {files[0][0]}")
    else:
        # relative Include names: under ~/.ssh in the user's file, /etc/ssh in the system's
        found = (home / ".ssh" / "config", SYSTEM_SSH_CONFIG)
        files = [(f, f.parent) for f in found if f.is_file()]
    lines: list[Any] = []
    for chosen, base in files:
        try:
            parsed = SshConfig.from_text(load_ssh_config_text(chosen, home, base=base))
        except (OSError, ValueError) as exc:  # SshConfigError: a line ssh refuses too
            raise SshConfigUnusable(f"cannot read ssh config {chosen}: {exc}") from None
        if lines:  # each file starts outside any block, as ssh reads it
            lines += SshConfig.from_text("Match all\n").lines
        lines += parsed.lines
    return SshConfig(lines) if files else None


_GLOB_CHARS = frozenset("*?")  # OpenSSH's only wildcards: '[' is literal


class SshConfigIndex:
    """:meth:`SshConfig.lookup` answered from the blocks that can match a name.

    Testing every ``Host`` block's patterns against every name made a generated
    ssh_config with one block per host cost O(blocks) per host: 13.5 ms per lookup with
    1,000 blocks. Blocks whose patterns are all literal names (no ``*``, ``?``, ``!``) are
    indexed by name once; each pass evaluates, in file order, only the blocks naming the
    name its ``Host`` lines compare (the name given; the final HostName in a final pass)
    plus every other block (wildcards, negations, ``Match``). ``Host`` compares exactly, so
    a literal block naming another name can never apply: the answer is the whole file's.
    """

    def __init__(
        self,
        config: SshConfig,
        *,
        local_user: str | None = None,
        home: str | None = None,
        run: Callable[[str], bool] | None = run_in_shell,
    ) -> None:
        self.config = config
        self._local_user = local_user or getpass.getuser()
        self._home = home or str(Path.home())
        self._run = run
        lines = config.lines
        heads = [i for i, line in enumerate(lines) if line.kind in ("host", "match")]
        self._prelude = lines[: heads[0]] if heads else list(lines)
        bounds = zip(heads, [*heads[1:], len(lines)] if heads else [], strict=True)
        self._blocks = [lines[start:stop] for start, stop in bounds]
        self._named: dict[str, list[int]] = {}
        self._others: list[int] = []
        for i, block in enumerate(self._blocks):
            head = block[0]
            # A block holding an Include's start or end is always read: the state the
            # Include saves or gives back depends on it.
            marked = any(line.kind.startswith("readiness-include-") for line in block)
            if head.kind == "host" and not marked and all(_literal(p) for p in head.args):
                for pattern in dict.fromkeys(head.args):
                    self._named.setdefault(pattern, []).append(i)
            else:
                self._others.append(i)

    def lookup(self, name: str) -> dict[str, Any]:
        """ssh's options for ``name``; :class:`SshConfigError` when ssh would refuse them."""
        return self.config.lookup(
            name,
            local_user=self._local_user,
            home=self._home,
            run=self._run,
            lines_for=self._lines_for,
        )

    def _lines_for(self, name: str) -> list[Any]:
        chosen = list(self._prelude)
        for i in sorted((*self._others, *self._named.get(name, ()))):
            chosen += self._blocks[i]
        return chosen


def _literal(pattern: str) -> bool:
    return not pattern.startswith("!") and not _GLOB_CHARS.intersection(pattern)


_INCLUDE = re.compile(r"^\s*include(?:\s*=\s*|\s+)(.+?)\s*$", re.IGNORECASE)
_MAX_INCLUDE_DEPTH = 16  # OpenSSH's own limit
_MAX_INCLUDED_FILES = 256


def load_ssh_config_text(
    path: Path,
    home: Path,
    *,
    base: Path | None = None,
    _depth: int = 0,
    _count: list[int] | None = None,
) -> str:
    """The ssh_config at ``path`` with every ``Include`` expanded in place, as OpenSSH
    reads it (paramiko ignores ``Include``): globs, several files per line, relative
    names under ``base`` (``~/.ssh``; ``/etc/ssh`` for the system-wide file); nested at
    most 16 deep. A missing file is skipped, as ssh does.
    """
    count = _count if _count is not None else [0]
    if _depth > _MAX_INCLUDE_DEPTH:
        raise TransportError(
            f"ssh config {path}: Include nested more than {_MAX_INCLUDE_DEPTH} deep"
        )
    count[0] += 1
    if count[0] > _MAX_INCLUDED_FILES:
        raise TransportError(f"ssh config {path}: more than {_MAX_INCLUDED_FILES} included files")
    out = []
    for line in path.read_text(errors="replace").splitlines():
        found = _INCLUDE.match(line)
        if not found:
            out.append(line)
            continue
        for item in argv_split(found.group(1)):
            pattern = Path(item).expanduser()
            if not pattern.is_absolute():
                pattern = (base or home / ".ssh") / pattern
            parent, glob = (pattern.parent, pattern.name)
            for included in sorted(parent.glob(glob)) if parent.is_dir() else []:
                if included.is_file():
                    text = load_ssh_config_text(
                        included, home, base=base, _depth=_depth + 1, _count=count
                    )
                    # read as ssh reads it: inside the including block's state, which the
                    # lines after the Include get back (see readiness.ssh_config)
                    out += [INCLUDE_START, text.rstrip("\n"), INCLUDE_END]
    return "\n".join(out) + "\n"


# ansible_connection values that mean ssh (readiness's own transport); "local" never gets
# here. Any other (docker, winrm, kubectl, network_cli...) is not an ssh login to the address.
_SSH_CONNECTIONS = frozenset(
    (
        "ssh",
        "smart",
        "paramiko",
        "paramiko_ssh",
        "ansible.builtin.ssh",
        "ansible.builtin.paramiko_ssh",
        "ansible.legacy.ssh",
        "ansible.legacy.paramiko_ssh",
    )
)


def _refuse_other_connection(host: HostLike) -> None:
    """A host Ansible reaches another way (``ansible_connection: docker``: a container whose
    name may well resolve to some other machine) is refused, never logged into over ssh."""
    hvars: Mapping[str, Any] = getattr(host, "vars", None) or {}
    kind = next((hvars.get(var) for var in _CONNECTION_VARS if hvars.get(var)), None)
    if kind is not None and str(kind) not in _SSH_CONNECTIONS:
        raise TransportError(
            f"{host.name} uses ansible_connection={kind}: readiness audits hosts over ssh "
            "or on the controller (local) only, so it is not connected to"
        )


# The ssh options an Ansible inventory passes to ssh. Ansible's ssh command line has
# ansible_ssh_args first, then its own -o IdentityFile/Port/User (ansible_private_key_file,
# ansible_port, ansible_user), then ansible_ssh_common_args and ansible_ssh_extra_args; ssh
# keeps the first value it is given for each option, so the first group beats the inventory's
# own settings and the last two only fill in what they left unset (checked against
# ansible-core's logged command and ``ssh -G``: tests/inventory/test_ssh_args_against_ssh.py).
_SSH_ARGS_FIRST = ("ansible_ssh_args",)
_SSH_ARGS_AFTER = ("ansible_ssh_common_args", "ansible_ssh_extra_args")
# Every host variable SshConnector.resolve reads: a Celery worker gets these with the host,
# so that it logs in where a local run would (another ansible_connection, the jump host,
# port, user and HostName in the ssh arguments, the readiness_* spellings).
LOGIN_VARS = (
    *_CONNECTION_VARS,
    *_SSH_ARGS_FIRST,
    *_SSH_ARGS_AFTER,
    *_PORT_KEYS,
    "readiness_host",
    "readiness_user",
    "readiness_ssh_private_key_file",
)
# The flags read here (ssh_options.flag_arguments never takes an argument for a flag:
# "-c aes128-ctr", "-E file"), by option name.
_FLAG_OPTIONS = {"p": "port", "l": "user", "i": "identityfile", "J": "proxyjump"}
_PROXY_OPTIONS = frozenset(("proxyjump", "proxycommand"))
_READ_OPTIONS = frozenset(
    ("hostname", "port", "user", "identityfile", "hostkeyalias", *_PROXY_OPTIONS)
)
# "-o Key=Value", "-o 'Key Value'", "-o Key = Value", as ssh's own config-line reader splits.
_DASH_O = re.compile(r"\s*([A-Za-z]+)\s*(?:=\s*|\s+)(.*)", re.S)


def _ssh_args_options(
    hvars: Mapping[str, Any], name: str, variables: Sequence[str]
) -> dict[str, str]:
    """The options readiness uses (HostName, Port, User, IdentityFile, ProxyJump,
    ProxyCommand) given in ``variables``, the first value of each kept as ssh keeps it."""
    found: dict[str, str] = {}
    for var, option, given in _options_in_vars(hvars, name, variables):
        # ASCII digits, as ssh reads a port ('²' passes isdigit() and fails int())
        if option == "port" and not (re.fullmatch("[0-9]{1,5}", given) and 0 < int(given) < 65536):
            raise TransportError(f"{var} of {name}: Port {given!r} is not a port number")
        if option in _PROXY_OPTIONS and not given:
            continue  # an empty jump host sets nothing
        found.setdefault(option, given)  # in first-seen order: _first_proxy reads it
    return found


def _options_in_vars(
    hvars: Mapping[str, Any], name: str, variables: Sequence[str]
) -> Iterable[tuple[str, str, str]]:
    """(variable, option name, value) for each option set in the host's ``variables``, in
    the order ssh would see them."""
    for var in variables:
        value = hvars.get(var)
        if not value:
            continue
        try:
            words = shlex.split(str(value))
        except ValueError:
            raise TransportError(f"{var} of {name} cannot be read as ssh options") from None
        for option, given in _options_in_words(words):
            yield var, option, given


def _options_in_words(words: Sequence[str]) -> Iterable[tuple[str, str]]:
    """(option name, value) for each option ``words`` set, in command-line order."""
    for flag, given in flag_arguments(words):
        if flag == "o":
            option = _DASH_O.fullmatch(given)
            key = option.group(1).lower() if option else ""
            if key in _READ_OPTIONS and option is not None:
                yield key, _unquoted(option.group(2).strip())
        elif flag in _FLAG_OPTIONS:
            yield _FLAG_OPTIONS[flag], given.strip()


def _unquoted(value: str) -> str:
    """Ansible writes ``-o 'User="deploy"'``: ssh drops the double quotes, so do we."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _hostname_option(template: str, destination: str, name: str) -> str:
    """``-o HostName=`` with ssh's ``%h`` (the destination) and ``%%`` expanded; any other
    token is refused rather than guessed."""

    def expand(token: re.Match[str]) -> str:
        if token.group(1) == "h":
            return destination
        if token.group(1) == "%":
            return "%"
        raise TransportError(
            f"HostName {template} for {name} (ansible_ssh_*_args) uses %{token.group(1)}, "
            "which readiness does not expand: write the address"
        )

    return re.sub(r"%(.?)", expand, template)


def _first_proxy(*groups: Mapping[str, str]) -> tuple[str, str] | None:
    """(ProxyJump, ProxyCommand) from the first ``-J HOST``, ``-o ProxyJump=HOST`` or
    ``-o ProxyCommand=...`` in the host's ssh arguments (``groups``: their options in
    command-line order), where Ansible users put their bastion, as ssh takes the first of
    the two it is given; None when none is. Ignoring them connected straight to an address
    the user's ssh reaches only through the jump host."""
    for options in groups:
        for option, given in options.items():
            if option == "proxyjump":
                return given, ""
            if option == "proxycommand":
                return "", given
    return None


def _refuse_proxy_command(target: SshTarget) -> None:
    """ProxyCommand is not run: say so before connecting, never connect directly to an
    address the user's ssh would reach only through that command."""
    if target.proxy_command:
        raise TransportError(
            f"ProxyCommand ({target.proxy_command}) is set for {target.name} (ssh_config or "
            "ansible_ssh_common_args), "
            "which readiness does not run (it would execute a command from the config for "
            "every host): use ProxyJump instead, or give the host an address the "
            "controller reaches (ansible_host)"
        )


_JINJA = re.compile(r"\{\{|\{%")


def _refuse_template(target: SshTarget) -> None:
    """A login setting that is a Jinja template (``ansible_host: "{{ inventory_hostname
    }}.example.com"``) is one Ansible renders and readiness does not: logging in to the text
    as written would reach another name (a wildcard DNS record resolves it), as another user,
    with another key. The host is not connected to, and the reason says which setting."""
    settings = (
        ("address", target.address),
        ("user", target.user),
        ("jump host", target.proxy_jump),
        *(("key file", key) for key in target.key_files),
    )
    for what, value in settings:
        if _JINJA.search(value):
            raise TransportError(
                f"the {what} of {target.name}, {value!r}, is a Jinja template, which readiness "
                "does not render: write the value in the inventory (or in readiness_host, "
                "readiness_user, readiness_ssh_private_key_file, which readiness reads first)"
            )


# Tried first among the ciphers paramiko offers anyway (the set offered is unchanged,
# only the order): AES-GCM is an AEAD mode, one C call per packet with its own tag,
# where paramiko's default aes128-ctr + hmac-sha2-256 adds a Python HMAC and a Python
# byte-by-byte MAC comparison to every packet (docs/security.md, docs/performance.md).
CIPHER_PREFERENCE = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _preferred(offered: Sequence[str], first: Sequence[str]) -> tuple[str, ...]:
    """``offered`` with those of ``first`` moved to the front: nothing added, nothing lost."""
    return (*(a for a in first if a in offered), *(a for a in offered if a not in first))


def _transport(
    sock: socket.socket | paramiko.Channel, disabled_algorithms: Mapping[str, Any] | None = None
) -> paramiko.Transport:
    """The connection's paramiko ``Transport``: paramiko's own algorithms, AES-GCM first."""
    transport = paramiko.Transport(sock, disabled_algorithms=disabled_algorithms)
    options = transport.get_security_options()
    options.ciphers = _preferred(options.ciphers, CIPHER_PREFERENCE)
    return transport


class Connection:
    """One host's SSH connection: a paramiko ``SSHClient`` given exactly this host's
    settings (its address, user and port, its loaded key, its known_hosts entries, the
    connector's host-key policy), opened over a socket of ours.

    Fabric's ``Connection`` wrapped the same ``SSHClient`` call, but building one (its
    ``Config`` cloned per host, invoke re-merging it on each write) cost ~1 ms of
    controller CPU per host, and readiness used nothing else of it: commands go through
    :class:`SshTransport` (never Fabric's unquoted ``env=``), ssh_config is read once by
    :class:`SshConnector`, ProxyJump is ours (docs/performance.md).
    """

    def __init__(
        self,
        target: SshTarget,
        client: paramiko.SSHClient,
        pkey: paramiko.PKey | None,
        allow_agent: bool,
        timeout: float,
    ) -> None:
        self.target, self.client = target, client
        self.transport: paramiko.Transport | None = None
        self.jump: Connection | None = None  # the jump host's connection, closed with this one
        self._connect_kwargs: dict[str, Any] = {
            "hostname": target.address,
            "port": target.port,
            "username": target.user,
            "pkey": pkey,
            # The agent is tried after the key file (as ssh does with IdentityFile),
            # and instead of it when the file is encrypted.
            "allow_agent": allow_agent,
            "look_for_keys": False,  # keys are loaded once, by the connector
            # Only bounds the key exchange (the TCP connect is ours): the banner's own
            # timeout must fire first so a silent socket says "no SSH banner".
            "timeout": timeout * 2,
            "banner_timeout": timeout,
            "auth_timeout": timeout,
            "channel_timeout": timeout,
            "transport_factory": _transport,
        }

    def open(self, sock: socket.socket | paramiko.Channel) -> None:
        """Key exchange, host key verification and authentication over ``sock``."""
        self.client.connect(sock=sock, **self._connect_kwargs)
        self.transport = self.client.get_transport()

    def close(self) -> None:
        """Close the connection (its channels and tunnels' channels with it), then the
        jump host's, if any."""
        try:
            self.client.close()  # also its ssh-agent socket, if authentication used one
        finally:
            if self.jump is not None:
                self.jump.close()


class EncryptedKeyError(TransportError):
    """A private key file that needs a passphrase readiness does not have."""

    def __init__(self, path: str) -> None:
        super().__init__(f"private key {path} is encrypted (passphrase-protected)")
        self.path = path


def _read_key(path: str) -> paramiko.PKey | TransportError:
    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        return EncryptedKeyError(path)
    except TypeError as exc:
        # paramiko 5 reports an encrypted key without a passphrase as a TypeError.
        if "password" in str(exc).lower():
            return EncryptedKeyError(path)
        return TransportError(f"cannot read private key {path}: {exc}")
    except FileNotFoundError:
        return TransportError(f"private key not found: {path}")
    except (OSError, paramiko.SSHException, ValueError) as exc:
        return TransportError(f"cannot read private key {path}: {exc}")


def _connect(
    conn: Connection,
    target: SshTarget,
    timeout: float,
    known: KnownHosts | None = None,
    *,
    sock: paramiko.Channel | None = None,
) -> None:
    """Open ``conn`` eagerly (over ``sock``, a jump host's channel, when given); every
    failure becomes a TransportError with a clear reason."""
    where = endpoint(target.address, target.port)
    if sock is not None:
        _open_over(conn, sock, target=target, where=where, timeout=timeout, known=known)
        return
    try:
        tcp = socket.create_connection((target.address, target.port), timeout=timeout)
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
    tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _open_over(conn, tcp, target=target, where=where, timeout=timeout, known=known)


def _open_over(
    conn: Connection,
    sock: socket.socket | paramiko.Channel,
    *,
    target: SshTarget,
    where: str,
    timeout: float,
    known: KnownHosts | None,
) -> None:
    try:
        conn.open(sock)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            conn.client.close()  # also its ssh-agent socket
        sock.close()
        if isinstance(exc, Exception):
            raise _map_error(exc, target, where, timeout, known) from None
        raise


def _map_error(
    exc: Exception,
    target: SshTarget,
    where: str,
    timeout: float,
    known: KnownHosts | None = None,
) -> TransportError:
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, paramiko.BadHostKeyException):
        revoked_at = known.revocation(target.known_hosts_name, exc.key) if known else None
        if revoked_at:
            return HostKeyError(
                f"host key for {target.known_hosts_name} ({exc.key.get_name()} "
                f"{exc.key.fingerprint}) is REVOKED ({revoked_at}): refusing to connect"
            )
        return HostKeyError(
            f"host key CHANGED for {target.known_hosts_name} (now {exc.key.get_name()} "
            f"{exc.key.fingerprint}): possible man-in-the-middle attack; if the change is "
            f"expected, remove the old key (ssh-keygen -R '{target.known_hosts_name}') and verify the new one"
        )
    no_method = isinstance(exc, paramiko.SSHException) and "No authentication methods" in str(exc)
    if isinstance(exc, paramiko.AuthenticationException) or no_method:
        if target.encrypted_key:
            return TransportError(
                f"authentication failed for {target.user}@{where}: private key "
                f"{target.encrypted_key} is encrypted (no passphrase), and ssh-agent offered "
                f"no key the host accepts: `ssh-add {target.encrypted_key}`"
            )
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


class PtyReply:
    """The server's answer to a pty request, read when the command's own answer is in."""

    def __init__(self) -> None:
        self.answered = threading.Event()
        self.granted = False

    def answer(self, granted: bool) -> None:
        self.granted = granted
        self.answered.set()


_REPLIES_LOCK = threading.Lock()


def _pty_replies(transport: paramiko.Transport) -> dict[int, PtyReply]:
    """Channels of ``transport`` whose next request reply answers their pty request.

    paramiko closes a channel on any refused request and lets only one request wait at a
    time; a pty request sent without waiting (the exec follows at once) needs its reply
    routed here instead: replies come in request order (RFC 4254 5.4), so a channel's
    first reply is its pty's. Installed once per transport, in its own handler table.
    """
    with _REPLIES_LOCK:
        found: dict[int, PtyReply] | None = getattr(transport, "_readiness_pty_replies", None)
        if found is not None:
            return found
        replies: dict[int, PtyReply] = {}
        t: Any = transport
        table = dict(t._channel_handler_table)
        success, failure = table[MSG_CHANNEL_SUCCESS], table[MSG_CHANNEL_FAILURE]

        def on_success(chan: paramiko.Channel, m: paramiko.Message) -> None:
            reply = replies.pop(chan.chanid, None)
            if reply is None:
                success(chan, m)
            else:
                reply.answer(True)

        def on_failure(chan: paramiko.Channel, m: paramiko.Message) -> None:
            reply = replies.pop(chan.chanid, None)
            if reply is None:
                failure(chan, m)
            else:
                reply.answer(False)  # the channel stays open: the exec follows without a pty

        table[MSG_CHANNEL_SUCCESS], table[MSG_CHANNEL_FAILURE] = on_success, on_failure
        t._channel_handler_table = table
        t._readiness_pty_replies = replies
        return replies


def request_raw_pty(chan: paramiko.Channel) -> PtyReply:
    """A pseudo-terminal whose only effect is a hang-up when the channel closes.

    Closing a channel without a pty sends the remote command nothing, and OpenSSH refuses
    ``signal`` requests for forced commands; closing a pty hangs it up, and the kernel
    sends SIGHUP to the session (see docs/fleet.md). paramiko's ``get_pty`` sends no
    terminal modes, so this builds the same request with every translation turned off.

    The request is sent without waiting for its reply (as OpenSSH's client does): the exec
    request follows at once, and the server handles them in order, so the pty costs no
    round trip of its own. The returned :class:`PtyReply` is answered before the exec's
    reply arrives; a refused pty (``PermitTTY no``) leaves the channel open and the
    command runs without one.
    """
    replies = _pty_replies(chan.transport)  # type: ignore[arg-type]
    reply = replies[chan.chanid] = PtyReply()
    m = paramiko.Message()
    m.add_byte(cMSG_CHANNEL_REQUEST)
    m.add_int(chan.remote_chanid)
    m.add_string("pty-req")
    m.add_boolean(True)
    m.add_string("dumb")
    for size in (0, 0, 0, 0):  # columns, rows, width and height in pixels: unknown
        m.add_int(size)
    m.add_string(_RAW_MODE_BYTES)
    try:
        chan.transport._send_user_message(m)  # type: ignore[union-attr]
    except BaseException:
        replies.pop(chan.chanid, None)
        raise
    return reply


def exec_with_input(chan: paramiko.Channel, command: str, stdin: bytes) -> None:
    """``chan.exec_command(command)`` then ``chan.sendall(stdin)``, without waiting for the
    server's reply to the exec before sending the input: the server handles a channel's
    messages in order, so the command has started when its input arrives, and a host costs
    one round trip less (docs/performance.md). A refused exec still raises."""
    m = paramiko.Message()
    m.add_byte(cMSG_CHANNEL_REQUEST)
    m.add_int(chan.remote_chanid)
    m.add_string("exec")
    m.add_boolean(True)
    m.add_string(command)
    chan._event_pending()  # type: ignore[attr-defined]
    chan.transport._send_user_message(m)  # type: ignore[union-attr]
    if stdin:
        chan.sendall(stdin)
    chan._wait_for_event()  # type: ignore[attr-defined]


_ATTEMPT_GRACE_S = 2.0  # beyond the channel-open timeout, for a waiter on another's attempt


def _without_frames(exc: Exception) -> Exception:
    """``exc`` and the exceptions it chains, without their tracebacks.

    A tunnel's failure is kept on its attempt and reported by its text alone. With its
    traceback it would hold, through each frame's caller, the first caller's whole stack
    (the check, the host's audit with all its facts, the fleet worker) in a reference
    cycle with the attempt: one per refused tunnel, freed only by the garbage collector,
    which then walked every host's audit (~0.3 ms of controller CPU per host on the
    example, docs/performance.md).
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 32:  # bounded: chains are a few links long
        chained = todo.pop()
        if chained is None or id(chained) in seen:
            continue
        seen.add(id(chained))
        chained.__traceback__ = None
        todo += (chained.__cause__, chained.__context__)
    return exc


class _Attempt:
    """One try at a destination's tunnel, shared by every caller that wants it meanwhile.

    A prefetched attempt starts with its channel open already sent (``sent``) and no
    owner: the first caller that wants the destination claims it and waits for the answer.
    """

    def __init__(self, sent: PendingOpen | None = None) -> None:
        self.done = threading.Event()
        self.address: tuple[str, int] = ("", 0)
        self.error: Exception | None = None
        self.sent = sent
        self.claimed = sent is None  # a prefetched attempt waits for its first caller


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
        self._attempts: dict[tuple[str, int], _Attempt] = {}
        self._closed = threading.Event()
        self.pty = True  # turned off for this host once its server refuses a pty

    def tunnel(self, host: str, port: int) -> tuple[str, int]:
        """``("127.0.0.1", local_port)`` forwarding to ``host:port`` as this host sees it.

        One tunnel per destination, reused by every check of the host and closed with the
        transport. The destination is tried once when the tunnel is made: a
        :class:`~readiness.errors.TunnelError` says why it cannot be reached (``refused``
        when nothing listens there). Callers that want the same destination at the same
        time (or while :meth:`prefetch` opens it) share one attempt and its answer.
        """
        dest = (host, port)
        with self._tunnels_lock:
            existing = self.tunnels.get(dest)
            if existing is not None and not existing.closed:
                return existing.address
            attempt = self._attempts.get(dest)
            mine = attempt is None or not attempt.claimed
            if attempt is None:
                attempt = self._attempts[dest] = _Attempt()
            attempt.claimed = True
        if mine:
            self._establish(dest, attempt)
        elif not attempt.done.wait(self.tunnel_timeout + _ATTEMPT_GRACE_S):
            raise TransportError(
                f"cannot tunnel to {endpoint(host, port)} through {self.target.name}: "
                "timed out waiting for the SSH server"
            )
        with self._tunnels_lock:
            if self._attempts.get(dest) is attempt:
                del self._attempts[dest]  # answered: a later call tries again
        error, address = attempt.error, attempt.address
        del attempt  # this frame goes into the error's traceback: it must not hold it
        if error is not None:
            try:
                raise error
            finally:
                del error
        return address

    def prefetch(self, destinations: Iterable[tuple[str, int]]) -> None:
        """Send the channel opens for ``destinations`` (named by this host's own checks
        from this host's own configuration) all at once, without waiting: their answers
        share one round trip, and :meth:`tunnel` then waits for the answer instead of
        asking again. No thread is started: the first :meth:`tunnel` call for a
        destination reads its answer (one that is never asked for goes with the
        connection)."""
        wanted: list[tuple[str, int]] = []
        with self._tunnels_lock:
            if self._closed.is_set():
                return
            transport = self.conn.transport
            if transport is None or not transport.is_active():
                return
            for dest in dict.fromkeys(destinations):
                existing = self.tunnels.get(dest)
                if (existing is not None and not existing.closed) or dest in self._attempts:
                    continue
                wanted.append(dest)
            # Registered (no I/O) before anything is sent: a caller that wants one of
            # them meanwhile claims it and waits for its answer instead of asking again.
            started = []
            for dest in wanted:
                sent = PendingOpen(
                    transport, dest, (LISTEN_ADDRESS, 0), self.target.name, send=False
                )
                self._attempts[dest] = _Attempt(sent)
                started.append(sent)
        for sent in started:  # outside the lock: close() must not wait for a send
            sent.send()

    def _establish(self, dest: tuple[str, int], attempt: _Attempt) -> None:
        """Try ``dest`` once and make its tunnel; the outcome goes to ``attempt``."""
        try:
            attempt.address = self._make_tunnel(dest, attempt.sent)
        except Exception as exc:  # every caller sees what the one attempt raised
            attempt.error = _without_frames(exc)
        finally:
            attempt.done.set()

    def _make_tunnel(self, dest: tuple[str, int], sent: PendingOpen | None) -> tuple[str, int]:
        transport = self.conn.transport
        if self._closed.is_set() or transport is None or not transport.is_active():
            raise TransportError(f"connection to {self.target.name} is closed")
        # Outside the lock: close() (a host deadline) must not wait for a slow destination.
        # The destination is tried once (its channel opened, then closed): clients of a
        # tunnel to a closed port would otherwise see only "server closed the connection".
        if sent is None:
            sent = PendingOpen(transport, dest, (LISTEN_ADDRESS, 0), self.target.name)
        sent.check(self.tunnel_timeout)
        made = Tunnel(transport, dest, timeout=self.tunnel_timeout, via=self.target.name)
        with self._tunnels_lock:
            if self._closed.is_set():
                made.close()
                raise TransportError(f"connection to {self.target.name} is closed")
            previous = self.tunnels.get(dest)
            self.tunnels[dest] = made
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
        chan, pty = self._session(transport, deadline)
        try:
            return self._exchange(
                chan,
                pty,
                shlex.join(argv),
                stdin=stdin,
                started=started,
                deadline=deadline,
                max_output=max_output,
            )
        finally:
            chan.close()  # on a pty: the remote session is hung up, whatever it was doing

    def start(self, argv: Sequence[str], *, timeout: float, stdin: bytes = b"") -> SshSession:
        """One remote process (one command, on a raw pty) for several requests: the
        probe's rounds; ``stdin`` (the first request) goes with the exec. Closing the
        session hangs its pty up, as :meth:`run` does."""
        deadline = time.monotonic() + timeout
        transport = self.conn.transport
        if transport is None or not transport.is_active():
            raise TransportError(f"connection to {self.target.name} is closed")
        self.stats.count(self.stats.commands, self.target.name)
        chan, pty = self._session(transport, deadline)
        try:
            chan.settimeout(max(0.1, deadline - time.monotonic()))
            exec_with_input(chan, shlex.join(argv), stdin)  # the first request: no wait
        except (TimeoutError, paramiko.SSHException, EOFError, OSError) as exc:
            chan.close()
            raise TransportError(f"command failed to start on {self.target.name}: {exc}") from None
        finally:
            self._forget_pty(chan)
        self._has_pty(pty)
        return SshSession(chan, self.target.name)

    def _session(
        self, transport: paramiko.Transport, deadline: float
    ) -> tuple[paramiko.Channel, PtyReply | None]:
        """A new session channel and, unless this host refused one before, its pty
        request (sent, not yet answered: the exec request follows it at once)."""
        try:
            chan = transport.open_session(timeout=max(0.1, deadline - time.monotonic()))
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransportError(f"cannot open a session on {self.target.name}: {exc}") from None
        if not self.pty:
            return chan, None
        try:
            return chan, request_raw_pty(chan)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            chan.close()
            raise TransportError(f"cannot open a session on {self.target.name}: {exc}") from None

    @staticmethod
    def _forget_pty(chan: paramiko.Channel) -> None:
        """Drop a pty reply that never came (the exec failed first), so it cannot take
        another request's reply."""
        transport = chan.transport
        if transport is not None:
            _pty_replies(transport).pop(chan.chanid, None)

    def _has_pty(self, pty: PtyReply | None) -> bool:
        """Whether the command (its exec answered) runs on a pty. A refused pty
        (``PermitTTY no``): the command runs without one, and later ones do not ask."""
        if pty is None:
            return False
        if pty.answered.is_set() and pty.granted:
            return True
        if self.pty:
            self.pty = False
            log.warning(
                "readiness: %s refuses a pty: a command that hangs there before the "
                "probe starts cannot be stopped from here",
                self.target.name,
            )
        return False

    def _exchange(
        self,
        chan: paramiko.Channel,
        pty: PtyReply | None,
        command: str,
        *,
        stdin: bytes,
        started: float,
        deadline: float,
        max_output: int,
    ) -> CommandResult:
        try:
            chan.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                exec_with_input(chan, command, stdin)
            finally:
                self._forget_pty(chan)
            if not self._has_pty(pty):  # a terminal has no end of input: the bootstrap counts
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


class SshSession:
    """One remote process on its own channel, fed request after request."""

    def __init__(self, chan: paramiko.Channel, name: str) -> None:
        self.chan, self.name = chan, name

    @property
    def alive(self) -> bool:
        chan = self.chan
        return not (chan.closed or chan.eof_received or chan.exit_status_ready())

    def exchange(
        self,
        stdin: bytes,
        *,
        until: Callable[[bytes], bool],
        timeout: float,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> CommandResult:
        started = time.monotonic()
        deadline = started + timeout
        chan = self.chan
        try:
            chan.settimeout(max(0.1, timeout))
            if stdin:
                chan.sendall(stdin)
        except TimeoutError:
            return _result(-1, [], [], started, timed_out=True)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransportError(f"request failed on {self.name}: {exc}") from None
        out, err, state = _read_both(chan, deadline, max_output, until=until)
        if state == "complete":
            return _result(0, out, err, started, running=True)
        if state:
            return _result(-1, out, err, started, **{state: True})
        if not chan.status_event.wait(max(0.0, deadline - time.monotonic())):
            return _result(-1, out, err, started, timed_out=True)
        return _result(chan.exit_status, out, err, started)

    def close(self) -> None:
        """'No more requests' (it then exits by itself), and the channel closed: on a pty
        the remote session is hung up, whatever it was doing."""
        with contextlib.suppress(Exception):
            if not self.chan.closed:
                self.chan.settimeout(1.0)
                self.chan.sendall(b"\n")
        self.chan.close()


def _read_both(
    chan: paramiko.Channel,
    deadline: float,
    max_output: int,
    *,
    until: Callable[[bytes], bool] | None = None,
) -> tuple[list[bytes], list[bytes], str]:
    """Drain stdout and stderr until EOF (or until ``until`` says stdout's answer is
    complete: "complete"); stop at the deadline or past ``max_output``."""
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
            if until is not None and until(data):
                return out, err, "complete"
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
    running: bool = False,
) -> CommandResult:
    return CommandResult(
        exit_code=code,
        stdout=b"".join(out),
        stderr=b"".join(err),
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
        truncated=truncated,
        running=running,
    )
