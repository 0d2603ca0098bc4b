"""Production-suite verdicts on a small fleet with planted defects: real sshd hosts, the audit
run as a user types it (``readiness validate -i INV -c CHECKS --json`` in a subprocess).

The expected verdicts come from the seeds (the production guide: authentication enabled,
"strong secrets (at least 32 characters)", security checks 100 %; resource limits 5-20,
3-5, 300-1800 s), not from this project's own docs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from readiness.loopback import LoopbackFleet, start_fleet
from tests.services.apps import write_app
from tests.services.sshd import NOPW_USER, _ensure_user, _share

BIN = Path(sys.executable).parent
CHECKS = ["security_settings", "resource_limits"]
SECURE: dict[str, Any] = {
    "rbac": {"enabled": True, "roles": ["admin", "operator", "viewer"]},
    "resilience": {"retry": {"max_attempts": 3}},
}


@dataclass(frozen=True)
class Scenario:
    name: str
    expect: dict[str, str] = field(default_factory=dict)  # check -> status; others "ready"
    says: dict[str, str] = field(default_factory=dict)  # check -> text its message contains
    settings: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str | None] = field(default_factory=dict)


SCENARIOS = [
    Scenario("clean"),
    Scenario(
        # Was READY: security_settings judged auth.enabled only, and the production suites
        # do not run `configuration`, which judges the secret.
        "auth-without-secret",
        {"security_settings": "not_ready"},
        {"security_settings": "auth is enabled but no auth secret is set"},
        env={"MAHAVISHNU_AUTH__SECRET": None},
    ),
    Scenario(
        "auth-short-secret",
        {"security_settings": "not_ready"},
        {"security_settings": "auth secret is too short (12 < 32 characters) (from MAHAVISHNU"},
        env={"MAHAVISHNU_AUTH__SECRET": "Tq8w3Jr5Nv1L"},
    ),
    Scenario(
        # Was DEGRADED "nans is outside the recommended range": NaN is malformed.
        "nan-timeout",
        {"resource_limits": "not_ready"},
        {"resource_limits": "workflow_timeout = nan is not a number (from MAHAVISHNU_WORKFLOW"},
        env={"MAHAVISHNU_WORKFLOW_TIMEOUT": "nan"},
    ),
]


@dataclass
class Planted:
    fleet: LoopbackFleet
    inventory: Path


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    def write(index: int, root: Path) -> None:
        s = SCENARIOS[index]
        write_app(root, settings={**SECURE, **s.settings}, env=s.env)

    with start_fleet(len(SCENARIOS), app_writer=write) as fleet:
        inventory = fleet.write_inventory(
            tmp_path_factory.mktemp("production") / "inventory.yml",
            host_vars=lambda h: {"readiness": {"app_root": str(h.app_root)}},
        )
        yield Planted(fleet, inventory)


@pytest.fixture(scope="module")
def audited(planted: Planted) -> dict[str, dict[str, dict[str, Any]]]:
    res = subprocess.run(
        [
            str(BIN / "readiness"),
            "validate",
            "-i",
            str(planted.inventory),
            "--hosts",
            "fleet",
            "-c",
            ",".join(CHECKS),
            "--known-hosts",
            str(planted.fleet.known_hosts),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert res.returncode == 1, res.stderr  # defect hosts are not ready
    data = json.loads(res.stdout)
    return {h["host"]: {c["check_name"]: c for c in h["checks"]} for h in data["hosts"]}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_each_host_gets_exactly_the_expected_verdict_per_check(
    planted: Planted, audited: dict[str, dict[str, dict[str, Any]]], scenario: Scenario
) -> None:
    host = planted.fleet.hosts[SCENARIOS.index(scenario)].name
    results = audited[host]
    got = {check: results[check]["status"] for check in CHECKS}
    want = {check: scenario.expect.get(check, "ready") for check in CHECKS}
    assert got == want, {c: results[c]["message"] for c in CHECKS}
    for check, text in scenario.says.items():
        assert text in results[check]["message"], results[check]["message"]
        assert "Tq8w3Jr5Nv1L" not in json.dumps(results[check])


# --- as a non-root account: a backup directory it may write to but not list -------------


@pytest.fixture(scope="module")
def drop_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    """One host audited as a real non-root account (sshd.NOPW_USER). Its backup directory is
    root's, mode 0733: the account can write (the probe's write test passes) but not list
    it. A common "drop box" for backups; whether recent backups exist is then unknown."""
    _ensure_user(NOPW_USER)

    def write(_index: int, root: Path) -> None:
        write_app(root, files={"docs/runbooks/backup-restore.md": "# Backup and restore\n"})
        backups = root / "backups"
        backups.mkdir()
        (backups / "db-old.sql").write_text("-- an old dump the account cannot see\n")
        dashboards = root / "dashboards"
        dashboards.mkdir()
        (dashboards / "app.json").write_text('{"title": "App", "panels": []}')
        _share(root)
        backups.chmod(0o733)
        dashboards.chmod(0o700)  # root's: the account cannot list it
        logs = root / "logs"
        logs.mkdir(mode=0o700)  # root's: the account cannot read the app's log
        (logs / "app.log").write_text('{"level": "info", "message": "started"}\n')
        logs.chmod(0o700)
        repo = root / "repos" / "tools"  # a checkout whose private/ the account cannot enter
        (repo / "private").mkdir(parents=True)
        (repo / "private" / "marker").write_text("x\n")
        git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True, timeout=30)
        subprocess.run([*git, "add", "-A"], check=True, timeout=30)
        subprocess.run([*git, "commit", "-q", "-m", "init"], check=True, timeout=30)
        (root / "repos.yaml").write_text(f"repos:\n  - name: tools\n    path: {repo}\n")
        _share(root)
        backups.chmod(0o733)
        dashboards.chmod(0o700)
        logs.chmod(0o700)
        (repo / "private").chmod(0o700)

    with start_fleet(1, app_writer=write, extra_users=[NOPW_USER]) as fleet:
        inventory = fleet.write_inventory(
            tmp_path_factory.mktemp("drop-box") / "inventory.yml",
            host_vars=lambda h: {
                "ansible_user": NOPW_USER,
                "readiness": {
                    "app_root": str(h.app_root),
                    "backup_schedule": "cron, daily",
                    "observability_logging": {"enabled": True, "log_file": "logs/app.log"},
                    "repository_structure": ["private/marker"],
                },
            },
        )
        yield Planted(fleet, inventory)


def _audit_one(planted: Planted, check: str) -> dict[str, Any]:
    res = subprocess.run(
        [
            str(BIN / "readiness"),
            "validate",
            "-i",
            str(planted.inventory),
            "--hosts",
            "fleet",
            "-c",
            check,
            "--known-hosts",
            str(planted.fleet.known_hosts),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    result: dict[str, Any] = json.loads(res.stdout)["hosts"][0]["checks"][0]
    return result


def test_a_backup_directory_that_cannot_be_listed_is_never_ready(drop_box: Planted) -> None:
    """Was READY: the write test passed, the listing failed, and no backup was judged."""
    result = _audit_one(drop_box, "backup_restore")
    assert result["status"] == "degraded", result["message"]
    assert result["details"]["backup_dir"]["writable"] is True
    assert "cannot list backup directory" in result["message"]
    assert "Permission denied" in result["message"]
    assert any("--sudo" in r for r in result["recommendations"])


def test_a_dashboards_directory_that_cannot_be_listed_is_not_called_missing(
    drop_box: Planted,
) -> None:
    """Was "dashboards directory … does not exist", recommending to create it: it exists,
    the audit account may not list it."""
    result = _audit_one(drop_box, "monitoring")
    warnings = result["details"].get("warnings") or []
    assert not any("dashboards directory" in w and "does not exist" in w for w in warnings)
    assert any(w.startswith("cannot list dashboards directory") for w in warnings), warnings
    assert any("PermissionError" in w for w in warnings if "dashboards" in w)
    assert any("--sudo" in r for r in result["recommendations"])
    assert result["details"]["dashboards"]["found"] == 0


def test_a_log_file_that_cannot_be_read_is_not_called_missing(drop_box: Planted) -> None:
    """Was NOT_READY "log file … does not exist (PermissionError …)" recommending to point
    log_file elsewhere: the file exists, the audit account may not read it."""
    result = _audit_one(drop_box, "observability_logging")
    assert result["status"] == "degraded", result["message"]
    assert "cannot read log file" in result["message"]
    assert "does not exist" not in result["message"]
    assert any("--sudo" in r for r in result["recommendations"])


@pytest.mark.parametrize(
    "check", ["environment", "configuration", "security_settings", "config_validity"]
)
def test_an_env_file_the_audit_account_cannot_read_is_undetermined(
    drop_box: Planted, check: str
) -> None:
    """The env file is 0600 and root's, as it should be: audited as another account it
    cannot be read. Was NOT_READY "MAHAVISHNU_AUTH__SECRET is not set" / "no auth secret is
    set" (READY in security_settings before it judged the secret), recommending to set
    what is set: now DEGRADED "cannot read env file …", rerun with --sudo."""
    result = _audit_one(drop_box, check)
    assert result["status"] == "degraded", result["message"]
    assert "cannot read env file" in result["message"]
    assert "PermissionError" in result["message"]
    assert "not set" not in result["message"]
    assert any("--sudo" in r for r in result["recommendations"])


def test_repository_structure_the_account_cannot_see_is_not_called_missing(
    drop_box: Planted,
) -> None:
    """Was NOT_READY "… lacks the expected structure: private/marker": it is there, in a
    directory the audit account may not enter."""
    result = _audit_one(drop_box, "repository_access")
    text = " ".join([result["message"], *(result["details"].get("warnings") or [])])
    assert result["status"] == "degraded", result["message"]
    assert "lacks the expected structure" not in text
    assert "cannot tell whether repository tools" in text
    assert "has private/marker (PermissionError" in text
