"""``workflow_state`` against a real loopback workflow API (tests/services/httpd.py)."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from readiness.model import CheckResult, Status
from tests.services.apps import audit_local, one, write_app
from tests.services.httpd import HttpServer, RecordedRequest

CHECK = "workflow_state"


def workflow_api(
    srv: HttpServer, *, states: list[str], persist: bool = True, start_status: int = 201
) -> HttpServer:
    """POST /workflows creates run N; each GET /workflows/N walks through ``states``."""
    ids = itertools.count(1)

    def start(req: RecordedRequest) -> Any:
        run_id = f"run-{next(ids)}"
        if persist:
            walk = iter(states)
            last = {"state": states[-1]}

            def read(_: RecordedRequest) -> Any:
                last["state"] = next(walk, last["state"])
                return {"id": run_id, "state": last["state"], "input": req.json()}

            srv.route(f"/workflows/{run_id}", handler=read)
        return start_status, {"id": run_id, "state": "queued"}

    srv.route("/workflows", method="POST", handler=start)
    return srv


def run(tmp_path: Path, srv: HttpServer, budget: float = 10, **section: Any) -> CheckResult:
    cfg = {
        "enabled": True,
        "start_url": f"{srv.url}/workflows",
        "status_url": f"{srv.url}/workflows/{{id}}",
        "poll_interval_s": 0.05,
        **section,
    }
    profile = {CHECK: cfg, "thresholds": {"workflow_state_max_s": budget}}
    return one(audit_local(write_app(tmp_path / "app"), CHECK, profile))


def test_persisted_workflow_that_completes_is_ready(
    tmp_path: Path, http_server: Callable[[], HttpServer]
) -> None:
    srv = workflow_api(http_server(), states=["running", "running", "completed"])
    result = run(tmp_path, srv)
    assert result.status is Status.READY, result.message
    d = result.details
    assert d["id"] == "run-1" and d["final_state"] == "completed"
    assert d["first_read"] == {"status": 200, "state": "running"}
    assert d["polls"] == 2
    (post,) = srv.requests_to("/workflows", "POST")
    assert post.json() == {"workflow": "readiness-smoke", "dry_run": True}
    assert len(srv.requests_to("/workflows/run-1")) == 3


def test_workflow_not_queryable_by_id_is_not_ready(
    tmp_path: Path, http_server: Callable[[], HttpServer]
) -> None:
    srv = workflow_api(http_server(), states=["completed"], persist=False)
    result = run(tmp_path, srv)
    assert result.status is Status.NOT_READY
    assert "not queryable right after it started" in result.message and "HTTP 404" in result.message


def test_workflow_that_fails_is_not_ready(
    tmp_path: Path, http_server: Callable[[], HttpServer]
) -> None:
    srv = workflow_api(http_server(), states=["running", "failed"])
    result = run(tmp_path, srv)
    assert result.status is Status.NOT_READY
    assert "ended 'failed', expected 'completed'" in result.message


def test_workflow_that_never_finishes_stops_polling_at_the_budget(
    tmp_path: Path, http_server: Callable[[], HttpServer]
) -> None:
    srv = workflow_api(http_server(), states=["running"])
    result = run(tmp_path, srv, budget=1, poll_interval_s=0.1)
    assert result.status is Status.NOT_READY
    assert "did not reach a final state within 1s" in result.message
    assert result.details["duration_s"] < 3
    assert len(srv.requests_to("/workflows/run-1")) <= 13


def test_refused_start_is_not_ready(tmp_path: Path, http_server: Callable[[], HttpServer]) -> None:
    srv = workflow_api(http_server(), states=["completed"], start_status=503)
    result = run(tmp_path, srv)
    assert result.status is Status.NOT_READY
    assert "starting the workflow failed: HTTP 503" in result.message


def test_workflow_started_by_a_host_command_is_followed_over_http(
    tmp_path: Path, http_server: Callable[[], HttpServer]
) -> None:
    srv = workflow_api(http_server(), states=["completed"])
    script = (
        "import sys, urllib.request; "
        "r = urllib.request.Request(sys.argv[1], data=b'{}', method='POST'); "
        "print('starting'); print(urllib.request.urlopen(r, timeout=5).read().decode())"
    )
    command = [sys.executable, "-c", script, f"{srv.url}/workflows"]
    result = run(tmp_path, srv, start_url=None, start_command=command)
    assert result.status is Status.READY, result.message
    assert result.details["start"] == {"via": "command", "exit_code": 0}
    assert result.details["id"] == "run-1"


def test_workflow_state_is_skipped_until_enabled(tmp_path: Path) -> None:
    result = one(audit_local(write_app(tmp_path / "app"), CHECK))
    assert result.status is Status.SKIPPED
    assert "workflow_state.enabled" in result.message


def test_headers_and_a_body_of_the_apps_own_keys_are_taken_from_a_profile_file(
    tmp_path: Path, http_server: Callable[[], HttpServer]
) -> None:
    """A real `readiness validate --profile p.yml`: `workflow_state.headers` (default `{}`)
    and `start_json` (the app's own request body) refused every key a user gave them
    ("unknown profile key 'workflow_state.headers.X-Api-Key'", exit 2), so an API that
    needs a header or its own body could not be audited at all."""
    import json

    import yaml

    from tests.services.cli import local_inventory, run_cli

    srv = workflow_api(http_server(), states=["completed"])
    section = {
        "enabled": True,
        "start_url": f"{srv.url}/workflows",
        "status_url": f"{srv.url}/workflows/{{id}}",
        "poll_interval_s": 0.05,
        "headers": {"X-Tenant": "blue", "X-Api-Version": 2},
        "start_json": {"name": "nightly-smoke", "params": {"rows": [1, 2], "dry": True}},
    }
    profile = tmp_path / "p.yml"
    profile.write_text(yaml.safe_dump({CHECK: section}))
    inventory = local_inventory(tmp_path / "inv.yml", write_app(tmp_path / "app"))
    done = run_cli(
        "validate", "-i", str(inventory), "--hosts", "local", "-c", CHECK,
        "--profile", str(profile), "--store", "none", "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["hosts"][0]["checks"][0]["status"] == "ready"
    (post,) = srv.requests_to("/workflows", "POST")
    assert post.json() == section["start_json"]
    assert post.headers["X-Tenant"] == "blue" and post.headers["X-Api-Version"] == "2"
