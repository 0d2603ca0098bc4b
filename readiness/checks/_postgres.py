"""Which PostgreSQL database an app uses, and a read-only connection to it from the controller.

Shared by ``database_migration``, ``db_benchmark`` and ``backup_roundtrip``: the DSN is
resolved the same way everywhere (profile ``database_dsn`` first, then the app's settings
and environment), every password is declared secret, and connection failures get the same
distinct messages (auth, unknown database, server down, timeout, unresolvable host).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..findings import Findings
from ..redact import MASK, redact_url_password
from ..registry import CheckContext
from . import _access
from ._access import AccessError, Route, host_local
from ._common import Dsn, parse_dsn

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "Target",
    "close",
    "connect_read_only",
    "connection_failed",
    "host_local",
    "host_only",
    "host_only_reason",
    "psycopg_error",
    "resolve_target",
    "scrub",
    "through_host",
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


def resolve_target(ctx: CheckContext, f: Findings) -> Target | None:
    raw, source, from_app = dsn_text(ctx)
    if raw is None:
        f.fail(
            "no database connection string configured",
            "Set database.url in the settings file (or MAHAVISHNU_DATABASE__URL in the service "
            "environment), or database_dsn in the readiness profile",
        )
        return None
    ctx.secret(raw)
    loose = re.search(r"://[^:/@\s]*:([^@\s]+)@", raw)
    ctx.secret(loose.group(1) if loose else None)
    dsn, problem = parse_dsn(raw)
    if dsn is None:
        f.details["database"] = {"source": source, "format": problem}
        f.fail(
            f"database connection string from {source} is not valid: {problem}",
            f"Fix the connection string in {source}: postgresql://USER:PASSWORD@HOST:5432/DBNAME",
        )
        return None
    ctx.secret(dsn.password)
    f.details["database"] = {"target": dsn.safe(), "source": source}
    return Target(dsn, raw, source, from_app)


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
    return target.from_app and host_local(target.dsn.host)


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
    if _access.unix_socket(target.dsn.host):
        return (mode == "ssh" and ctx.can_tunnel) or _host_local_from_app(target)
    return _host_local_from_app(target) and (mode == "direct" or not ctx.can_tunnel)


def host_only_reason(ctx: CheckContext, target: Target) -> tuple[str, str]:
    """Why :func:`host_only` held, and what to do (a suffix and an extra recommendation)."""
    if _access.unix_socket(target.dsn.host):
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
        return target
    try:
        route = _access.route(ctx, target.dsn.host, target.dsn.port)
    except AccessError as exc:
        f.details["database"]["access"] = f"through an SSH tunnel via {ctx.host} (failed)"
        if exc.refused:
            timeout = float(ctx.profile.threshold("db_connect_timeout_s"))
            connection_failed(f, exc, target, timeout)
        else:
            f.fail(
                f"cannot reach the database at {target.dsn.safe()} through host {ctx.host}: {exc}",
                "Allow TCP forwarding for the audit user in the host's sshd_config "
                "(AllowTcpForwarding), or set database_dsn to an address the controller reaches",
            )
        return None
    if route.via is None:
        return target
    try:
        from psycopg.conninfo import make_conninfo
    except ImportError:
        return target  # connect_read_only reports the missing driver
    f.details["database"]["access"] = route.note
    raw = make_conninfo(target.raw, hostaddr=route.host, port=route.port)
    ctx.secret(raw)
    return dataclasses.replace(target, raw=raw, route=route)


def close(conn: psycopg.Connection[Any]) -> None:
    """Roll back (never commit) and close; a broken connection must not mask the verdict."""
    import psycopg

    with contextlib.suppress(psycopg.Error):
        conn.rollback()
    conn.close()


def scrub(text: str, target: Target) -> str:
    for secret in (target.raw, target.dsn.password):
        if secret:
            text = text.replace(secret, MASK)
    return redact_url_password(text)


def connection_failed(f: Findings, exc: Exception, target: Target, timeout: float) -> None:
    d = target.dsn
    where, text = f"{d.host}:{d.port}", scrub(str(exc), target)
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
    try:
        import psycopg
    except ImportError:
        f.unknown(
            f"psycopg is not installed on the controller: the database cannot be {purpose}",
            "Install psycopg 3 on the controller: pip install 'psycopg[binary]>=3.2,<4'",
        )
        return None
    timeout = float(ctx.profile.threshold("db_connect_timeout_s"))
    try:
        conn = psycopg.connect(
            target.raw,
            connect_timeout=max(1, math.ceil(timeout)),
            application_name=application_name,
        )
    except psycopg.Error as exc:
        connection_failed(f, exc, target, timeout)
        return None
    conn.read_only = True  # the caller can never write
    return conn
