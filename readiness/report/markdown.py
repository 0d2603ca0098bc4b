"""Markdown renderer: for a pull-request comment or a release ticket."""

from __future__ import annotations

from typing import Any

from ..model import FleetReport, HostReport, Status
from .gates import gate_markdown_lines
from .sections import store_markdown_lines
from .style import escape_markdown, group_hosts

__all__ = ["render_markdown"]


def _cell(text: str) -> str:
    """Host text in a table cell: a code span (no mention, reference, link, HTML), pipes
    escaped, one line."""
    return escape_markdown(text, table=True)


def _text(text: str) -> str:
    """Host text outside a table: a code span, one line."""
    return escape_markdown(text)


def _matrix(hosts: list[HostReport], checks: list[str]) -> list[str]:
    lines = [
        "| host | " + " | ".join(_cell(c) for c in checks) + " | verdict |",
        "|---|" + "---|" * len(checks) + "---|",
    ]
    for h in hosts:
        cells = []
        for c in checks:
            r = h.result(c)
            cells.append(f"{r.status.symbol} {r.status.value}" if r else "")
        lines.append(f"| {_cell(h.host)} | " + " | ".join(cells) + f" | **{h.status.label}** |")
    return lines


def render_markdown(
    report: FleetReport,
    *,
    fail_on: Status = Status.NOT_READY,
    group_by: str | None = None,
    **_: Any,
) -> str:
    s = report.summary()
    checks = list(report.check_names)
    lines = [
        f"## {report.overall_status.symbol} Production readiness: **{report.overall_status.label}**",
        "",
        f"Generated {report.generated_at.strftime('%Y-%m-%d %H:%M UTC')} · {s['hosts']} host(s) · "
        f"{s['total']} check result(s) · exit code {report.exit_code(fail_on)}",
    ]
    for group, hosts in group_hosts(list(report.hosts), group_by):
        lines += ["", f"#### group {_text(group)}", ""] if group else [""]
        lines += _matrix(hosts, checks)
    lines += gate_markdown_lines(report)
    lines += store_markdown_lines(report)
    problems = [r for r in report.results if r.status not in (Status.READY, Status.SKIPPED)]
    if problems:
        lines += ["", "### What to fix", ""]
        for r in problems:
            lines.append(
                f"- {r.status.symbol} **{_text(r.host)} / {_text(r.check_name)}** — {_text(r.message)}"
            )
            lines += [f"  - {_text(rec)}" for rec in r.recommendations]
    else:
        lines += ["", "Nothing to fix. ✓"]
    return "\n".join(lines)
