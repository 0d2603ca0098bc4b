"""``http_benchmark`` against a real threaded HTTP server on 127.0.0.1 (fast, slow, failing)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from readiness.checks._bench import Sample, percentile, summarize
from readiness.model import CheckResult, FleetReport, Status
from readiness.report import render
from readiness.report.benchmarks import render_benchmark_tables
from tests.services.apps import audit_local, one
from tests.services.httpd import HttpServer

CHECK = "http_benchmark"


def endpoint(url: str, **extra: Any) -> dict[str, Any]:
    # 100 requests: the fewest a p99 is measured on (tests/test_bench_http_samples.py)
    return {"name": "ep", "url": url, "requests": 100, "concurrency": 4, "time_cap_s": 10, **extra}


def bench(
    app_tree: Callable[..., Path],
    tmp_path: Path,
    endpoints: list[dict[str, Any]],
    **profile: Any,
) -> FleetReport:
    return audit_local(
        app_tree(),
        CHECK,
        {
            "http_benchmarks": endpoints,
            "benchmark_baseline_dir": str(tmp_path / "baselines"),
            **profile,
        },
    )


def row(result: CheckResult, index: int = 0) -> Mapping[str, Any]:
    rows = result.details["benchmark"]["rows"]
    assert isinstance(rows, list)
    return dict(rows[index])


@pytest.fixture
def srv(http_server: Callable[[], HttpServer]) -> HttpServer:
    server = http_server()
    server.route("/fast", json={"status": "ok"})
    server.route("/slow", body="late", delay=0.3)
    server.route("/broken", status=500, body="boom")
    return server


def test_a_fast_endpoint_is_ready_and_reports_its_numbers(
    srv: HttpServer, app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    r = one(bench(app_tree, tmp_path, [endpoint(srv.url + "/fast")]))
    assert r.status is Status.READY, r.message
    stats = row(r)
    assert stats["n"] == 100
    assert stats["errors"] == 0
    assert stats["verdict"] == "ready"
    assert 0 < stats["min_ms"] <= stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"]
    assert stats["p99_ms"] <= stats["max_ms"]
    assert stats["throughput_per_s"] > 0
    assert len(srv.requests_to("/fast")) == 100, "every counted request reached the server"


def test_a_slow_endpoint_over_its_p95_threshold_is_not_ready(
    srv: HttpServer, app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    slow = endpoint(srv.url + "/slow", requests=20, p95_ms=100)
    r = one(bench(app_tree, tmp_path, [slow]))
    assert r.status is Status.NOT_READY  # over its threshold: fails the performance gate
    assert "p95" in r.message
    assert "> 100 ms" in r.message
    assert row(r)["p95_ms"] >= 300
    assert row(r)["verdict"] == "not_ready"
    assert any("p95_ms" in rec for rec in r.recommendations)


def test_an_endpoint_answering_500_is_not_ready_because_of_its_error_rate(
    srv: HttpServer, app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    r = one(bench(app_tree, tmp_path, [endpoint(srv.url + "/broken", requests=20)]))
    assert r.status is Status.NOT_READY
    assert "error rate 100.0% > 1.0%" in r.message
    assert "HTTP 500" in r.message
    assert row(r)["errors"] == 20
    assert row(r)["error_rate"] == 1.0


def test_an_allowed_error_rate_and_expected_statuses_are_taken_from_the_endpoint(
    srv: HttpServer, app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    accepted = endpoint(srv.url + "/broken", expect_status=[500])
    r = one(bench(app_tree, tmp_path, [accepted]))
    assert r.status is Status.READY, r.message
    assert row(r, 0)["errors"] == 0
    # the endpoint's own rate is the limit (not the 1 % default); an error rate is a
    # fraction below 1, so every request failing never passes
    tolerated = endpoint(srv.url + "/broken", name="tolerated", requests=10, max_error_rate=0.99)
    r = one(bench(app_tree, tmp_path, [tolerated]))
    assert r.status is Status.NOT_READY, r.message
    assert "(error rate 100.0% > 99.0%)" in r.message
    assert row(r, 0)["errors"] == 10


def test_the_time_cap_ends_a_huge_request_count_in_time(
    srv: HttpServer, app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    huge = endpoint(srv.url + "/fast", requests=1_000_000, time_cap_s=1.0)
    started = time.monotonic()
    r = one(bench(app_tree, tmp_path, [huge]))
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 2.0, f"took {elapsed:.2f}s with a 1s cap"
    stats = row(r)
    assert 0 < stats["n"] < 1_000_000
    assert stats["requested"] == 100_000, "a request count is clamped to 100 000"
    assert stats["cut_by_time_cap"] == stats["requested"] - stats["n"]
    assert stats["duration_s"] < 1.5


def test_requests_in_flight_at_the_cap_are_cut_not_counted_as_errors(
    http_server: Callable[[], HttpServer], app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    srv = http_server().route("/stuck", body="never in time", delay=5.0)
    started = time.monotonic()
    stuck = endpoint(srv.url + "/stuck", requests=4, time_cap_s=0.5, timeout_s=5)
    r = one(bench(app_tree, tmp_path, [stuck]))
    assert time.monotonic() - started < 0.5 + 2.0
    stats = row(r)
    assert stats["n"] == 0
    assert stats["cut_by_time_cap"] == 4
    assert r.status is Status.NOT_READY
    assert "no run completed within the time cap" in r.message


def test_a_regression_against_the_stored_baseline_is_degraded_and_reported_as_a_ratio(
    srv: HttpServer, app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    lenient = {"thresholds": {"http_p95_ms": 5000.0, "http_p99_ms": None}}
    first = one(bench(app_tree, tmp_path, [endpoint(srv.url + "/fast")], **lenient))
    assert first.status is Status.READY
    baseline = tmp_path / "baselines" / "local-http_benchmark-ep.json"
    fast_p95 = json.loads(baseline.read_text())["p95_ms"]
    assert fast_p95 == row(first)["p95_ms"]

    again = endpoint(srv.url + "/slow", requests=20)  # same name: compared with the fast run
    second = one(bench(app_tree, tmp_path, [again], **lenient))
    assert second.status is Status.DEGRADED
    assert "regressed" in second.message
    stats = row(second)
    assert stats["baseline_p95_ms"] == fast_p95
    assert stats["regression"] == pytest.approx(stats["p95_ms"] / fast_p95, rel=0.01)
    assert stats["regression"] > 1.5
    assert json.loads(baseline.read_text())["p95_ms"] == stats["p95_ms"], "new baseline stored"


def test_baselines_are_off_when_the_directory_is_null(
    srv: HttpServer, app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    r = one(bench(app_tree, tmp_path, [endpoint(srv.url + "/fast")], benchmark_baseline_dir=None))
    assert r.status is Status.READY
    assert "regression" not in row(r)
    assert not (tmp_path / "baselines").exists()


def test_a_url_that_is_not_http_is_not_ready_and_nothing_is_sent(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    r = one(bench(app_tree, tmp_path, [endpoint("ftp://127.0.0.1/x")]))
    assert r.status is Status.NOT_READY
    assert "is not an http(s) URL" in r.message


def test_the_benchmark_is_skipped_and_names_its_profile_key_when_not_configured(
    app_tree: Callable[..., Path],
) -> None:
    report = audit_local(
        app_tree(), "http_benchmark,db_benchmark,workflow_benchmark,repository_benchmark"
    )
    by_name = {r.check_name: r for r in report.results}
    for name in ("http_benchmarks", "db_benchmark", "workflow_benchmark", "repository_benchmark"):
        check = name.removesuffix("s")
        assert by_name[check].status is Status.SKIPPED
        assert f"set {name} in the profile" in by_name[check].message


def test_every_summary_is_in_the_json_and_a_benchmark_table_in_text_and_table(
    srv: HttpServer, app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    report = bench(app_tree, tmp_path, [endpoint(srv.url + "/fast", requests=10)])
    doc = json.loads(render(report, "json"))
    rows = doc["hosts"][0]["checks"][0]["details"]["benchmark"]["rows"]
    for key in ("n", "p50_ms", "p95_ms", "p99_ms", "min_ms", "max_ms", "errors"):
        assert key in rows[0]
    assert {"throughput_per_s", "duration_s"} <= set(rows[0])
    for fmt in ("text", "table"):
        text = render(report, fmt)
        assert "BENCHMARKS — local" in text
        assert "p95 ms" in text
    assert render_benchmark_tables(report)[1] == "BENCHMARKS — local"


def test_reports_without_benchmarks_get_no_benchmark_table(
    app_tree: Callable[..., Path],
) -> None:
    report = audit_local(app_tree(), "environment")
    assert render_benchmark_tables(report) == []
    assert "BENCHMARKS" not in render(report, "text")


def test_percentiles_are_nearest_rank_and_errors_stay_out_of_the_latencies() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile([], 95) is None
    summary = summarize([Sample(10.0), Sample(0.0, "HTTP 500"), Sample(30.0)], 2.0, requested=5)
    assert summary["ok"] == 2
    assert summary["errors"] == 1
    assert summary["min_ms"] == 10.0
    assert summary["throughput_per_s"] == 1.5
    assert summary["first_errors"] == ["HTTP 500"]


def test_one_failure_in_thirty_thousand_breaks_a_no_failure_limit() -> None:
    """Pure logic: the summary's error rate is rounded to 4 decimals, and 1/30000 rounded to
    0.0 passed `max_error_rate: 0` (READY with a failed request)."""
    from readiness.checks._bench import judge_errors
    from readiness.findings import Findings

    samples = [Sample(1.0)] * 29_999 + [Sample(0.0, "HTTP 502")]
    summary = summarize(samples, 10.0, requested=30_000)
    assert summary["error_rate"] == 0.0, "the rounded rate, as reported"
    f = Findings()
    judge_errors(f, "ep", summary, 0.0)
    assert f.problems == ["ep: 1/30000 runs failed (error rate 0.0033% > 0.0%): HTTP 502"]
    at_limit = Findings()
    judge_errors(at_limit, "ep", summary, 1 / 30_000)
    assert at_limit.problems == [], "a rate exactly at its limit is within it"
