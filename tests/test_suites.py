"""Suites and quality gates: selection, gate math, exit codes, profile gates, gate tables."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from readiness.errors import ProfileError, UsageError
from readiness.model import CheckResult, FleetReport, HostReport, Outcome, Status
from readiness.registry import CheckContext, CheckSpec, all_checks, default_profile
from readiness.report import render
from readiness.suites import (
    SUITES,
    QualityGate,
    Verdict,
    evaluate_gates,
    gates_from_profile,
    get_suite,
    render_catalog,
    run_suite,
    select_checks,
)
from tests.services.apps import LocalTestHost

CATS: dict[str, tuple[str, ...]] = {
    "cfg": ("configuration",),
    "sec": ("security",),
    "cfgsec": ("configuration", "security"),
    "integ": ("integration",),
    "bench": ("performance",),
}
CONFIG = QualityGate("configuration", "configuration", 100, critical=True)
SECURITY = QualityGate("security", "security", 100, critical=True)
INTEGRATION = QualityGate("integration", "integration", 90, critical=True)
PERFORMANCE = QualityGate("performance", "performance", 100, critical=False)


def host(name: str, groups: Sequence[str] = (), **statuses: Status) -> HostReport:
    results = tuple(CheckResult(c, s, "", host=name) for c, s in statuses.items())
    return HostReport(name, results, groups=tuple(groups))


def fleet(*hosts: HostReport, interrupted: bool = False) -> FleetReport:
    return FleetReport(hosts=hosts, interrupted=interrupted)


def judge(report: FleetReport, *gates: QualityGate, **kw: Any) -> Any:
    return evaluate_gates(report, gates, categories=CATS, **kw)


def row(gates: Any, gate: str, scope: str = "fleet") -> Any:
    return next(r for r in gates.rows if r.gate.name == gate and r.scope == scope)


# --- gate math ------------------------------------------------------------------------------


def test_ready_and_degraded_pass_skipped_is_left_out_and_the_rest_fail() -> None:
    report = fleet(
        host("a", cfg=Status.READY, cfgsec=Status.DEGRADED),
        host("b", cfg=Status.SKIPPED, cfgsec=Status.NOT_READY),
        host("c", cfg=Status.ERROR, cfgsec=Status.UNREACHABLE),
    )
    r = row(judge(report, CONFIG), "configuration")
    assert (r.passed, r.failed, r.skipped) == (2, 3, 1)
    assert r.measured == pytest.approx(40.0)
    assert r.verdict is Verdict.FAIL


def test_a_check_counts_toward_every_category_it_has() -> None:
    report = fleet(host("a", cfgsec=Status.NOT_READY, cfg=Status.READY))
    gates = judge(report, CONFIG, SECURITY)
    assert row(gates, "configuration").measured == pytest.approx(50.0)
    assert row(gates, "security").measured == pytest.approx(0.0)


def test_ninety_percent_gate_passes_at_nine_of_ten_and_fails_at_eight() -> None:
    nine = fleet(*[host(f"h{i}", integ=Status.READY if i else Status.ERROR) for i in range(10)])
    eight = fleet(
        *[host(f"h{i}", integ=Status.READY if i > 1 else Status.ERROR) for i in range(10)]
    )
    assert row(judge(nine, INTEGRATION), "integration").verdict is Verdict.PASS
    assert row(judge(eight, INTEGRATION), "integration").verdict is Verdict.FAIL


def test_a_gate_without_results_has_no_data_and_exits_three_even_when_critical() -> None:
    gates = judge(fleet(host("a", cfg=Status.READY)), CONFIG, INTEGRATION)
    integ = row(gates, "integration")
    assert integ.verdict is Verdict.NO_DATA
    assert integ.measured is None
    assert gates.exit_code == 3


def test_a_gate_whose_results_are_all_skipped_has_no_data() -> None:
    gates = judge(fleet(host("a", bench=Status.SKIPPED)), PERFORMANCE)
    r = row(gates, "performance")
    assert r.verdict is Verdict.NO_DATA
    assert r.skipped == 1
    assert r.measured_text == "no data (1 skipped)"


def test_every_gate_passing_exits_zero() -> None:
    report = fleet(host("a", cfgsec=Status.READY, integ=Status.DEGRADED, bench=Status.READY))
    gates = judge(report, CONFIG, SECURITY, INTEGRATION, PERFORMANCE)
    assert [r.verdict for r in gates.fleet_rows] == [Verdict.PASS] * 4
    assert (gates.exit_code, gates.verdict) == (0, "pass")


def test_a_failing_critical_gate_exits_one_even_beside_a_non_critical_failure() -> None:
    report = fleet(host("a", cfg=Status.NOT_READY, bench=Status.NOT_READY))
    assert judge(report, CONFIG, PERFORMANCE).exit_code == 1


def test_only_non_critical_failures_exit_three() -> None:
    report = fleet(host("a", cfg=Status.READY, bench=Status.NOT_READY))
    gates = judge(report, CONFIG, PERFORMANCE)
    assert row(gates, "performance").verdict is Verdict.FAIL
    assert (gates.exit_code, gates.verdict) == (3, "warn")


def test_degraded_fails_a_gate_when_degraded_does_not_pass() -> None:
    report = fleet(host("a", cfg=Status.DEGRADED))
    assert judge(report, CONFIG).exit_code == 0
    assert judge(report, CONFIG, degraded_passes=False).exit_code == 1


def test_an_interrupted_run_exits_one_whatever_the_gates_say() -> None:
    assert judge(fleet(host("a", cfg=Status.READY), interrupted=True), CONFIG).exit_code == 1


def test_gates_are_measured_per_inventory_group_as_well() -> None:
    report = fleet(
        host("w1", ["web", "eu"], integ=Status.READY),
        host("w2", ["web", "us"], integ=Status.ERROR),
        host("d1", ["db", "eu"], integ=Status.READY),
        host("x"),
    )
    gates = judge(report, INTEGRATION)
    assert [r.scope for r in gates.rows] == ["fleet", "web", "eu", "us", "db"]
    assert row(gates, "integration", "eu").measured == pytest.approx(100.0)
    assert row(gates, "integration", "us").verdict is Verdict.FAIL
    assert row(gates, "integration", "web").measured == pytest.approx(50.0)


def test_the_exit_code_comes_from_the_fleet_rows_not_from_a_failing_group() -> None:
    hosts = [host(f"e{i}", ["eu"], integ=Status.READY) for i in range(9)]
    report = fleet(*hosts, host("u", ["us"], integ=Status.ERROR))
    gates = judge(report, INTEGRATION)
    assert row(gates, "integration", "us").verdict is Verdict.FAIL
    assert row(gates, "integration").verdict is Verdict.PASS
    assert gates.exit_code == 0


def test_group_rows_can_be_turned_off() -> None:
    gates = judge(
        fleet(host("a", ["eu"], cfg=Status.READY)), CONFIG, group_by_inventory_group=False
    )
    assert [r.scope for r in gates.rows] == ["fleet"]


def test_checks_in_ungated_categories_are_named_in_a_note() -> None:
    gates = evaluate_gates(
        fleet(host("a", cfg=Status.READY, ops=Status.NOT_READY)),
        [CONFIG],
        categories={**CATS, "ops": ("operations",)},
    )
    assert gates.exit_code == 0
    assert any("ops" in n for n in gates.notes)


def test_gate_report_serializes_fleet_and_group_rows() -> None:
    data = judge(fleet(host("a", ["eu"], cfg=Status.NOT_READY)), CONFIG).to_dict()
    assert data["verdict"] == "fail"
    assert data["exit_code"] == 1
    assert data["fleet"][0]["measured"] == 0.0
    assert data["fleet"][0]["required"] == 100
    assert data["groups"][0]["scope"] == "eu"
    assert data["gates"] == [CONFIG.to_dict()]


# --- gates from the profile -----------------------------------------------------------------


def test_default_profile_holds_the_guide_s_four_gates() -> None:
    gates = {g.name: g for g in gates_from_profile(default_profile())}
    assert {n: (g.category, g.min_pass_rate, g.critical) for n, g in gates.items()} == {
        "configuration": ("configuration", 100, True),
        "integration": ("integration", 90, True),
        "performance": ("performance", 100, False),
        "security": ("security", 100, True),
    }


def test_a_profile_can_tighten_disable_and_add_gates() -> None:
    from readiness.profile import merge_layers

    layer = {
        "quality_gates": {
            "integration": {"min_pass_rate": 95},
            "performance": None,
            "ops": {"category": "operations", "min_pass_rate": 80, "critical": False},
        }
    }
    gates = {g.name: g for g in gates_from_profile(merge_layers(default_profile(), [("p", layer)]))}
    assert gates["integration"].min_pass_rate == 95
    assert gates["integration"].critical is True
    assert "performance" not in gates
    assert gates["ops"].category == "operations"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"category": "speed"}, "category"),
        ({"min_pass_rate": 120}, "min_pass_rate"),
        ({"min_pass_rate": "90%"}, "min_pass_rate"),
        ({"critical": "yes"}, "critical"),
        ({"min_rate": 90}, "unknown keys"),
        ("strict", "must be a mapping"),
    ],
)
def test_a_malformed_gate_is_refused_with_its_key(spec: Any, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        gates_from_profile({"quality_gates": {"integration": spec}})


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
    assert text.splitlines()[0].split() == [
        "check",
        "categories",
        "suite",
        "run",
        "by",
        "examines",
        "profile",
        "keys",
    ]
    with pytest.raises(UsageError):
        render_catalog("yaml")
