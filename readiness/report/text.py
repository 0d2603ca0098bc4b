"""Text renderer: the original validator's report layout, once per host."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import FleetReport, HostReport, Status
from .benchmarks import render_benchmark_tables
from .gates import gate_lines

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


def render_text(report: FleetReport, *, fail_on: Status = Status.NOT_READY, **_: Any) -> str:
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
    lines += ["", f"OVERALL STATUS: {overall_line(report.overall_status, has_recs)}"]
    if report.interrupted:
        lines.append("(run interrupted: hosts not audited are marked)")
    if gates := gate_lines(report):
        lines += ["", *gates]
    for host in report.hosts:
        lines += _host_section(host, multi=len(report.hosts) > 1)
    lines += render_benchmark_tables(report)
    lines += ["", RULE]
    return "\n".join(lines)


def _host_section(host: HostReport, *, multi: bool) -> list[str]:
    lines = [
        "",
        "DETAILED RESULTS"
        + (f" — {host.host} ({host.address})" if multi or host.host != "local" else ""),
        SUB,
    ]
    if host.reason:
        lines.append(f"{host.status.symbol} HOST {host.status.label}: {host.reason}")
    for r in host.results:
        lines += [
            "",
            f"{r.status.symbol} {r.check_name.upper()}",
            f"  Status: {r.status.value}",
            f"  Message: {r.message}",
        ]
        if r.details:
            lines.append("  Details:")
            lines += _details(r.details, indent=4)
        if r.recommendations:
            lines.append("  Recommendations:")
            lines += [f"    - {rec}" for rec in r.recommendations]
    return lines


def _details(details: Mapping[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    out = []
    for key, value in details.items():
        if isinstance(value, Mapping) and value and indent < 8:
            out.append(f"{pad}{key}:")
            out += _details(value, indent + 2)
        else:
            out.append(f"{pad}{key}: {_short(value)}")
    return out


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."
