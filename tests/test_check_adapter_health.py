"""``adapter_health``: enabled adapters probed from the host against real loopback HTTP servers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from readiness.model import Status
from tests.services.apps import audit_local, one
from tests.services.cli import local_inventory, validate_check
from tests.services.httpd import HttpServer
from tests.services.ports import closed_port

# llamaindex is enabled in the test app: judge it on real, local prerequisites.
LLAMA_RULE = {"python_modules": ["json"], "paths": ["models/llama3"]}


def _profile(**extra: Any) -> dict[str, Any]:
    rules: dict[str, Any] = {"llamaindex": LLAMA_RULE}
    rules.update(extra.pop("rules", {}))
    return {"adapter_python": sys.executable, "adapter_health": rules, **extra}


def _app(app_tree: Callable[..., Path], api_url: str, **settings: Any) -> Path:
    root = app_tree(settings={"adapters": {"prefect": {"api_url": api_url}}, **settings})
    (root / "models" / "llama3").mkdir(parents=True)
    return root


def test_healthy_prefect_and_present_llamaindex_prerequisites_are_ready(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server().route("/api/health", json=True)
    root = _app(app_tree, f"{srv.url}/api")
    r = one(audit_local(root, "adapter_health", _profile()))
    assert r.status is Status.READY, r.message
    adapters = r.details["adapters"]
    assert adapters["prefect"]["verdict"] == "healthy"
    assert adapters["prefect"]["health"]["url"] == f"{srv.url}/api/health"
    assert adapters["llamaindex"]["modules"] == {"json": "importable"}
    assert adapters["llamaindex"]["paths"] == {"models/llama3": "dir"}
    assert "agno" not in adapters, "a disabled adapter is not probed"
    assert len(srv.requests_to("/api/health")) == 1


def test_a_health_endpoint_answering_503_is_not_ready(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server().route("/api/health", status=503, json={"status": "db down"})
    root = _app(app_tree, f"{srv.url}/api")
    r = one(audit_local(root, "adapter_health", _profile()))
    assert r.status is Status.NOT_READY
    assert "HTTP 503" in r.message
    assert r.details["adapters"]["prefect"]["verdict"] == "down"
    assert r.details["adapters"]["llamaindex"]["verdict"] == "healthy"


def test_a_health_endpoint_slower_than_the_latency_threshold_degrades(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server().route("/api/health", json=True, delay=0.4)
    root = _app(app_tree, f"{srv.url}/api")
    profile = _profile(thresholds={"adapter_max_latency_ms": 100})
    r = one(audit_local(root, "adapter_health", profile))
    assert r.status is Status.DEGRADED, r.message
    assert "slow" in r.message
    assert r.details["adapters"]["prefect"]["health"]["latency_ms"] >= 400
    assert any("adapter_max_latency_ms" in rec for rec in r.recommendations)


def test_a_health_endpoint_slower_than_the_timeout_is_down_and_the_wait_is_bounded(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server().route("/api/health", json=True, delay=5.0)
    root = _app(app_tree, f"{srv.url}/api")
    t0 = time.monotonic()
    r = one(audit_local(root, "adapter_health", _profile(thresholds={"adapter_timeout_s": 0.5})))
    assert time.monotonic() - t0 < 4.0
    assert r.status is Status.NOT_READY
    assert "timed out" in r.message


def test_a_health_endpoint_redirecting_elsewhere_is_not_healthy_and_is_not_followed(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer], tmp_path: Path
) -> None:
    """A health URL answering 302 to a login page on another server is not a 200 from the
    adapter: the probe followed the redirect and judged the login page's 200 as healthy."""
    login = http_server().route("/sso", body="<html>log in</html>")
    where = f"{login.url}/sso?state=SENTINEL-token"
    srv = http_server().route("/api/health", status=302, headers={"Location": where})
    root = _app(app_tree, f"{srv.url}/api")
    inventory = local_inventory(tmp_path / "inventory.yml", root, **_profile())
    r = validate_check(inventory, "adapter_health")
    assert r["status"] == "not_ready", r["message"]
    # a redirect, said so with its target (no query: a token may be there), and a fix that
    # points at the URL: it was "reports unhealthy, investigate prefect's logs"
    assert (
        f"answered HTTP 302, a redirect to {login.url}/sso (not followed; expected 200)"
        in (r["message"])
    )
    assert any(
        "Point adapter_health.prefect.health_url (or health_path) at the health endpoint itself"
        in rec
        and "list 302 in adapter_health.prefect.expect_status" in rec
        for rec in r["recommendations"]
    ), r["recommendations"]
    assert not any("logs" in rec for rec in r["recommendations"]), r["recommendations"]
    assert "SENTINEL" not in str(r)
    assert r["details"]["adapters"]["prefect"]["health"]["status"] == 302
    assert login.requests == [], "the redirect target was asked"


def test_a_closed_port_is_not_ready_with_a_concrete_recommendation(
    app_tree: Callable[..., Path],
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/api"
    root = _app(app_tree, url)
    r = one(audit_local(root, "adapter_health", _profile()))
    assert r.status is Status.NOT_READY
    assert "not reachable" in r.message
    assert "refused" in r.message.lower()
    assert any(f"curl -fsS {url}/health" in rec for rec in r.recommendations)


def test_an_env_override_of_the_api_url_is_the_url_probed(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    """MAHAVISHNU_ADAPTERS__PREFECT__API_URL wins over the settings file, as in the app."""
    srv = http_server().route("/api/health", json=True)
    root = app_tree(
        settings={"adapters": {"prefect": {"api_url": f"http://127.0.0.1:{closed_port()}/api"}}},
        env={"MAHAVISHNU_ADAPTERS__PREFECT__API_URL": f"{srv.url}/api"},
    )
    (root / "models" / "llama3").mkdir(parents=True)
    r = one(audit_local(root, "adapter_health", _profile()))
    assert r.status is Status.READY, r.message
    assert r.details["adapters"]["prefect"]["health"]["url"] == f"{srv.url}/api/health"


def test_a_missing_python_module_and_model_path_are_not_ready(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server().route("/api/health", json=True)
    root = app_tree(settings={"adapters": {"prefect": {"api_url": f"{srv.url}/api"}}})
    rule = {"python_modules": ["json", "no_such_module_xyz"], "paths": ["models/llama3"]}
    r = one(audit_local(root, "adapter_health", _profile(rules={"llamaindex": rule})))
    assert r.status is Status.NOT_READY
    llama = r.details["adapters"]["llamaindex"]
    assert llama["verdict"] == "missing prerequisites"
    assert llama["modules"] == {"json": "importable", "no_such_module_xyz": "missing"}
    assert llama["paths"] == {"models/llama3": "missing"}
    assert any("No module named 'no_such_module_xyz'" in p for p in r.details["problems"])


def test_an_unexpected_health_body_is_not_ready(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server().route("/api/health", json={"healthy": False})
    root = _app(app_tree, f"{srv.url}/api")
    rules = {"prefect": {"expect_body": "true"}}
    r = one(audit_local(root, "adapter_health", _profile(rules=rules)))
    assert r.status is Status.NOT_READY
    assert "without 'true'" in r.message


def test_a_profile_health_url_overrides_the_settings_url(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server().route("/ready", body="ok")
    root = _app(app_tree, "http://127.0.0.1:1/api")
    rules = {"prefect": {"health_url": f"{srv.url}/ready"}}
    r = one(audit_local(root, "adapter_health", _profile(rules=rules)))
    assert r.status is Status.READY, r.message
    assert len(srv.requests_to("/ready")) == 1


def test_an_enabled_adapter_without_its_url_setting_is_not_ready(
    app_tree: Callable[..., Path],
) -> None:
    root = _app(app_tree, "")
    r = one(audit_local(root, "adapter_health", _profile()))
    assert r.status is Status.NOT_READY
    assert "adapters.prefect.api_url is not set" in r.message
    assert any("MAHAVISHNU_ADAPTERS__PREFECT__API_URL" in rec for rec in r.recommendations)


def test_an_enabled_adapter_without_a_rule_cannot_be_judged_and_degrades(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server().route("/api/health", json=True)
    root = _app_with_custom(app_tree, srv.url)
    r = one(audit_local(root, "adapter_health", _profile()))
    assert r.status is Status.DEGRADED
    assert r.details["adapters"]["crewai"]["verdict"] == "unknown"
    assert any("adapter_health.crewai" in rec for rec in r.recommendations)


def _app_with_custom(app_tree: Callable[..., Path], url: str) -> Path:
    root = app_tree(
        settings={"adapters": {"prefect": {"api_url": f"{url}/api"}, "crewai": {"enabled": True}}}
    )
    (root / "models" / "llama3").mkdir(parents=True, exist_ok=True)
    return root


def test_no_enabled_adapter_is_skipped(app_tree: Callable[..., Path]) -> None:
    root = app_tree(
        settings={
            "adapters": {
                "prefect": {"enabled": False},
                "llamaindex": {"enabled": False},
                "agno": {"enabled": False},
            }
        }
    )
    r = one(audit_local(root, "adapter_health", _profile()))
    assert r.status is Status.SKIPPED
    assert "No adapter is enabled" in r.message


@pytest.mark.ssh
def test_a_model_path_the_non_root_audit_account_may_not_read_is_undetermined(
    tmp_path: Path,
) -> None:
    """Audited as readiness-nopw (no --sudo), the app user's 0700 model directory is not
    readable by the audit account; the app (its owner) reads it. validate said NOT_READY
    "llamaindex adapter: ... is not readable", "Fix the permissions", about the wrong user."""
    from readiness.loopback import start_fleet
    from tests.services.apps import write_app
    from tests.services.cli import run_cli
    from tests.services.sshd import NOPW_USER

    def write(index: int, root: Path) -> None:
        write_app(root, settings={"adapters": {"prefect": {"enabled": False}}})
        (root / ".env").chmod(0o644)  # the settings readable: only the model is private
        model = root / "models" / "llama3"
        model.mkdir(parents=True)
        subprocess.run(["chown", "nobody", str(model)], check=True, timeout=10)
        model.chmod(0o700)

    rules = {"llamaindex": {"python_modules": [], "paths": ["models/llama3"]}}
    with start_fleet(1, app_writer=write, extra_users=[NOPW_USER]) as fleet:
        inventory = fleet.write_inventory(
            tmp_path / "inventory.yml",
            host_vars=lambda h: {
                "ansible_user": NOPW_USER,
                "readiness": {"app_root": str(h.app_root), "adapter_health": rules},
            },
        )
        argv = ["validate", "-i", str(inventory), "--hosts", "fleet", "-c", "adapter_health"]
        res = run_cli(*argv, "--known-hosts", str(fleet.known_hosts), "--format", "json")
    result = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert result["status"] == "degraded", result["message"]
    assert "cannot tell whether the app can read" in result["message"]
    assert result["details"]["adapters"]["llamaindex"]["paths"] == {"models/llama3": "unknown"}
