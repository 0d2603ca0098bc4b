"""``http_benchmark`` percentiles need samples: through a real ``readiness validate``.

A nearest-rank p95 differs from the slowest sample only from 20 samples on, a p99 from 100.
From 3 requests the check said READY "worst p95 2.6 ms": a p95 it never measured.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.services.apps import write_app
from tests.services.cli import local_inventory, validate_check
from tests.services.httpd import HttpServer


def _bench(tmp_path: Path, name: str, *endpoints: dict[str, Any], **profile: Any) -> Any:
    inventory = local_inventory(
        tmp_path / f"{name}.yml",
        write_app(tmp_path / "app"),
        http_benchmarks=list(endpoints),
        benchmark_baseline_dir=str(tmp_path / "baselines"),
        **profile,
    )
    return validate_check(inventory, "http_benchmark")


@pytest.fixture
def srv(http_server: Callable[[], HttpServer]) -> HttpServer:
    server = http_server()
    server.route("/fast", body="ok")
    server.route("/slow", body="late", delay=0.2)
    return server


def _ep(url: str, requests: int, **extra: Any) -> dict[str, Any]:
    return {"name": "ep", "url": url, "requests": requests, "concurrency": 4, **extra}


def test_a_percentile_from_too_few_requests_cannot_be_determined_never_ready(
    srv: HttpServer, tmp_path: Path
) -> None:
    r = _bench(tmp_path, "few", _ep(srv.url + "/fast", 3))
    assert r["status"] == "degraded", r["message"]
    assert (
        "p95 cannot be determined from 3 successful request(s) (a p95 needs at least 20"
        in (r["message"])
    )
    row = r["details"]["benchmark"]["rows"][0]
    assert row["p95_ms"] is None and row["p99_ms"] is None, "no percentile claimed"
    assert row["percentiles_need_samples"] == {"p95_ms": 20, "p99_ms": 100}
    assert row["verdict"] == "degraded"
    assert any("requests to 20 or more" in rec for rec in r["recommendations"])
    assert any("thresholds.http_p99_ms: null" in rec for rec in r["recommendations"])


def test_enough_requests_measure_both_percentiles_and_the_ready_message_names_the_p95(
    srv: HttpServer, tmp_path: Path
) -> None:
    r = _bench(tmp_path, "enough", _ep(srv.url + "/fast", 100))
    assert r["status"] == "ready", r["message"]
    row = r["details"]["benchmark"]["rows"][0]
    assert row["ok"] == 100
    assert row["p95_ms"] is not None and row["p99_ms"] is not None
    assert f"(worst p95 {row['p95_ms']:.1f} ms)" in r["message"]


def test_a_percentile_left_unjudged_is_not_claimed_in_the_ready_message(
    srv: HttpServer, tmp_path: Path
) -> None:
    off = {"thresholds": {"http_p95_ms": None, "http_p99_ms": None}}
    r = _bench(tmp_path, "off", _ep(srv.url + "/fast", 5), **off)
    assert r["status"] == "ready", r["message"]
    assert "p95 not measured" in r["message"]
    assert "worst p95" not in r["message"]


def test_a_slow_request_among_too_few_is_over_the_limit_with_the_latency_fix(
    srv: HttpServer, tmp_path: Path
) -> None:
    """With fewer than 20 samples one slow request is more than 5 % of them: measured over."""
    r = _bench(tmp_path, "slow", _ep(srv.url + "/slow", 4, p95_ms=50, p99_ms=5000))
    assert r["status"] == "not_ready", r["message"]
    assert "p95 > 50 ms: the slowest of 4 successful request(s) took" in r["message"]
    assert "(1 in 4 is more than 5 %)" in r["message"]
    assert any("Profile ep under load" in rec and "p95_ms" in rec for rec in r["recommendations"])
