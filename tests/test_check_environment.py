"""``environment``: required, conditional, DSN formats, insecure defaults, real sources."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from readiness.model import Status
from tests.services.apps import GOOD_SECRET, audit_local, one


def test_a_complete_environment_is_ready(app_tree: Callable[..., Path]) -> None:
    r = one(audit_local(app_tree(), "environment"))
    assert r.status is Status.READY, r.message
    assert r.details["missing"] == []
    assert r.details["variables"]["MAHAVISHNU_AUTH__SECRET"] == {
        "status": "set",
        "length": len(GOOD_SECRET),
        "source": "env file",
    }


def test_a_missing_required_variable_is_not_ready_and_named(app_tree: Callable[..., Path]) -> None:
    r = one(audit_local(app_tree(env={"MAHAVISHNU_REPOS_PATH": None}), "environment"))
    assert r.status is Status.NOT_READY
    assert r.details["missing"] == ["MAHAVISHNU_REPOS_PATH"]
    assert any("MAHAVISHNU_REPOS_PATH" in rec for rec in r.recommendations)


def test_auth_enabled_makes_the_jwt_secret_required(app_tree: Callable[..., Path]) -> None:
    r = one(audit_local(app_tree(env={"MAHAVISHNU_AUTH__SECRET": None}), "environment"))
    assert r.status is Status.NOT_READY
    assert "required because auth.enabled is enabled" in r.message


def test_auth_disabled_does_not_require_the_secret(app_tree: Callable[..., Path]) -> None:
    root = app_tree(settings={"auth": {"enabled": False}}, env={"MAHAVISHNU_AUTH__SECRET": None})
    assert one(audit_local(root, "environment")).status is Status.READY


def test_otel_storage_requires_a_valid_connection_string(app_tree: Callable[..., Path]) -> None:
    root = app_tree(settings={"otel_storage": {"enabled": True}})
    r = one(audit_local(root, "environment"))
    assert r.status is Status.NOT_READY
    assert "MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING" in r.details["missing"]


@pytest.mark.parametrize(
    ("dsn", "problem"),
    [
        ("mysql://u:p@h/db", "scheme"),
        ("postgresql://u:p@/db", "no host"),
        ("postgresql://u:p@db:5432/", "no database"),
        ("postgresql://u:p@db:notaport/x", "malformed"),
    ],
)
def test_a_malformed_dsn_names_the_variable(
    app_tree: Callable[..., Path], dsn: str, problem: str
) -> None:
    root = app_tree(
        settings={"otel_storage": {"enabled": True}},
        env={"MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING": dsn},
    )
    r = one(audit_local(root, "environment"))
    assert r.status is Status.NOT_READY
    assert r.details["invalid"] == ["MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING"]
    assert problem in r.message


def test_valid_dsns_in_url_and_key_value_form_pass(app_tree: Callable[..., Path]) -> None:
    for dsn in ("postgres://u:pw@db:5432/app", "host=db port=5432 dbname=app user=u password=pw"):
        root = app_tree(
            settings={"otel_storage": {"enabled": True}},
            env={"MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING": dsn},
        )
        r = one(audit_local(root, "environment"))
        assert r.status is Status.READY, (dsn, r.message)
        assert (
            r.details["variables"]["MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING"]["format"]
            == "valid"
        )


@pytest.mark.parametrize("value", ["changeme", "Password", "admin", "test"])
def test_insecure_default_values_are_not_ready(app_tree: Callable[..., Path], value: str) -> None:
    r = one(audit_local(app_tree(env={"MAHAVISHNU_ADMIN__PASSWORD": value}), "environment"))
    assert r.status is Status.NOT_READY
    assert r.details["insecure"] == ["MAHAVISHNU_ADMIN__PASSWORD"]


def test_the_insecure_list_is_a_profile_key(app_tree: Callable[..., Path]) -> None:
    root = app_tree(env={"MAHAVISHNU_MODE": "staging"})
    assert one(audit_local(root, "environment")).status is Status.READY
    r = one(audit_local(root, "environment", profile={"insecure_values": ["staging"]}))
    assert r.status is Status.NOT_READY


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Path]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> Path:
        pidfile = tmp_path / "svc.pid"
        code = "import os,time,sys; open(sys.argv[1],'w').write(str(os.getpid())); time.sleep(60)"
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(pidfile)], env={"PATH": os.environ["PATH"], **env}
        )
        procs.append(proc)
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return pidfile

    yield start
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait(5)


def test_the_running_process_environment_is_read_and_wins(
    app_tree: Callable[..., Path], service: Callable[[dict[str, str]], Path]
) -> None:
    root = app_tree(env={"MAHAVISHNU_REPOS_PATH": None})
    pidfile = service({"MAHAVISHNU_REPOS_PATH": "/srv/repos.yaml"})
    r = one(audit_local(root, "environment", profile={"pidfile": str(pidfile)}))
    assert r.status is Status.READY, r.message
    assert r.details["variables"]["MAHAVISHNU_REPOS_PATH"]["source"] == "process environment"
    assert any("process" in s for s in r.details["sources"])


def test_a_configured_but_dead_service_degrades_with_a_reason(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    r = one(audit_local(app_tree(), "environment", profile={"pidfile": str(tmp_path / "nope.pid")}))
    assert r.status is Status.DEGRADED
    assert "service process not found" in r.message


def test_secret_values_are_never_in_the_result(app_tree: Callable[..., Path]) -> None:
    secret = "S3NTINEL-env-secret-value-0123456789abcdef"
    r = one(audit_local(app_tree(env={"MAHAVISHNU_AUTH__SECRET": secret}), "environment"))
    assert secret not in repr(r.to_dict())
