"""Text renderer: the original validator's report layout, once per host."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from ..model import FleetReport, HostReport, Status
from .benchmarks import render_benchmark_tables
from .gates import gate_lines
from .sections import store_lines
from .style import escape_text, group_hosts, one_line, paint, use_color

__all__ = ["overall_line", "render_text"]

RULE = "=" * 80
SUB = "-" * 40


def overall_line(status: Status, has_recommendations: bool) -> str:
    if status is Status.READY:
        return "✓ READY WITH RECOMMENDATIONS" if has_recommendations else "✓ READY"
    if status is Status.DEGRADED:
        return "✓ READY WITH RECOMMENDATIONS"
    if status is Status.SKIPPED:
        return "- NOTHING TO CHECK (all skipped)"
    if status is Status.UNREACHABLE:
        return "? NOT READY (hosts unreachable)"
    if status is Status.INTERRUPTED:
        return "~ NOT READY (run interrupted: hosts not audited)"
    return "✗ NOT READY"


def render_text(
    report: FleetReport,
    *,
    fail_on: Status = Status.NOT_READY,
    group_by: str | None = None,
    color: str | bool = "never",
    **_: Any,
) -> str:
    painted = use_color(color, sys.stdout)
    summary = report.summary()
    lines = [
        RULE,
        report.title,
        f"Generated: {report.generated_at.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        f"Hosts: {len(report.hosts)}",
        RULE,
        "",
        "SUMMARY",
        SUB,
        f"Total Checks: {summary['total']}",
        f"  Ready:       {summary['ready']} ✓",
        f"  Degraded:    {summary['degraded']} ⚠",
        f"  Not Ready:   {summary['not_ready']} ✗",
    ]
    for status, label in (
        (Status.ERROR, "Error"),
        (Status.UNREACHABLE, "Unreachable"),
        (Status.INTERRUPTED, "Interrupted"),
        (Status.SKIPPED, "Skipped"),
    ):
        if summary[status.value]:
            lines.append(f"  {label + ':':<12} {summary[status.value]} {status.symbol}")
    has_recs = any(r.recommendations for r in report.results)
    verdict = overall_line(report.overall_status, has_recs)
    if report.overall_status is Status.DEGRADED and report.exit_code(fail_on):
        verdict = "✗ NOT READY (--fail-on degraded: DEGRADED results fail)"
    lines += ["", f"OVERALL STATUS: {paint(verdict, report.overall_status, painted)}"]
    if report.interrupted:
        lines.append("(run interrupted: hosts not audited are marked)")
    if gates := gate_lines(report):
        lines += ["", *gates]
    lines += store_lines(report)
    for group, hosts in group_hosts(list(report.hosts), group_by):
        if group:
            lines += ["", f"GROUP {escape_text(group)}", "=" * 40]
        for host in hosts:
            lines += _host_section(host, multi=len(report.hosts) > 1, painted=painted)
    lines += render_benchmark_tables(report)
    lines += ["", RULE]
    return "\n".join(lines)


def _host_section(host: HostReport, *, multi: bool, painted: bool = False) -> list[str]:
    name = f" — {escape_text(host.host)} ({escape_text(host.address)})"
    lines = ["", "DETAILED RESULTS" + (name if multi or host.host != "local" else ""), SUB]
    if host.reason:
        lines.append(
            paint(f"{host.status.symbol} HOST {host.status.label}", host.status, painted)
            + f": {one_line(host.reason)}"
        )
    for r in host.results:
        lines += [
            "",
            paint(f"{r.status.symbol} {escape_text(r.check_name.upper())}", r.status, painted),
            f"  Status: {r.status.value}",
            f"  Message: {one_line(r.message)}",
        ]
        if r.details:
            lines.append("  Details:")
            lines += _details(r.details, indent=4)
        if r.recommendations:
            lines.append("  Recommendations:")
            lines += [f"    - {one_line(rec)}" for rec in r.recommendations]
    return lines


def _details(details: Mapping[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    out = []
    for key, value in details.items():
        if isinstance(value, Mapping) and value and indent < 8:
            out.append(f"{pad}{one_line(key)}:")
            out += _details(value, indent + 2)
        else:
            out.append(f"{pad}{one_line(key)}: {one_line(_short(value))}")
    return out


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."
