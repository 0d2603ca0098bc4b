"""The CLI as users run it: subprocesses of invoke and the console script, exit codes, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.services.cli import local_inventory

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*args: str, cwd: Path = ROOT, tool: str = "invoke") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / tool), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def inventory_for(tmp_path: Path, app_root: Path) -> Path:
    inv = tmp_path / "inv.yml"
    local_inventory(inv, app_root)
    return inv


def test_validate_on_the_bundled_example_prints_a_report_and_exits_one() -> None:
    res = run("validate", "-c", "environment,configuration")
    assert res.returncode == 1, res.stderr
    assert "PRODUCTION READINESS VALIDATION REPORT" in res.stdout
    assert "OVERALL STATUS: ✗ NOT READY" in res.stdout
    assert "Recommendations:" in res.stdout


def test_json_output_and_exit_code_zero_for_a_ready_app(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    inv = inventory_for(tmp_path, app_tree())
    res = run("validate", "-i", str(inv), "-c", "environment", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["schema"] == "readiness.report/1"
    assert data["exit_code"] == 0
    assert data["hosts"][0]["checks"][0]["check_name"] == "environment"
    assert data["hosts"][0]["checks"][0]["status"] == "ready"


def test_the_console_script_runs_the_same_tasks(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    inv = inventory_for(tmp_path, app_tree())
    res = run(
        "validate",
        "-i",
        str(inv),
        "-c",
        "environment",
        "--format",
        "table",
        tool="readiness",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert "local" in res.stdout and "✓ ok" in res.stdout


def test_repeatable_check_flags_and_aliases(app_tree: Callable[..., Path], tmp_path: Path) -> None:
    inv = inventory_for(tmp_path, app_tree())
    res = run("validate-production", "-i", str(inv), "-c", "env", "-c", "config", "--json")
    data = json.loads(res.stdout)
    assert data["checks"] == ["environment", "configuration"]
    res2 = run("production.validate", "-i", str(inv), "-c", "environment_variables", "--json")
    assert json.loads(res2.stdout)["checks"] == ["environment"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["validate", "-c", "nope"], "unknown check 'nope' (valid checks:"),
        (
            ["validate", "--format", "yaml"],
            "--format: expected one of text, table, json, markdown",
        ),
        (["validate", "-i", "/nonexistent/inv.yml"], "inventory not found"),
        # it exists: "not found" misled
        (["inventory", "-i", "/dev/null"], "/dev/null: not a regular file or a directory"),
        (["validate", "--hosts", "nosuchgroup"], "nosuchgroup"),
        (["validate", "--profile", "/nonexistent/p.yml"], "cannot read profile"),
    ],
)
def test_usage_errors_exit_two_with_one_line_and_no_traceback(args: list[str], needle: str) -> None:
    res = run(*args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert needle in res.stderr
    assert "Traceback" not in res.stderr


def test_save_writes_the_report_under_reports(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    inv = inventory_for(tmp_path, app_tree())
    res = run(
        "validate",
        "-i",
        str(inv),
        "-c",
        "environment",
        "--format",
        "markdown",
        "--save",
        cwd=tmp_path,
        tool="readiness",
    )
    assert res.returncode == 0, res.stderr
    saved = list((tmp_path / "reports").glob("readiness-*.md"))
    assert len(saved) == 1
    assert saved[0].read_text().startswith("## ✓ Production readiness")
    explicit = tmp_path / "out" / "r.json"
    run(
        "validate",
        "-i",
        str(inv),
        "-c",
        "environment",
        "--json",
        "--save",
        str(explicit),
        cwd=tmp_path,
        tool="readiness",
    )
    assert json.loads(explicit.read_text())["schema"] == "readiness.report/1"


def test_help_explains_the_flags() -> None:
    res = run("--help", "validate")
    assert res.returncode == 0
    for flag in (
        "--hosts",
        "--check",
        "--format",
        "--json",
        "--save",
        "--inventory",
        "--profile",
        "--fail-on",
    ):
        assert flag in res.stdout


def test_the_console_script_exits_two_on_an_unknown_flag_or_task() -> None:
    for args in (["validate", "--bogus"], ["nosuchtask"]):
        res = run(*args, tool="readiness")
        assert res.returncode == 2, res.stderr
        assert "No idea what" in res.stderr


def test_inventory_lists_hosts_with_their_profile_changes_and_no_secrets(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  children:\n    prod:\n      hosts:\n        web1:\n          ansible_host: 10.1.2.3\n"
        "          ansible_port: 2222\n          ansible_user: deploy\n"
        "      vars:\n        readiness:\n          app_root: /srv/app\n"
        "          database_dsn: postgresql://app:SENTINEL-inv-pw@db:5432/app\n"
        "          thresholds: {backup_max_age_hours: 6}\n"
    )
    res = run("inventory", "-i", str(inv), "--hosts", "prod", tool="readiness", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (
        "web1" in res.stdout
        and "10.1.2.3" in res.stdout
        and "2222" in res.stdout
        and "deploy" in res.stdout
    )
    assert "backup_max_age_hours: 6" in res.stdout
    assert "settings_file: /srv/app/settings/mahavishnu.yaml" in res.stdout
    assert "SENTINEL-inv-pw" not in res.stdout
    data = json.loads(
        run("inventory", "-i", str(inv), "--format", "json", tool="readiness", cwd=tmp_path).stdout
    )
    assert data["hosts"][0]["profile"]["thresholds"]["backup_max_age_hours"] == 6
    assert "SENTINEL-inv-pw" not in json.dumps(data)
