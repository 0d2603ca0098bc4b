"""The result model: ordering, verdicts, exit codes and round trips."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from readiness.model import SCHEMA, CheckResult, FleetReport, HostReport, Status


def _r(status: Status, name: str = "environment", host: str = "h1") -> CheckResult:
    return CheckResult(name, status, "msg", {"k": 1}, ("do x",), host=host)


def test_statuses_are_ordered_by_severity() -> None:
    ordered = [
        Status.SKIPPED,
        Status.READY,
        Status.DEGRADED,
        Status.NOT_READY,
        Status.ERROR,
        Status.UNREACHABLE,
    ]
    shuffled = [ordered[i] for i in (3, 0, 5, 1, 4, 2)]
    assert sorted(shuffled) == ordered
    assert max(Status.READY, Status.DEGRADED) is Status.DEGRADED


def test_statuses_serialize_as_the_original_lowercase_strings() -> None:
    assert [s.value for s in Status] == [
        "skipped",
        "ready",
        "degraded",
        "not_ready",
        "error",
        "unreachable",
        "interrupted",
    ]
    assert Status.parse("NOT-READY") is Status.NOT_READY
    with pytest.raises(ValueError, match="valid"):
        Status.parse("green")


def test_result_predicates_follow_the_original_api() -> None:
    assert _r(Status.READY).is_ready()
    assert _r(Status.DEGRADED).is_degraded()
    assert _r(Status.NOT_READY).is_not_ready()
    assert _r(Status.UNREACHABLE).is_not_ready()
    assert not _r(Status.SKIPPED).is_not_ready()


def test_check_result_round_trips_through_a_dict() -> None:
    r = CheckResult(
        "backup_restore",
        Status.DEGRADED,
        "old backup",
        {"age_h": 30},
        ("run backup",),
        timestamp=datetime(2025, 2, 5, 10, 30, tzinfo=timezone.utc),
        host="db1",
        duration_s=0.25,
    )
    data = r.to_dict()
    assert data["status"] == "degraded"
    assert data["timestamp"] == "2025-02-05T10:30:00Z"
    assert set(data) == {
        "check_name",
        "status",
        "message",
        "details",
        "recommendations",
        "timestamp",
        "host",
        "duration_s",
    }
    assert CheckResult.from_dict(data) == r


def test_fleet_exit_code_is_zero_for_ready_degraded_and_skipped() -> None:
    fleet = FleetReport(
        (HostReport("a", (_r(Status.READY), _r(Status.DEGRADED, "x"), _r(Status.SKIPPED, "y"))),)
    )
    assert fleet.overall_status is Status.DEGRADED
    assert fleet.exit_code() == 0
    assert fleet.exit_code(fail_on=Status.DEGRADED) == 1  # the --fail-on threshold reached


@pytest.mark.parametrize("bad", [Status.NOT_READY, Status.ERROR, Status.UNREACHABLE])
def test_fleet_exit_code_is_one_when_anything_blocks(bad: Status) -> None:
    fleet = FleetReport((HostReport("a", (_r(Status.READY),)), HostReport("b", (_r(bad),))))
    assert fleet.exit_code() == 1
    assert fleet.exit_code(fail_on=Status.DEGRADED) == 1


def test_an_interrupted_run_exits_128_plus_the_signal_whatever_its_hosts_say() -> None:
    fleet = FleetReport((HostReport("a", (_r(Status.READY),)),), interrupted=True)
    assert fleet.exit_code() == 130
    term = FleetReport(fleet.hosts, interrupted=True, interrupted_by="SIGTERM")
    assert term.exit_code() == 143
    assert FleetReport.from_dict(term.to_dict()).exit_code() == 143


def test_summary_counts_every_status_and_host() -> None:
    fleet = FleetReport(
        (
            HostReport("a", (_r(Status.READY), _r(Status.NOT_READY, "x"))),
            HostReport("b", (_r(Status.READY),)),
        )
    )
    s = fleet.summary()
    assert (s["total"], s["ready"], s["not_ready"], s["hosts"]) == (3, 2, 1, 2)


def test_fleet_report_round_trips_through_the_versioned_schema() -> None:
    fleet = FleetReport(
        (HostReport("a", (_r(Status.READY, host="a"),), address="10.0.0.1", groups=("web",)),)
    )
    data = fleet.to_dict()
    assert data["schema"] == SCHEMA
    assert data["hosts"][0]["checks"][0]["status"] == "ready"
    again = FleetReport.from_dict(data)
    assert again.hosts[0].results == fleet.hosts[0].results
    with pytest.raises(ValueError, match="schema"):
        FleetReport.from_dict({"schema": "other/9"})


def test_gates_verdict_and_exit_code_round_trip_through_json() -> None:
    from readiness.gates import QualityGate, evaluate_gates

    fleet = FleetReport(
        (HostReport("a", (_r(Status.READY),), groups=("eu",)),),
        checks=("environment",),
    )
    gates = evaluate_gates(
        fleet,
        [QualityGate("configuration", "configuration", 100, critical=False)],
        categories={"environment": ("configuration",)},
    )
    suite = FleetReport(fleet.hosts, suite="check-config", gates=gates, fail_on=Status.DEGRADED)
    data = suite.to_dict()
    assert (data["verdict"], data["exit_code"], data["fail_on"]) == ("pass", 0, "degraded")
    back = FleetReport.from_dict(data)
    assert back.gates == gates
    assert (back.suite, back.fail_on, back.exit_code()) == ("check-config", Status.DEGRADED, 0)
    assert back.to_dict() == data


def test_extra_never_overrides_the_models_own_exit_code() -> None:
    fleet = FleetReport((HostReport("a", (_r(Status.NOT_READY, "x"),)),), extra={"exit_code": 0})
    assert fleet.to_dict()["exit_code"] == 1
