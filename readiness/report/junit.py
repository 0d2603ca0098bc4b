"""JUnit XML: one ``<testsuite>`` per host, one ``<testcase>`` per check.

The common Jenkins/GitLab/GitHub dialect (tests/data/junit.xsd is the schema the tests
validate against). NOT_READY is a ``<failure>``; ERROR, UNREACHABLE and INTERRUPTED are
``<error>`` (the check could not judge); SKIPPED is ``<skipped>``; DEGRADED is a
``<failure>`` only when it fails the run (``--fail-on degraded``), otherwise a pass whose
message and recommendations are kept in ``<system-out>``. Characters XML 1.0 forbids are
removed; ElementTree escapes the rest, so ``]]>`` or ``<script>`` in a host message stay
text.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # writing only: nothing here parses XML
from collections.abc import Iterable
from typing import Any

from ..model import CheckResult, FleetReport, HostReport, Status
from ._clean import detail_lines, one_line, xml_text

__all__ = ["junit_kind", "render_junit"]

_ERRORS = (Status.ERROR, Status.UNREACHABLE, Status.INTERRUPTED)
_STAMP = "%Y-%m-%dT%H:%M:%S"  # the schema's timestamp: no zone, always UTC here


def junit_kind(status: Status, *, degraded_fails: bool) -> str:
    """``failure``, ``error``, ``skipped`` or ``pass`` for one check status."""
    if status in _ERRORS:
        return "error"
    if status is Status.NOT_READY or (status is Status.DEGRADED and degraded_fails):
        return "failure"
    if status is Status.SKIPPED:
        return "skipped"
    return "pass"


def render_junit(
    report: FleetReport,
    *,
    fail_on: Status = Status.NOT_READY,
    degraded: str | None = None,
    **_: Any,
) -> str:
    """``degraded`` is ``"failure"`` or ``"pass"``; by default it follows ``fail_on``."""
    if degraded not in (None, "failure", "pass"):
        raise ValueError(f"degraded must be 'failure' or 'pass', got {degraded!r}")
    degraded_fails = degraded == "failure" or (degraded is None and fail_on <= Status.DEGRADED)
    root = ET.Element("testsuites", name=xml_text(report.title))
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    total_time = 0.0
    stamp = report.generated_at.strftime(_STAMP)
    for index, host in enumerate(report.hosts):
        suite = _suite(host, index, stamp, degraded_fails)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        total_time += host.duration_s
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(total_time))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _suite(host: HostReport, index: int, stamp: str, degraded_fails: bool) -> ET.Element:
    suite = ET.Element("testsuite", name=xml_text(host.host))
    counts = dict.fromkeys(("failure", "error", "skipped", "pass"), 0)
    props = ET.SubElement(suite, "properties")
    _property(props, "status", host.status.value)
    _property(props, "address", host.address)
    _property(props, "groups", ",".join(host.groups))
    if host.reason:
        _property(props, "reason", host.reason)
    results: Iterable[CheckResult] = host.results
    if not host.results and host.reason:  # never audited and no per-check rows: say so once
        results = [CheckResult("connection", host.status, host.reason, host=host.host)]
    for result in results:
        kind = junit_kind(result.status, degraded_fails=degraded_fails)
        counts[kind] += 1
        suite.append(_case(host, result, kind))
    tests = sum(counts.values())
    attrs = {
        "tests": tests,
        "failures": counts["failure"],
        "errors": counts["error"],
        "skipped": counts["skipped"],
        "time": _seconds(host.duration_s),
        "timestamp": stamp,
        "hostname": xml_text(host.address or host.host),
        "id": index,
        "package": "readiness",
    }
    for key, value in attrs.items():
        suite.set(key, str(value))
    return suite


def _case(host: HostReport, result: CheckResult, kind: str) -> ET.Element:
    case = ET.Element(
        "testcase",
        name=xml_text(result.check_name),
        classname=xml_text(host.host),
        time=_seconds(result.duration_s),
    )
    body = _body(result)
    if kind == "skipped":
        ET.SubElement(case, "skipped", message=xml_text(one_line(result.message)))
    elif kind in ("failure", "error"):
        element = ET.SubElement(
            case, kind, message=xml_text(one_line(result.message)), type=result.status.value
        )
        element.text = body
    elif result.status is Status.DEGRADED or result.recommendations:
        ET.SubElement(case, "system-out").text = body  # a pass with something to say
    return case


def _body(result: CheckResult) -> str:
    lines = [f"status: {result.status.value}", f"message: {result.message}"]
    if result.details:
        lines += ["details:", *detail_lines(result.details, indent=1)]
    if result.recommendations:
        lines += ["recommendations:", *(f"  - {rec}" for rec in result.recommendations)]
    return xml_text("\n".join(lines))


def _property(parent: ET.Element, name: str, value: str) -> None:
    ET.SubElement(parent, "property", name=name, value=xml_text(value))


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"
