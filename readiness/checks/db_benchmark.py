"""``db_benchmark``: latency of the app's representative read-only queries.

Opt-in (``db_benchmark`` in the profile). The database is the one
``database_migration`` resolves (``database_dsn``, else the app's settings),
reached from the controller with psycopg 3 in a READ ONLY transaction with a
statement timeout; each query runs ``repetitions`` times (bounded by
``time_cap_s``) and its p50/p95 are judged against thresholds and the previous run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..findings import Findings
from ..model import Outcome
from ..registry import CheckContext, register
from ._bench import (
    Sample,
    bench_block,
    judge_errors,
    judge_latency,
    judge_regression,
    skipped,
    summarize,
    update_baseline,
    verdict_mark,
)
from ._postgres import (
    Target,
    close,
    connect_read_only,
    host_only,
    host_only_reason,
    resolve_target,
    scrub,
    through_host,
)

if TYPE_CHECKING:
    import psycopg

__all__ = ["DEFAULTS", "evaluate"]

NAME = "db_benchmark"

DEFAULTS: dict[str, Any] = {
    # None: SKIPPED. {queries: [{name, sql, p95_ms?}], repetitions, time_cap_s, ...}
    "db_benchmark": None,
    "thresholds": {"db_query_p50_ms": 50.0, "db_query_p95_ms": 200.0},
}

_EXAMPLE = (
    "db_benchmark: {queries: [{name: recent_runs, sql: 'SELECT * FROM workflow_runs "
    "ORDER BY started_at DESC LIMIT 50'}], repetitions: 20, time_cap_s: 30}"
)
MAX_REPETITIONS = 10_000


def _config(ctx: CheckContext) -> Mapping[str, Any] | None:
    value = ctx.profile.get("db_benchmark")
    return value if isinstance(value, Mapping) and value else None


def _queries(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, q in enumerate(cfg.get("queries") or ()):
        entry = dict(q) if isinstance(q, Mapping) else {"sql": q}
        if isinstance(entry.get("sql"), str) and entry["sql"].strip():
            entry.setdefault("name", f"query{i + 1}")
            out.append(entry)
    return out


def _pos(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and value > 0 else default


def _statement_timeout_ms(ctx: CheckContext, cfg: Mapping[str, Any]) -> int:
    default = float(ctx.profile.threshold("db_statement_timeout_s"))
    return int(_pos(cfg.get("statement_timeout_s"), default) * 1000)


def _begin(conn: psycopg.Connection[Any], timeout_ms: int) -> str:
    """Start a fresh read-only transaction with a local statement timeout; its read-only flag."""
    cur = conn.execute("SELECT set_config('statement_timeout', %s, true)", (str(timeout_ms),))
    cur = conn.execute("SELECT current_setting('transaction_read_only')")
    row = cur.fetchone()
    return str(row[0]) if row else ""


def _time_query(
    conn: psycopg.Connection[Any], target: Target, query: Mapping[str, Any], timeout_ms: int
) -> Sample:
    import psycopg

    t0 = time.perf_counter()
    try:
        cur = conn.execute(str(query["sql"]))  # the profile's own SQL, as written
        if cur.description is not None:
            cur.fetchall()
    except psycopg.Error as exc:
        conn.rollback()
        _begin(conn, timeout_ms)
        first = scrub(str(exc), target).strip().splitlines()[0][:200]
        return Sample(0.0, f"{type(exc).__name__}: {first}")
    return Sample((time.perf_counter() - t0) * 1000)


def _bench_query(
    ctx: CheckContext,
    f: Findings,
    conn: psycopg.Connection[Any],
    target: Target,
    query: Mapping[str, Any],
) -> dict[str, Any]:
    cfg = _config(ctx) or {}
    name = str(query["name"])
    reps = int(min(_pos(query.get("repetitions", cfg.get("repetitions")), 20), MAX_REPETITIONS))
    cap = _pos(cfg.get("time_cap_s"), 30.0)
    timeout_ms = _statement_timeout_ms(ctx, cfg)
    samples: list[Sample] = []
    started = time.monotonic()
    while len(samples) < reps and time.monotonic() - started < cap:
        samples.append(_time_query(conn, target, query, timeout_ms))
    summary = summarize(
        samples, time.monotonic() - started, requested=reps, cut=reps - len(samples)
    )
    mark = verdict_mark(f)
    label = f"query {name}"
    judge_errors(f, label, summary, 0.0)
    th = ctx.profile.get("thresholds") or {}
    limits = {
        "p50_ms": _pos(query.get("p50_ms"), float(th.get("db_query_p50_ms") or 0)) or None,
        "p95_ms": _pos(query.get("p95_ms"), float(th.get("db_query_p95_ms") or 0)) or None,
    }
    how = (
        f"EXPLAIN ANALYZE the query {name} (missing index, bloat, lock waits) or raise "
        "db_benchmark.queries[].p95_ms / thresholds.db_query_p95_ms"
    )
    judge_latency(f, label, summary, limits, how)
    judge_regression(ctx, f, summary, check=NAME, label=label, name=name)
    update_baseline(ctx, f, NAME, name, summary)
    return {"name": name, "target": target.dsn.safe(), **summary, "verdict": mark.verdict(f)}


def _run(ctx: CheckContext, f: Findings, target: Target, queries: list[dict[str, Any]]) -> None:
    import psycopg

    conn = connect_read_only(
        ctx, f, target, application_name="readiness-benchmark", purpose="benchmarked"
    )
    if conn is None:
        return
    rows: list[dict[str, Any]] = []
    try:
        f.details["transaction_read_only"] = _begin(
            conn, _statement_timeout_ms(ctx, _config(ctx) or {})
        )
        rows = [_bench_query(ctx, f, conn, target, q) for q in queries]
    except psycopg.Error as exc:
        f.fail(
            f"benchmarking the database at {target.dsn.safe()} failed: {scrub(str(exc), target)}",
            "Check the server log and the role's privileges; rerun with -v",
        )
    finally:
        close(conn)
    f.details["benchmark"] = bench_block("db", rows)


def evaluate(ctx: CheckContext) -> Outcome:
    cfg = _config(ctx)
    if cfg is None:
        return skipped("db_benchmark", _EXAMPLE)
    f = Findings()
    queries = _queries(cfg)
    if not queries:
        f.fail("db_benchmark has no queries", f"Add representative read-only queries: {_EXAMPLE}")
        return f.outcome("", subject="Database benchmark")
    target = resolve_target(ctx, f)
    if target is not None and host_only(ctx, target):
        why, alternative = host_only_reason(ctx, target)
        f.unknown(
            f"the app's database {target.dsn.safe()} is local to host {ctx.host}; from the "
            f"controller that address is the controller's own loopback{why}",
            "Set database_dsn in the profile (host vars) to an address of this database that is "
            f"reachable from the controller, {alternative}",
        )
    elif target is not None:
        routed = through_host(ctx, f, target)
        if routed is not None:
            _run(ctx, f, routed, queries)
    return f.outcome(
        f"{len(queries)} query(ies) within thresholds (read-only, statement timeout "
        f"{_statement_timeout_ms(ctx, cfg)} ms)",
        subject="Database benchmark",
    )


register(
    NAME,
    title="Database benchmark",
    description=(
        "The profile's representative read-only queries, repeated in a READ ONLY transaction "
        "with a statement timeout: p50/p95 within thresholds and not regressed against the "
        "previous run."
    ),
    categories=("performance",),
    suites=("production",),
    defaults=DEFAULTS,
    profile_keys=(
        "db_benchmark",
        "service_access",
        "thresholds.db_query_p50_ms",
        "thresholds.db_query_p95_ms",
    ),
    aliases=("db_bench", "query_benchmark"),
    order=310,
    opt_in=True,
)(evaluate)
