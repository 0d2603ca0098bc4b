"""``environment``: required, conditional, DSN formats, insecure defaults, real sources."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from readiness.appconfig import build_app_config
from readiness.model import Status
from readiness.profile import merge_layers
from readiness.registry import CheckContext, default_profile, get
from tests.services.apps import GOOD_SECRET, audit_local, env_file_of, one, running_service
from tests.services.cli import local_inventory, run_cli, validate_check

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mahavishnu"


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


@pytest.mark.parametrize("name", ["MAHAVISHNU_REPOS_PATH", "MAHAVISHNU_AUTH__SECRET"])
def test_a_required_variable_of_only_whitespace_is_not_set(
    app_tree: Callable[..., Path], name: str
) -> None:
    """``X="   "`` was "properly configured": the value is no path and no secret."""
    root = app_tree(env={name: None})
    with (root / ".env").open("a") as fh:
        fh.write(f'{name}="   "\n')
    r = one(audit_local(root, "environment"))
    assert r.status is Status.NOT_READY
    assert f"{name} is set to only whitespace" in r.message
    assert r.details["missing"] == [name]
    assert r.details["variables"][name] == {"status": "blank"}
    assert any(
        rec.startswith(f"Set {name} in the service environment") for rec in r.recommendations
    )


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
        ("postgresql://u:p@db/x?bogus=1", "malformed URL"),
        ("host=db dbname", "malformed key=value"),
        ("postgresql://u:p@db:notaport/x", "is not a number"),
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
    root = app_tree(env={"MAHAVISHNU_BROKER__PASSWORD": "staging", "MAHAVISHNU_MODE": "staging"})
    assert one(audit_local(root, "environment")).status is Status.READY
    r = one(audit_local(root, "environment", profile={"insecure_values": ["staging"]}))
    assert r.status is Status.NOT_READY
    # Only the credential is judged; the ordinary variable with the same value is not.
    assert r.details["insecure"] == ["MAHAVISHNU_BROKER__PASSWORD"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAHAVISHNU_OBSERVABILITY__SERVICE_NAME", "mahavishnu"),
        ("MAHAVISHNU_ADAPTERS__PREFECT__WORK_POOL", "default"),
        ("MAHAVISHNU_ENVIRONMENT", "test"),
        ("MAHAVISHNU_LOG_LEVEL", "dev"),
        ("MAHAVISHNU_ADMIN__EMAIL", "admin"),
        ("MAHAVISHNU_AUTH__SECRET", "correct-horse-password-battery-staple-42"),
        ("MAHAVISHNU_AUTH__TOKEN_STORE", "default"),
        ("MAHAVISHNU_AUTH__SECRET_BACKEND", "default"),
        ("MAHAVISHNU_AUTH__PASSWORD_POLICY", "default"),
        ("MAHAVISHNU_VAULT__SECRET_PATH", "secret"),
        ("MAHAVISHNU_DB__PASSWORD", "Xk2-password-Qz9-not-a-default-one"),
    ],
)
def test_ordinary_values_and_strong_secrets_are_not_insecure(
    app_tree: Callable[..., Path], name: str, value: str
) -> None:
    r = one(audit_local(app_tree(env={name: value}), "environment"))
    assert r.status is Status.READY, r.message
    assert r.details["insecure"] == []


def test_the_app_name_is_not_on_the_default_list(app_tree: Callable[..., Path]) -> None:
    r = one(audit_local(app_tree(env={"MAHAVISHNU_QUEUE": "mahavishnu"}), "environment"))
    assert r.status is Status.READY, r.message
    # ...and a profile can still put it there, for credentials.
    root = app_tree(env={"MAHAVISHNU_REDIS__PASSWORD": "mahavishnu"})
    r = one(audit_local(root, "environment", profile={"insecure_values": ["mahavishnu"]}))
    assert r.status is Status.NOT_READY
    assert r.details["insecure"] == ["MAHAVISHNU_REDIS__PASSWORD"]


@pytest.mark.parametrize("name", ["MAHAVISHNU_DATABASE__USER", "MAHAVISHNU_BROKER__USERNAME"])
def test_a_default_account_name_on_a_user_variable_is_not_ready(
    app_tree: Callable[..., Path], name: str
) -> None:
    root = app_tree(env={name: "admin"})
    r = one(audit_local(root, "environment"))
    assert r.status is Status.NOT_READY
    assert r.details["insecure"] == [name]
    assert f"{name} uses a default account name (from env file {root / '.env'})" in r.message


def test_an_insecure_secret_names_its_source_and_the_fix_targets_it(
    app_tree: Callable[..., Path],
) -> None:
    root = app_tree(env={"MAHAVISHNU_AUTH__SECRET": "changeme"})
    r = one(audit_local(root, "environment"))
    assert r.status is Status.NOT_READY
    env = root / ".env"
    assert f"MAHAVISHNU_AUTH__SECRET uses an insecure default credential (from env file {env})" in (
        r.message
    )
    assert any(f"in env file {env}, then restart the service" in x for x in r.recommendations)


def test_a_dsn_with_a_default_password_is_not_ready(app_tree: Callable[..., Path]) -> None:
    root = app_tree(
        settings={"otel_storage": {"enabled": True}},
        env={"MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING": "postgresql://app:postgres@db/app"},
    )
    r = one(audit_local(root, "environment", profile={"insecure_values": ["postgres"]}))
    assert r.status is Status.NOT_READY
    assert "insecure default database password" in r.message
    assert "postgres@" not in repr(r.to_dict())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAHAVISHNU_DATABASE__URL", "postgresql://postgres:postgres@db:5432/app"),
        ("MAHAVISHNU_DATABASE__URL", "host=db dbname=app user=app password=mysecretpassword"),
        ("MAHAVISHNU_DATABASE__PASSWORD", "postgres"),
    ],
)
def test_postgresqls_default_passwords_are_insecure_by_default(
    app_tree: Callable[..., Path], name: str, value: str
) -> None:
    """Was READY with the default profile: PostgreSQL's textbook default password."""
    r = one(audit_local(app_tree(env={name: value}), "environment"))
    assert r.status is Status.NOT_READY
    assert f"{name} uses an insecure default" in r.message
    assert "postgres@" not in repr(r.to_dict())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAHAVISHNU_DATABASE__URL", "postgresql://postgres:Vq7-K2m9-Xr4t-unguessable@db/app"),
        ("MAHAVISHNU_DATABASE__URL", "host=db dbname=app user=admin password=Vq7-K2m9-Xr4t"),
        ("MAHAVISHNU_DATABASE__USER", "postgres"),
    ],
)
def test_an_app_connecting_as_a_default_database_account_is_not_ready(
    app_tree: Callable[..., Path], name: str, value: str
) -> None:
    """Was READY: the account a DSN names was never judged (only *_USER variables were), and
    PostgreSQL's superuser was not a default account name."""
    r = one(audit_local(app_tree(env={name: value}), "environment"))
    assert r.status is Status.NOT_READY
    assert name in r.message and "default account" in r.message
    assert "Vq7-K2m9" not in repr(r.to_dict())


def test_values_only_in_the_process_environment_are_read_and_ready(
    app_tree: Callable[..., Path],
) -> None:
    root = app_tree(env={"MAHAVISHNU_REPOS_PATH": None})
    env = {**env_file_of(root), "MAHAVISHNU_REPOS_PATH": "/srv/repos.yaml"}
    with running_service(root, env) as (proc, pidfile):
        r = one(audit_local(root, "environment", profile={"pidfile": str(pidfile)}))
    assert r.status is Status.READY, r.message
    assert r.details["variables"]["MAHAVISHNU_REPOS_PATH"]["source"] == "process environment"
    assert f"process {proc.pid} environment" in r.details["sources"]


def test_a_variable_added_to_the_env_file_after_start_is_stale_not_ready(
    app_tree: Callable[..., Path],
) -> None:
    root = app_tree(env={"MAHAVISHNU_REPOS_PATH": None})
    with running_service(root) as (proc, pidfile):
        time.sleep(0.3)
        with (root / ".env").open("a") as fh:
            fh.write("MAHAVISHNU_REPOS_PATH=/srv/repos.yaml\n")
        profile = {"pidfile": str(pidfile), "thresholds": {"stale_config_grace_s": 0.2}}
        r = one(audit_local(root, "environment", profile=profile))
    assert r.status is Status.DEGRADED, r.message
    problems = r.details["warnings"]
    assert any(
        p.startswith(f"running with stale configuration: env file {root / '.env'} changed at ")
        and f"after process {proc.pid} started at" in p
        for p in problems
    ), problems
    assert (
        f"running with stale configuration: process {proc.pid} lacks MAHAVISHNU_REPOS_PATH "
        f"(declared in env file {root / '.env'})"
    ) in problems
    assert r.details["variables"]["MAHAVISHNU_REPOS_PATH"]["status"] == (
        "not loaded by the running process"
    )
    assert r.details["restart_needed"] is True
    assert all(x.startswith("Restart the service") for x in r.recommendations)


def test_a_file_edited_before_the_service_started_is_ready(app_tree: Callable[..., Path]) -> None:
    root = app_tree()
    (root / "settings" / "mahavishnu.yaml").touch()  # edited, then the service starts at once
    with running_service(root) as (_, pidfile):
        r = one(audit_local(root, "environment", profile={"pidfile": str(pidfile)}))
    assert r.status is Status.READY, r.message
    assert "stale" not in r.details


def test_a_settings_file_changed_after_start_is_stale(app_tree: Callable[..., Path]) -> None:
    root = app_tree()
    with running_service(root) as (proc, pidfile):
        time.sleep(1.1)  # the default grace (1 s), no profile tweak
        (root / "settings" / "mahavishnu.yaml").touch()
        r = one(audit_local(root, "environment", profile={"pidfile": str(pidfile)}))
    assert r.status is Status.DEGRADED, r.message
    assert r.message.startswith(
        "Environment has 1 issue(s) that should be addressed: running with stale "
        f"configuration: settings file {root / 'settings' / 'mahavishnu.yaml'} changed at "
    )
    assert f"after process {proc.pid} started" in r.message


def test_a_process_value_that_differs_from_the_env_file_is_stale(
    app_tree: Callable[..., Path],
) -> None:
    root = app_tree()
    env = {**env_file_of(root), "MAHAVISHNU_REPOS_PATH": "/elsewhere/repos.yaml"}
    with running_service(root, env) as (_, pidfile):
        r = one(audit_local(root, "environment", profile={"pidfile": str(pidfile)}))
    assert r.status is Status.DEGRADED
    assert r.details["stale"]["differing"] == ["MAHAVISHNU_REPOS_PATH"]
    assert "/elsewhere" not in r.message  # names, never values
    # An app that reads the env file itself (not exported by its service manager):
    profile = {"pidfile": str(pidfile), "env_file_in_process_env": False}
    with running_service(root, env) as (_, pidfile):
        r = one(audit_local(root, "environment", profile=profile))
    assert r.status is Status.READY, r.message


def test_a_stale_pidfile_names_the_pid_that_is_gone(app_tree: Callable[..., Path]) -> None:
    root = app_tree()
    with running_service(root) as (proc, pidfile):
        proc.send_signal(signal.SIGKILL)  # dies without removing its pidfile
        proc.wait(5)
        r = one(audit_local(root, "environment", profile={"pidfile": str(pidfile)}))
    assert pidfile.exists()
    assert r.status is Status.DEGRADED
    assert r.details["warnings"] == [
        f"service process not found (pidfile {pidfile} names PID {proc.pid}, which no longer "
        "exists); judged the env file only"
    ]


def test_secret_values_are_never_in_the_result(app_tree: Callable[..., Path]) -> None:
    secret = "S3NTINEL-env-secret-value-0123456789abcdef"
    r = one(audit_local(app_tree(env={"MAHAVISHNU_AUTH__SECRET": secret}), "environment"))
    assert secret not in repr(r.to_dict())


def test_the_example_service_loads_its_env_file_so_the_example_is_not_stale(
    tmp_path: Path,
) -> None:
    """The README flow: the demo service exports .env into its process environment (as
    EnvironmentFile= does), so the audit sees the process, not a stale configuration."""
    root = tmp_path / "mahavishnu"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("run"))
    pidfile = root / "run" / "mahavishnu.pid"
    proc = subprocess.Popen(
        [sys.executable, str(root / "bin" / "mahavishnu-demo"), "--pidfile", str(pidfile)],
        env={"PATH": os.environ["PATH"]},
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        r = one(audit_local(root, "environment", profile={"pidfile": str(pidfile)}))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert f"process {proc.pid} environment" in r.details["sources"]
    assert "stale" not in r.details
    assert r.status is Status.NOT_READY  # the example's deliberate defect, and only that
    assert r.details["problems"] == [
        "MAHAVISHNU_ADMIN__PASSWORD uses an insecure default credential (from env file "
        f"{root / '.env'})"
    ]


def test_an_unknown_process_start_time_is_never_ready() -> None:
    """Pure logic: the probe could not read /proc/<pid>/stat (e.g. hidepid)."""
    profile = merge_layers(default_profile(), [("test", {"pidfile": "/run/app.pid"})])
    facts = {
        "app:process": {
            "found": True,
            "running": True,
            "pid": 4242,
            "started_error": "PermissionError: Permission denied",
            "environ": {"MAHAVISHNU_REPOS_PATH": "r", "MAHAVISHNU_AUTH__SECRET": GOOD_SECRET},
        }
    }
    app = build_app_config(
        settings_fact=None,
        env_file_fact=None,
        process_fact=facts["app:process"],
        env_prefix="MAHAVISHNU_",
    )
    out = get("environment").evaluate(CheckContext(host="h", profile=profile, facts=facts, app=app))
    assert out.status is Status.DEGRADED
    assert out.details["warnings"] == [
        "cannot tell when process 4242 started (PermissionError: Permission denied), so not "
        "whether it runs its current configuration"
    ]


def test_an_env_file_longer_than_the_probe_reads_is_not_judged(
    app_tree: Callable[..., Path],
) -> None:
    """Was READY: MAHAVISHNU_AUTH__ENABLED=false past 256 KiB was never seen."""
    root = app_tree()
    with (root / ".env").open("a") as fh:
        fh.write(("#" * 79 + "\n") * 4000 + "MAHAVISHNU_AUTH__ENABLED=false\n")
    r = one(audit_local(root, "environment"))
    assert r.status is Status.NOT_READY
    assert "is longer than the audit reads" in r.message


def test_unparseable_settings_leave_conditional_variables_unknown(
    app_tree: Callable[..., Path],
) -> None:
    """Was READY: with the settings unreadable no feature flag was on, so no conditional
    variable was required."""
    root = app_tree(settings_text="auth: [unclosed\n")
    r = one(audit_local(root, "environment"))
    assert r.status is Status.DEGRADED
    assert "which feature-conditional variables are required cannot be told" in r.message


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql:///mahavishnu",
        "postgres://app@/mahavishnu",
        "postgresql://app:Zq8w3Jr5Nv1Lx7Tb9Hc2@db.internal",
    ],
)
def test_a_dsn_relying_on_libpq_defaults_is_valid(
    app_tree: Callable[..., Path], tmp_path: Path, dsn: str
) -> None:
    """libpq reads a DSN without a host as its default unix socket (postgresql:///app, peer
    authentication on a single-host deployment) and one without a database as the user's
    database: validate said NOT_READY "not a valid PostgreSQL connection string: no host" /
    "no database name". The default-account and weak-password rules still apply to them."""
    variable = "MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING"
    root = app_tree(settings={"otel_storage": {"enabled": True}}, env={variable: dsn})
    inv = local_inventory(tmp_path / "inv.yml", root)
    res = run_cli("validate", "-i", str(inv), "-c", "environment", "--format", "json")
    result = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert result["status"] == "ready", result["message"]
    assert result["details"]["invalid"] == []
    assert result["details"]["variables"][variable]["format"] == "valid"
    assert "Zq8w3Jr5Nv1Lx7Tb9Hc2" not in res.stdout
    root = app_tree(
        settings={"otel_storage": {"enabled": True}}, env={variable: "postgresql://postgres@/x"}
    )
    result = validate_check(inv, "environment")
    assert result["status"] == "not_ready"
    assert "connects as the default account 'postgres'" in result["message"]


def test_the_required_variables_follow_the_apps_prefix_and_delimiter(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """With env_prefix MHV_ (and a nesting delimiter of its own) the app reads
    MHV_REPOS_PATH and MHV_AUTH_0_SECRET: validate said NOT_READY "MAHAVISHNU_REPOS_PATH is
    not set" and "MAHAVISHNU_AUTH__SECRET is not set (required because auth.enabled is
    enabled)", while security_settings found the same secret. A variable the app's own
    names lack is still missing, and named as the app names it."""
    secret = "MHV_AUTH_0_SECRET"
    env = {"MAHAVISHNU_REPOS_PATH": None, "MAHAVISHNU_AUTH__SECRET": None}
    root = app_tree(env={**env, "MHV_REPOS_PATH": "repos.yaml", secret: GOOD_SECRET})
    inv = local_inventory(tmp_path / "inv.yml", root, env_prefix="MHV_", env_nested_delimiter="_0_")

    result = validate_check(inv, "environment")
    assert result["status"] == "ready", result["message"]
    assert result["details"]["checked"] == ["MHV_REPOS_PATH", secret]
    app_tree(env={**env, "MHV_REPOS_PATH": "repos.yaml"})
    result = validate_check(inv, "environment")
    assert result["status"] == "not_ready"
    assert f"{secret} is not set (required because auth.enabled is enabled)" in result["message"]


def test_an_env_file_rewritten_with_the_values_the_process_has_is_not_stale(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """A comment added to the env file after the service started (or the same content
    written again by a deploy): the process's environment, read from /proc, is exactly the
    file's, and validate said DEGRADED "running with stale configuration: env file …
    changed at …" with "Restart the service". A changed value is still stale."""
    root = app_tree()
    env_file = root / ".env"
    with running_service(root) as (_, pidfile):
        later = time.time() + 5  # past the 1 s grace, without sleeping
        env_file.write_text("# rotated by ops, see TICKET-42\n" + env_file.read_text())
        os.utime(env_file, (later, later))
        inv = local_inventory(tmp_path / "inv.yml", root, pidfile=str(pidfile))

        result = validate_check(inv, "environment")
        assert result["status"] == "ready", result["message"]
        assert "restart_needed" not in result["details"]
        env_file.write_text(env_file.read_text().replace("repos.yaml", "other.yaml"))
        os.utime(env_file, (later, later))
        result = validate_check(inv, "environment")
    assert result["status"] == "degraded", result["message"]
    assert "running with stale configuration" in result["message"]


def test_the_ready_message_says_where_the_variables_were_read(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """Through `readiness validate`: with no service process configured only the env file is
    read, and READY "properly configured" claimed the service's real environment too."""
    root = app_tree()
    alone = validate_check(local_inventory(tmp_path / "alone.yml", root), "environment")
    assert alone["status"] == "ready", alone["message"]
    assert alone["message"] == (
        "All required environment variables are properly configured (read from env file "
        f"{root}/.env only: no service process is configured (pidfile or process_match), so "
        "its real environment was not read)"
    )
    with running_service(root, env_file_of(root)) as (proc, pidfile):
        inventory = local_inventory(tmp_path / "served.yml", root, pidfile=str(pidfile))
        served = validate_check(inventory, "environment")
    assert served["status"] == "ready", served["message"]
    assert served["message"].endswith(
        f"(read from env file {root}/.env and process {proc.pid} environment)"
    )
