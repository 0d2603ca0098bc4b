"""``backup_roundtrip``: a backup of the app's database restores, completely, within the RTO.

Opt-in (``backup_roundtrip.enabled``). Two ways to make the backup:

* ``method: pg_dump`` (default): ``pg_dump -Fc`` of the app database, run on the
  controller; row counts are taken in the very snapshot pg_dump uses
  (``pg_export_snapshot`` + ``--snapshot``), so a busy database still compares exactly.
* ``method: command``: the app's own backup argv, run on the host by the probe, which
  must write ``dump_file`` (custom/tar format or plain SQL); the controller restores it
  when the file is readable here (local host, or ``controller_dump_file`` on shared storage).

The dump is restored into a scratch database ``readiness_scratch_<random>`` on the same
server, tables and row counts are compared with the source, and the scratch database is
dropped in ``finally``. Passwords reach pg_dump/pg_restore/psql only through
``PGPASSWORD`` in the child's environment, never on a command line.

The archive is the host's (its app user controls the data, or writes the file): when the
admin role is privileged, the scratch database is owned by a throwaway role that pg_restore
and every read of it log in as, dropped with it (docs/security.md, C8).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..findings import Findings
from ..interrupt import stop_reason, transaction
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._common import Dsn
from ._integration import argv_of, enabled_section, gate, scratch_name
from ._owned import owned_run, refused_run
from ._postgres import (
    Target,
    clean_env,
    connect_args,
    host_only,
    host_only_reason,
    resolve_target,
    scrub,
    through_host,
)

if TYPE_CHECKING:
    import psycopg

__all__ = ["DEFAULTS", "evaluate", "facts", "find_pg_binary"]

NAME = "backup_roundtrip"
# Stands in for the parsed form of a profile's admin_dsn, which is connected to as written.
_NO_DSN = Dsn("postgresql", "", 5432, "", "", "")
RUN_FACT = f"{NAME}:1-run"
STAT_FACT = f"{NAME}:2-stat"
PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin",)
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
MAX_LISTED = 50

DEFAULTS: dict[str, Any] = {
    NAME: {
        "enabled": False,
        "method": "pg_dump",  # or "command"
        "command": None,  # argv run on the host (method: command); must write dump_file
        "cwd": ".",
        "dump_file": None,  # host path the command writes (relative → app_root)
        "controller_dump_file": None,  # the same file as the controller sees it
        "admin_dsn": None,  # role with CREATEDB for the scratch DB (default: the app's DSN)
        "maintenance_db": "postgres",
        "pg_bin_dir": None,  # default: /usr/lib/postgresql/15/bin, then PATH
        "max_tables": 200,
        "row_count_tolerance_pct": 0,  # only for method: command (no shared snapshot)
    },
    "thresholds": {"backup_max_seconds": 600, "restore_max_seconds": 900},
}
KEYS = tuple(k for k in DEFAULTS[NAME] if k != "enabled")
HOW = (
    "Enable with backup_roundtrip: {enabled: true} (pg_dump of the app database from the "
    "controller) or {enabled: true, method: command, command: [...], dump_file: ...}; "
    "see docs/checks/backup_roundtrip.md"
)


def _limit(seconds: float) -> float:
    """Hard kill for a step: twice its objective, so an overrun is still measured."""
    return max(10.0, 2 * seconds)


def facts(profile: Profile) -> FactSpecs:
    cfg = enabled_section(profile, NAME)
    if cfg is None or cfg.get("method") != "command" or not cfg.get("command"):
        return {}
    # The app's own backup argv, in its tree: run as the owner of its working directory and
    # executable, never as root for the app user's code (docs/security.md, section 1).
    out: FactSpecs = {
        RUN_FACT: owned_run(
            argv_of(cfg["command"]),
            profile.resolve(str(cfg.get("cwd") or ".")) or profile.app_root,
            timeout=_limit(float(profile.threshold("backup_max_seconds"))),
        )
    }
    dump = profile.resolve(cfg.get("dump_file"))
    if dump:
        out[STAT_FACT] = {"op": "stat", "path": dump}
    return out


# --- PostgreSQL on the controller ------------------------------------------------------------


def find_pg_binary(name: str, bin_dir: str | None = None) -> str | None:
    for d in ([bin_dir] if bin_dir else []) + list(PG_BIN_DIRS):
        candidate = Path(d) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def _pg_env(
    source: Target | str, dbname: str | None = None, login: Login | None = None
) -> dict[str, str]:
    """libpq environment for a child process: the password travels here, never in argv.

    The controller's own ``PG*`` variables never reach the child; a DSN from the host (or
    through its tunnel) also gets no ``~/.pgpass`` and no client certificate
    (:func:`~._postgres.clean_env`). ``login``: connect as the throwaway role instead of
    the DSN's own user, at the same server.
    """
    app_name = "readiness-backup-roundtrip"
    overrides = {"dbname": dbname} if dbname is not None else {}
    if login is not None:
        overrides.update(user=login.user, password=login.password)
    if isinstance(source, Target) and source.clean:
        return clean_env(connect_args(source, timeout=10, application_name=app_name, **overrides))
    from psycopg.conninfo import conninfo_to_dict

    raw = source.raw if isinstance(source, Target) else source
    params = {k: v for k, v in conninfo_to_dict(raw).items() if v is not None}
    params.setdefault("connect_timeout", "10")
    return _plain_env({**params, **overrides, "application_name": app_name})


def _plain_env(params: Mapping[str, Any]) -> dict[str, str]:
    names = {
        "host": "PGHOST",
        "hostaddr": "PGHOSTADDR",
        "port": "PGPORT",
        "user": "PGUSER",
        "password": "PGPASSWORD",
        "dbname": "PGDATABASE",
        "sslmode": "PGSSLMODE",
        "sslrootcert": "PGSSLROOTCERT",
        "connect_timeout": "PGCONNECT_TIMEOUT",
        "application_name": "PGAPPNAME",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in params.items():
        if key in names and value is not None:
            env[names[key]] = str(value)
    return env


@dataclass
class Run:
    ok: bool
    seconds: float
    error: str = ""


def _run(argv: list[str], env: Mapping[str, str], timeout: float) -> Run:
    """Run pg_dump/pg_restore on the controller, in its own process group, killed (the
    whole group) at ``timeout`` or as soon as the run is interrupted or the host's deadline
    passes: neither may leave it running, nor wait for a restore that may take minutes."""
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # killable as a group; the terminal's ^C is ours to pass
        )
    except OSError as exc:
        return Run(False, time.monotonic() - t0, str(exc))
    why = ""
    while True:
        try:
            _out, err_bytes = proc.communicate(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            stopped = stop_reason()
            if stopped:
                why = f"stopped: {stopped}"
            elif time.monotonic() - t0 > timeout:
                why = f"killed after {timeout:g}s"
            if why:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                return Run(False, time.monotonic() - t0, why)
    err = err_bytes.decode("utf-8", "replace").strip()
    error = f"exit code {proc.returncode}: {err[-500:]}" if proc.returncode else ""
    return Run(proc.returncode == 0, time.monotonic() - t0, error)


def _connect(
    source: Target | str, timeout: float, login: Login | None = None, **kwargs: Any
) -> psycopg.Connection[Any]:
    """A connection to the app's database (a :class:`Target`, with exactly its own
    credentials when it came from the host) or to the profile's ``admin_dsn`` (a str);
    with ``login``, to the same server as the throwaway role."""
    import psycopg

    target = source if isinstance(source, Target) else Target(_NO_DSN, source, "profile", False)
    autocommit = bool(kwargs.pop("autocommit", False))
    if login is not None:
        kwargs.update(user=login.user, password=login.password)
    args = connect_args(target, timeout=timeout, application_name="readiness", **kwargs)
    return psycopg.connect(autocommit=autocommit, **args)


def _counts(conn: psycopg.Connection[Any], limit: int) -> dict[str, int]:
    """Exact row counts of every user table (``schema.table``), at most ``limit`` tables."""
    from psycopg import sql

    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg_temp%%'"
        " ORDER BY 1, 2 LIMIT %s",
        (list(SYSTEM_SCHEMAS), limit),
    ).fetchall()
    out: dict[str, int] = {}
    for nsp, rel in rows:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(nsp), sql.Identifier(rel)
        )
        row = conn.execute(query).fetchone()
        out[f"{nsp}.{rel}"] = int(row[0]) if row else 0
    return out


@dataclass
class Trip:
    """What one round trip measured."""

    dump: Path | None = None
    backup: Run | None = None
    restore: Run | None = None
    source: dict[str, int] = field(default_factory=dict)
    restored: dict[str, int] = field(default_factory=dict)
    exact: bool = True
    scratch: str = ""
    dropped: bool | None = None
    role: str = ""  # the throwaway role the archive was restored as, if any
    role_dropped: bool | None = None
    app: Target | None = None  # the app's own connection (admin_dsn unset: the same object)


def _statement_timeout(conn: psycopg.Connection[Any], profile: Profile) -> None:
    ms = int(float(profile.threshold("db_statement_timeout_s")) * 1000)
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(ms),))


def _pg_dump(ctx: CheckContext, target: Target, trip: Trip, workdir: Path, limit: int) -> None:
    """Dump in the snapshot the row counts are taken in (exact comparison on a live DB)."""
    binary = find_pg_binary("pg_dump", ctx.profile.get_path(f"{NAME}.pg_bin_dir"))
    if binary is None:
        trip.backup = Run(False, 0.0, "pg_dump not found (PostgreSQL client binaries)")
        return
    timeout = float(ctx.profile.threshold("db_connect_timeout_s"))
    with _connect(target, timeout) as conn:
        _statement_timeout(conn, ctx.profile)
        conn.commit()
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        snapshot = str(row[0]) if row else ""
        trip.source = _counts(conn, limit)
        trip.dump = workdir / "backup.dump"
        argv = [binary, "-Fc", "--no-owner", "--no-acl", f"--snapshot={snapshot}"]
        argv += ["-f", str(trip.dump)]
        budget = _limit(float(ctx.profile.threshold("backup_max_seconds")))
        trip.backup = _run(argv, _pg_env(target), budget)
        conn.rollback()


def _restore(
    ctx: CheckContext, admin: Target | str, login: Login | None, trip: Trip, dump: Path
) -> Run:
    bin_dir = ctx.profile.get_path(f"{NAME}.pg_bin_dir")
    with dump.open("rb") as fh:
        head = fh.read(512)
    archive = head[:5] == b"PGDMP" or head[257:262] == b"ustar"  # custom or tar format
    if not archive and _has_nul(dump):
        # psql stops reading at a NUL byte and reports success: never a valid plain dump.
        return Run(False, 0.0, f"{dump.name} is not a valid dump (NUL bytes in plain SQL)")
    if not archive:
        # The host's backup command wrote it: psql would run its backslash commands
        # (\! runs a shell command, \o |cmd, \copy ... program) on the controller, as
        # the controller's user. pg_restore reads an archive and runs no client commands.
        return Run(
            False,
            0.0,
            f"{dump.name} is plain SQL, which readiness does not restore: psql would run its "
            "backslash commands (\\! runs a shell command) on the controller; have the backup "
            "command write a custom-format dump (pg_dump -Fc)",
        )
    binary = find_pg_binary("pg_restore", bin_dir)
    if binary is None:
        return Run(False, 0.0, "pg_restore not found (PostgreSQL client binaries)")
    # Every object is created owned by the restoring role, with no GRANTs; a subscription
    # (superuser-only here, and it would connect out) is not the app's data.
    argv = [binary, "--no-owner", "--no-acl", "--no-subscriptions", "--exit-on-error"]
    argv += ["--single-transaction", f"--dbname={trip.scratch}", str(dump)]
    budget = _limit(float(ctx.profile.threshold("restore_max_seconds")))
    return _run(argv, _pg_env(admin, trip.scratch, login), budget)


def _has_nul(path: Path, chunk: int = 1 << 20) -> bool:
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            if b"\0" in block:
                return True
    return False


def _admin_dsn(ctx: CheckContext, target: Target) -> Target | str:
    explicit = ctx.profile.get_path(f"{NAME}.admin_dsn")
    if isinstance(explicit, str) and explicit.strip():
        ctx.secret(explicit)
        return explicit
    return target


@dataclass(frozen=True)
class Login:
    """The throwaway role the archive is restored and read as (password: never shown)."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Reach:
    """What the restoring (session) role can do beyond owning a database, and whether it
    can create a role."""

    role: str
    privileges: tuple[str, ...]
    can_create_role: bool


# The archive's SQL runs as the role pg_restore logs in as, and `SET ROLE` /
# `SET SESSION AUTHORIZATION` are no boundary (the archive can RESET them). So any of these
# is privilege the app's user would gain: SUPERUSER (COPY … TO PROGRAM, ALTER ROLE, …),
# CREATEROLE (in 15, GRANT pg_execute_server_program to anyone, ALTER any non-superuser
# role), BYPASSRLS, REPLICATION, and membership in any other role (SET ROLE to it: the
# pg_* roles read/write server files, run programs, read every table or other sessions'
# queries; a plain role's objects and its own password). CREATEDB alone is not: a database
# of its own is all the scratch database is.
_REACH_SQL = """
SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolbypassrls, r.rolreplication,
       ARRAY(SELECT m.rolname::text FROM pg_catalog.pg_roles m
             WHERE m.oid <> r.oid AND m.rolname <> 'pg_database_owner'
               AND pg_catalog.pg_has_role(r.oid, m.oid, 'MEMBER') ORDER BY 1)
FROM pg_catalog.pg_roles r WHERE r.rolname = session_user
"""
THROWAWAY_PREFIX = "readiness_restore_"


def _reach(conn: psycopg.Connection[Any]) -> Reach:
    row = conn.execute(_REACH_SQL).fetchone()
    if row is None:  # the session's role is always in pg_roles
        return Reach("?", ("unknown role",), False)
    name, superuser, createrole, bypassrls, replication, members = row
    flags = (
        (superuser, "SUPERUSER"),
        (createrole, "CREATEROLE"),
        (bypassrls, "BYPASSRLS"),
        (replication, "REPLICATION"),
    )
    privileges = [label for on, label in flags if on]
    if members and not superuser:  # a superuser is a member of every role
        shown = ", ".join(members[:3]) + (
            f" and {len(members) - 3} more" if len(members) > 3 else ""
        )
        privileges.append(f"member of {shown}")
    return Reach(str(name), tuple(privileges), bool(superuser or createrole))


def _create_login(
    ctx: CheckContext, conn: psycopg.Connection[Any], trip: Trip, seconds: float
) -> Login:
    """A LOGIN role that can do nothing but own the scratch database. Its password is
    random, sent to the server only as a SCRAM verifier (never in a statement's text),
    and it expires by itself soon after the restore's hard limit."""
    from psycopg import sql

    login = Login(scratch_name(THROWAWAY_PREFIX), secrets.token_urlsafe(32))
    ctx.secret(login.password)
    verifier = conn.pgconn.encrypt_password(login.password.encode(), login.user.encode())
    row = conn.execute(
        "SELECT pg_catalog.to_char((pg_catalog.now() + pg_catalog.make_interval(secs => %s))"
        " AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00'",
        (seconds,),
    ).fetchone()
    until = str(row[0]) if row else "infinity"
    role = sql.Identifier(login.user)
    # INHERIT, not NOINHERIT: the role is a member of nothing, but as the database's owner
    # it must use the privileges of pg_database_owner (which owns the public schema).
    conn.execute(
        sql.SQL(
            "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT"
            " NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 2 VALID UNTIL {}"
        ).format(role, sql.Literal(verifier.decode()), sql.Literal(until))
    )
    trip.role = login.user
    # CREATE DATABASE … OWNER needs the creator to be a member of the owner (a CREATEROLE
    # admin in 15); the membership goes the admin's way only, and with the role.
    conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))
    return login


def _with_scratch(
    ctx: CheckContext, f: Findings, admin: Target | str, trip: Trip, *, dump: Path, limit: int
) -> None:
    """Create the scratch DB, restore into it, count its rows; always drop it.

    When the admin role is privileged (:data:`_REACH_SQL`), the scratch database is owned
    by a throwaway role, and pg_restore and every read of the scratch database log in as
    it: the archive, which the host's app user wrote, never runs with the admin's
    privileges. A privileged admin that cannot create that role restores nothing."""
    from psycopg import sql

    maint = str(ctx.profile.get_path(f"{NAME}.maintenance_db") or "postgres")
    timeout = float(ctx.profile.threshold("db_connect_timeout_s"))
    login: Login | None = None
    try:
        with _connect(admin, timeout, dbname=maint, autocommit=True) as conn:
            reach = _reach(conn)
            if reach.privileges and not reach.can_create_role and admin is not trip.app:
                _unsafe(
                    f,
                    f"admin_dsn's role {reach.role} is privileged ({', '.join(reach.privileges)})"
                    " and cannot create the throwaway role it would be restored as (no CREATEROLE)",
                    "Give backup_roundtrip.admin_dsn a role with only CREATEDB, or one with "
                    "CREATEROLE (the archive is then restored as a throwaway role), or unset it "
                    "to restore as the app's own role",
                )
                return
            trip.scratch = scratch_name()
            if reach.privileges and reach.can_create_role:
                restore_limit = _limit(float(ctx.profile.threshold("restore_max_seconds")))
                login = _create_login(ctx, conn, trip, restore_limit + 4 * timeout + 300)
            owner = (
                sql.SQL(" OWNER {}").format(sql.Identifier(login.user)) if login else sql.SQL("")
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0{}").format(
                    sql.Identifier(trip.scratch), owner
                )
            )
        if login is not None and not _can_log_in(f, admin, login, trip, timeout):
            return
        trip.restore = _restore(ctx, admin, login, trip, dump)
        if trip.restore.ok:
            with _connect(admin, timeout, login, dbname=trip.scratch) as conn:
                _statement_timeout(conn, ctx.profile)
                trip.restored = _counts(conn, limit)
    finally:
        if trip.scratch:
            trip.dropped = _drop(f, admin, maint, timeout, trip.scratch, role=trip.role)
        if trip.role:
            trip.role_dropped = _drop_role(f, admin, maint, timeout, trip.role)


def _can_log_in(f: Findings, admin: Target | str, login: Login, trip: Trip, timeout: float) -> bool:
    """The server may refuse the throwaway role (pg_hba.conf): then nothing is restored."""
    import psycopg

    try:
        with _connect(admin, timeout, login, dbname=trip.scratch):
            return True
    except psycopg.Error as exc:
        text = " ".join(str(exc).replace(login.password, "***").split())
        _unsafe(
            f,
            f"the server refused the login of the throwaway role {login.user} ({text[:300]}), "
            "and readiness does not restore as admin_dsn's privileged role",
            "Let roles named readiness_restore_* log in with a password from the controller "
            "(pg_hba.conf, like admin_dsn's role), or give admin_dsn a role with only CREATEDB",
        )
        return False


def _unsafe(f: Findings, why: str, recommendation: str) -> None:
    f.unknown(f"the restore could not be verified safely: {why}", recommendation)


def _drop(
    f: Findings, admin: Target | str, maint: str, timeout: float, name: str, *, role: str = ""
) -> bool:
    import psycopg
    from psycopg import sql

    try:
        with _connect(admin, timeout, dbname=maint, autocommit=True) as conn:
            if role:  # no new session of the throwaway role, none left anywhere
                with contextlib.suppress(psycopg.Error):  # DROP ROLE says what is left
                    conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
                    conn.execute(
                        "SELECT pg_catalog.pg_terminate_backend(pid)"
                        " FROM pg_catalog.pg_stat_activity WHERE usename = %s",
                        (role,),
                    )
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    except psycopg.Error as exc:
        f.fail(
            f"scratch database {name} could not be dropped: {exc}",
            f"Drop it by hand: DROP DATABASE {name} WITH (FORCE);",
        )
        return False
    return True


def _drop_role(f: Findings, admin: Target | str, maint: str, timeout: float, role: str) -> bool:
    import psycopg
    from psycopg import sql

    ident = sql.Identifier(role)
    try:
        with _connect(admin, timeout, dbname=maint, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
    except psycopg.Error as exc:
        f.fail(
            f"throwaway role {role} could not be dropped: {exc}",
            f"Drop it by hand, in each database it owns objects in: DROP OWNED BY {role}; "
            f"then DROP ROLE {role};",
        )
        return False
    return True


# --- judgement -----------------------------------------------------------------------------


def evaluate(ctx: CheckContext) -> Outcome:
    skipped = gate(ctx, NAME, KEYS, HOW)
    if skipped is not None:
        return skipped
    f = Findings()
    cfg = ctx.profile[NAME]
    method = str(cfg.get("method") or "pg_dump")
    f.details["method"] = method
    if method not in ("pg_dump", "command"):
        f.fail(f"unknown backup_roundtrip.method {method!r}", "Use method: pg_dump or command")
        return f.outcome("", subject="Backup round trip")
    target = resolve_target(ctx, f)
    if target is None:
        return f.outcome("", subject="Backup round trip")
    if host_only(ctx, target):
        why, alternative = host_only_reason(ctx, target)
        f.unknown(
            f"the app's database {target.dsn.safe()} is local to host {ctx.host}; the controller "
            f"cannot dump or restore it{why}",
            "Set database_dsn in the profile (host vars) to an address reachable from the "
            f"controller, {alternative}",
        )
        return f.outcome("", subject="Backup round trip")
    routed = through_host(ctx, f, target)
    if routed is None:
        return f.outcome("", subject="Backup round trip")
    target = routed
    trip = Trip(app=target)
    limit = int(cfg.get("max_tables") or 200)

    _round_trip(ctx, f, target, trip, limit)
    _judge(ctx, f, trip)
    return f.outcome(_ready_message(f, trip), subject="Backup round trip")


def _round_trip(ctx: CheckContext, f: Findings, target: Target, trip: Trip, limit: int) -> None:
    """Dump, then restore into a scratch database that is always dropped.

    A transaction of the fleet loop: a Ctrl-C or the host's deadline kills pg_dump/pg_restore
    (see _run) and waits
    (bounded) for the scratch database to be dropped and the dump, the app's data, to be
    deleted from the controller before this host is hung up."""
    import psycopg

    with transaction() as may_start:
        if not may_start:
            f.unknown(f"not run: {stop_reason()}", "Rerun the audit")
            return
        with tempfile.TemporaryDirectory(prefix="readiness-backup-") as tmp:
            try:
                _backup(ctx, f, target, trip, workdir=Path(tmp), limit=limit)
                if trip.backup is not None and trip.backup.ok and trip.dump is not None:
                    _check_dump_file(f, trip.dump)
                if not f.problems and trip.dump is not None and not stop_reason():
                    admin = _admin_dsn(ctx, target)
                    _with_scratch(ctx, f, admin, trip, dump=trip.dump, limit=limit)
            except psycopg.Error as exc:
                f.fail(
                    f"database error during the round trip: {scrub(str(exc), target)}",
                    "Check the role can read every table and has CREATEDB (or set admin_dsn)",
                )


def _backup(
    ctx: CheckContext, f: Findings, target: Target, trip: Trip, *, workdir: Path, limit: int
) -> None:
    if ctx.profile[NAME].get("method") == "command":
        _command_backup(ctx, f, target, trip, limit)
    else:
        _pg_dump(ctx, target, trip, workdir, limit)
    if trip.backup is not None and not trip.backup.ok:
        f.fail(
            f"backup failed: {scrub(trip.backup.error, target)}",
            "Run the backup by hand and fix it before relying on it",
        )


def _command_backup(ctx: CheckContext, f: Findings, target: Target, trip: Trip, limit: int) -> None:
    cfg = ctx.profile[NAME]
    if not cfg.get("command") or not cfg.get("dump_file"):
        f.fail(
            "method: command needs backup_roundtrip.command (argv) and dump_file",
            "Set command: [path/to/backup, ...] and the dump_file it writes",
        )
        return
    run = ctx.fact(RUN_FACT)
    if refused_run(f, "the backup command", run):
        return
    error = run.get("error") or run.get("stderr", "")[-500:]
    if run.get("timed_out"):
        error = f"killed after {run.get('duration_s')}s"
    ok = bool(run.get("started")) and run.get("exit_code") == 0 and not run.get("timed_out")
    trip.backup = Run(ok, float(run.get("duration_s") or 0.0), "" if ok else f"{error}".strip())
    if not ok:
        return
    here = cfg.get("controller_dump_file") or (
        ctx.profile.resolve(cfg["dump_file"]) if ctx.is_local else None
    )
    if not here:
        f.unknown(
            f"the dump {cfg['dump_file']} is on host {ctx.host}; the controller cannot restore it",
            "Set backup_roundtrip.controller_dump_file to the same file on shared storage",
        )
        return
    trip.dump, trip.exact = Path(str(here)), False
    timeout = float(ctx.profile.threshold("db_connect_timeout_s"))
    with _connect(target, timeout) as conn:
        _statement_timeout(conn, ctx.profile)
        trip.source = _counts(conn, limit)


def _check_dump_file(f: Findings, dump: Path) -> None:
    try:
        size = dump.stat().st_size
    except OSError as exc:
        f.fail(f"backup file {dump} cannot be read: {exc.strerror}")
        return
    f.details["backup_bytes"] = size
    f.details["backup_size"] = _human(size)
    if size == 0:
        f.fail(f"backup file {dump} is empty", "Fix the backup job: it produced no data")


def _judge(ctx: CheckContext, f: Findings, trip: Trip) -> None:
    d = f.details
    if trip.backup is not None:
        d["backup_s"] = round(trip.backup.seconds, 3)
    if trip.scratch:
        d["scratch_database"] = {"name": trip.scratch, "dropped": trip.dropped}
        if trip.role:
            d["scratch_database"].update(role=trip.role, role_dropped=trip.role_dropped)
    if trip.restore is not None:
        d["restore_s"] = round(trip.restore.seconds, 3)
        if not trip.restore.ok:
            f.fail(
                f"restore failed: {trip.restore.error}",
                "The backup cannot be restored: check the dump (truncated? wrong format?) "
                "and the backup job's logs",
            )
            return
        _compare(ctx, f, trip)
    _objectives(ctx, f, trip)


def _compare(ctx: CheckContext, f: Findings, trip: Trip) -> None:
    tolerance = 0.0 if trip.exact else float(ctx.profile[NAME].get("row_count_tolerance_pct") or 0)
    names = sorted(set(trip.source) | set(trip.restored))
    f.details["tables"] = {
        n: {"source": trip.source.get(n), "restored": trip.restored.get(n)}
        for n in names[:MAX_LISTED]
    }
    missing = [n for n in trip.source if n not in trip.restored]
    if missing:
        f.fail(
            f"{len(missing)} table(s) missing after restore: {', '.join(missing[:5])}",
            "The backup does not cover every table: check the backup's scope (schemas, -t options)",
        )
    off = [
        n
        for n in trip.source
        if n in trip.restored
        and abs(trip.restored[n] - trip.source[n]) > trip.source[n] * tolerance / 100
    ]
    if off:
        shown = ", ".join(f"{n} ({trip.source[n]} → {trip.restored[n]})" for n in off[:5])
        if trip.exact:
            f.fail(
                f"row counts differ after restore: {shown}",
                "The backup is incomplete or not consistent: compare it with the source",
            )
        else:
            # The app's command made the dump; the source was counted afterwards, not in its
            # snapshot: writes since the backup differ too. That was "the backup is
            # incomplete", with no word of the tolerance that fixes a live database's count.
            within = f"more than {tolerance:g} %" if tolerance else "any difference"
            f.fail(
                f"row counts differ after restore ({within}): {shown}; the source was "
                "counted after the backup command, not in its snapshot, so writes since "
                "the backup differ too",
                "If the database was written to during the backup, set "
                "backup_roundtrip.row_count_tolerance_pct to the change it sees in that time "
                "(or use method: pg_dump, whose counts share the dump's snapshot); otherwise "
                "the backup is incomplete: compare it with the source",
            )
    elif not trip.exact:
        drift = [
            n for n in trip.source if n in trip.restored and trip.restored[n] != trip.source[n]
        ]
        if drift:
            f.details["within_tolerance"] = {
                "tolerance_pct": tolerance,
                "tables": drift[:MAX_LISTED],
            }


def _objectives(ctx: CheckContext, f: Findings, trip: Trip) -> None:
    for run, key, what in (
        (trip.backup, "backup_max_seconds", "backup"),
        (trip.restore, "restore_max_seconds", "restore"),
    ):
        limit = float(ctx.profile.threshold(key))
        if run is not None and run.ok and run.seconds > limit:
            f.fail(
                f"{what} took {run.seconds:.1f}s, over the objective of {limit:g}s "
                f"(thresholds.{key})",
                f"Speed up the {what} (parallel jobs, faster storage) or revisit the objective",
            )


def _ready_message(f: Findings, trip: Trip) -> str:
    size = int(f.details.get("backup_bytes") or 0)
    backup = trip.backup.seconds if trip.backup else 0.0
    restore = trip.restore.seconds if trip.restore else 0.0
    rows = sum(trip.source.values())
    drift = f.details.get("within_tolerance") or {}
    # counts within row_count_tolerance_pct do not match: the message said "N row(s) match"
    match = (
        f"match within the {drift['tolerance_pct']:g} % tolerance "
        f"({len(drift['tables'])} table(s) differ)"
        if drift
        else "match"
    )
    return (
        f"Backup restored into a scratch database: {len(trip.source)} table(s), {rows} row(s) "
        f"{match}; backup {_human(size)} in {backup:.2f}s, restore in {restore:.2f}s"
    )


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


register(
    NAME,
    title="Backup round trip",
    description=(
        "Opt-in: backs up the app database (pg_dump or the app's command), restores it into a "
        "scratch database, compares tables and row counts, checks backup/restore time against "
        "the RPO/RTO thresholds, and always drops the scratch database."
    ),
    categories=("integration",),
    suites=("production",),
    facts=facts,
    defaults=DEFAULTS,
    profile_keys=(
        *(f"{NAME}.{k}" for k in DEFAULTS[NAME]),
        "database_dsn",
        "database_url_settings",
        "service_access",
        "thresholds.backup_max_seconds",
        "thresholds.restore_max_seconds",
        "thresholds.db_connect_timeout_s",
        "thresholds.db_statement_timeout_s",
    ),
    aliases=("backup_restore_test", "restore_test"),
    order=200,
    opt_in=True,
)(evaluate)
