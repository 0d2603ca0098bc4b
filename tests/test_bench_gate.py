"""The performance quality gate sees a benchmark over its threshold: `readiness run-benchmarks`.

Seed: "Performance benchmarks: Within acceptable thresholds" is a quality gate. A gate counts
DEGRADED as passed, and a p95 over its limit was DEGRADED: every endpoint over its threshold
printed "performance 100 % (1/1) PASS" and exited 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.services.apps import write_app
from tests.services.cli import local_inventory, run_cli
from tests.services.httpd import HttpServer


def _gate(tmp_path: Path, srv: HttpServer, name: str, p95_ms: float) -> tuple[int, dict]:
    endpoint = {
        "name": name,
        "url": srv.url + "/slow",
        "requests": 20,
        "concurrency": 4,
        "p95_ms": p95_ms,
    }
    inventory = local_inventory(
        tmp_path / f"{name}.yml",
        write_app(tmp_path / name),
        http_benchmarks=[endpoint],
        benchmark_baseline_dir=None,
        thresholds={"http_p99_ms": None},
    )
    res = run_cli("run-benchmarks", "-i", str(inventory), "--format", "json")
    assert res.returncode in (0, 3), res.stdout + res.stderr
    return res.returncode, json.loads(res.stdout)


def _http(doc: dict) -> dict:
    (check,) = [c for c in doc["hosts"][0]["checks"] if c["check_name"] == "http_benchmark"]
    return check


def test_a_benchmark_over_its_threshold_fails_the_non_critical_performance_gate(
    tmp_path: Path, http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server().route("/slow", body="late", delay=0.05)
    code, doc = _gate(tmp_path, srv, "over", p95_ms=10)
    check = _http(doc)
    assert check["status"] == "not_ready", check["message"]
    assert "p95" in check["message"] and "> 10 ms" in check["message"]
    (gate,) = doc["quality_gates"]["fleet"]
    assert (gate["gate"], gate["verdict"], gate["failed"]) == ("performance", "fail", 1)
    assert code == 3, "non-critical: some checks failed but the system is usable"

    code, doc = _gate(tmp_path, srv, "within", p95_ms=5000)
    assert _http(doc)["status"] == "ready", _http(doc)["message"]
    assert doc["quality_gates"]["fleet"][0]["verdict"] == "pass"
    assert code == 0
