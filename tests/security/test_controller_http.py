"""Controller-side HTTP ignores the controller's proxy variables and ~/.netrc (#18 item 13).

``monitoring`` used ``requests.get``, which honours ``HTTP_PROXY``/``HTTPS_PROXY``/
``ALL_PROXY`` and ``~/.netrc``: requests for URLs the host names (its loopback
Prometheus through the tunnel, its Grafana) went through the controller's proxy, and the
controller user's netrc password was sent to whatever host the app's settings named. A
recording proxy on loopback proves nothing goes through it; the Grafana stand-in proves
no ``Authorization`` header arrives.
"""

from __future__ import annotations

import ast
import contextlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from readiness.model import Status
from tests.services.apps import audit_local, one
from tests.services.httpd import HttpServer
from tests.services.prometheus import PrometheusServer

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
NETRC_SECRET = "Controller-netrc-4714"
RULES = "groups:\n  - name: app\n    rules:\n      - alert: Down\n        expr: up == 0\n"
DASHBOARD = json.dumps({"title": "Overview", "panels": [{"id": 1}]})


@pytest.fixture
def proxy(http_server: Callable[[], HttpServer]) -> HttpServer:
    """A 'proxy' that records every request it is asked to forward (and forwards none)."""
    return http_server()


@pytest.fixture
def grafana(http_server: Callable[[], HttpServer]) -> HttpServer:
    srv = http_server()
    srv.route("/api/health", json={"commit": "abc", "database": "ok", "version": "10.4.0"})
    return srv


@pytest.fixture
def hostile_env(
    proxy: HttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HttpServer]:
    """The controller's proxy variables point at ``proxy``; ~/.netrc has a password."""
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login controller password {NETRC_SECRET}\n")
    netrc.chmod(0o600)
    env = {
        "HTTP_PROXY": proxy.url,
        "HTTPS_PROXY": proxy.url,
        "ALL_PROXY": proxy.url,
        "http_proxy": proxy.url,
        "HOME": str(home),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(key, raising=False)
    yield proxy


def test_monitoring_never_goes_through_the_controllers_proxy_or_sends_its_netrc(
    hostile_env: HttpServer,
    grafana: HttpServer,
    prometheus: PrometheusServer,
    app_tree: Callable[..., Path],
) -> None:
    root = app_tree(files={"config/alerts.yml": RULES, "dashboards/o.json": DASHBOARD})
    result = one(
        audit_local(
            root, ["monitoring"], {"prometheus_url": prometheus.url, "grafana_url": grafana.url}
        )
    )
    assert hostile_env.requests == [], [r.path for r in hostile_env.requests]
    assert grafana.requests_to("/api/health"), "Grafana was asked directly"
    for request in grafana.requests:
        assert "Authorization" not in request.headers
    assert result.status is Status.READY, result.message


def test_the_command_line_audit_ignores_the_proxy_too(
    hostile_env: HttpServer,
    grafana: HttpServer,
    prometheus: PrometheusServer,
    app_tree: Callable[..., Path],
    tmp_path: Path,
) -> None:
    root = app_tree(files={"config/alerts.yml": RULES, "dashboards/o.json": DASHBOARD})
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    local:\n      ansible_connection: local\n      readiness:\n"
        f"        app_root: {root}\n        prometheus_url: {prometheus.url}\n"
        f"        grafana_url: {grafana.url}\n"
    )
    argv = ["validate", "-i", str(inv), "-c", "monitoring", "--format", "json"]
    res = subprocess.run(
        [str(Path(sys.executable).parent / "readiness"), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=os.environ.copy(),
        check=False,
        cwd=tmp_path,
    )
    check = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert check["status"] == "ready", check["message"]
    assert hostile_env.requests == []
    assert NETRC_SECRET not in res.stdout + res.stderr


def test_no_check_builds_its_own_http_client() -> None:
    """Every controller-side HTTP request goes through ``_access.http_session``."""
    offenders = []
    for path in sorted((ROOT / "readiness" / "checks").glob("*.py")):
        if path.name == "_access.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            func = node.func if isinstance(node, ast.Call) else None
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "requests"
                and func.attr in ("get", "post", "put", "delete", "head", "request", "Session")
            ):
                offenders.append(f"{path.name}:{node.lineno}: requests.{func.attr}()")
    assert offenders == []


@pytest.fixture
def trap(http_server: Callable[[], HttpServer]) -> HttpServer:
    """Where a hostile service's redirect points: another host's tunnel, or a service of the
    controller's, on the controller's loopback. Nothing may ever reach it."""
    srv = http_server()
    srv.route("/admin/drop", method="DELETE", status=204)
    srv.route("/admin/drop", method="POST", status=204)
    srv.route("/admin/drop", status=200, json={"secret": "other host's data"})
    return srv


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_a_redirect_from_the_hosts_service_is_never_followed(
    http_server: Callable[[], HttpServer], trap: HttpServer, method: str, status: int
) -> None:
    from readiness.checks import _access

    hostile = http_server()
    hostile.route(
        "/api", method=method, status=status, headers={"Location": f"{trap.url}/admin/drop"}
    )
    with _access.http_session() as session:
        res = session.request(method, f"{hostile.url}/api", headers={"X-Api-Key": "k"}, timeout=5)
    assert res.status_code == status and not res.history
    assert trap.requests == []


def test_rbac_through_the_command_line_sends_nothing_where_the_host_redirects(
    http_server: Callable[[], HttpServer],
    trap: HttpServer,
    app_tree: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """The app's API (hostile) answers the forbidden DELETE with ``307 Location:`` another
    service on the controller's loopback: requests re-sent the DELETE there, with the
    operator's token in its ``X-Api-Key`` header (only ``Authorization`` is dropped on a
    redirect), and judged the trap's 204 as the API's answer."""
    token = "viewer-token-5d1e9a"
    hostile = http_server()
    drop = {"Location": f"{trap.url}/admin/drop"}
    hostile.route("/api/workflows/x", method="DELETE", status=307, headers=drop)
    hostile.route("/api/workflows", json=[])
    rbac = {
        "enabled": True,
        "token_env": "READINESS_TEST_VIEWER_TOKEN",
        "header": "X-Api-Key",
        "scheme": "",
        "forbidden": [{"method": "DELETE", "url": f"{hostile.url}/api/workflows/x"}],
        "allowed": [{"method": "GET", "url": f"{hostile.url}/api/workflows"}],
    }
    host = {"ansible_connection": "local", "readiness": {"app_root": str(app_tree()), "rbac": rbac}}
    inv = tmp_path / "inv.yml"
    inv.write_text(json.dumps({"all": {"hosts": {"local": host}}}))
    res = subprocess.run(
        [str(Path(sys.executable).parent / "readiness"), "validate", "-i", str(inv), "-c", "rbac",
         "--format", "json"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False,
        cwd=tmp_path, env={**os.environ, "READINESS_TEST_VIEWER_TOKEN": token},
    )  # fmt: skip
    check = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert trap.requests == []
    assert [(r["kind"], r["status"]) for r in check["details"]["requests"]] == [
        ("forbidden", 307),
        ("allowed", 200),
    ]
    assert check["status"] == "degraded", check["message"]  # refusal not confirmed
    assert token not in res.stdout + res.stderr


@contextlib.contextmanager
def _endless_answer(pause: float = 0.0) -> Iterator[str]:
    """An HTTP service (the host's, hostile) whose answer never ends: a flood of bytes, or
    with ``pause`` a trickle, one chunk per pause (each within any read timeout)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            chunk = b"1," * (8 if pause else 65536)
            with contextlib.suppress(OSError):
                self.wfile.write(b"[")
                for _ in range(2_000):  # bounded: 256 MiB (8 times the cap), or 100 s of trickle
                    self.wfile.write(chunk)
                    if pause:
                        self.wfile.flush()
                        time.sleep(pause)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_endless_answer_is_read_within_bounds_and_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import requests

    from readiness.checks import _access

    too_large = pytest.raises(requests.RequestException, match="body is larger than 32 MiB")
    with _endless_answer() as url, _access.http_session() as session, too_large:
        session.get(f"{url}/api/v1/targets?token=s3cr3t", timeout=(5, 5))
    monkeypatch.setattr(_access, "_MIN_BODY_S", 0.5)
    started = time.monotonic()
    too_slow = pytest.raises(requests.RequestException, match="still coming after 1s")
    with _endless_answer(pause=0.05) as url, _access.http_session() as session, too_slow as caught:
        session.get(f"{url}/-/ready?token=s3cr3t", timeout=(1, 1))
    assert time.monotonic() - started < 10
    assert "s3cr3t" not in str(caught.value)  # host:port only, never the query


def test_a_hostile_prometheus_answering_without_end_does_not_exhaust_the_controller(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """Through the command: the app's settings name a Prometheus whose answer never ends.
    The controller read it whole: 4.9 GB of memory in 20 s (until the host's deadline; the
    default 120 s would exhaust most machines). Now 32 MiB, then a clear finding."""
    with _endless_answer() as url:
        inv = tmp_path / "inv.yml"
        host = {"ansible_connection": "local",
                "readiness": {"app_root": str(app_tree()), "prometheus_url": url}}  # fmt: skip
        inv.write_text(json.dumps({"all": {"hosts": {"local": host}}}))
        out = tmp_path / "out.json"
        started = time.monotonic()
        with out.open("w") as stdout:
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "readiness"), "validate", "-i", str(inv),
                 "-c", "monitoring", "--format", "json", "--host-deadline", "60"],
                stdout=stdout, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, cwd=tmp_path,
            )  # fmt: skip
            # wait4: this child's own peak memory (bounded in time by its host deadline)
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = 1  # reaped here: Popen must not wait for it again
        took = time.monotonic() - started
    check = json.loads(out.read_text())["hosts"][0]["checks"][0]
    assert check["status"] == "not_ready"
    assert "body is larger than 32 MiB" in check["message"]
    assert took < 30
    assert usage.ru_maxrss < 200 * 1024  # KiB: ~75 MB; it read the whole flood before
