"""Which answers ``http_benchmark`` counts as successes: through a real ``readiness validate``.

Redirects are never followed, so a 3xx's latency is the redirect's, not the endpoint's: a
health URL sending every request to a login page was READY.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.services.apps import write_app
from tests.services.cli import local_inventory, validate_check
from tests.services.httpd import HttpServer

LOGIN = "https://sso.example/login?state=SENTINEL-token#frag"


def _bench(tmp_path: Path, name: str, **entry: Any) -> Any:
    endpoint = {"name": "ep", "requests": 100, "concurrency": 4, **entry}
    inventory = local_inventory(
        tmp_path / f"{name}.yml",
        write_app(tmp_path / "app"),
        http_benchmarks=[endpoint],
        benchmark_baseline_dir=str(tmp_path / "baselines"),
    )
    return validate_check(inventory, "http_benchmark")


@pytest.fixture
def srv(http_server: Callable[[], HttpServer]) -> HttpServer:
    server = http_server()
    server.route("/health", status=302, headers={"Location": LOGIN}, body="")
    server.route("/created", status=204)
    return server


def test_a_redirect_is_no_success_and_the_fix_says_where_it_goes(
    srv: HttpServer, tmp_path: Path
) -> None:
    r = _bench(tmp_path, "redirect", url=srv.url + "/health")
    assert r["status"] == "not_ready", r["message"]
    assert "100/100 runs failed" in r["message"]
    assert "HTTP 302 redirect to https://sso.example/login (not followed)" in r["message"]
    assert any(
        "point http_benchmarks[].url at the final location" in rec for rec in (r["recommendations"])
    )
    assert "SENTINEL" not in str(r), "a redirect's query string may carry a token"


def test_a_redirect_listed_in_expect_status_is_the_answer_measured(
    srv: HttpServer, tmp_path: Path
) -> None:
    r = _bench(tmp_path, "listed", url=srv.url + "/health", expect_status=[302])
    assert r["status"] == "ready", r["message"]
    assert r["details"]["benchmark"]["rows"][0]["errors"] == 0


def test_any_2xx_is_a_success_by_default(srv: HttpServer, tmp_path: Path) -> None:
    r = _bench(tmp_path, "created", url=srv.url + "/created")
    assert r["status"] == "ready", r["message"]


def test_expect_status_takes_one_status_as_well_as_a_list(srv: HttpServer, tmp_path: Path) -> None:
    """`expect_status: 302` was refused (a list only), while adapter_health took either."""
    r = _bench(tmp_path, "one", url=srv.url + "/health", expect_status=302)
    assert r["status"] == "ready", r["message"]
    assert r["details"]["benchmark"]["rows"][0]["errors"] == 0
