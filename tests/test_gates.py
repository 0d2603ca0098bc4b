"""readiness.gates: pass-rate math, no data, critical vs non-critical, groups, profile gates."""

from __future__ import annotations

from typing import Any

import pytest

from readiness.errors import ProfileError
from readiness.gates import GateReport, Verdict, evaluate_gates, gates_from_profile
from readiness.model import FleetReport, Status
from readiness.registry import default_profile

from .gate_helpers import (
    CATS,
    CONFIG,
    INTEGRATION,
    PERFORMANCE,
    SECURITY,
    fleet,
    host,
    judge,
    row,
)

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


def test_an_interrupted_run_fails_its_gates_and_the_report_exits_130() -> None:
    report = fleet(host("a", cfg=Status.READY), interrupted=True)
    gates = judge(report, CONFIG)
    assert gates.verdict == "fail"
    suite = FleetReport(report.hosts, interrupted=True, suite="check-config", gates=gates)
    assert suite.exit_code() == 130  # the interruption decides, not the gates


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


def test_a_gate_report_round_trips_through_its_json_shape() -> None:
    report = fleet(host("a", ["eu"], cfg=Status.READY), host("b", ["us"], cfg=Status.NOT_READY))
    gates = judge(report, CONFIG, PERFORMANCE)
    assert GateReport.from_dict(gates.to_dict()) == gates


@pytest.mark.parametrize(("passed", "failed"), [(2499, 1), (20000, 1)])
def test_a_failed_gate_never_shows_its_required_rate_as_measured(passed: int, failed: int) -> None:
    """One failure in 2,500 results (250 hosts x 10 checks) is 99.96 %: the HTML report
    showed "100.0 % (2499/2500)" and one in 20,001 showed "100 %" in text, markdown and JSON
    ("measured": 100.0) beside a failed 100 % security gate. Rates are cut, not rounded up."""
    from readiness.gates import GateRow
    from readiness.report import render

    gates = GateReport((GateRow(SECURITY, "fleet", passed=passed, failed=failed),))
    report = FleetReport((host("a", sec=Status.READY),), suite="check-config", gates=gates)
    assert report.exit_code() == 1
    counts = f"({passed}/{passed + failed})"
    for fmt in ("text", "markdown", "html", "json"):
        out = render(report, fmt)
        assert counts in out or fmt == "json", fmt
        assert f"100 % {counts}" not in out and f"100.0 % {counts}" not in out, fmt
    measured = gates.to_dict()["fleet"][0]["measured"]
    assert measured < 100 and measured == (99.96 if passed == 2499 else 99.99)
    assert "99.9 %" in render(report, "html")
    nine_tenths = GateRow(INTEGRATION, "fleet", passed=9, failed=1)  # == the bar: shown as is
    assert (nine_tenths.measured_text, nine_tenths.to_dict()["measured"]) == ("90 % (9/10)", 90.0)
