"""The two database backends behind :class:`~readiness.store.db.Store`: SQLite and PostgreSQL.

Both speak the same small interface (``execute``, ``executemany``, ``transaction``);
SQL is written once with ``?`` placeholders. Every connection is bounded in time:
SQLite waits at most ``timeout`` seconds for a lock, PostgreSQL gets a connect
timeout and a statement timeout. Errors leave here as :class:`StoreError` with any
password in a URL masked.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from ..errors import ReadinessError
from ..redact import redact_url_password

__all__ = [
    "Backend",
    "PostgresBackend",
    "SqliteBackend",
    "StoreError",
    "StoreReadOnly",
    "read_only_reason",
]

Row = tuple[Any, ...]
_STATEMENT_TIMEOUT_MS = 300_000  # prune of a large store may scan every result once


class StoreError(ReadinessError):
    """The store cannot be opened, read or written (message never holds a password)."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(redact_url_password(message))


class StoreReadOnly(StoreError):
    """The SQLite store exists but this process may not write it (its file or directory)."""


class Backend(Protocol):
    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    def migration_lock(self) -> None: ...

    def sharing_lock(self, *, exclusive: bool) -> None: ...

    def clock(self) -> datetime: ...

    def close(self) -> None: ...


class SqliteBackend:
    """One SQLite file in WAL mode: readers never block the writer, writers queue.

    Each run is written in one ``BEGIN IMMEDIATE`` transaction, so a crash (or a
    kill) mid-write leaves the previous state: at most that run is lost. The file
    and its directory are created private (0600/0700): even redacted, findings
    describe weaknesses of the fleet.
    """

    dialect = "sqlite"

    def __init__(
        self,
        path: Path,
        timeout: float = 30.0,
        *,
        read_only_ok: bool = False,
        make_parents: bool = False,
    ) -> None:
        """``read_only_ok`` (the reading commands): a store this process may not write is
        opened read-only instead of refused; a write to it is then a :class:`StoreError`.
        A new store's own directory is created, but a whole tree only when
        ``make_parents`` (the default location, ``~/.local/share/readiness``): a typo in
        ``--store`` made the mistyped tree and recorded the run there, exit 0."""
        self.path = path
        self.read_only = read_only_reason(path)
        if self.read_only and not read_only_ok:
            # said before the audit, not as "attempt to write a readonly database" after it
            raise StoreReadOnly(f"store {path} is read-only ({self.read_only})")
        if self.read_only:
            self.conn = self._open_read_only(path, timeout)
            return
        above = path.absolute().parent.parent
        if not make_parents and not path.parent.exists() and not above.is_dir():
            what = "is not a directory" if above.exists() else "does not exist"
            raise StoreError(
                f"cannot open store {path}: {above} {what} (readiness creates the store's own "
                "directory, not a tree: check the path)"
            )
        try:
            path.parent.mkdir(parents=make_parents, exist_ok=True, mode=0o700)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self.conn = sqlite3.connect(
                str(path), timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            _refuse_foreign(self.conn, path)
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()
            # FULL: a committed run survives a power loss too; one fsync per run is cheap.
            self.conn.execute("PRAGMA synchronous = FULL")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from None
        if not mode or str(mode[0]).lower() != "wal":
            raise StoreError(f"store {path}: SQLite refused WAL mode ({mode!r})")

    @staticmethod
    def _open_read_only(path: Path, timeout: float) -> sqlite3.Connection:
        """A WAL store opened read-only: SQLite needs its ``-wal``/``-shm`` files, and in
        a directory it may not write it could not create them ("attempt to write a
        readonly database" from `history`). Without a ``-wal`` no writer has the store
        open and its main file holds every committed run: it is read as immutable (no
        ``-shm``/``-wal`` created next to a file it may not write either)."""
        wal = Path(f"{path}-wal")
        query = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
        uri = f"file:{quote(str(path.absolute()))}?{query}"
        try:
            conn = sqlite3.connect(
                uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            _refuse_foreign(conn, path)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {path} (read-only: {exc})") from None
        return conn

    @classmethod
    def in_memory(cls, path: Path) -> SqliteBackend:
        """An empty store that lives in memory: what a read of a store file that does not
        exist sees, without creating the file (or its directory) just by reading."""
        backend = cls.__new__(cls)
        try:
            backend.conn = sqlite3.connect(
                ":memory:", isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from None
        backend.path = path
        backend.read_only = ""
        return backend

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            return self.conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: sqlite3.Error) -> StoreError:
        if self.read_only and isinstance(exc, sqlite3.OperationalError):
            # baseline-accept, history-prune on a store opened read-only
            return StoreReadOnly(f"store {self.path} is read-only ({self.read_only})")
        return StoreError(f"store {self.path}: {exc}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def migration_lock(self) -> None:
        """BEGIN IMMEDIATE already serializes writers."""

    def sharing_lock(self, *, exclusive: bool) -> None:
        """BEGIN IMMEDIATE already serializes writers: a prune never runs inside a recording."""

    def clock(self) -> datetime:
        """Now, by this controller's clock (a file store has no other)."""
        return datetime.now(timezone.utc)

    def close(self) -> None:
        self.conn.close()


def read_only_reason(path: Path) -> str:
    """Why this process may not write the existing store ``path`` ("" when it may, or when
    there is no file yet: creating it says what is wrong). SQLite in WAL mode writes
    ``-wal``/``-shm`` files beside the store, so its directory counts too."""
    try:
        if not path.is_file():
            return ""
    except OSError:
        return ""
    if not os.access(path, os.W_OK):
        return f"no write permission on {path}"
    # through a symlink SQLite keeps its -wal/-shm beside the file the link names
    directory = Path(os.path.realpath(path)).parent
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"no write permission on its directory {directory}"
    return ""


def _refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    """Another program's SQLite database (a mistyped ``--store``) is left untouched: it
    was switched to WAL mode and given readiness' tables, even by ``history``."""
    names = {
        str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    if names and "readiness_schema" not in names:
        conn.close()
        raise StoreError(
            f"store {path} is not a readiness store (an SQLite database with {len(names)} "
            "other table(s)): it is left as it is; name another file"
        )


class PostgresBackend:
    """A shared PostgreSQL store. The URL (with any password) is used to connect and
    then forgotten: it is never written to the store, a log or a message.

    Every round trip has a deadline on this side too: the server's statement timeout
    bounds a statement the server runs, not one it never receives (a hung server, a
    network that drops the replies), and the client waited for that answer for ever.
    """

    dialect = "postgresql"

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        import psycopg

        self._psycopg = psycopg
        self._timed_out = False
        try:
            from psycopg.conninfo import conninfo_to_dict, make_conninfo

            conninfo = make_conninfo(url, **_connect_params(url, timeout))
            given = conninfo_to_dict(conninfo).get("connect_timeout")
            try:
                bound = max(1, int(str(given or os.environ.get("PGCONNECT_TIMEOUT") or 0)))
            except ValueError:
                bound = max(1, int(timeout))
            resolved = _resolve_hosts(conninfo, bound)
            if resolved:
                conninfo = make_conninfo(conninfo, **resolved)
            self.conn = psycopg.connect(conninfo, autocommit=True)
        except (psycopg.Error, _Unresolved) as exc:
            from .location import mask_url_secret

            text = f"cannot connect to store {redact_url_password(url)}: {exc}"
            raise StoreError(mask_url_secret(text, url)) from None
        try:
            self._connect_s = max(1, int(str(given or os.environ.get("PGCONNECT_TIMEOUT") or 0)))
        except ValueError:
            self._connect_s = max(1, int(timeout))
        self._statement_s = _STATEMENT_TIMEOUT_MS / 1000
        self._deadline_s: float | None = self._statement_s + self._connect_s
        # the statement timeout in force (the URL's options, PGOPTIONS or the role's own
        # may set it): the client waits that long plus the connect timeout; 0 (none) is
        # honoured, a statement may then run as long as it takes
        rows = self.execute("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
        with contextlib.suppress(ValueError, IndexError):
            self._statement_s = int(rows[0][0]) / 1000
            self._deadline_s = self._statement_s + self._connect_s if self._statement_s else None

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    @contextlib.contextmanager
    def _deadline(self) -> Iterator[None]:
        """Shut the connection's socket down if the server has not answered in time: the
        call waiting for it then fails at once (a StoreError saying why)."""
        if self._deadline_s is None:
            yield
            return
        timer = threading.Timer(self._deadline_s, self._abort)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _abort(self) -> None:
        self._timed_out = True
        with contextlib.suppress(Exception):
            sock = socket.socket(fileno=os.dup(self.conn.pgconn.socket))
            with sock:
                sock.shutdown(socket.SHUT_RDWR)

    def _error(self, exc: Exception) -> StoreError:
        if self._timed_out:
            return StoreError(
                f"store: no answer from the server within {self._deadline_s:g} s (its "
                f"statement timeout, {self._statement_s:g} s, plus the connect timeout, "
                f"{self._connect_s} s)"
            )
        return StoreError(f"store: {exc}")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            with self._deadline():
                cur = self.conn.execute(self._sql(sql), tuple(params))
                return list(cur.fetchall()) if cur.description else []
        except self._psycopg.Error as exc:
            raise self._error(exc) from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self._deadline(), self.conn.cursor() as cur:
                cur.executemany(self._sql(sql), list(rows))
        except self._psycopg.Error as exc:
            raise self._error(exc) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        # BEGIN and COMMIT are round trips too: each under its own deadline
        self.execute("BEGIN")
        try:
            yield
        except BaseException:
            with contextlib.suppress(StoreError):
                if not self._timed_out:
                    self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def migration_lock(self) -> None:
        # Two controllers opening a fresh store at once: one migrates, the other waits.
        self.execute("SELECT pg_advisory_xact_lock(?)", (0x7265616479,))

    def sharing_lock(self, *, exclusive: bool) -> None:
        """Until the transaction ends: recordings share it, a prune takes it alone.

        Recordings re-use findings (and fingerprint sets) other runs stored. A prune deletes
        those no committed run uses: it could not see a recording in flight, so it deleted
        a finding that recording had just found present, and the run lost those results.
        """
        lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        self.execute(f"SELECT {lock}(?)", (0x7265616480,))

    def clock(self) -> datetime:
        """Now, by the database server's clock: the one every controller sharing the store
        agrees on (a controller a year ahead pruned everyone's history by its own)."""
        value = self.execute("SELECT now()")[0][0]
        if not isinstance(value, datetime):
            raise StoreError(f"store: the server's clock read as {type(value).__name__}")
        return value.astimezone(timezone.utc)

    def close(self) -> None:
        self.conn.close()


class _Unresolved(Exception):
    """A store host name that did not resolve (in time)."""


def _resolve_hosts(conninfo: str, timeout_s: float) -> dict[str, str]:
    """``host``/``hostaddr`` (and ``port``) for the conninfo's host names, each resolved
    here within ``timeout_s``, or {} when there is nothing to resolve (``hostaddr`` given,
    sockets, address literals only).

    libpq resolves a host name with a blocking getaddrinfo that ``connect_timeout`` does
    not cover: a name whose DNS never answers held ``validate`` for as long as the
    resolver's own retries (minutes), and no signal could cut it short. The lookup runs in
    a daemon thread given up on at the connect timeout; libpq then gets the addresses, the
    name repeated once per address so it still tries each in turn (``localhost``: ::1,
    then 127.0.0.1), and keeps the name for TLS host verification and the password file.
    """
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(conninfo)
    if params.get("hostaddr") or os.environ.get("PGHOSTADDR"):
        return {}
    hosts = str(params.get("host") or os.environ.get("PGHOST") or "").split(",")
    ports = str(params.get("port") or os.environ.get("PGPORT") or "").split(",")
    per_host = len(ports) == len(hosts) > 1
    out_hosts: list[str] = []
    out_addrs: list[str] = []
    out_ports: list[str] = []
    for i, host in enumerate(hosts):
        if not host or host.startswith(("/", "@")) or _is_address(host):
            addresses = [""]  # a socket, the default or an address: nothing to look up
        else:
            addresses = _lookup(host, timeout_s) or [""]
        for address in addresses:
            out_hosts.append(host)
            out_addrs.append(address)
            out_ports.append(ports[i] if per_host else "")
    if not any(out_addrs):
        return {}
    resolved = {"host": ",".join(out_hosts), "hostaddr": ",".join(out_addrs)}
    if per_host:
        resolved["port"] = ",".join(out_ports)
    return resolved


def _is_address(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _lookup(host: str, timeout_s: float) -> list[str]:
    """The addresses of ``host`` in the resolver's order, [] when it fails at once (libpq
    looks it up again and says why, as it always did); :class:`_Unresolved` past the
    bound."""
    found: list[list[str]] = []
    failed: list[bool] = []

    def resolve() -> None:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            found.append(list(dict.fromkeys(str(info[4][0]) for info in infos))[:16])
        except (OSError, UnicodeError, ValueError):
            failed.append(True)

    worker = threading.Thread(target=resolve, name=f"resolve-{host[:40]}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if found:
        return found[0]
    if failed:
        return []
    raise _Unresolved(f"host name {host!r} did not resolve within {timeout_s:g} s (DNS)")


def _connect_params(url: str, timeout: float) -> dict[str, str]:
    """Our defaults for what the URL (or libpq's environment variable) leaves unset.

    Keyword arguments override the URL's own parameters in psycopg: ``?options=-c
    search_path=readiness`` was replaced by our statement timeout, so the store went into
    ``public`` (or failed there), and ``?connect_timeout=3`` became 10 s. The user's
    options now follow ours (a later ``-c`` wins, so theirs may set the timeout too).
    """
    from psycopg.conninfo import conninfo_to_dict

    given = conninfo_to_dict(url)
    ours = f"-c statement_timeout={_STATEMENT_TIMEOUT_MS}"
    theirs = str(given.get("options") or os.environ.get("PGOPTIONS", "")).strip()
    params = {"options": f"{ours} {theirs}".strip()}
    if "connect_timeout" not in given and not os.environ.get("PGCONNECT_TIMEOUT"):
        params["connect_timeout"] = str(max(1, int(timeout)))
    if "application_name" not in given and not os.environ.get("PGAPPNAME"):
        params["application_name"] = "readiness"
    return params
