"""Findings name where their value comes from, and a production host without authentication
fails ``validate``: real service processes whose environment overrides the settings file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from readiness.model import Status
from tests.services.apps import audit_local, env_file_of, one, running_service
from tests.test_cli import inventory_for, run

RESILIENCE: dict[str, Any] = {
    "retry": {"max_attempts": 3, "backoff_base_s": 1.0, "backoff_max_s": 30.0},
    "circuit_breaker": {"failure_threshold": 5, "recovery_timeout_s": 60},
    "dead_letter_queue": {"enabled": True, "path": "data/dlq"},
    "error_categories": ["transient", "permanent"],
}


def _root(app_tree: Callable[..., Path], **settings: Any) -> Path:
    root = app_tree(settings={"resilience": RESILIENCE, **settings})
    (root / "data" / "dlq").mkdir(parents=True, exist_ok=True)
    return root


def test_auth_disabled_through_the_process_environment_is_not_ready_and_named(
    app_tree: Callable[..., Path],
) -> None:
    root = _root(app_tree)  # the settings file says auth.enabled: true
    env = {**env_file_of(root), "MAHAVISHNU_AUTH__ENABLED": "false"}
    with running_service(root, env) as (proc, pidfile):
        r = one(audit_local(root, "configuration", profile={"pidfile": str(pidfile)}))
    assert r.status is Status.NOT_READY
    assert r.details["problems"][0] == (
        "authentication is disabled on a production host (from MAHAVISHNU_AUTH__ENABLED in the "
        f"environment of process {proc.pid}, overriding True in the settings file)"
    )
    advice = r.recommendations[0]
    assert advice.startswith("Enable authentication in production: set MAHAVISHNU_AUTH__ENABLED ")
    assert "where the service's environment is defined" in advice
    assert "the settings file already says auth.enabled: true; the override wins" in advice


def test_auth_disabled_in_the_settings_file_names_the_file(app_tree: Callable[..., Path]) -> None:
    root = _root(app_tree, auth={"enabled": False})
    r = one(audit_local(root, "configuration"))
    settings = root / "settings" / "mahavishnu.yaml"
    assert r.status is Status.NOT_READY
    assert r.details["problems"] == [
        f"authentication is disabled on a production host (from auth.enabled in settings file {settings})"
    ]
    assert r.recommendations[0] == (
        f"Enable authentication in production: set auth.enabled to true in settings file {settings}"
    )
    # A staging group may relax it: then it degrades instead.
    r = one(audit_local(root, "configuration", profile={"require_auth": False}))
    assert r.status is Status.DEGRADED


def test_validate_exits_one_for_a_production_host_without_authentication(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    root = _root(app_tree)
    env = {**env_file_of(root), "MAHAVISHNU_AUTH__ENABLED": "false"}
    inv = inventory_for(tmp_path, root)
    text = inv.read_text().replace(
        "app_root:", f"pidfile: {root}/run/mahavishnu.pid\n        app_root:"
    )
    inv.write_text(text)
    with running_service(root, env):
        res = run("validate", "-i", str(inv), "-c", "configuration", "--json", tool="readiness")
    assert res.returncode == 1, res.stderr
    check = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert check["status"] == "not_ready"
    assert "MAHAVISHNU_AUTH__ENABLED in the environment of process" in check["message"]


def test_a_retry_override_in_the_process_environment_is_named_and_targeted(
    app_tree: Callable[..., Path],
) -> None:
    root = _root(app_tree)  # the settings file says max_attempts: 3
    env = {**env_file_of(root), "MAHAVISHNU_RESILIENCE__RETRY__MAX_ATTEMPTS": "50"}
    with running_service(root, env) as (proc, pidfile):
        r = one(audit_local(root, "error_handling", profile={"pidfile": str(pidfile)}))
    assert r.status is Status.DEGRADED
    assert r.details["warnings"] == [
        "resilience.retry.max_attempts is 50, outside 1-10 (from "
        f"MAHAVISHNU_RESILIENCE__RETRY__MAX_ATTEMPTS in the environment of process {proc.pid}, "
        "overriding 3 in the settings file)"
    ]
    assert r.recommendations[0].startswith(
        "Set MAHAVISHNU_RESILIENCE__RETRY__MAX_ATTEMPTS to a value between 1 and 10 (3-5 is "
        "typical) where the service's environment is defined"
    )
    assert "settings file" not in r.recommendations[0].split("(the unit's")[0]


def test_a_value_from_the_env_file_is_named_as_such_even_in_the_process(
    app_tree: Callable[..., Path],
) -> None:
    root = _root(app_tree)
    with (root / ".env").open("a") as fh:
        fh.write("MAHAVISHNU_OBSERVABILITY__METRICS_ENABLED=false\n")
    env_file = root / ".env"
    with running_service(root) as (_, pidfile):  # exported from the env file, as systemd does
        r = one(audit_local(root, "configuration", profile={"pidfile": str(pidfile)}))
    assert r.status is Status.DEGRADED, r.message
    assert r.details["warnings"][0] == (
        "metrics are disabled (from MAHAVISHNU_OBSERVABILITY__METRICS_ENABLED in env file "
        f"{env_file}, overriding True in the settings file)"
    )
    assert r.recommendations[0] == (
        f"Set MAHAVISHNU_OBSERVABILITY__METRICS_ENABLED to true in env file {env_file}, then "
        "restart the service"
    )


def test_a_settings_file_fixed_after_start_is_stale_in_the_checks_that_judge_it(
    app_tree: Callable[..., Path],
) -> None:
    root = _root(app_tree)
    profile = {"thresholds": {"stale_config_grace_s": 0.2}}
    with running_service(root) as (proc, pidfile):
        time.sleep(0.3)
        settings = root / "settings" / "mahavishnu.yaml"
        settings.write_text(settings.read_text())  # an edit, as a fix would make
        report = audit_local(
            root, ["error_handling", "configuration"], profile={**profile, "pidfile": str(pidfile)}
        )
    for r in report.results:
        assert r.status is Status.DEGRADED, (r.check_name, r.message)
        stale = [w for w in r.details["warnings"] if w.startswith("running with stale")]
        assert len(stale) == 1 and stale[0].startswith(
            f"running with stale configuration: settings file {settings} changed at "
        ), r.details["warnings"]
        assert f"after process {proc.pid} started at " in stale[0]
        assert r.details["restart_needed"] is True
        assert r.recommendations[-1].startswith("Restart the service")
        assert r.details["stale"]["process"] == proc.pid


def test_a_secret_overridden_by_the_environment_is_never_shown(
    app_tree: Callable[..., Path],
) -> None:
    literal = "short-settings-literal"  # in the settings file, overridden by the env file
    root = _root(app_tree, auth={"enabled": True, "algorithm": "HS256", "secret": literal})
    with (root / ".env").open("a") as fh:
        fh.write("MAHAVISHNU_AUTH__SECRET=also-too-short\n")
    r = one(audit_local(root, "configuration"))
    assert r.status is Status.NOT_READY
    problem = r.details["problems"][0]
    assert problem.startswith("auth secret is too short (")
    assert "overriding the value in the settings file" in problem
    assert literal not in repr(r.to_dict())
    assert "also-too-short" not in repr(r.to_dict())


def test_resource_limits_name_the_process_override_too(app_tree: Callable[..., Path]) -> None:
    root = _root(app_tree)  # the settings file says max_concurrent_workflows: 10
    env = {**env_file_of(root), "MAHAVISHNU_MAX_CONCURRENT_WORKFLOWS": "500"}
    with running_service(root, env) as (proc, pidfile):
        r = one(audit_local(root, "resource_limits", profile={"pidfile": str(pidfile)}))
    assert r.status is Status.DEGRADED
    assert r.details["warnings"] == [
        "max_concurrent_workflows = 500 is outside the recommended range 5-20 (from "
        f"MAHAVISHNU_MAX_CONCURRENT_WORKFLOWS in the environment of process {proc.pid}, "
        "overriding 10 in the settings file)"
    ]
    assert "where the service's environment is defined" in r.recommendations[0]
