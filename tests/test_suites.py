"""Suites: selection, running suites, gate tables in every format, the check catalog."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from readiness.errors import ProfileError, UsageError
from readiness.model import FleetReport, Outcome, Status
from readiness.registry import CheckContext, CheckSpec, all_checks
from readiness.report import render
from readiness.suites import (
    SUITES,
    QualityGate,
    Verdict,
    get_suite,
    render_catalog,
    run_suite,
    select_checks,
)
from tests.services.apps import LocalTestHost

from .gate_helpers import CONFIG, INTEGRATION, fleet, host, judge

# --- suite selection ------------------------------------------------------------------------


def spec(name: str, cats: Sequence[str], suites: Sequence[str], opt_in: bool = False) -> CheckSpec:
    def evaluate(ctx: CheckContext) -> Outcome:
        return Outcome(Status.READY, "ok")

    return CheckSpec(name, evaluate, name, name, tuple(cats), tuple(suites), opt_in=opt_in)


SPECS = [
    spec("environment", ["configuration", "security"], ["validate"]),
    spec("db", ["configuration", "integration"], ["validate"]),
    spec("config_validity", ["configuration"], ["production"]),
    spec("security_settings", ["security"], ["production"]),
    spec("adapter_health", ["integration"], ["production"]),
    spec("workflow", ["operations"], ["production"]),
    spec("latency", ["performance"], []),
    spec("soak", ["performance"], [], opt_in=True),
]


def names(suite: str) -> list[str]:
    return [s.name for s in select_checks(get_suite(suite), SPECS)]


def test_check_config_runs_production_configuration_and_security_checks_only() -> None:
    assert names("check-config") == ["config_validity", "security_settings"]


def test_category_suites_select_by_category_from_any_registry_suite() -> None:
    assert names("run-integration-tests") == ["db", "adapter_health"]
    assert names("run-benchmarks") == ["latency", "soak"]  # opt-in checks self-skip until enabled


def test_run_all_tests_is_the_production_suite_plus_integration_and_performance() -> None:
    assert names("run-all-tests") == [
        "db",
        "config_validity",
        "security_settings",
        "adapter_health",
        "workflow",
        "latency",
        "soak",
    ]


def test_validate_selects_exactly_the_registered_validate_checks() -> None:
    expected = [s.name for s in all_checks() if "validate" in s.suites]
    assert [s.name for s in select_checks(get_suite("validate"))] == expected
    assert names("validate") == ["environment", "db"]


def test_only_validate_is_judged_by_statuses_and_every_other_suite_by_gates() -> None:
    assert [n for n, s in SUITES.items() if not s.gated] == ["validate"]
    assert get_suite("run-all-tests").applies_to(QualityGate("x", "operations", 50))
    assert not get_suite("check-config").applies_to(INTEGRATION)


def test_an_unknown_suite_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="run-all-tests"):
        get_suite("run-everything")


# --- running suites on the local host -------------------------------------------------------


def local(app: Path, extra: Mapping[str, Any] | None = None, name: str = "local") -> LocalTestHost:
    return LocalTestHost(name=name, vars={"readiness": {"app_root": str(app), **(extra or {})}})


def test_a_suite_without_registered_checks_says_so_and_reports_no_data(
    app_tree: Callable[..., Path],
) -> None:
    run = run_suite("run-benchmarks", [local(app_tree())], specs=[])
    assert run.exit_code == 3
    assert run.report.results == []
    assert [h.host for h in run.report.hosts] == ["local"]
    assert run.gates is not None
    assert "no check registered (checks in category performance)" in run.gates.notes[0]
    assert "no data" in render(run.report, "text")
    assert "no check registered" in render(run.report, "text")


def test_check_config_on_a_real_app_attaches_gates_to_the_report(
    app_tree: Callable[..., Path],
) -> None:
    run = run_suite("check-config", [local(app_tree())], ["environment", "configuration"])
    data = run.report.to_dict()
    assert run.exit_code == 0
    assert data["suite"] == "check-config"
    assert data["exit_code"] == 0
    assert [r["gate"] for r in data["quality_gates"]["fleet"]] == ["configuration", "security"]
    assert data["quality_gates"]["fleet"][0]["passed"] == 2


def test_a_weak_secret_fails_the_critical_configuration_gate(
    app_tree: Callable[..., Path],
) -> None:
    app = app_tree(env={"MAHAVISHNU_AUTH__SECRET": "tooshort"})
    run = run_suite("check-config", [local(app)], ["configuration"])
    assert run.gates is not None
    assert run.gates.fleet_rows[0].verdict is Verdict.FAIL
    assert run.exit_code == 1


def test_gates_from_a_profile_mapping_override_the_defaults(
    app_tree: Callable[..., Path],
) -> None:
    app = app_tree(env={"MAHAVISHNU_AUTH__SECRET": "tooshort"})
    lenient = {"quality_gates": {"configuration": {"critical": False}}}
    run = run_suite("check-config", [local(app)], ["configuration"], profile=lenient)
    assert run.exit_code == 3


def test_hosts_that_disagree_on_gates_are_refused(app_tree: Callable[..., Path]) -> None:
    app = app_tree()
    strict = {"quality_gates": {"integration": {"min_pass_rate": 100}}}
    hosts = [local(app), local(app, strict, name="other")]
    with pytest.raises(ProfileError, match="differ between hosts"):
        run_suite("run-integration-tests", hosts, ["environment"])


def test_validate_through_run_suite_keeps_status_exit_codes_and_no_gates(
    app_tree: Callable[..., Path],
) -> None:
    run = run_suite("validate", [local(app_tree())], ["configuration"], fail_on=Status.DEGRADED)
    assert run.gates is None
    assert "quality_gates" not in run.report.to_dict()
    assert run.exit_code == 1  # the app has no OTLP endpoint: DEGRADED, --fail-on reached


# --- renderers and the catalog --------------------------------------------------------------


def suite_report() -> FleetReport:
    report = fleet(host("a", ["eu"], cfg=Status.READY), host("b", ["us"], cfg=Status.NOT_READY))
    gates = judge(report, CONFIG)
    return FleetReport(hosts=report.hosts, suite="check-config", gates=gates)


@pytest.mark.parametrize("fmt", ["text", "table", "markdown"])
def test_every_human_format_shows_the_fleet_and_group_gate_tables(fmt: str) -> None:
    text = render(suite_report(), fmt)
    assert "QUALITY GATES (check-config): FAIL, exit 1" in text
    assert "50 % (1/2)" in text
    assert "FAIL (critical)" in text
    assert "100 % (1/1)" in text  # group eu
    assert "0 % (0/1)" in text  # group us


def test_json_carries_the_gates_and_the_gate_exit_code() -> None:
    data = json.loads(render(suite_report(), "json"))
    assert data["exit_code"] == 1
    assert data["quality_gates"]["fleet"][0]["verdict"] == "fail"
    assert [g["scope"] for g in data["quality_gates"]["groups"]] == ["eu", "us"]


def test_a_validate_report_renders_no_gate_table() -> None:
    assert "QUALITY GATES" not in render(fleet(host("a", cfg=Status.READY)), "text")


def test_the_catalog_lists_every_check_with_the_suites_that_run_it() -> None:
    data = json.loads(render_catalog("json"))
    assert [c["name"] for c in data["checks"]] == [s.name for s in all_checks()]
    env = next(c for c in data["checks"] if c["name"] == "environment")
    assert env["run_by"] == ["validate"]
    assert "required_env" in env["profile_keys"]
    assert [s["name"] for s in data["suites"]] == list(SUITES)
    text = render_catalog("text")
    assert text.splitlines()[0] == all_checks()[0].name  # one block per check (docs/cli.md)
    assert "  profile keys: " in text and "  run by:" in text
    with pytest.raises(UsageError):
        render_catalog("yaml")
