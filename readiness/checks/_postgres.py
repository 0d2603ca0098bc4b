"""Which PostgreSQL database an app uses, and a read-only connection to it from the controller.

Shared by ``database_migration``, ``db_benchmark`` and ``backup_roundtrip``: the DSN is
resolved the same way everywhere (profile ``database_dsn`` first, then the app's settings
and environment), every password is declared secret, and connection failures get the same
distinct messages (auth, unknown database, server down, timeout, unresolvable host).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import math
import os
import pwd
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..findings import Findings
from ..redact import MASK, redact_url_password
from ..registry import CheckContext
from . import _access
from ._access import AccessError, Route, host_local
from ._common import Dsn, Endpoint, parse_dsn, settings_problem

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "Target",
    "clean_env",
    "close",
    "connect_args",
    "connect_read_only",
    "connection_failed",
    "host_local",
    "host_only",
    "host_only_reason",
    "psycopg_error",
    "resolve_target",
    "scrub",
    "through_host",
    "tunnel_destination",
]


@dataclass(frozen=True)
class Target:
    """The app's database: ``dsn`` as configured (for messages), ``raw`` to connect with.

    When ``route`` is set, ``raw`` is the configured string with ``hostaddr``/``port``
    pointing at the host's SSH tunnel; ``host`` is kept, so TLS name checks still apply.
    """

    dsn: Dsn
    raw: str
    source: str
    from_app: bool
    route: Route | None = None

    @property
    def clean(self) -> bool:
        """Connect with exactly the DSN's own credentials (no libpq environment, no
        ``~/.pgpass``, no service file, no client certificate): the DSN came from the
        host, or the connection goes through the host's tunnel."""
        return self.from_app or self.route is not None


# A DSN from a host may only say where and as whom to connect. Keys that name files or
# services on the controller (passfile, service, sslcert, sslkey, sslkeylogfile, ...) would
# make the controller read its own secrets, or write files, for a server the host chose.
HOST_DSN_KEYS = frozenset(
    {
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "connect_timeout",
        "application_name",
        "fallback_application_name",
        "options",
        "client_encoding",
        "sslmode",
        "sslnegotiation",
        "sslsni",
        "sslcompression",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "channel_binding",
        "gssencmode",
        "require_auth",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "target_session_attrs",
        "load_balance_hosts",
    }
)


def _host_key_allowed(key: str, value: str) -> bool:
    """``sslrootcert=system`` (the OS trust store) names no controller file: allowed."""
    return key in HOST_DSN_KEYS or (key == "sslrootcert" and value == "system")


# /dev/null is not a directory, so this password file can never exist: libpq finds no
# password in it and, given explicitly, it replaces PGPASSFILE and ~/.pgpass.
NO_PASSFILE = "/dev/null/readiness-no-passfile"
# Given explicitly, these override the controller's PG* variables and files: no client
# certificate, no Kerberos/GSS credentials (nor their delegation), no OAuth flow.
CLEAN_PINS = {
    "passfile": NO_PASSFILE,
    "sslcertmode": "disable",
    "gssencmode": "disable",
    "gssdelegation": "0",
    "require_auth": "password,md5,scram-sha-256,none",
}
# libpq options that reject an empty value; none of them carries a credential.
_NO_EMPTY = frozenset(
    {
        "service",
        "min_protocol_version",
        "max_protocol_version",
        "scram_client_key",
        "scram_server_key",
    }
)


def resolve_target(ctx: CheckContext, f: Findings) -> Target | None:
    raw, source, from_app = dsn_text(ctx)
    if raw is None and ctx.app.settings_error:
        # The connection string may be in the file that could not be read (or judged).
        settings_problem(f, ctx.app)
        return None
    if raw is None:
        f.fail(
            "no database connection string configured",
            f"Set database.url in the settings file (or {ctx.app.env_name('database.url')} in "
            "the service environment), or database_dsn in the readiness profile",
        )
        return None
    for secret in loose_passwords(raw):
        ctx.secret(secret)
    from ._conninfo import available

    if not available():  # libpq's own parser reads the DSN
        f.unknown(
            "psycopg is not installed on the controller: the database cannot be checked",
            "Install psycopg 3 on the controller: pip install 'psycopg[binary]>=3.2,<4'",
        )
        return None
    dsn, problem = parse_dsn(raw)
    if dsn is None or dsn.password:
        ctx.secret(raw)  # a string without a password is shown as it is
    if dsn is None:
        f.details["database"] = {"source": source, "format": problem}
        f.fail(
            f"database connection string from {source} is not valid: {problem}",
            f"Fix the connection string in {source}: postgresql://USER:PASSWORD@HOST:5432/DBNAME",
        )
        return None
    ctx.secret(dsn.password)
    f.details["database"] = {"target": dsn.safe(), "source": source}
    refused = sorted(k for k in dsn.options if not _host_key_allowed(k, dsn.options[k]))
    refused = refused if from_app else []
    if refused:
        f.details["database"]["refused_keys"] = refused
        f.unknown(
            f"cannot determine: the connection string from {source} sets {', '.join(refused)}, "
            "which would make the controller use its own files or services for a server the "
            "host chose; readiness refuses it and does not connect",
            f"Remove {', '.join(refused)} from the connection string in {source}, or set "
            "database_dsn in the readiness profile",
        )
        return None
    return Target(dsn, raw, source, from_app)


def loose_passwords(raw: str) -> list[str]:
    """Password candidates of a URL however libpq will split it: with an unencoded '@' in
    the password, libpq ends it at the first '@' and the rest becomes the host name, so
    both the part up to the last '@' and each fragment are secrets."""
    found = re.search(r"://([^/?#\s]*)@", raw)  # greedy: up to the last '@' of the netloc
    if not found or ":" not in found.group(1):
        return []
    password = found.group(1).split(":", 1)[1]
    return [password, *(p for p in password.split("@") if len(p) >= 3)]


def dsn_text(ctx: CheckContext) -> tuple[str | None, str, bool]:
    explicit = ctx.profile.get("database_dsn")
    if isinstance(explicit, str) and explicit.strip():
        return explicit, "profile key database_dsn", False
    for dotted in ctx.profile.get("database_url_settings") or ():
        value, source = ctx.app.lookup(str(dotted))
        if isinstance(value, str) and value.strip():
            where = dotted if source == "settings file" else ctx.app.env_name(str(dotted))
            return value, f"{where} ({source})", True
    return None, "", False


def _host_local_from_app(target: Target) -> bool:
    # A profile database_dsn is written from the controller's point of view.
    return target.from_app and all(
        host_local(e.host) and host_local(e.address) for e in _servers(target.dsn)
    )


def host_only(ctx: CheckContext, target: Target) -> bool:
    """True when only the (remote) host can reach the database and it will not be tunnelled.

    ``service_access: direct`` never tunnels, a transport without tunnels cannot, and a
    unix socket cannot be tunnelled at all.
    """
    if ctx.is_local:
        return False
    try:
        mode = _access.access_mode(ctx)
    except ValueError:
        return False  # through_host reports the bad value
    if _any_socket(target):
        return (mode == "ssh" and ctx.can_tunnel) or _host_local_from_app(target)
    return _host_local_from_app(target) and (mode == "direct" or not ctx.can_tunnel)


def _any_socket(target: Target) -> bool:
    return any(_access.unix_socket(e.host) for e in _servers(target.dsn))


def _servers(dsn: Dsn) -> tuple[Endpoint, ...]:
    return dsn.endpoints or (Endpoint(dsn.host, "", dsn.port),)


def host_only_reason(ctx: CheckContext, target: Target) -> tuple[str, str]:
    """Why :func:`host_only` held, and what to do (a suffix and an extra recommendation)."""
    if _any_socket(target):
        return (
            " (a unix socket cannot be tunnelled over SSH)",
            "or point the app at a TCP address (e.g. 127.0.0.1:5432), which readiness can "
            "reach through the host's SSH connection",
        )
    if not ctx.can_tunnel:
        return " (this host's connection cannot carry tunnels)", "or audit the host over SSH"
    return (
        " (service_access: direct)",
        "or set service_access: auto to reach it through the host's SSH connection",
    )


def tunnel_destination(ctx: CheckContext) -> list[tuple[str, int]]:
    """The destination :func:`resolve_target` then :func:`through_host` would open a tunnel
    to first (the first server; the others only if it fails), or none: the same
    decisions, without opening anything. For the runner to open it with the host's other
    destinations."""
    target = resolve_target(ctx, Findings())
    if target is None or host_only(ctx, target):
        return []
    try:
        tunnel = _access.wants_tunnel(ctx, target.dsn.host, host_local=_host_local_from_app(target))
    except ValueError:
        return []
    first = _servers(target.dsn)[0]
    if not tunnel or _access.unix_socket(first.address):
        return []
    return [(first.address, first.port)]


def through_host(ctx: CheckContext, f: Findings, target: Target) -> Target | None:
    """``target``, routed through the host's SSH connection when ``service_access`` says so.

    ``None`` (the reason in ``f``) when the profile value is invalid or the tunnel cannot
    reach the database; a refused destination reads like a refused direct connection.
    """
    try:
        tunnel = _access.wants_tunnel(ctx, target.dsn.host, host_local=_host_local_from_app(target))
    except ValueError as exc:
        f.fail(str(exc), "Set service_access to auto, direct or ssh")
        return None
    if not tunnel:
        return _confined(ctx, f, target)
    routes = []
    for server in _servers(target.dsn):
        try:
            routes.append(_access.route(ctx, server.address, server.port))
        except AccessError as exc:
            f.details["database"]["access"] = f"through an SSH tunnel via {ctx.host} (failed)"
            if exc.refused:
                timeout = float(ctx.profile.threshold("db_connect_timeout_s"))
                connection_failed(f, exc, target, timeout)
            else:
                f.fail(
                    f"cannot reach the database at {target.dsn.safe()} through host {ctx.host}: "
                    f"{exc}",
                    "Allow TCP forwarding for the audit user in the host's sshd_config "
                    "(AllowTcpForwarding), or set database_dsn to an address the controller "
                    "reaches",
                )
            return None
    if any(route.via is None for route in routes):  # a transport that cannot tunnel
        return _confined(ctx, f, target)
    try:
        from psycopg.conninfo import make_conninfo
    except ImportError:
        return target  # connect_read_only reports the missing driver
    f.details["database"]["access"] = routes[0].note
    raw = make_conninfo(
        target.raw,
        hostaddr=",".join(route.host for route in routes),
        port=",".join(str(route.port) for route in routes),
    )
    if target.dsn.password:
        ctx.secret(raw)
    return dataclasses.replace(target, raw=raw, route=routes[0])


def _confined(ctx: CheckContext, f: Findings, target: Target) -> Target | None:
    """A DSN from the host is connected to only on the host itself: directly when the host
    is the controller's own machine (loopback or a socket), otherwise through its tunnel.

    Anything else (``hostaddr=`` of another machine, a database server elsewhere) is
    refused: a hostile host must not be able to point the controller at a server it chose.
    """
    if not target.from_app:
        return target
    outside = [
        server
        for server in _servers(target.dsn)
        if not (ctx.is_local and host_local(server.host) and host_local(server.address))
    ]
    if not outside:
        return target
    where = ", ".join(
        Endpoint(s.address, "", s.port).render()
        + (f" (hostaddr of {s.host})" if s.hostaddr and s.hostaddr != s.host else "")
        for s in outside
    )
    f.details["database"]["refused_destination"] = where
    f.unknown(
        f"cannot determine: the connection string from {target.source} points at {where}, "
        f"which is not host {ctx.host} itself; readiness connects to a database named by a "
        "host only on that host (or through its SSH connection), never where the host points",
        "Set database_dsn in the readiness profile to the database as the controller should "
        f"reach it, or service_access: ssh to reach it through host {ctx.host}'s SSH connection",
    )
    return None


def connect_args(
    target: Target, *, timeout: float, application_name: str, **overrides: str
) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.connect`` to ``target``.

    A clean target (:attr:`Target.clean`) gets exactly its DSN's credentials: every libpq
    option that would otherwise come from the controller (``PGPASSWORD``, ``~/.pgpass``,
    ``PGSERVICE``'s entries, client certificates, Kerberos) is given explicitly. A profile
    DSN connected directly is the operator's own and keeps libpq's usual environment.
    """
    common = {
        "connect_timeout": str(max(1, math.ceil(timeout))),
        "application_name": application_name,
        **overrides,
    }
    if not target.clean:
        return {"conninfo": target.raw, **common}
    from psycopg.conninfo import conninfo_to_dict

    params = {
        key: str(value)
        for key, value in conninfo_to_dict(target.raw).items()
        if value is not None and _host_key_allowed(key, str(value))
    }
    params.update(common)
    params.setdefault("password", "")
    params.setdefault("user", _controller_user())
    for key, value in _environment_pins().items():
        params.setdefault(key, value)
    for key, value in _service_pins().items():
        params.setdefault(key, value)
    params.update(CLEAN_PINS)
    return params


def clean_env(params: dict[str, Any]) -> dict[str, str]:
    """The environment for a libpq child process (pg_dump, psql) connecting with
    ``params``: the controller's ``PG*`` variables removed, the password in ``PGPASSWORD``
    (never in argv), the clean pins as their environment variables."""
    names = _env_names()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in {**params, **CLEAN_PINS}.items():
        if key in names and value is not None and str(value) != "":
            env[names[key]] = str(value)
    return env


def _controller_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _env_names() -> dict[str, str]:
    """libpq option -> the environment variable it falls back to."""
    from psycopg import pq

    return {o.keyword.decode(): o.envvar.decode() for o in pq.Conninfo.get_defaults() if o.envvar}


def _environment_pins() -> dict[str, str]:
    """For each libpq variable set in the controller's environment, the option's built-in
    default (or empty), so the variable cannot reach a connection the host chose."""
    from psycopg import pq

    pins = {}
    for option in pq.Conninfo.get_defaults():
        key = option.keyword.decode()
        if not option.envvar or option.envvar.decode() not in os.environ or key in _NO_EMPTY:
            continue
        pins[key] = option.compiled.decode() if option.compiled is not None else ""
    return pins


# libpq options whose empty value is an error ("invalid integer value"); a service entry
# may still set them: connection timing only, nothing about where, who or TLS.
_NO_EMPTY_INTEGERS = frozenset(
    {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout"}
)


def _service_pins() -> dict[str, str]:
    """With ``PGSERVICE`` set on the controller, every other libpq option at its built-in
    default (or empty), so the service entry fills nothing of a connection the host chose.

    libpq fills each option the connection string leaves unset from the service entry
    (psql is the reference: tests/security/test_hostile_dsn.py): a host's
    ``postgresql:///app?host=/run/postgresql`` went to the entry's ``hostaddr``/``port``,
    a server the host never named, and its ``sslmode=disable`` turned TLS off for a DSN
    that asked for libpq's default (``prefer``).
    """
    if "PGSERVICE" not in os.environ:
        return {}
    from psycopg import pq

    pins = {}
    for option in pq.Conninfo.get_defaults():
        key = option.keyword.decode()
        if key in _NO_EMPTY or (option.compiled is None and key in _NO_EMPTY_INTEGERS):
            continue
        pins[key] = option.compiled.decode() if option.compiled is not None else ""
    return pins


def close(conn: psycopg.Connection[Any]) -> None:
    """Roll back (never commit) and close; a broken connection must not mask the verdict."""
    import psycopg

    with contextlib.suppress(psycopg.Error):
        conn.rollback()
    conn.close()


def scrub(text: str, target: Target) -> str:
    """``text`` (a driver's error) without the DSN's password, on one line."""
    for secret in (target.raw, target.dsn.password, *loose_passwords(target.raw)):
        if secret:
            text = text.replace(secret, MASK)
    return " ".join(redact_url_password(text).split())


def connection_failed(f: Findings, exc: Exception, target: Target, timeout: float) -> None:
    d = target.dsn
    where, text = Endpoint(d.host, "", d.port).render(), scrub(str(exc), target)
    low = text.lower()
    sqlstate = getattr(exc, "sqlstate", None)
    source = target.source
    reason, problem, rec = (
        "other",
        f"cannot connect to the database at {d.safe()}: {text}",
        (f"Check the database server at {where} and the connection string in {source}"),
    )
    if sqlstate in ("28P01", "28000") or any(
        k in low for k in ("authentication failed", "pg_hba.conf", "no password supplied")
    ):
        reason = "authentication"
        problem = f"authentication failed for database user {d.user!r} at {where}"
        rec = (
            f"Fix the user/password in {source} (test with `psql -h {d.host} -p {d.port} "
            f"-U {d.user} {d.dbname}`) and check pg_hba.conf allows this client"
        )
    elif sqlstate == "3D000" or re.search(r'database ".*" does not exist', low):
        reason = "unknown_database"
        problem = f"database {d.dbname!r} does not exist on {where}"
        rec = f"Create it (`createdb -O {d.user or 'OWNER'} {d.dbname}`) or fix the database name in {source}"
    elif "connection refused" in low:
        reason = "server_down"
        problem = f"database server is down or not listening at {where} (connection refused)"
        rec = f"Start PostgreSQL on {where} (e.g. `systemctl start postgresql`) or fix the host/port in {source}"
    elif "timeout" in low or type(exc).__name__ == "ConnectionTimeout":
        reason = "timeout"
        problem = f"connecting to the database at {where} timed out after {timeout:g}s"
        rec = (
            f"Check that {where} is up and reachable from the controller (firewall, routing); "
            "raise thresholds.db_connect_timeout_s only for a slow network"
        )
    elif "translate host name" in low or "name or service not known" in low:
        reason = "unresolvable_host"
        problem = f"database host {d.host!r} cannot be resolved"
        rec = f"Fix the host name in {source}"
    f.details["connection"] = {"connected": False, "reason": reason, "error": text}
    f.fail(problem, rec)


# Keys a single-server DSN may set and still be connected to exactly at host:port first.
_PLAIN_KEYS = frozenset(
    {"host", "hostaddr", "port", "dbname", "user", "password", "sslmode", "connect_timeout"}
)
_REFUSED_PROBE_S = 0.25


class RefusedConnection(Exception):
    """libpq's and psycopg's words for a server that refused the connection."""


def refused_connection(target: Target) -> RefusedConnection | None:
    """The error psycopg would raise when nothing listens at ``target``, found without
    importing psycopg (~50 ms of start-up; the bundled example's database is down).

    Only for the plainest case, where the text is certain: a direct connection (no tunnel)
    to one server named by an IP address, no ``PG*`` variable in the environment, no key
    that could send libpq elsewhere, and a refusal within 0.25 s. Anything else (it
    listens, a timeout, another error) is left to psycopg. The text is libpq's message
    with psycopg's prefix; ``tests/test_conninfo.py`` compares it with psycopg's own.
    """
    from ._conninfo import bundled as bundled_libpq

    dsn = target.dsn
    server = dsn.endpoints[0] if len(dsn.endpoints) == 1 else None
    if (
        target.route is not None
        or server is None
        or server.hostaddr not in ("", server.host)
        or not set(dsn.options) <= _PLAIN_KEYS
        or any(name.startswith("PG") for name in os.environ)
        # A system libpq (psycopg_c) may be older and refuse what psycopg would send:
        # the text above is certain only for the bundled one.
        or not bundled_libpq()
    ):
        return None
    try:
        address = ipaddress.ip_address(server.host)
    except ValueError:
        return None
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:  # creating the socket fails too (no IPv6 on the controller, EMFILE): psycopg's turn
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(_REFUSED_PROBE_S)
            sock.connect((str(address), server.port))
    except ConnectionRefusedError:
        pass
    except OSError:
        return None
    else:
        return None
    return RefusedConnection(
        f'connection failed: connection to server at "{address}", port {server.port} failed: '
        "Connection refused\n\tIs the server running on that host and accepting TCP/IP "
        "connections?"
    )


def psycopg_error() -> type[Exception]:
    """psycopg's base error class, imported lazily (psycopg is optional at import time)."""
    import psycopg

    return psycopg.Error


def connect_read_only(
    ctx: CheckContext, f: Findings, target: Target, *, application_name: str, purpose: str
) -> psycopg.Connection[Any] | None:
    """Connect with the profile's connect timeout; every transaction is BEGIN READ ONLY.

    ``None`` (with the reason already in ``f``) when psycopg is missing or the connection
    fails; ``purpose`` completes "the database cannot be ...".
    """
    from ._conninfo import available

    if not available():
        f.unknown(
            f"psycopg is not installed on the controller: the database cannot be {purpose}",
            "Install psycopg 3 on the controller: pip install 'psycopg[binary]>=3.2,<4'",
        )
        return None
    timeout = float(ctx.profile.threshold("db_connect_timeout_s"))
    refused = refused_connection(target)
    if refused is not None:
        connection_failed(f, refused, target, timeout)
        return None
    import psycopg

    try:
        conn = psycopg.connect(
            **connect_args(target, timeout=timeout, application_name=application_name)
        )
    except psycopg.Error as exc:
        connection_failed(f, exc, target, timeout)
        return None
    conn.read_only = True  # the caller can never write
    return conn
