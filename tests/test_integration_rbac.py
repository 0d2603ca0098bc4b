"""``rbac`` against a real loopback API that enforces (or fails to enforce) roles."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from readiness.model import CheckResult, Status
from tests.services.apps import audit_local, one, write_app
from tests.services.httpd import HttpServer, RecordedRequest

CHECK = "rbac"
VIEWER = secrets.token_urlsafe(24)
ADMIN = secrets.token_urlsafe(24)
ENV = "READINESS_TEST_VIEWER_TOKEN"


def api(srv: HttpServer, *, enforce: bool = True, delete_status: int = 204) -> HttpServer:
    """GET /api/workflows: any valid token. DELETE /api/workflows/x: admin only (if enforced)."""

    def role(req: RecordedRequest) -> str | None:
        auth = req.headers.get("Authorization", "")
        return {f"Bearer {VIEWER}": "viewer", f"Bearer {ADMIN}": "admin"}.get(auth)

    def listing(req: RecordedRequest) -> Any:
        return (200, []) if role(req) else (401, {"error": "unauthenticated"})

    def delete(req: RecordedRequest) -> Any:
        who = role(req)
        if who is None:
            return 401, {"error": "unauthenticated"}
        if enforce and who != "admin":
            return 403, {"error": "forbidden"}
        return delete_status, ""

    srv.route("/api/workflows", handler=listing)
    srv.route("/api/workflows/readiness-nonexistent", method="DELETE", handler=delete)
    return srv


def run(
    tmp_path: Path, srv: HttpServer, env: dict[str, str] | None = None, **section: Any
) -> CheckResult:
    cfg = {
        "enabled": True,
        "token_env": ENV,
        "forbidden": [
            {"method": "DELETE", "url": f"{srv.url}/api/workflows/readiness-nonexistent"}
        ],
        "allowed": [{"method": "GET", "url": f"{srv.url}/api/workflows"}],
        **section,
    }
    return one(audit_local(write_app(tmp_path / "app", env=env), CHECK, {CHECK: cfg}))


def test_viewer_token_refused_delete_and_allowed_read_is_ready(
    tmp_path: Path, http_server: Callable[[], HttpServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, VIEWER)
    srv = api(http_server())
    result = run(tmp_path, srv)
    assert result.status is Status.READY, result.message
    statuses = [(r["kind"], r["status"]) for r in result.details["requests"]]
    assert statuses == [("forbidden", 403), ("allowed", 200)]
    (delete,) = srv.requests_to("/api/workflows/readiness-nonexistent", "DELETE")
    assert delete.headers["Authorization"] == f"Bearer {VIEWER}"
    assert VIEWER not in json.dumps(result.to_dict())


def test_forbidden_action_that_succeeds_is_not_ready(
    tmp_path: Path, http_server: Callable[[], HttpServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, VIEWER)
    result = run(tmp_path, api(http_server(), enforce=False))
    assert result.status is Status.NOT_READY
    assert "forbidden action DELETE" in result.message and "SUCCEEDED (HTTP 204)" in result.message


def test_allowed_action_refused_is_not_ready(
    tmp_path: Path, http_server: Callable[[], HttpServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "not-a-valid-token")
    result = run(tmp_path, api(http_server()))
    assert result.status is Status.NOT_READY
    assert "allowed action GET" in result.message and "HTTP 401" in result.message


def test_token_from_the_apps_environment_is_used_and_redacted(
    tmp_path: Path, http_server: Callable[[], HttpServer]
) -> None:
    srv = api(http_server())
    env = {"MAHAVISHNU_VIEWER_TOKEN": VIEWER}
    result = run(tmp_path, srv, env=env, token_env=None, token_app_env="MAHAVISHNU_VIEWER_TOKEN")
    assert result.status is Status.READY, result.message
    assert result.details["token"]["source"] == "app environment variable MAHAVISHNU_VIEWER_TOKEN"
    assert VIEWER not in json.dumps(result.to_dict())


def test_forbidden_action_answering_404_only_degrades(
    tmp_path: Path, http_server: Callable[[], HttpServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, VIEWER)
    srv = http_server()
    srv.route("/api/workflows", json=[])
    result = run(tmp_path, srv)  # no DELETE route: the server answers 404
    assert result.status is Status.DEGRADED
    assert "answered HTTP 404, not 401/403" in result.message


def test_missing_token_is_not_ready_and_nothing_is_sent(
    tmp_path: Path, http_server: Callable[[], HttpServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    srv = api(http_server())
    result = run(tmp_path, srv)
    assert result.status is Status.NOT_READY
    assert f"controller environment variable {ENV} is not set" in result.message
    assert srv.requests == []


def test_rbac_is_skipped_until_enabled(tmp_path: Path) -> None:
    result = one(audit_local(write_app(tmp_path / "app"), CHECK))
    assert result.status is Status.SKIPPED
    assert "rbac.enabled" in result.message


def test_an_allowed_action_failing_with_a_server_error_is_not_called_refused(
    tmp_path: Path, http_server: Callable[[], HttpServer]
) -> None:
    """A 500 on the allowed read is the API failing, not the role being refused: validate
    said "allowed action GET ... was refused with the low-privilege token (HTTP 500)" and
    recommended granting the role a permission it has."""
    from tests.services.cli import local_inventory, run_cli

    srv = api(http_server())
    srv.route("/api/workflows", status=500, json={"error": "database unavailable"})
    cfg = {
        "enabled": True,
        "token_env": ENV,
        "forbidden": [
            {"method": "DELETE", "url": f"{srv.url}/api/workflows/readiness-nonexistent"}
        ],
        "allowed": [{"method": "GET", "url": f"{srv.url}/api/workflows"}],
    }
    inventory = local_inventory(tmp_path / "inv.yml", write_app(tmp_path / "app"), rbac=cfg)
    argv = ["validate", "-i", str(inventory), "-c", CHECK, "--format", "json"]
    res = run_cli(*argv, env={**os.environ, ENV: VIEWER})
    result = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert result["status"] == "not_ready", result["message"]
    assert "refused" not in result["message"]
    assert (
        "failed with the low-privilege token: HTTP 500, expected a 2xx answer"
        in (result["message"])
    )
    assert not any("Grant the role" in r for r in result["recommendations"])


def test_an_allowed_action_takes_one_expected_status_or_a_list_of_them(
    tmp_path: Path, http_server: Callable[[], HttpServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through `readiness validate`: `expect_status` was one status only here (a list was
    refused) while http_benchmarks took a list only; each now takes either."""
    from tests.services.cli import local_inventory, validate_check

    monkeypatch.setenv(ENV, VIEWER)
    srv = api(http_server())
    root = write_app(tmp_path / "app")
    seen = {}
    for name, expect in (("one", 200), ("listed", [304, 200]), ("other", [201, 202])):
        cfg = {
            "enabled": True,
            "token_env": ENV,
            "forbidden": [
                {"method": "DELETE", "url": f"{srv.url}/api/workflows/readiness-nonexistent"}
            ],
            "allowed": [{"url": f"{srv.url}/api/workflows", "expect_status": expect}],
        }
        inventory = local_inventory(tmp_path / f"{name}.yml", root, rbac=cfg)
        seen[name] = validate_check(inventory, CHECK)
    assert seen["one"]["status"] == "ready", seen["one"]["message"]
    assert seen["listed"]["status"] == "ready", seen["listed"]["message"]
    assert seen["other"]["status"] == "not_ready"
    assert "HTTP 200, expected HTTP 201 or 202" in seen["other"]["message"]
