"""The results store: every run recorded, read back as the same :class:`FleetReport`.

One class over two backends (SQLite by default, PostgreSQL shared). A run is
written in one transaction: its row in ``runs``, one row per host, one row per
host x check, and each distinct finding (message, details, recommendations) once
in ``findings``, keyed by a hash of its already-redacted text. Reading a run back
rebuilds the report every renderer takes.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import UsageError
from ..model import CheckResult, FleetReport, HostReport, Status, utcnow
from ..redact import Redactor, redact_url_password
from .backends import Backend, PostgresBackend, SqliteBackend, StoreError
from .location import StoreLocation
from .schema import LATEST, MIGRATIONS, render_ddl

if TYPE_CHECKING:
    from .drift import Fingerprint, Fingerprints

__all__ = [
    "RunMeta",
    "RunSummary",
    "Store",
    "StoredRun",
    "open_store",
    "store_missing",
    "store_where",
]

_TS = "%Y-%m-%dT%H:%M:%S.%fZ"
_REPORT_KEY = "__readiness_report__"
_CHUNK = 500


def ts_text(ts: datetime) -> str:
    """A fixed-width UTC timestamp: text order is time order (both backends compare text).

    The year is padded by hand: strftime's ``%Y`` wrote year 999 as ``999``, which sorts
    after ``2026``, so ``history --since 0999-01-01`` answered "no runs"."""
    utc = ts.astimezone(timezone.utc)
    return f"{utc.year:04d}{utc.strftime(_TS[2:])}"


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, _TS).replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class RunMeta:
    """Who ran what, where: everything recorded about a run besides its results.

    ``command`` must already be redacted (:func:`readiness.store.record.redact_argv`).
    ``profile_material`` is fingerprinted with the store's HMAC key and never stored.
    """

    kind: str
    pattern: str
    command: str
    controller: str
    user: str
    started_at: datetime
    duration_s: float = 0.0
    profile_material: str = ""


@dataclass(frozen=True)
class RunSummary:
    """One row of ``runs``: what ``history`` lists."""

    run_id: str
    started_at: datetime
    kind: str
    pattern: str
    controller: str
    user: str
    command: str
    profile_fingerprint: str
    overall_status: Status
    exit_code: int
    duration_s: float
    host_count: int
    summary: Mapping[str, int] = field(default_factory=dict)
    seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": ts_text(self.started_at),
            "kind": self.kind,
            "pattern": self.pattern,
            "controller": self.controller,
            "user": self.user,
            "command": self.command,
            "profile_fingerprint": self.profile_fingerprint,
            "overall_status": self.overall_status.value,
            "exit_code": self.exit_code,
            "duration_s": round(self.duration_s, 3),
            "hosts": self.host_count,
            "summary": dict(self.summary),
        }


@dataclass(frozen=True)
class StoredRun:
    summary: RunSummary
    report: FleetReport


_RUN_COLUMNS = (
    "seq, run_id, started_at, kind, pattern, controller, user_name, command, "
    "profile_fingerprint, overall_status, exit_code, duration_s, host_count, summary"
)


def _summary_of(row: Sequence[Any]) -> RunSummary:
    return RunSummary(
        seq=int(row[0]),
        run_id=str(row[1]),
        started_at=parse_ts(str(row[2])),
        kind=str(row[3]),
        pattern=str(row[4]),
        controller=str(row[5]),
        user=str(row[6]),
        command=str(row[7]),
        profile_fingerprint=str(row[8]),
        overall_status=Status.parse(str(row[9])),
        exit_code=int(row[10]),
        duration_s=float(row[11]),
        host_count=int(row[12]),
        summary=json.loads(row[13]),
    )


def finding_id(body: str) -> int:
    """A signed 64-bit key for a finding's text (collisions: ~2^32 distinct findings)."""
    return int.from_bytes(hashlib.sha256(body.encode()).digest()[:8], "big", signed=True)


def new_run_id(started: datetime) -> str:
    return f"{started.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


_DAMAGE = (ValueError, TypeError, KeyError, IndexError, AttributeError)
_F = TypeVar("_F", bound=Callable[..., Any])


def _reading(method: _F) -> _F:
    """A row readiness cannot decode (a damaged file, a hand edit, another program's
    write) is one line, exit 2: ``show``, ``diff`` and the timelines were a traceback."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except _DAMAGE as exc:
            raise StoreError(
                f"store {self.location.display}: a damaged record "
                f"({type(exc).__name__}: {str(exc)[:120]})"
            ) from None

    return wrapper  # type: ignore[return-value]


class Store:
    """A migrated results store. Open it with :func:`open_store`; close it when done."""

    def __init__(self, backend: Backend, location: StoreLocation, *, missing: bool = False) -> None:
        self._db = backend
        self.location = location
        self.missing = missing  # an SQLite file that does not exist, read as an empty store
        self._redactor = Redactor()  # defence in depth: the report is already redacted
        self._key: bytes | None = None

    # --- schema ---------------------------------------------------------------------------

    def migrate(self, target: int = LATEST) -> int:
        """Apply the migrations up to ``target``; return the schema version now in place.

        A store already at ``target`` is only read: every reading command took the write
        lock here, so `history` during a long recording or prune waited 30 s for it and
        failed with "database is locked" (SQLite's WAL lets readers read meanwhile)."""
        try:
            current = self._version()
        except StoreError:  # no readiness_schema yet: created below, under the lock
            current = -1
        if current > LATEST:
            raise StoreError(
                f"store {self.location.display} has schema version {current}, newer than "
                f"this readiness understands ({LATEST}): upgrade readiness"
            )
        if current >= target:
            return current
        read_only = getattr(self._db, "read_only", "")
        if read_only:  # a reading command on a store it may not write: nothing to migrate with
            raise StoreError(
                f"store {self.location.display} is read-only ({read_only}) and has schema "
                f"version {max(current, 0)}, older than this readiness reads ({target}): "
                "open it once where it can be written (e.g. by `readiness validate`)"
            )
        with self._db.transaction():
            self._db.migration_lock()
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS readiness_schema "
                "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            current = self._version()
            if current > LATEST:
                raise StoreError(
                    f"store {self.location.display} has schema version {current}, newer than "
                    f"this readiness understands ({LATEST}): upgrade readiness"
                )
            for migration in MIGRATIONS:
                if current < migration.version <= target:
                    for statement in migration.statements:
                        self._db.execute(render_ddl(statement, self._db.dialect))
                    self._db.execute(
                        "INSERT INTO readiness_schema (version, description, applied_at) "
                        "VALUES (?, ?, ?)",
                        (migration.version, migration.description, ts_text(utcnow())),
                    )
            return max(current, min(target, LATEST))

    def _version(self) -> int:
        rows = self._db.execute("SELECT MAX(version) FROM readiness_schema")
        return int(rows[0][0] or 0) if rows else 0

    def schema_version(self) -> int:
        return self._version()

    @_reading  # a damaged key (not hex, too short) was a ValueError traceback from validate
    def hmac_key(self) -> bytes:
        """The store's own key for fingerprints of secrets; created once, never leaves it."""
        if self._key is not None:
            return self._key
        # read first: the key exists after the first run, and taking the write lock here
        # held every audit's start behind another controller's recording or prune
        rows = self._db.execute("SELECT value FROM readiness_meta WHERE key = 'hmac_key'")
        if rows:
            self._key = _key_of(rows[0][0])
            return self._key
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO readiness_meta (key, value) VALUES ('hmac_key', ?) "
                "ON CONFLICT (key) DO NOTHING",
                (secrets.token_hex(32),),
            )
            rows = self._db.execute("SELECT value FROM readiness_meta WHERE key = 'hmac_key'")
        self._key = _key_of(rows[0][0])
        return self._key

    def clock_skew(self) -> timedelta:
        """This controller's clock minus the store's (zero for an SQLite file)."""
        return utcnow() - self._db.clock()

    def fingerprint(self, material: str) -> str:
        if not material:
            return ""
        return hmac.new(self.hmac_key(), material.encode(), hashlib.sha256).hexdigest()[:16]

    # --- writing ------------------------------------------------------------------------

    def record(
        self,
        report: FleetReport,
        meta: RunMeta,
        *,
        redacted: bool = True,
        fingerprints: Mapping[str, Mapping[str, Fingerprint]] | None = None,
    ) -> str:
        """Write one run in one transaction; return its run id.

        ``redacted``: the report comes from :func:`readiness.api.validate`, whose redactor
        knew the run's secrets and already applied every pattern rule; the store then only
        re-masks URL passwords in each distinct finding (cheap). Otherwise (a report built
        elsewhere) every field goes through the pattern redactor first.
        """
        run_id = new_run_id(meta.started_at)
        if not redacted:
            report = self._redactor.fleet(report)
            report = replace(report, extra=self._redactor.obj(dict(report.extra)))
        masked: dict[str, tuple[int, str]] = {}
        findings: dict[int, str] = {}
        results: list[tuple[Any, ...]] = []
        hosts: list[tuple[Any, ...]] = []
        for position, host in enumerate(report.hosts):
            hosts.append(
                (
                    position,
                    host.host,
                    host.address,
                    json.dumps(list(host.groups)),
                    redact_url_password(host.reason),
                    float(host.duration_s),
                )
            )
            for r in host.results:
                # Key order is kept (renderers show details in the check's order); the id
                # hashes the sorted form, so equal content is one finding whatever its order.
                raw = json.dumps(
                    [r.message, r.details, r.recommendations], separators=(",", ":"), default=str
                )
                if raw not in masked:  # most findings repeat across hosts: mask each once
                    value = _mask_urls([r.message, r.details, r.recommendations])
                    body = json.dumps(value, separators=(",", ":"), default=str)
                    canonical = json.dumps(
                        value, sort_keys=True, separators=(",", ":"), default=str
                    )
                    masked[raw] = (finding_id(canonical), body)
                key, body = masked[raw]
                findings[key] = body
                results.append((host.host, r.check_name, r.status.value, float(r.duration_s), key))
        fp_sets: dict[int, str] = {}
        fp_rows: list[tuple[str, int]] = []
        # a host the run was cut short on (Ctrl-C) may have been fingerprinted in part: its
        # missing items read as "removed" in `drift --since`; it is left out, not compared
        cut = {
            h.host for h in report.hosts if any(r.status is Status.INTERRUPTED for r in h.results)
        }
        for host_name, items in sorted((fingerprints or {}).items()):
            if host_name in cut:
                continue
            body = json.dumps({k: list(v) for k, v in items.items()}, sort_keys=True)
            fp_sets[finding_id(body)] = body
            fp_rows.append((host_name, finding_id(body)))
        fingerprint = self.fingerprint(meta.profile_material)
        # The report's typed fields other than hosts ride along in ``extra`` (no migration
        # needed): show re-renders gates and verdict exactly as the live run did.
        extra = {
            **report.extra,
            _REPORT_KEY: {
                "suite": report.suite,
                "quality_gates": report.gates.to_dict() if report.gates is not None else None,
                "fail_on": report.fail_on.value,
                "generated_at": ts_text(report.generated_at),
            },
        }
        with self._db.transaction():
            self._db.sharing_lock(exclusive=False)  # no prune deletes what this run re-uses
            rows = self._db.execute(
                "INSERT INTO runs (run_id, started_at, recorded_at, kind, pattern, controller, "
                "user_name, command, profile_fingerprint, title, checks, overall_status, "
                "exit_code, interrupted_by, duration_s, host_count, summary, extra) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                (
                    run_id,
                    ts_text(meta.started_at),
                    ts_text(utcnow()),
                    meta.kind,
                    meta.pattern,
                    meta.controller,
                    meta.user,
                    meta.command,
                    fingerprint,
                    report.title,
                    json.dumps(list(report.check_names)),
                    report.overall_status.value,
                    int(report.exit_code()),
                    report.interrupted_by,
                    float(meta.duration_s),
                    len(report.hosts),
                    json.dumps(report.summary()),
                    json.dumps(extra, default=str),
                ),
            )
            seq = int(rows[0][0])
            self._db.executemany(
                "INSERT INTO run_hosts (run_seq, position, host, address, groups_json, reason, "
                "duration_s) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(seq, *h) for h in hosts],
            )
            # Sorted: two writers insert shared findings in the same order (no deadlock).
            self._db.executemany(
                "INSERT INTO findings (id, body) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
                sorted(findings.items()),
            )
            self._db.executemany(
                "INSERT INTO results (run_seq, host, check_name, status, duration_s, finding) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(seq, *r) for r in results],
            )
            if fp_rows:
                self._db.executemany(
                    "INSERT INTO fingerprint_sets (id, body) VALUES (?, ?) "
                    "ON CONFLICT (id) DO NOTHING",
                    sorted(fp_sets.items()),
                )
                self._db.executemany(
                    "INSERT INTO host_fingerprints (run_seq, host, fingerprint_set) VALUES (?, ?, ?)",
                    [(seq, *r) for r in fp_rows],
                )
        return run_id

    @_reading
    def fingerprints(self, run: RunSummary) -> dict[str, Fingerprints]:
        """Each host's drift fingerprints recorded with ``run`` (empty if none were)."""
        rows = self._db.execute(
            "SELECT h.host, s.body FROM host_fingerprints h JOIN fingerprint_sets s "
            "ON s.id = h.fingerprint_set WHERE h.run_seq = ?",
            (run.seq,),
        )
        out: dict[str, Fingerprints] = {}
        for host, body in rows:
            items: Fingerprints = {}
            for k, v in json.loads(body).items():
                # [fingerprint, secret] or, for a version kept in clear, [..., version]
                items[k] = (
                    (str(v[0]), bool(v[1]), str(v[2])) if len(v) > 2 else (str(v[0]), bool(v[1]))
                )
            out[str(host)] = items
        return out

    # --- reading ------------------------------------------------------------------------

    @_reading
    def runs(
        self,
        *,
        since: datetime | None = None,
        pattern: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> list[RunSummary]:
        """Runs, newest first."""
        where, params = ["1 = 1"], []
        if since is not None:
            where.append("started_at >= ?")
            params.append(ts_text(since))
        if pattern is not None:
            where.append("pattern = ?")
            params.append(pattern)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE {' AND '.join(where)} ORDER BY seq DESC"  # noqa: S608 - fixed fragments, values bound
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_summary_of(r) for r in self._db.execute(sql, params)]

    @_reading
    def resolve(self, ref: str) -> RunSummary:
        """A run by id, unique id prefix, ``latest``, or ``latest~N`` (N runs before it)."""
        ref = ref.strip()
        if not ref:
            raise UsageError("empty run reference")
        if ref == "latest" or ref.startswith("latest~"):
            back = ref.partition("~")[2] or "0"
            if not back.isdigit():
                raise UsageError(f"bad run reference {ref!r} (latest, latest~N or a run id)")
            # beyond 2^62 the LIMIT is no integer to SQL: "datatype mismatch", not "no run"
            found = self.runs(limit=int(back) + 1) if int(back) < 1 << 62 else []
            if len(found) <= int(back):
                raise UsageError(f"no run {ref!r} in {store_where(self.location)}")
            return found[int(back)]
        rows = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ? OR run_id LIKE ? ORDER BY seq DESC",  # noqa: S608
            (ref, _like_prefix(ref)),
        )
        exact = [r for r in rows if r[1] == ref]
        if exact:
            return _summary_of(exact[0])
        if len(rows) == 1:
            return _summary_of(rows[0])
        if not rows:
            raise UsageError(f"no run {ref!r} in {store_where(self.location)}")
        raise UsageError(f"run reference {ref!r} is ambiguous ({len(rows)} runs start with it)")

    @_reading
    def latest_fingerprinted(self) -> RunSummary | None:
        """The newest run recorded with drift fingerprints (remediate runs have none)."""
        rows = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE seq = "  # noqa: S608
            "(SELECT MAX(run_seq) FROM host_fingerprints)"
        )
        return _summary_of(rows[0]) if rows else None

    @_reading
    def previous(self, run: RunSummary) -> RunSummary | None:
        """The run of the same pattern and kind that started just before ``run`` (equal
        start times: the one recorded first). Not the one recorded just before it: a long
        run recorded after a quick one that started later was diffed against it
        backwards, warning about an ``--old`` nobody had named."""
        started = ts_text(run.started_at)
        rows = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE pattern = ? AND kind = ? "  # noqa: S608
            "AND (started_at < ? OR (started_at = ? AND seq < ?)) "
            "ORDER BY started_at DESC, seq DESC LIMIT 1",
            (run.pattern, run.kind, started, started, run.seq),
        )
        return _summary_of(rows[0]) if rows else None

    @_reading
    def load(self, ref: str | RunSummary) -> StoredRun:
        summary = ref if isinstance(ref, RunSummary) else self.resolve(ref)
        head = self._db.execute(
            "SELECT title, checks, interrupted_by, extra FROM runs WHERE seq = ?", (summary.seq,)
        )[0]
        checks = tuple(json.loads(head[1]))
        order = {name: i for i, name in enumerate(checks)}
        per_host: dict[str, list[CheckResult]] = {}
        for host, check, status, duration, body in self._db.execute(
            "SELECT r.host, r.check_name, r.status, r.duration_s, f.body FROM results r "
            "JOIN findings f ON f.id = r.finding WHERE r.run_seq = ?",
            (summary.seq,),
        ):
            message, details, recs = json.loads(body)
            if not (isinstance(message, str) and isinstance(details, dict)):
                raise ValueError(f"finding of {host} / {check} is not [message, details, recs]")
            if not (isinstance(recs, list) and all(isinstance(x, str) for x in recs)):
                raise ValueError(f"finding of {host} / {check} is not [message, details, recs]")
            per_host.setdefault(host, []).append(
                CheckResult(
                    check_name=check,
                    status=Status.parse(status),
                    message=message,
                    details=details,
                    recommendations=tuple(recs),
                    timestamp=summary.started_at,
                    host=host,
                    duration_s=float(duration),
                )
            )
        hosts = []
        for _pos, host, address, groups, reason, duration in self._db.execute(
            "SELECT position, host, address, groups_json, reason, duration_s FROM run_hosts "
            "WHERE run_seq = ? ORDER BY position",
            (summary.seq,),
        ):
            results = sorted(per_host.get(host, []), key=lambda r: order.get(r.check_name, 1 << 30))
            hosts.append(
                HostReport(
                    host=host,
                    results=tuple(results),
                    address=address,
                    groups=tuple(json.loads(groups)),
                    reason=reason,
                    duration_s=float(duration),
                )
            )
        interrupted_by = str(head[2] or "")
        extra = dict(json.loads(head[3]))
        typed = dict(extra.pop(_REPORT_KEY, None) or {})
        gates = None
        if isinstance(typed.get("quality_gates"), Mapping):
            from ..gates import GateReport

            gates = GateReport.from_dict(typed["quality_gates"])
        report = FleetReport(
            hosts=tuple(hosts),
            generated_at=parse_ts(typed["generated_at"])
            if typed.get("generated_at")
            else summary.started_at,
            checks=checks,
            title=str(head[0]),
            interrupted=bool(interrupted_by),
            interrupted_by=interrupted_by,
            suite=str(typed.get("suite") or ""),
            gates=gates,
            fail_on=Status.parse(str(typed.get("fail_on") or Status.NOT_READY.value)),
            extra=extra,
        )
        return StoredRun(summary, report)

    def _first_seq(
        self,
        limit: int,
        since: datetime | None,
        *,
        pattern: str | None = None,
        kind: str | None = None,
        until_seq: int | None = None,
    ) -> int:
        """The oldest ``seq`` among the newest ``limit`` runs (started since ``since``, of
        ``pattern`` and ``kind``, up to run ``until_seq``, when given)."""
        conds: list[str] = []
        params: list[Any] = []
        for cond, value in (
            ("started_at >= ?", since and ts_text(since)),
            ("pattern = ?", pattern),
            ("kind = ?", kind),
            ("seq <= ?", until_seq),
        ):
            if value is not None:
                conds.append(cond)
                params.append(value)
        where = f"WHERE {' AND '.join(conds)}" if conds else ""
        rows = self._db.execute(
            f"SELECT MIN(seq) FROM (SELECT seq FROM runs {where} ORDER BY seq DESC LIMIT {int(limit)}) t",  # noqa: S608
            params,
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else 1 << 62

    @_reading
    def timeline(
        self,
        *,
        hosts: Iterable[str] | None,
        check: str | None,
        since: datetime | None,
        limit: int = 50,
    ) -> list[tuple[str, datetime, str, str, Status]]:
        """(run id, time, host, check, status) rows, oldest first, for the chosen hosts/check,
        over the newest ``limit`` runs (a range of the results' primary key, so its cost
        does not grow with the store)."""
        where: list[str] = ["r.run_seq >= ?"]
        params: list[Any] = [self._first_seq(limit, since)]
        if since is not None:  # a run recorded after the first one but started before since
            where.append("u.started_at >= ?")
            params.append(ts_text(since))
        if check is not None:
            where.append("r.check_name = ?")
            params.append(check)
        if not _only_hosts(hosts, where, params):
            return []
        rows = self._db.execute(
            "SELECT u.run_id, u.started_at, r.host, r.check_name, r.status FROM results r "  # noqa: S608
            f"JOIN runs u ON u.seq = r.run_seq WHERE {' AND '.join(where)} ORDER BY u.seq, r.host",
            params,
        )
        return [
            (str(run_id), parse_ts(str(ts)), str(host), str(chk), Status.parse(str(st)))
            for run_id, ts, host, chk, st in rows
        ]

    @_reading
    def trend(
        self,
        *,
        check: str | None,
        since: datetime | None,
        limit: int = 50,
        pattern: str | None = None,
        kind: str | None = None,
        until_seq: int | None = None,
        hosts: Iterable[str] | None = None,
    ) -> list[tuple[str, datetime, str, Status, int]]:
        """(run id, time, check, status, hosts) counts per run, oldest first; only runs of
        ``pattern`` and ``kind`` when given (the HTML report's trend of one fleet), and only
        up to run ``until_seq`` (``show RUN``: the trend as of that run)."""
        where: list[str] = ["r.run_seq >= ?"]
        first = self._first_seq(limit, since, pattern=pattern, kind=kind, until_seq=until_seq)
        params: list[Any] = [first]
        for column, op, value in (
            ("r.check_name", "=", check),
            ("u.pattern", "=", pattern),
            ("u.kind", "=", kind),
            ("r.run_seq", "<=", until_seq),
            ("u.started_at", ">=", since and ts_text(since)),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                params.append(value)
        if not _only_hosts(hosts, where, params):  # history --trend --hosts: only these
            return []
        rows = self._db.execute(
            "SELECT u.seq, u.run_id, u.started_at, r.check_name, r.status, COUNT(*) FROM results r "  # noqa: S608
            f"JOIN runs u ON u.seq = r.run_seq WHERE {' AND '.join(where)} "
            "GROUP BY u.seq, u.run_id, u.started_at, r.check_name, r.status ORDER BY u.seq",
            params,
        )
        return [
            (str(run_id), parse_ts(str(ts)), str(chk), Status.parse(str(st)), int(n))
            for _seq, run_id, ts, chk, st, n in rows
        ]

    @_reading
    def host_groups(self, limit: int = 50) -> dict[str, tuple[str, ...]]:
        """Each host's groups as of the newest of the last ``limit`` runs that audited it
        (for ``--hosts GROUP``)."""
        out: dict[str, tuple[str, ...]] = {}
        for host, groups in self._db.execute(
            "SELECT host, groups_json FROM run_hosts WHERE run_seq >= ? ORDER BY run_seq",
            (self._first_seq(limit, None),),
        ):
            out[str(host)] = tuple(json.loads(groups))
        return out

    # --- retention ----------------------------------------------------------------------

    def prune(self, keep: timedelta, now: datetime | None = None) -> int:
        """Delete runs started more than ``keep`` ago, and findings no run uses any more.

        "Ago" by the store's clock (PostgreSQL: the server's): one controller whose clock
        was a year ahead deleted every other controller's history."""
        cutoff = ts_text((now or self._db.clock()) - keep)
        seqs = [
            int(r[0])
            for r in self._db.execute("SELECT seq FROM runs WHERE started_at < ?", (cutoff,))
        ]
        if not seqs:
            return 0
        with self._db.transaction():
            # after every recording in flight: the deletes below then see their results
            self._db.sharing_lock(exclusive=True)
            for i in range(0, len(seqs), _CHUNK):
                chunk = seqs[i : i + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                for table, column in (
                    ("results", "run_seq"),
                    ("run_hosts", "run_seq"),
                    ("host_fingerprints", "run_seq"),
                    ("runs", "seq"),
                ):
                    self._db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", chunk)  # noqa: S608
            self._db.execute(
                "DELETE FROM findings WHERE id NOT IN (SELECT DISTINCT finding FROM results)"
            )
            self._db.execute(
                "DELETE FROM fingerprint_sets WHERE id NOT IN "
                "(SELECT DISTINCT fingerprint_set FROM host_fingerprints)"
            )
        return len(seqs)

    # --- baselines ----------------------------------------------------------------------

    @_reading
    def baseline(self, name: str = "default") -> dict[tuple[str, str], BaselineEntry]:
        rows = self._db.execute(
            "SELECT host, check_name, status, message, source_run, accepted_at FROM baselines "
            "WHERE name = ?",
            (name,),
        )
        return {
            (str(h), str(c)): BaselineEntry(
                str(h), str(c), Status.parse(str(s)), str(m), str(src), str(at)
            )
            for h, c, s, m, src, at in rows
        }

    def set_baseline(
        self, entries: Iterable[BaselineEntry], *, name: str = "default", replace_all: bool = True
    ) -> int:
        rows = [
            (
                name,
                e.host,
                e.check,
                e.status.value,
                self._redactor.text(e.message),
                e.source_run,
                e.accepted_at,
            )
            for e in entries
        ]
        with self._db.transaction():
            if replace_all:
                self._db.execute("DELETE FROM baselines WHERE name = ?", (name,))
            else:
                self._db.executemany(
                    "DELETE FROM baselines WHERE name = ? AND host = ? AND check_name = ?",
                    [(name, r[1], r[2]) for r in rows],
                )
            self._db.executemany(
                "INSERT INTO baselines (name, host, check_name, status, message, source_run, "
                "accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class BaselineEntry:
    """One accepted host x check result: its status is the ceiling that does not fail."""

    host: str
    check: str
    status: Status
    message: str
    source_run: str
    accepted_at: str

    def to_dict(self) -> dict[str, str]:
        return {
            "host": self.host,
            "check": self.check,
            "status": self.status.value,
            "message": self.message,
            "source_run": self.source_run,
            "accepted_at": self.accepted_at,
        }


def _key_of(value: Any) -> bytes:
    """The stored HMAC key (64 hex digits as written); a shorter one would key every
    fingerprint of a secret weakly (an empty one: not at all), so it is a damaged record."""
    key = bytes.fromhex(str(value))
    if len(key) < 16:
        raise ValueError(f"the store's fingerprint key is {len(key)} bytes, not 32")
    return key


def _only_hosts(hosts: Iterable[str] | None, where: list[str], params: list[Any]) -> bool:
    """Add ``r.host IN (...)`` for ``hosts`` (None: every host) to a query being built;
    False when ``hosts`` is empty (nothing can match: the caller answers [] unasked)."""
    if hosts is None:
        return True
    names = sorted(set(hosts))
    if not names:
        return False
    where.append(f"r.host IN ({', '.join('?' * len(names))})")
    params.extend(names)
    return True


def _mask_urls(value: Any) -> Any:
    """URL/DSN passwords masked in every string of JSON-like data (structure kept)."""
    if isinstance(value, Mapping):
        return {str(k): _mask_urls(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_urls(v) for v in value]
    return redact_url_password(value) if isinstance(value, str) else value


def _like_prefix(ref: str) -> str:
    """A LIKE pattern for ids starting with ``ref``; run ids hold only [0-9A-Za-z-], so a
    reference with anything else (LIKE's ``%`` and ``_`` included) matches no prefix."""
    if all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in ref):
        return ref + "%"
    return "\x00"  # matches no run id


def store_missing(location: StoreLocation) -> bool:
    """An SQLite store whose file does not exist (yet)."""
    if location.kind != "sqlite":
        return False
    path = location.path or Path(location.url)
    try:
        return not path.exists()
    except OSError:  # e.g. a name too long: let opening it say what is wrong
        return False


def store_where(location: StoreLocation) -> str:
    """``store PATH`` for messages, saying so when that SQLite file does not exist."""
    where = f"store {location.display}"
    return f"{where} (it does not exist)" if store_missing(location) else where


def open_store(
    location: StoreLocation,
    *,
    timeout: float = 10.0,
    migrate: bool = True,
    create: bool = True,
) -> Store:
    """Connect and bring the schema up to date (``migrate=False``: tests of old versions).

    ``create=False`` (the reading commands): an SQLite file that does not exist is read as
    an empty store held in memory; neither the file nor its directory is created; and one
    this process may not write (its file or directory) is opened read-only. Otherwise such
    a store is :class:`StoreReadOnly` at once (``validate`` warns before the audit).
    """
    if not location.enabled:
        raise UsageError("no results store: --store/READINESS_STORE is 'none'")
    backend: Backend
    missing = not create and store_missing(location)
    if location.kind == "postgresql":
        backend = PostgresBackend(location.url, timeout)
    elif missing:
        backend = SqliteBackend.in_memory(location.path or Path(location.url))
    else:
        backend = SqliteBackend(
            location.path or Path(location.url),
            max(timeout, 30.0),
            read_only_ok=not create,
            make_parents=location.default,
        )
    store = Store(backend, location, missing=missing)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store


def with_run_summary(report: FleetReport, summary: RunSummary) -> FleetReport:
    """The stored report with where it came from in ``extra`` (JSON key ``stored_run``)."""
    return replace(report, extra={**report.extra, "stored_run": summary.to_dict()})
