"""Table renderer: host × check matrix with tabulate, a verdict column and a summary row."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from ..model import FleetReport, HostReport, Status
from .benchmarks import render_benchmark_tables
from .gates import gate_lines

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
    **_: Any,
) -> str:
    checks = list(report.check_names)
    names = _headers(checks)
    out: list[str] = []
    for title, hosts in _groups(report, group_by):
        if title:
            out.append(f"[{title}]")
        out.append(_matrix(hosts, checks, names))
        out.append("")
    summary = report.summary()
    counts = ", ".join(f"{summary[s.value]} {s.value}" for s in Status if summary[s.value])
    out.append(f"{summary['hosts']} host(s), {summary['total']} result(s): {counts or 'none'}")
    out.append(f"overall: {report.overall_status.label} (exit {report.exit_code(fail_on)})")
    out.append("legend: ✓ ready  ⚠ degraded  ✗ not ready  ! error  ? unreachable  - skipped")
    if any(names[c] != c for c in checks) and not _transposed(len(report.hosts), checks, names):
        out.append("columns: " + ", ".join(f"{names[c]}={c}" for c in checks))
    reasons = [h for h in report.hosts if h.reason]
    for h in reasons:
        out.append(f"{h.status.symbol} {h.host}: {h.reason}")
    if gates := gate_lines(report):
        out += ["", *gates]
    out += render_benchmark_tables(report)
    return "\n".join(out)


_MAX_WIDTH = 100  # past this, a few hosts with many checks read better as check rows


def _transposed(n_hosts: int, checks: list[str], names: dict[str, str]) -> bool:
    width = 10 + sum(max(len(names[c]), 6) + 2 for c in checks) + 12
    return width > _MAX_WIDTH and n_hosts < len(checks)


def _matrix(hosts: list[HostReport], checks: list[str], names: dict[str, str]) -> str:
    """One row per host, one column per check; or, for many checks and few hosts, the reverse."""
    if _transposed(len(hosts), checks, names):
        rows = [[c, *[_cell(h, c) for h in hosts]] for c in checks]
        rows.append(["verdict", *[h.status.label for h in hosts]])
        headers = ["check", *[h.host for h in hosts]]
    else:
        rows = [[h.host, *[_cell(h, c) for c in checks], h.status.label] for h in hosts]
        headers = ["host", *[names[c] for c in checks], "verdict"]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def _cell(host: HostReport, check: str) -> str:
    r = host.result(check)
    return _SHORT[r.status] if r else ""


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
    """Short names, falling back to the full name wherever two short names would collide."""
    short = {c: _abbrev(c) for c in checks}
    taken = [short[c] for c in checks]
    return {c: (short[c] if taken.count(short[c]) == 1 else c) for c in checks}


def _groups(report: FleetReport, group_by: str | None) -> list[tuple[str, list[HostReport]]]:
    if group_by != "group":
        return [("", list(report.hosts))]
    blocks: dict[str, list[HostReport]] = {}
    for h in report.hosts:
        key = h.groups[0] if h.groups else "ungrouped"
        blocks.setdefault(key, []).append(h)
    return list(blocks.items())
