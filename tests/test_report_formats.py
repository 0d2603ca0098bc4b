"""The machine and people formats (junit, nagios, prometheus, sarif, tap, html), each read
back by a real consumer, plus a test parametrised from the renderer table so every
registered format renders a fleet with every Status and hostile host text."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from readiness.gates import GateReport, GateRow, QualityGate
from readiness.model import FleetReport, HostReport, Status
from readiness.report import EXTENSIONS, FORMATS, render
from readiness.report._clean import one_line, xml_text
from readiness.report.nagios import NagiosState, nagios_state

from .report_fixtures import CHECKS, HOSTILE, HOSTILE_HOST, TS, every_status_fleet, result

DATA = Path(__file__).parent / "data"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # CI installs it (.ci/run): a missing consumer fails, never skips
        pytest.fail(f"{name} not found: see the apt line of .ci/run")
    return path


# --- every registered format -------------------------------------------------------------


def _hosts_named(out: str, report: FleetReport) -> None:
    for host in report.hosts:
        if host.host != HOSTILE_HOST:
            assert host.host in out


def _json(out: str, report: FleetReport) -> None:
    assert FleetReport.from_dict(json.loads(out)).to_dict() == report.to_dict()


def _no_controls(out: str) -> None:
    """The formats of this module drop NUL and ESC from host text (text, table and
    markdown escaping belongs to the terminal renderers' own tests)."""
    assert "\x00" not in out and "\x1b" not in out


def _junit(out: str, report: FleetReport) -> None:
    _no_controls(out)
    assert len(JUnitXml.fromstring(out.encode())) == len(report.hosts)


NAGIOS_LINE = re.compile(
    r"^READINESS (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+ \| "
    r"(?:[a-z_]+=\d+;\d*;\d*;0;\d+)(?: [a-z_]+=\d+;\d*;\d*;0;\d+)*$"
)


def _nagios(out: str, report: FleetReport) -> None:
    _no_controls(out)
    lines = out.split("\n")
    assert NAGIOS_LINE.match(lines[0]), lines[0]
    assert all("|" not in line for line in lines[1:])  # no host can forge more perfdata


# One consumer-side check per format: a format added to FORMATS without one fails here.
READ_BACK: dict[str, Callable[[str, FleetReport], None]] = {
    "text": _hosts_named,
    "table": _hosts_named,
    "markdown": _hosts_named,
    "json": _json,
    "junit": _junit,
    "nagios": _nagios,
}


def test_every_registered_format_has_a_read_back_check_and_an_extension() -> None:
    assert set(READ_BACK) == set(FORMATS)
    assert set(EXTENSIONS) == set(FORMATS)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_renders_every_status_and_hostile_text(fmt: str) -> None:
    report = every_status_fleet()
    assert {r.status for r in report.results} == set(Status)
    out = render(report, fmt)
    assert out == render(report, fmt)  # deterministic: several sinks give identical bytes
    READ_BACK[fmt](out, report)


# --- JUnit --------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("fail_on", [Status.NOT_READY, Status.DEGRADED])
def test_junit_validates_against_the_schema(tmp_path: Path, fail_on: Status) -> None:
    path = _write(tmp_path, "r.xml", render(every_status_fleet(), "junit", fail_on=fail_on))
    res = subprocess.run(
        [_tool("xmllint"), "--noout", "--schema", str(DATA / "junit.xsd"), str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert "validates" in res.stderr


def _cases(path: Path) -> dict[tuple[str, str], list[object]]:
    xml = JUnitXml.fromfile(str(path))
    return {(suite.name, case.name): list(case.result) for suite in xml for case in suite}


def test_junit_read_back_by_junitparser_maps_each_status(tmp_path: Path) -> None:
    report = every_status_fleet()
    cases = _cases(_write(tmp_path, "r.xml", render(report, "junit")))
    assert len(cases) == len(CHECKS) * (len(Status) + 1) + 1  # + one row for 'gone'
    expected = {
        Status.SKIPPED: Skipped,
        Status.NOT_READY: Failure,
        Status.ERROR: Error,
        Status.UNREACHABLE: Error,
        Status.INTERRUPTED: Error,
    }
    for status in Status:
        for check in CHECKS:
            found = cases[(f"h-{status.value}", check)]
            if status in expected:
                assert [type(r) for r in found] == [expected[status]], (status, found)
            else:  # READY, and DEGRADED while it does not fail the run, pass
                assert found == [], (status, found)
    failure = cases[("h-not_ready", "environment")][0]
    assert isinstance(failure, Failure)
    assert failure.type == "not_ready"
    assert failure.text is not None and "fix environment on h-not_ready" in failure.text
    assert [type(r) for r in cases[("gone", "connection")]] == [Error]


def test_junit_degraded_is_a_failure_when_it_fails_the_run(tmp_path: Path) -> None:
    report = every_status_fleet()
    strict = _cases(_write(tmp_path, "a.xml", render(report, "junit", fail_on=Status.DEGRADED)))
    assert [type(r) for r in strict[("h-degraded", "environment")]] == [Failure]
    explicit = _cases(_write(tmp_path, "b.xml", render(report, "junit", degraded="failure")))
    assert [type(r) for r in explicit[("h-degraded", "environment")]] == [Failure]
    lenient = _cases(_write(tmp_path, "c.xml", render(report, "junit", degraded="pass")))
    assert lenient[("h-degraded", "environment")] == []


def test_junit_hostile_messages_survive_as_text(tmp_path: Path) -> None:
    out = render(every_status_fleet(), "junit")
    assert "<script>" not in out and "<img" not in out and "\x1b" not in out
    cases = _cases(_write(tmp_path, "r.xml", out))
    failure = cases[(HOSTILE_HOST, "environment")][0]
    assert isinstance(failure, Failure)
    assert failure.message == xml_text(one_line(HOSTILE))
    assert "]]>" in failure.message and "<script>alert(1)</script>" in failure.message
    assert failure.text is not None and "<img src=x onerror=" in failure.text
    assert "second line" in failure.text  # the body keeps the message's lines


def test_junit_durations_and_counts() -> None:
    xml = JUnitXml.fromstring(render(every_status_fleet(), "junit").encode())
    suite = next(s for s in xml if s.name == "h-not_ready")
    assert suite.tests == len(CHECKS) and suite.failures == len(CHECKS)
    assert suite.time == 1.5
    assert all(case.time == 0.25 for case in suite)


# --- Nagios ---------------------------------------------------------------------------


def _fleet(*statuses: Status, **kw: object) -> FleetReport:
    hosts = tuple(
        HostReport(f"n{i}", tuple(result(f"n{i}", c, s) for c in CHECKS))
        for i, s in enumerate(statuses)
    )
    return FleetReport(hosts, generated_at=TS, checks=CHECKS, **kw)  # type: ignore[arg-type]


def _gates(critical: bool) -> GateReport:
    gate = QualityGate("security", "security", 100.0, critical=critical)
    return GateReport((GateRow(gate, "fleet", passed=1, failed=1),))


@pytest.mark.parametrize(
    ("report", "fail_on", "state", "text"),
    [
        (_fleet(Status.READY, Status.READY), Status.NOT_READY, NagiosState.OK, "2/2 hosts ready"),
        (_fleet(Status.READY, Status.SKIPPED), Status.NOT_READY, NagiosState.OK, "2/2 hosts ready"),
        (
            _fleet(Status.READY, Status.DEGRADED),
            Status.NOT_READY,
            NagiosState.WARNING,
            "1/2 hosts degraded: n1 (environment, configuration, database_migration)",
        ),
        (
            _fleet(Status.READY, Status.DEGRADED),
            Status.DEGRADED,
            NagiosState.CRITICAL,
            "1/2 hosts not ready: n1 (environment, configuration, database_migration)",
        ),
        (
            _fleet(Status.NOT_READY, Status.DEGRADED, Status.UNREACHABLE),
            Status.NOT_READY,
            NagiosState.CRITICAL,
            "2/3 hosts not ready: n0 (environment, configuration, database_migration), "
            "n2 (unreachable)",
        ),
        (_fleet(Status.ERROR), Status.NOT_READY, NagiosState.CRITICAL, "1/1 hosts not ready"),
        (
            _fleet(Status.READY, Status.INTERRUPTED, interrupted=True, interrupted_by="SIGTERM"),
            Status.NOT_READY,
            NagiosState.UNKNOWN,
            "run interrupted (SIGTERM): 1/2 hosts audited",
        ),
        (_fleet(), Status.NOT_READY, NagiosState.UNKNOWN, "no host selected"),
        (
            _fleet(Status.READY, gates=_gates(critical=False)),
            Status.NOT_READY,
            NagiosState.WARNING,
            "quality gates warn, 1/1 hosts ready",
        ),
        (
            _fleet(Status.READY, gates=_gates(critical=True)),
            Status.NOT_READY,
            NagiosState.CRITICAL,
            "quality gates fail, 1/1 hosts ready",
        ),
    ],
)
def test_nagios_state_and_line_for_each_fleet_state(
    report: FleetReport, fail_on: Status, state: NagiosState, text: str
) -> None:
    assert nagios_state(report, fail_on) is state
    first = render(report, "nagios", fail_on=fail_on).split("\n")[0]
    assert first.startswith(f"READINESS {state.name} - {text}"), first
    _nagios(first, report)
    n = len(report.hosts)
    assert f"ready={sum(h.status is Status.READY for h in report.hosts)};;;0;{n}" in first


def test_nagios_perfdata_thresholds_follow_fail_on() -> None:
    report = _fleet(Status.READY, Status.DEGRADED)
    assert " degraded=1;0;;0;2 " in render(report, "nagios")  # WARNING above 0
    assert " degraded=1;;0;0;2 " in render(report, "nagios", fail_on=Status.DEGRADED)
    assert " not_ready=0;;0;0;2 " in render(report, "nagios")


def test_nagios_names_at_most_five_hosts_and_lists_problems_below() -> None:
    report = _fleet(*([Status.NOT_READY] * 8))
    lines = render(report, "nagios").split("\n")
    assert lines[0].count("(environment") == 5 and ", … 3 more |" in lines[0]
    assert len(lines) == 1 + 8 * len(CHECKS)
    assert lines[1] == "n0: NOT_READY environment - environment is not_ready"


def test_nagios_hostile_message_stays_on_its_line() -> None:
    lines = render(every_status_fleet(), "nagios").split("\n")
    hostile = [line for line in lines if line.startswith(HOSTILE_HOST)]
    assert hostile and all("<script>" in line and "| perf" not in line for line in hostile)
    assert not any(line.startswith("second line") for line in lines)


# --- through the command a user types -----------------------------------------------------


def _validate(tmp_path: Path, app_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from .test_cli import inventory_for, run

    inv = inventory_for(tmp_path, app_root)
    return run(
        "validate",
        "-i",
        str(inv),
        "-c",
        "environment,configuration",
        *args,
        cwd=tmp_path,
        tool="readiness",
    )


def test_validate_format_junit_through_the_cli(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    res = _validate(tmp_path, app_tree(), "--format", "junit", "--save", "out/r.xml")
    assert res.returncode == 0, res.stderr
    saved = tmp_path / "out" / "r.xml"
    assert saved.read_text() == res.stdout
    cases = _cases(saved)
    assert set(cases) == {("local", "environment"), ("local", "configuration")}
    lint = subprocess.run(
        [_tool("xmllint"), "--noout", "--schema", str(DATA / "junit.xsd"), str(saved)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert lint.returncode == 0, lint.stderr


def test_nagios_task_exit_codes_follow_the_plugin_convention(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    from .test_cli import inventory_for, run

    inv = str(inventory_for(tmp_path, app_tree()))
    ok = run("nagios", "-i", inv, "-c", "environment", cwd=tmp_path, tool="readiness")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("READINESS OK - 1/1 hosts ready | ")
    assert ok.stderr == ""
    crit = run("nagios", "-c", "environment")  # the bundled example has an insecure default
    assert crit.returncode == 2, crit.stdout + crit.stderr
    assert crit.stdout.startswith("READINESS CRITICAL - 1/1 hosts not ready: local (environment)")
    unknown = run("nagios", "-c", "nope", cwd=tmp_path, tool="readiness")
    assert unknown.returncode == 3
    assert unknown.stdout.startswith("READINESS UNKNOWN - unknown check 'nope'")
    # --format nagios elsewhere keeps readiness' exit codes (1 = not ready, not CRITICAL's 2)
    fmt = run("validate", "-c", "environment", "--format", "nagios")
    assert fmt.returncode == 1
    assert fmt.stdout.startswith("READINESS CRITICAL - ")
