"""The machine and people formats (junit, nagios, prometheus, sarif, tap, html), each read
back by a real consumer, plus a test parametrised from the renderer table so every
registered format renders a fleet with every Status and hostile host text."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from readiness.model import FleetReport, Status
from readiness.report import EXTENSIONS, FORMATS, render
from readiness.report._clean import one_line, xml_text

from .report_fixtures import CHECKS, HOSTILE, HOSTILE_HOST, every_status_fleet

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


# One consumer-side check per format: a format added to FORMATS without one fails here.
READ_BACK: dict[str, Callable[[str, FleetReport], None]] = {
    "text": _hosts_named,
    "table": _hosts_named,
    "markdown": _hosts_named,
    "json": _json,
    "junit": _junit,
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
