"""``database_migration``: the app's database is reachable, its role has the privileges it
needs, and every migration script on the host has been applied (Alembic or schema_migrations).

Scripts are listed (and Alembic revisions read) on the host through the probe; the database is
queried from the controller with psycopg 3, in a read-only transaction, with explicit timeouts.
"""

from __future__ import annotations

import ast
import functools
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..appconfig import AppConfig
from ..findings import Findings
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._postgres import (
    Target,
    close,
    connect_read_only,
    host_only,
    host_only_reason,
    psycopg_error,
    resolve_target,
    scrub,
    through_host,
    tunnel_destination,
)

if TYPE_CHECKING:
    import psycopg

DEFAULTS: dict[str, Any] = {
    # A DSN as seen from the controller; when set it wins over the app's own settings.
    "database_dsn": None,
    # How controller-side checks reach services (database, Prometheus, Grafana): auto tunnels
    # through the host's SSH connection when a remote host's service is on its loopback;
    # direct never tunnels; ssh always tunnels. See docs/fleet.md "Services behind the host".
    "service_access": "auto",
    # Settings (dotted paths; env MAHAVISHNU_A__B overrides a.b) holding the app's DSN, in order.
    "database_url_settings": ["database.url", "otel_storage.connection_string"],
    "database_schema": "public",
    # Tables the app's role must be able to SELECT; empty means every table in the schema.
    "database_tables": [],
    "migrations_dir": "migrations",
    # "auto" detects alembic_version or schema_migrations; or a table name ("schema.table").
    "migrations_table": "auto",
    # The app's own migration command as an argv list (never a shell string), e.g.
    # ["alembic", "upgrade", "head"]; only `invoke remediate --run-migrations` runs it, on the host.
    "migration_command": None,
    # Where it runs: relative to app_root unless absolute.
    "migration_cwd": ".",
    "thresholds": {
        "db_connect_timeout_s": 5,
        "db_statement_timeout_s": 10,
        "migrations_max_scripts": 200,
        "migration_timeout_s": 600,
    },
}

DIR_FACT = "database_migration:dir"
SCRIPT_FACT = "database_migration:script:"
SCRIPT_MAX_BYTES = 8192  # revision identifiers sit at the top of an Alembic script
AUTO_TABLES = ("alembic_version", "schema_migrations")
MAX_VERSION_ROWS = 100_000
# A version is a revision id or a number: only its head is read, so a row of the app's own
# table (up to 1 GB of text in PostgreSQL) cannot fill the controller's memory.
MAX_VERSION_CHARS = 256
MAX_LISTED = 100  # cap per-table detail entries so a huge schema keeps the report readable
SQL_SCRIPT = re.compile(r"^(?P<version>\d+)_(?P<name>[^/]+?)(?:\.up)?\.sql$")
REVISION_LINE = re.compile(r"^(?P<key>revision|down_revision)\s*(?::[^=]*)?=\s*(?P<value>.+)$")
CREATE_SCRIPTS = (
    "Create database migration scripts if needed (e.g. `alembic init migrations`, "
    "or numbered SQL files such as migrations/0001_init.sql)"
)


# --- facts ---------------------------------------------------------------------------------


def facts(profile: Profile) -> FactSpecs:
    """List the migrations directory on the host (recursively, *.py and *.sql, bounded)."""
    path = profile.path_of("migrations_dir")
    if not path:
        return {}
    limit = int(profile.threshold("migrations_max_scripts"))
    return {
        DIR_FACT: {
            "op": "list",
            "path": path,
            "patterns": ["*.py", "*.sql"],
            "recursive": True,
            "max_entries": limit * 2,
        }
    }


def followup(profile: Profile, app: AppConfig, facts: Mapping[str, Any]) -> FactSpecs:
    """Read the head of each Alembic script (versions/*.py) to learn its revision links."""
    listing = facts.get(DIR_FACT)
    if not isinstance(listing, Mapping) or not listing.get("entries"):
        return {}
    limit = int(profile.threshold("migrations_max_scripts"))
    return {
        SCRIPT_FACT + name: {
            "op": "file",
            "path": posixpath.join(str(listing["path"]), name),
            "max_bytes": SCRIPT_MAX_BYTES,
        }
        for name in _alembic_names(listing)[:limit]
    }


def _alembic_names(listing: Mapping[str, Any]) -> list[str]:
    names = [str(e.get("name", "")) for e in listing.get("entries") or ()]
    return [
        n
        for n in names
        if n.startswith("versions/") and n.endswith(".py") and not n.endswith("__init__.py")
    ]


# --- scripts on the host ---------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    file: str
    key: str  # Alembic revision id, or the numeric version of an SQL script
    down: tuple[str, ...] = ()


@dataclass
class Disk:
    path: str | None
    exists: bool = False
    alembic: list[Script] = field(default_factory=list)
    sql: list[Script] = field(default_factory=list)
    issues: list[tuple[str, str]] = field(default_factory=list)  # (warning, recommendation)

    def details(self) -> dict[str, Any]:
        return {
            "dir": self.path,
            "exists": self.exists,
            "alembic_scripts": [s.file for s in self.alembic],
            "sql_scripts": [s.file for s in self.sql],
        }


def _read_disk(ctx: CheckContext) -> Disk:
    listing = ctx.fact(DIR_FACT)
    disk = Disk(path=ctx.profile.path_of("migrations_dir"))
    if not disk.path:
        disk.issues.append(("no migrations_dir configured", CREATE_SCRIPTS))
    elif listing.get("exists") is None:
        why = listing.get("error") or "not examined"
        disk.issues.append((f"cannot list migrations directory {disk.path} ({why})", ""))
    elif not listing.get("exists") or listing.get("type") != "dir":
        disk.issues.append((f"migrations directory {disk.path} does not exist", CREATE_SCRIPTS))
    else:
        disk.exists = True
        _parse_listing(ctx, listing, disk)
    return disk


def _parse_listing(ctx: CheckContext, listing: Mapping[str, Any], disk: Disk) -> None:
    if listing.get("truncated"):
        disk.issues.append(
            (
                f"migrations directory {disk.path} has more files than the listing limit",
                "Raise thresholds.migrations_max_scripts in the profile",
            )
        )
    for name in sorted(str(e.get("name", "")) for e in listing.get("entries") or ()):
        match = SQL_SCRIPT.match(posixpath.basename(name))
        # A down script (golang-migrate's NNNN_x.down.sql) undoes its up script: it is never
        # applied, so it is never pending, and it is no migration of its own.
        if match and not name.startswith("versions/") and not name.endswith(".down.sql"):
            disk.sql.append(Script(name, match.group("version")))
    for name in _alembic_names(listing):
        fact = ctx.fact(SCRIPT_FACT + name)
        script = _parse_alembic(name, str(fact.get("text") or ""))
        if script is None:
            disk.issues.append(
                (
                    f"cannot read the revision of {name}",
                    f"Make sure {name} is readable and defines revision = '...'",
                )
            )
        else:
            disk.alembic.append(script)
    if not disk.alembic and not disk.sql:
        disk.issues.append((f"no migration scripts found in {disk.path}", CREATE_SCRIPTS))


def _parse_alembic(name: str, text: str) -> Script | None:
    """``revision = "abc"`` / ``down_revision = None | "x" | ("x", "y")``, read without executing.

    Cached per (name, text) up to 16 KiB: a fleet's hosts usually carry the same
    migrations, and the answer (a frozen :class:`Script`) is the same for the same script."""
    if len(text) <= _ALEMBIC_CACHE_MAX_TEXT:
        return _parse_alembic_cached(name, text)
    return _parse_alembic_text(name, text)


_ALEMBIC_CACHE_MAX_TEXT = 16 * 1024


@functools.lru_cache(maxsize=512)
def _parse_alembic_cached(name: str, text: str) -> Script | None:
    return _parse_alembic_text(name, text)


def _parse_alembic_text(name: str, text: str) -> Script | None:
    found: dict[str, Any] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = REVISION_LINE.match(line.strip())
        if match and match.group("key") not in found:
            value = match.group("value")
            if value.rstrip().endswith(("(", "[")):
                # A merge's parents as black writes a long tuple, one per line: they were
                # read as no parents, so the merged branches looked pending.
                value = " ".join([value, *_continued(lines[i + 1 : i + 1 + _MAX_TUPLE_LINES])])
            found[match.group("key")] = _literal(value)
    revision = found.get("revision")
    if not isinstance(revision, str) or not revision:
        return None
    down = found.get("down_revision")
    downs = (down,) if isinstance(down, str) else tuple(d for d in down or () if isinstance(d, str))
    return Script(name, revision, downs)


_MAX_TUPLE_LINES = 64


def _continued(lines: list[str]) -> list[str]:
    """The lines of a bracketed value up to its closing line (comments dropped)."""
    out = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        out.append(text)
        if text.startswith((")", "]")):
            break
    return out


def _literal(value: str) -> Any:
    for candidate in (value, value.split("#", 1)[0]):
        try:
            return ast.literal_eval(candidate.strip())
        except (ValueError, SyntaxError):
            continue
    return None


# --- the database, read-only -----------------------------------------------------------------


@dataclass
class DbState:
    role: str = ""
    database: str = ""
    server_version: str = ""
    read_only: str = ""
    can_connect: bool = False
    schema_exists: bool = False
    schema_usage: bool = False
    schema_create: bool = False
    tables: dict[str, bool] = field(default_factory=dict)  # name -> has SELECT
    table: str | None = None  # schema-qualified migrations table
    style: str | None = None  # "alembic" | "sql"
    table_readable: bool = True
    versions: list[str] = field(default_factory=list)
    # golang-migrate keeps one row, the current version, and a `dirty` flag set while a
    # migration runs (left set when it failed part-way)
    single_version: bool = False
    dirty: bool = False


def _inspect(ctx: CheckContext, f: Findings, target: Target) -> DbState | None:
    conn = connect_read_only(ctx, f, target, application_name="readiness", purpose="checked")
    if conn is None:
        return None
    try:
        return _queries(ctx, conn)
    except psycopg_error() as exc:
        f.fail(
            f"querying the database at {target.dsn.safe()} failed: {scrub(str(exc), target)}",
            "Check the role's privileges and the server log; rerun with -v",
        )
        return None
    finally:
        close(conn)


def _queries(ctx: CheckContext, conn: psycopg.Connection[Any]) -> DbState:
    from psycopg import sql

    schema = str(ctx.profile.get("database_schema") or "public")
    ms = int(float(ctx.profile.threshold("db_statement_timeout_s")) * 1000)
    cur = conn.cursor()
    cur.execute("SELECT set_config('statement_timeout', %s, true)", (str(ms),))
    cur.execute(
        "SELECT current_user, current_database(), current_setting('server_version'),"
        " current_setting('transaction_read_only'),"
        " has_database_privilege(current_database(), 'CONNECT')"
    )
    row = cur.fetchone() or ("", "", "", "", False)
    db = DbState(str(row[0]), str(row[1]), str(row[2]), str(row[3]), bool(row[4]))
    cur.execute(
        "SELECT has_schema_privilege(oid, 'USAGE'), has_schema_privilege(oid, 'CREATE')"
        " FROM pg_namespace WHERE nspname = %s",
        (schema,),
    )
    srow = cur.fetchone()
    if srow is not None:
        db.schema_exists, db.schema_usage, db.schema_create = True, bool(srow[0]), bool(srow[1])
    kinds = ["r", "p", "v", "m", "f"] if ctx.profile.get("database_tables") else ["r", "p"]
    cur.execute(
        "SELECT c.relname, has_table_privilege(c.oid, 'SELECT') FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind::text = ANY(%s) ORDER BY c.relname",
        (schema, kinds),
    )
    db.tables = {str(name): bool(ok) for name, ok in cur.fetchall()}
    _migrations_table(ctx, cur, db, schema)
    if db.table is not None and db.table_readable:
        nsp, rel = db.table.split(".", 1)
        column = "version_num" if db.style == "alembic" else "version"
        cur.execute(
            sql.SQL("SELECT left({}::text, {}), {} FROM {}.{} LIMIT {}").format(
                sql.Identifier(column),
                sql.Literal(MAX_VERSION_CHARS),
                sql.SQL("dirty::text IN ('true', '1')" if db.single_version else "false"),
                sql.Identifier(nsp),
                sql.Identifier(rel),
                sql.Literal(MAX_VERSION_ROWS),
            )
        )
        rows = cur.fetchall()
        db.versions = [str(r[0]) for r in rows if r[0] is not None]
        db.dirty = any(r[1] for r in rows)
    return db


def _migrations_table(
    ctx: CheckContext, cur: psycopg.Cursor[Any], db: DbState, schema: str
) -> None:
    wanted = str(ctx.profile.get("migrations_table") or "auto")
    if wanted == "auto":
        names, schemas = list(AUTO_TABLES), [schema, "public"]
    else:
        nsp, _, rel = wanted.rpartition(".")
        names, schemas = [rel], [nsp] if nsp else [schema, "public"]
    cur.execute(
        "SELECT n.nspname, c.relname, has_table_privilege(c.oid, 'SELECT'),"
        " array(SELECT attname::text FROM pg_attribute"
        "       WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = ANY(%s) AND n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'v')",
        (names, schemas),
    )
    rows = sorted(cur.fetchall(), key=lambda r: (names.index(r[1]), schemas.index(r[0])))
    if not rows:
        return
    nsp, rel, readable, columns = rows[0]
    db.table, db.table_readable = f"{nsp}.{rel}", bool(readable)
    if "version_num" in columns:
        db.style = "alembic"
    elif "version" in columns:
        db.style = "sql"
        db.single_version = "dirty" in columns
    else:
        db.table_readable = False


# --- judgement -----------------------------------------------------------------------------


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    disk = _read_disk(ctx)
    f.details["migrations"] = disk.details()
    target = resolve_target(ctx, f)
    db: DbState | None = None
    if target is not None and host_only(ctx, target):
        why, alternative = host_only_reason(ctx, target)
        f.unknown(
            f"cannot determine from the controller: the app's database {target.dsn.safe()} is "
            f"local to host {ctx.host}, and connecting to it here would reach the controller's "
            f"own loopback instead{why}",
            "Set database_dsn in the profile (host vars) to an address of this database that is "
            f"reachable from the controller, {alternative}",
        )
    elif target is not None:
        routed = through_host(ctx, f, target)
        db = _inspect(ctx, f, routed) if routed is not None else None
    for problem, rec in disk.issues:
        f.warn(problem, rec or None)
    if db is not None:
        _judge_connection(f, db)
        _judge_privileges(ctx, f, db)
        _judge_migrations(ctx, f, disk, db)
    applied = len(db.versions) if db else 0
    return f.outcome(
        f"Database reachable, privileges sufficient, migrations up to date ({applied} recorded)",
        subject="Database",
    )


def _judge_connection(f: Findings, db: DbState) -> None:
    f.details["connection"] = {
        "connected": True,
        "role": db.role,
        "database": db.database,
        "server_version": db.server_version,
        "transaction_read_only": db.read_only,
    }


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _judge_privileges(ctx: CheckContext, f: Findings, db: DbState) -> None:
    schema = str(ctx.profile.get("database_schema") or "public")
    role, qschema = _quote(db.role), _quote(schema)
    out: dict[str, Any] = {
        "database": {"name": db.database, "CONNECT": db.can_connect},
        "schema": {"name": schema, "exists": db.schema_exists},
    }
    f.details["privileges"] = out
    if not db.can_connect:
        f.fail(
            f"role {db.role!r} lacks CONNECT on database {db.database!r}",
            f"GRANT CONNECT ON DATABASE {_quote(db.database)} TO {role};",
        )
    if not db.schema_exists:
        f.fail(
            f"schema {schema!r} does not exist in database {db.database!r}",
            f"Create it (CREATE SCHEMA {qschema} AUTHORIZATION {role};) or set database_schema in the profile",
        )
        return
    out["schema"].update({"USAGE": db.schema_usage, "CREATE": db.schema_create})
    for privilege, ok in (("USAGE", db.schema_usage), ("CREATE", db.schema_create)):
        if not ok:
            f.fail(
                f"role {db.role!r} lacks {privilege} on schema {schema!r}",
                f"GRANT {privilege} ON SCHEMA {qschema} TO {role};",
            )
    out["tables"] = _judge_tables(ctx, f, db, schema)


def _judge_tables(ctx: CheckContext, f: Findings, db: DbState, schema: str) -> dict[str, Any]:
    wanted = [str(t) for t in ctx.profile.get("database_tables") or ()] or sorted(db.tables)
    missing = [t for t in wanted if t not in db.tables]
    denied = [t for t in wanted if t in db.tables and not db.tables[t]]
    if missing:
        f.fail(
            f"table(s) missing from schema {schema!r}: {', '.join(missing)}",
            "Apply the migrations that create them, or fix database_tables in the profile",
        )
    if denied:
        f.fail(
            f"role {db.role!r} lacks SELECT on {', '.join(f'{schema}.{t}' for t in denied)}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {_quote(schema)} TO {_quote(db.role)};",
        )
    tables = {t: ("missing" if t in missing else db.tables[t]) for t in wanted[:MAX_LISTED]}
    if len(wanted) > MAX_LISTED:
        tables["..."] = f"{len(wanted) - MAX_LISTED} more"
    return {"checked": len(wanted), "SELECT": tables}


def _judge_migrations(ctx: CheckContext, f: Findings, disk: Disk, db: DbState) -> None:
    out: dict[str, Any] = f.details["migrations"]
    out.update({"table": db.table, "style": db.style})
    wanted = str(ctx.profile.get("migrations_table") or "auto")
    if db.table is None:
        scripts = disk.alembic or disk.sql
        if wanted != "auto":
            f.fail(
                f"migrations table {wanted!r} does not exist",
                "Apply the migrations, or set migrations_table to the table your tool uses",
            )
        if scripts:
            tool = "alembic upgrade head" if disk.alembic else "your migration tool"
            names = [s.file for s in _ordered(scripts)]
            _pending(f, disk, names, out, how=tool, note=" (the database has no migrations table)")
        return
    if not db.table_readable:
        f.fail(
            f"cannot read applied migrations from {db.table} (no SELECT privilege, or no "
            "version/version_num column)",
            f"GRANT SELECT ON {db.table} TO {_quote(db.role)}; or set migrations_table correctly",
        )
        return
    out["applied"] = db.versions[:MAX_LISTED]
    if db.style == "alembic":
        _alembic_pending(f, disk, db, out)
    else:
        _sql_pending(f, disk, db, out)


def _alembic_pending(f: Findings, disk: Disk, db: DbState, out: dict[str, Any]) -> None:
    if not disk.alembic:
        if disk.exists:
            f.warn(
                f"{db.table} exists but {disk.path}/versions has no Alembic scripts",
                "Deploy the Alembic scripts (migrations/versions/*.py) with the application",
            )
        return
    by_rev = {s.key: s for s in disk.alembic}
    unknown = [h for h in db.versions if h not in by_rev]
    if unknown:
        f.fail(
            f"database is at revision(s) {', '.join(unknown)}, unknown to the scripts in {disk.path}",
            "Deploy the migration scripts matching the database (or point migrations_dir at them)",
        )
    applied: set[str] = set()
    stack = [h for h in db.versions if h in by_rev]
    while stack and len(applied) <= len(by_rev):
        rev = stack.pop()
        if rev not in applied:
            applied.add(rev)
            stack.extend(d for d in by_rev[rev].down if d in by_rev)
    pending = [s for s in _ordered(disk.alembic) if s.key not in applied]
    out["heads"] = list(db.versions)
    _pending(f, disk, [f"{s.file} ({s.key})" for s in pending], out, how="alembic upgrade head")


def _sql_pending(f: Findings, disk: Disk, db: DbState, out: dict[str, Any]) -> None:
    if not disk.sql:
        if disk.exists:
            f.warn(
                f"{db.table} exists but {disk.path} has no NNNN_name.sql scripts",
                "Deploy the SQL migration scripts with the application",
            )
        return
    if db.single_version:
        _current_version_pending(f, disk, db, out)
        return
    applied = {_norm(v) for v in db.versions}
    pending = [s.file for s in disk.sql if _norm(s.key) not in applied]
    _pending(f, disk, pending, out, how="your migration tool")


def _current_version_pending(f: Findings, disk: Disk, db: DbState, out: dict[str, Any]) -> None:
    """golang-migrate's table: one row, the version the schema is at; every script up to it
    is applied. It was read as a list of applied versions, so a database at version 3 had
    "2 pending migration(s): 0001_…, 0002_…"."""
    numbers = [int(v) for v in db.versions if v.strip().isdigit()]
    current = max(numbers) if numbers else None
    out["current_version"] = current
    if db.dirty:
        out["dirty"] = True
        f.fail(
            f"migration {current} did not complete: {db.table} is marked dirty",
            f"Repair the schema by hand, then `migrate force {current}` (or force the "
            "previous version and rerun it)",
        )
    pending = [s.file for s in disk.sql if current is None or int(s.key) > current]
    _pending(f, disk, pending, out, how="your migration tool (`migrate up`)")


def _norm(version: str) -> str:
    """``0001`` and ``1`` are the same version (tools differ on zero-padding)."""
    v = version.strip()
    return str(int(v)) if v.isdigit() else v


def _pending(
    f: Findings,
    disk: Disk,
    names: list[str],
    out: dict[str, Any],
    *,
    how: str,
    note: str = "",
) -> None:
    out["pending"] = names[:MAX_LISTED]
    if not names:
        return
    shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
    tool = f"`{how}`" if how.startswith("alembic") else how
    where = posixpath.dirname(disk.path or "") or "the app root"
    f.fail(
        f"{len(names)} pending migration(s){note}: {shown}",
        f"Apply the pending migrations before deploying ({tool}, run in {where})",
    )


def _ordered(scripts: Sequence[Script]) -> list[Script]:
    """Scripts from base to head (parents first); SQL versions stay in file order."""
    left, done, order = list(scripts), set(), []
    known = {s.key for s in scripts}
    for _ in range(len(scripts) + 1):
        ready = [s for s in left if all(d in done or d not in known for d in s.down)]
        if not ready:
            break
        order += ready
        done |= {s.key for s in ready}
        left = [s for s in left if s.key not in done]
    return order + left  # a cycle cannot be ordered: keep the rest as listed


register(
    "database_migration",
    title="Database and migrations",
    description=(
        "The app's PostgreSQL database is reachable from the controller (read-only, with "
        "timeouts), its role has CONNECT/USAGE/CREATE/SELECT, and every migration script on the "
        "host (Alembic or schema_migrations) has been applied."
    ),
    categories=("configuration", "operations"),
    suites=("validate",),
    facts=facts,
    followup=followup,
    destinations=tunnel_destination,
    defaults=DEFAULTS,
    profile_keys=(
        "database_dsn",
        "database_url_settings",
        "service_access",
        "database_schema",
        "database_tables",
        "migrations_dir",
        "migrations_table",
        "migration_command",
        "migration_cwd",
        "thresholds.db_connect_timeout_s",
        "thresholds.db_statement_timeout_s",
        "thresholds.migrations_max_scripts",
        "thresholds.migration_timeout_s",
    ),
    aliases=("database", "db", "migrations", "database_migrations"),
    order=30,
)(evaluate)
