"""Table renderer: host × check matrix with tabulate, a verdict column and a summary row."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from ..model import FleetReport, HostReport, Status
from .benchmarks import render_benchmark_tables
from .gates import gate_lines, shown_exit_code

__all__ = ["render_table"]

_SHORT = {
    Status.READY: "✓ ok",
    Status.DEGRADED: "⚠ deg",
    Status.NOT_READY: "✗ NOT",
    Status.ERROR: "! err",
    Status.UNREACHABLE: "? unr",
    Status.SKIPPED: "- skip",
}


def render_table(
    report: FleetReport,
    *,
    fail_on: Status = Status.NOT_READY,
    group_by: str | None = None,
    **_: Any,
) -> str:
    checks = list(report.check_names)
    headers = ["host", *[_abbrev(c) for c in checks], "verdict"]
    blocks = _groups(report, group_by)
    out: list[str] = []
    for title, hosts in blocks:
        rows = [_row(h, checks) for h in hosts]
        if title:
            out.append(f"[{title}]")
        out.append(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
        out.append("")
    summary = report.summary()
    counts = ", ".join(f"{summary[s.value]} {s.value}" for s in Status if summary[s.value])
    out.append(f"{summary['hosts']} host(s), {summary['total']} result(s): {counts or 'none'}")
    out.append(f"overall: {report.overall_status.label} (exit {shown_exit_code(report, fail_on)})")
    out.append("legend: ✓ ready  ⚠ degraded  ✗ not ready  ! error  ? unreachable  - skipped")
    if checks and any(_abbrev(c) != c for c in checks):
        out.append("columns: " + ", ".join(f"{_abbrev(c)}={c}" for c in checks))
    reasons = [h for h in report.hosts if h.reason]
    for h in reasons:
        out.append(f"{h.status.symbol} {h.host}: {h.reason}")
    if gates := gate_lines(report):
        out += ["", *gates]
    out += render_benchmark_tables(report)
    return "\n".join(out)


def _row(host: HostReport, checks: list[str]) -> list[str]:
    cells = [host.host]
    for name in checks:
        r = host.result(name)
        cells.append(_SHORT[r.status] if r else "")
    cells.append(host.status.label)
    return cells


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
}


def _abbrev(name: str) -> str:
    """Short column headers so 8 checks fit in 80 columns (``database_migration`` → ``database``)."""
    return _ABBREV.get(name) or name.split("_", maxsplit=1)[0][:9]


def _groups(report: FleetReport, group_by: str | None) -> list[tuple[str, list[HostReport]]]:
    if group_by != "group":
        return [("", list(report.hosts))]
    blocks: dict[str, list[HostReport]] = {}
    for h in report.hosts:
        key = h.groups[0] if h.groups else "ungrouped"
        blocks.setdefault(key, []).append(h)
    return list(blocks.items())
