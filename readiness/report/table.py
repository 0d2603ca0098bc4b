"""Table renderer: host × check matrix with tabulate, a verdict column and a summary row."""

from __future__ import annotations

import sys
import textwrap
from typing import Any

from ..model import FleetReport, HostReport, Status
from ..tables import tabulate
from .benchmarks import render_benchmark_tables
from .gates import gate_lines
from .sections import store_lines
from .style import escape_text, group_hosts, one_line, paint, terminal_width, use_color

__all__ = ["render_table"]

_SHORT = {
    Status.READY: "✓ ok",
    Status.DEGRADED: "⚠ deg",
    Status.NOT_READY: "✗ NOT",
    Status.ERROR: "! err",
    Status.UNREACHABLE: "? unr",
    Status.INTERRUPTED: "~ int",
    Status.SKIPPED: "- skip",
}


def render_table(
    report: FleetReport,
    *,
    fail_on: Status = Status.NOT_READY,
    group_by: str | None = None,
    color: str | bool = "never",
    width: int | None = None,
    **_: Any,
) -> str:
    """The matrix, fitted to ``width`` (default: the terminal's; 80 columns always work).

    Cells shrink from ``✓ ok`` to a single glyph, then the matrix turns to one row per
    check when that is narrower; legend and reasons wrap; one reason shared by many
    hosts is printed once with their names.
    """
    width = width or terminal_width()
    painted = use_color(color, sys.stdout)
    checks = list(report.check_names)
    names = _headers(checks)
    blocks = _groups(report, group_by)
    layout = _fit(blocks, checks, names, width)
    out: list[str] = []
    for title, hosts in blocks:
        if title:
            out.append(f"[{escape_text(title)}]")
        out.append(_matrix(hosts, checks, names, *layout, painted=painted))
        out.append("")
    summary = report.summary()
    counts = ", ".join(f"{summary[s.value]} {s.value}" for s in Status if summary[s.value])
    out += _wrap(
        f"{summary['hosts']} host(s), {summary['total']} result(s): {counts or 'none'}", width
    )
    out.append(f"overall: {report.overall_status.label} (exit {report.exit_code(fail_on)})")
    legend = "  ".join(f"{s.symbol} {s.value.replace('_', ' ')}" for s in _legend(report))
    out += _wrap(f"legend: {legend}", width)
    if any(names[c] != c for c in checks) and not layout[1]:
        out += _wrap("columns: " + ", ".join(f"{names[c]}={escape_text(c)}" for c in checks), width)
    out += _reasons(report, width)
    if gates := gate_lines(report):
        out += ["", *gates]
    out += store_lines(report)
    out += render_benchmark_tables(report)
    return "\n".join(out)


_LEGEND = (
    Status.READY,
    Status.DEGRADED,
    Status.NOT_READY,
    Status.ERROR,
    Status.UNREACHABLE,
    Status.SKIPPED,
)


def _legend(report: FleetReport) -> tuple[Status, ...]:
    """The usual statuses, plus any other one (INTERRUPTED, ...) this report contains."""
    seen = {r.status for r in report.results} | {h.status for h in report.hosts}
    return _LEGEND + tuple(s for s in Status if s not in _LEGEND and s in seen)


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False) or [""]


def _reasons(report: FleetReport, width: int) -> list[str]:
    """Why hosts could not be audited; the same reason for many hosts is shown once."""
    by_reason: dict[tuple[Status, str], list[str]] = {}
    for h in report.hosts:
        if h.reason:
            by_reason.setdefault((h.status, one_line(h.reason)), []).append(escape_text(h.host))
    out: list[str] = []
    for (status, reason), hosts in by_reason.items():
        who = (
            ", ".join(hosts)
            if len(hosts) <= 5
            else f"{', '.join(hosts[:5])} (+{len(hosts) - 5} more)"
        )
        out += _wrap(f"{status.symbol} {who}: {reason}", width)
    return out


def _fit(
    blocks: list[tuple[str, list[HostReport]]],
    checks: list[str],
    names: dict[str, str],
    width: int,
) -> tuple[bool, bool]:
    """(short cells, transposed): the first layout whose every line fits ``width``."""
    n_hosts = max((len(hosts) for _, hosts in blocks), default=0)
    layouts = [(False, False), (True, False)]
    if n_hosts < len(checks):
        layouts.insert(1, (False, True))
        layouts.append((True, True))
    for layout in layouts:
        widest = max(
            (
                len(line)
                for _, hosts in blocks
                for line in _matrix(hosts, checks, names, *layout, painted=False).splitlines()
            ),
            default=0,
        )
        if widest <= width:
            return layout
    return layouts[-1]


def _matrix(
    hosts: list[HostReport],
    checks: list[str],
    names: dict[str, str],
    glyphs: bool,
    transposed: bool,
    *,
    painted: bool,
) -> str:
    """One row per host, one column per check; or, for many checks and few hosts, the reverse."""

    def cell(h: HostReport, c: str) -> str:
        r = h.result(c)
        if r is None:
            return ""
        return paint(r.status.symbol if glyphs else _short(r.status), r.status, painted)

    def verdict(h: HostReport) -> str:
        return paint(h.status.label, h.status, painted)

    if transposed:
        rows = [
            [names[c] if glyphs else escape_text(c), *[cell(h, c) for h in hosts]] for c in checks
        ]
        rows.append(["verdict", *[verdict(h) for h in hosts]])
        headers = ["check", *[escape_text(h.host) for h in hosts]]
    else:
        rows = [[escape_text(h.host), *[cell(h, c) for c in checks], verdict(h)] for h in hosts]
        headers = ["host", *[names[c] for c in checks], "verdict"]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def _cell(host: HostReport, check: str) -> str:
    r = host.result(check)
    return _short(r.status) if r else ""


def _short(status: Status) -> str:
    """The cell for ``status``; any Status member renders, named here or not."""
    return _SHORT.get(status) or f"{status.symbol} {status.value[:4]}"


_ABBREV = {
    "environment": "env",
    "configuration": "config",
    "documentation": "docs",
    "error_handling": "errors",
    "graceful_shutdown": "shutdown",
    "database_migration": "database",
    "config_validity": "validity",
    "security_settings": "security",
    "resource_limits": "limits",
    "adapter_health": "adapters",
    "repository_access": "repos",
    "workflow_execution": "workflow",
    "http_benchmark": "http-bench",
    "db_benchmark": "db-bench",
    "workflow_benchmark": "wf-bench",
    "repository_benchmark": "git-bench",
    "backup_roundtrip": "roundtrip",
    "alert_delivery": "alerts",
    "graceful_shutdown_drill": "drill",
    "workflow_state": "wf-state",
    "observability_logging": "logging",
}


def _abbrev(name: str) -> str:
    """Short column headers so 8 checks fit in 80 columns (``database_migration`` → ``database``)."""
    return _ABBREV.get(name) or name.split("_", maxsplit=1)[0][:9]


def _headers(checks: list[str]) -> dict[str, str]:
    """Short names, falling back to the full name wherever two short names would collide
    (escaped: a stored report read back by ``show`` may name any check)."""
    short = {c: _abbrev(c) for c in checks}
    taken = [short[c] for c in checks]
    return {c: escape_text(short[c] if taken.count(short[c]) == 1 else c) for c in checks}


def _groups(report: FleetReport, group_by: str | None) -> list[tuple[str, list[HostReport]]]:
    return group_hosts(list(report.hosts), group_by)
