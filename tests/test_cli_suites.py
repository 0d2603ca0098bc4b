"""The suite tasks as users run them: real audits of local app trees, subprocess exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.registry import all_checks
from tests.services.apps import write_app

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SUITE_TASKS = ["check-config", "run-integration-tests", "run-benchmarks", "run-all-tests"]


def run(tmp: Path, *args: str, tool: str = "readiness") -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / tool)]
    if tool == "invoke":
        argv += ["--search-root", str(ROOT)]
    return subprocess.run(
        [*argv, *args],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """Two local hosts: ``local`` (group eu, a sound app) and ``local2`` (group us, weak secret)."""
    good = write_app(tmp_path / "good")
    weak = write_app(tmp_path / "weak", env={"MAHAVISHNU_AUTH__SECRET": "tooshort"})
    inventory = {
        "all": {
            "children": {
                "eu": {"hosts": {"local": _local(good)}},
                "us": {"hosts": {"local2": _local(weak)}},
            }
        }
    }
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def _local(app: Path) -> dict[str, Any]:
    return {"ansible_connection": "local", "readiness": {"app_root": str(app)}}


def audit(inv: Path, task: str, *args: str, tool: str = "readiness") -> Any:
    return run(inv.parent, task, "-i", str(inv), "--quiet", *args, tool=tool)


def test_check_config_exits_0_and_prints_the_gate_table_when_the_gates_pass(fleet: Path) -> None:
    res = audit(fleet, "check-config", "--hosts", "eu", "-c", "environment,configuration")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "QUALITY GATES (check-config): PASS, exit 0" in res.stdout
    lines = res.stdout.splitlines()
    assert any(ln.split()[:5] == ["configuration", "100", "%", "100", "%"] for ln in lines)
    assert any(ln.startswith("security") and "✓ PASS" in ln for ln in lines)


def test_a_failing_critical_gate_exits_1_with_fleet_and_group_rows_in_json(fleet: Path) -> None:
    res = audit(
        fleet, "check-config", "--hosts", "all", "-c", "environment,configuration", "--json"
    )
    assert res.returncode == 1, res.stderr
    data = json.loads(res.stdout)
    gates = data["quality_gates"]
    assert (data["exit_code"], data["suite"], gates["verdict"]) == (1, "check-config", "fail")
    config = next(r for r in gates["fleet"] if r["gate"] == "configuration")
    assert (config["passed"], config["failed"], config["measured"]) == (3, 1, 75.0)
    by_group = {(r["scope"], r["gate"]): r["verdict"] for r in gates["groups"]}
    assert by_group[("eu", "configuration")] == "pass"
    assert by_group[("us", "configuration")] == "fail"
    assert by_group[("us", "security")] == "pass"


def test_only_non_critical_gate_failures_exit_3(fleet: Path) -> None:
    profile = fleet.parent / "lenient.yml"
    gates = {"configuration": {"critical": False}, "security": {"critical": False}}
    profile.write_text(yaml.safe_dump({"quality_gates": gates}))
    res = audit(
        fleet, "check-config", "--hosts", "all", "-c", "configuration", "--profile", str(profile)
    )
    assert res.returncode == 3, res.stdout + res.stderr
    assert "QUALITY GATES (check-config): WARN, exit 3" in res.stdout
    assert "FAIL (non-critical)" in res.stdout


def test_a_gate_s_description_is_accepted_on_a_built_in_gate_and_a_new_one(fleet: Path) -> None:
    # docs/suites.md and GATE_KEYS accept `description`; the profile schema refused it on
    # every gate ("unknown profile key 'quality_gates.configuration.description'", exit 2).
    profile = fleet.parent / "described.yml"
    gates = {
        "configuration": {"critical": False, "description": "the guide: 100 % pass rate"},
        "security": {"critical": False, "description": "the guide: 100 % pass rate"},
        "ops": {"category": "operations", "min_pass_rate": 50, "description": "runbooks"},
    }
    profile.write_text(yaml.safe_dump({"quality_gates": gates}))
    args = ("--hosts", "all", "-c", "configuration", "--profile", str(profile), "--json")
    res = audit(fleet, "check-config", *args)
    assert res.returncode == 3, res.stdout + res.stderr
    verdicts = {r["gate"]: r["verdict"] for r in json.loads(res.stdout)["quality_gates"]["fleet"]}
    assert verdicts == {"configuration": "fail", "security": "no_data"}  # ops: not this suite's
    typo = fleet.parent / "typo.yml"
    typo.write_text(yaml.safe_dump({"quality_gates": {"security": {"descripton": "x"}}}))
    res = audit(fleet, "check-config", "--hosts", "all", "--profile", str(typo))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "unknown profile key 'quality_gates.security.descripton'" in res.stderr
    assert "did you mean 'description'?" in res.stderr


def test_fail_on_degraded_makes_a_degraded_result_fail_its_gate(fleet: Path) -> None:
    # No OTLP endpoint: configuration is DEGRADED, environment READY.
    args = ("--hosts", "eu", "-c", "environment,configuration", "--json")
    lenient = audit(fleet, "check-config", *args)
    strict = audit(fleet, "check-config", *args, "--fail-on", "degraded")
    assert lenient.returncode == 0, lenient.stderr
    assert strict.returncode == 1, strict.stderr
    verdicts = {
        r["gate"]: r["verdict"] for r in json.loads(strict.stdout)["quality_gates"]["fleet"]
    }
    assert verdicts == {"configuration": "fail", "security": "pass"}


def test_a_suite_with_nothing_measured_reports_no_data_and_exits_3(fleet: Path) -> None:
    res = audit(fleet, "run-benchmarks", "--hosts", "eu", "-c", "environment", "--format", "table")
    assert res.returncode == 3, res.stdout + res.stderr
    assert "QUALITY GATES (run-benchmarks): WARN, exit 3" in res.stdout
    assert "NO DATA (non-critical)" in res.stdout
    assert "not judged by any gate" in res.stdout


def test_run_all_tests_judges_every_gate(fleet: Path) -> None:
    res = audit(fleet, "run-all-tests", "--hosts", "eu", "-c", "environment", "--json")
    gates = json.loads(res.stdout)["quality_gates"]
    verdicts = {r["gate"]: r["verdict"] for r in gates["fleet"]}
    assert verdicts == {
        "configuration": "pass",
        "integration": "no_data",
        "performance": "no_data",
        "security": "pass",
    }
    assert res.returncode == 3


def test_markdown_output_has_the_gate_table(fleet: Path) -> None:
    res = audit(fleet, "check-config", "--hosts", "all", "-c", "configuration", "--format=markdown")
    assert res.returncode == 1
    assert "### QUALITY GATES (check-config): FAIL, exit 1" in res.stdout
    assert "| fleet | configuration | 100 % | 50 % (1/2) | ✗ FAIL (critical) |" in res.stdout
    assert "| us | configuration | 100 % | 0 % (0/1) | ✗ FAIL (critical) |" in res.stdout


def test_the_production_namespace_runs_the_same_suites_through_invoke(fleet: Path) -> None:
    res = audit(
        fleet,
        "production.check-config",
        "--hosts",
        "all",
        "-c",
        "configuration",
        "--json",
        tool="invoke",
    )
    assert res.returncode == 1, res.stderr
    assert json.loads(res.stdout)["quality_gates"]["exit_code"] == 1
    listing = run(fleet.parent, "--list", tool="invoke").stdout.split()
    for name in SUITE_TASKS:
        assert name in listing
        assert f"production.{name}" in listing
    assert "production.validate" in listing


def test_suite_tasks_accept_validates_flags_and_refuse_bad_ones_with_exit_2(fleet: Path) -> None:
    help_validate = run(fleet.parent, "--help", "validate").stdout
    help_suite = run(fleet.parent, "--help", "run-integration-tests").stdout
    flags = [ln.split()[0] for ln in help_validate.splitlines() if ln.strip().startswith("-")]
    assert flags
    for flag in flags:
        assert flag in help_suite
    bad = audit(fleet, "run-integration-tests", "--hosts", "eu", "--format", "yaml")
    assert bad.returncode == 2
    assert "--format: expected one of" in bad.stderr


def test_validate_fail_on_degraded_exits_1_for_degraded_and_when_blocking(fleet: Path) -> None:
    checks = ("-c", "environment,configuration")
    plain = audit(fleet, "validate", "--hosts", "eu", *checks)
    degraded = audit(fleet, "validate", "--hosts", "eu", *checks, "--fail-on", "degraded")
    blocking = audit(fleet, "validate", "--hosts", "all", *checks, "--fail-on", "degraded")
    assert plain.returncode == 0, plain.stderr
    assert degraded.returncode == 1, degraded.stderr
    assert blocking.returncode == 1, blocking.stderr
    assert "QUALITY GATES" not in plain.stdout


def test_checks_lists_every_registered_check_in_text_and_json(tmp_path: Path) -> None:
    text = run(tmp_path, "checks")
    data = run(tmp_path, "checks", "--format", "json")
    assert text.returncode == data.returncode == 0
    names = [s.name for s in all_checks()]
    assert [c["name"] for c in json.loads(data.stdout)["checks"]] == names
    first_column = [ln.split()[0] for ln in text.stdout.splitlines() if ln and ln[0].isalpha()]
    assert set(names) <= set(first_column)
    assert "suites:" in text.stdout
