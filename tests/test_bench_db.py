"""``db_benchmark`` against the real PostgreSQL 15 cluster on 127.0.0.1."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from readiness.model import CheckResult, Status
from tests.services.apps import audit_local, one
from tests.services.postgres import PgCluster, Role

pytestmark = pytest.mark.postgres

CHECK = "db_benchmark"


@pytest.fixture(scope="module")
def bench_role(pg_cluster: PgCluster) -> Role:
    return pg_cluster.new_role("bench")


@pytest.fixture
def dsn(pg_cluster: PgCluster, bench_role: Role, bench_db: str) -> str:
    """The bench role's URL of its fresh database (password included: the check masks it)."""
    return pg_cluster.dsn(bench_role.name, bench_role.password, bench_db)


@pytest.fixture
def bench_db(pg_cluster: PgCluster, bench_role: Role) -> Iterator[str]:
    """A fresh database with one small table the role owns."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    pg_cluster.create_database(name, owner=bench_role.name)
    pg_cluster.admin(
        sql.SQL(
            "CREATE TABLE runs (id int PRIMARY KEY, state text); ALTER TABLE runs OWNER TO {}"
        ).format(sql.Identifier(bench_role.name)),
        db=name,
    )
    pg_cluster.admin(
        "INSERT INTO runs SELECT g, 'completed' FROM generate_series(1, 100) g", db=name
    )
    yield name
    pg_cluster.admin(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def run(
    app_tree: Callable[..., Path],
    tmp_path: Path,
    dsn: str,
    config: Mapping[str, Any],
    **profile: Any,
) -> CheckResult:
    return one(
        audit_local(
            app_tree(),
            CHECK,
            {
                "database_dsn": dsn,
                "db_benchmark": dict(config),
                "benchmark_baseline_dir": str(tmp_path / "baselines"),
                **profile,
            },
        )
    )


def rows(result: CheckResult) -> dict[str, Mapping[str, Any]]:
    return {r["name"]: r for r in result.details["benchmark"]["rows"]}


def test_a_fast_representative_query_is_ready_with_its_latencies(
    dsn: str,
    bench_role: Role,
    app_tree: Callable[..., Path],
    tmp_path: Path,
) -> None:
    config = {
        "queries": [{"name": "recent", "sql": "SELECT * FROM runs ORDER BY id DESC LIMIT 10"}],
        "repetitions": 15,
    }
    r = run(app_tree, tmp_path, dsn, config)
    assert r.status is Status.READY, r.message
    stats = rows(r)["recent"]
    assert stats["n"] == 15
    assert stats["errors"] == 0
    assert 0 < stats["p50_ms"] <= stats["p95_ms"] < 200
    assert bench_role.password not in str(r.to_dict())
    assert stats["target"] == dsn.replace(f":{bench_role.password}", "")


def test_a_slow_query_over_a_tight_threshold_is_not_ready(
    dsn: str,
    app_tree: Callable[..., Path],
    tmp_path: Path,
) -> None:
    config = {"queries": [{"name": "sleepy", "sql": "SELECT pg_sleep(0.2)"}], "repetitions": 3}
    r = run(app_tree, tmp_path, dsn, config, thresholds={"db_query_p95_ms": 100.0})
    assert r.status is Status.NOT_READY  # over its threshold: fails the performance gate
    assert "query sleepy: p50" in r.message
    stats = rows(r)["sleepy"]
    assert stats["p50_ms"] >= 200
    assert stats["verdict"] == "not_ready"


def test_the_session_is_read_only_and_a_write_is_refused_not_executed(
    dsn: str,
    bench_db: str,
    pg_cluster: PgCluster,
    app_tree: Callable[..., Path],
    tmp_path: Path,
) -> None:
    config = {
        "queries": [
            {"name": "write", "sql": "INSERT INTO runs VALUES (1000, 'x')"},
            {"name": "read", "sql": "SELECT count(*) FROM runs"},
        ],
        "repetitions": 2,
    }
    r = run(app_tree, tmp_path, dsn, config)
    assert r.details["transaction_read_only"] == "on"
    assert r.status is Status.NOT_READY
    assert "read-only transaction" in r.message
    assert rows(r)["write"]["errors"] == 2
    assert rows(r)["read"]["errors"] == 0, "an error does not poison the following queries"
    assert pg_cluster.admin("SELECT count(*) FROM runs", db=bench_db) == [(100,)]


def test_the_statement_timeout_and_the_time_cap_bound_a_runaway_query(
    dsn: str,
    app_tree: Callable[..., Path],
    tmp_path: Path,
) -> None:
    config = {
        "queries": [{"name": "runaway", "sql": "SELECT pg_sleep(30)"}],
        "repetitions": 100,
        "time_cap_s": 1.0,
        "statement_timeout_s": 0.3,
    }
    started = time.monotonic()
    r = run(app_tree, tmp_path, dsn, config)
    assert time.monotonic() - started < 1.0 + 0.3 + 2.0
    assert r.status is Status.NOT_READY
    assert "statement timeout" in r.message
    stats = rows(r)["runaway"]
    assert 1 <= stats["n"] <= 5
    assert stats["cut_by_time_cap"] == 100 - stats["n"]


def test_without_queries_it_is_not_ready_and_without_a_database_it_says_so(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    empty = run(app_tree, tmp_path, "postgresql://u:p@127.0.0.1:1/x", {"queries": []})
    assert empty.status is Status.NOT_READY
    assert "no queries" in empty.message
    down = run(app_tree, tmp_path, "postgresql://u:p@127.0.0.1:1/x", {"queries": ["SELECT 1"]})
    assert down.status is Status.NOT_READY
    assert "connection refused" in down.message
