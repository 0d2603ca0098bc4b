"""Per-host benchmark tables, appended by the text and table renderers.

A check that measures something puts ``details["benchmark"] = {"kind", "rows"}``
in its result (see ``readiness.checks._bench``); every row holds one sample
summary. Renderers call :func:`render_benchmark_tables` and append its lines, so
no renderer needs to know which checks are benchmarks. Row names come from the host
(a repository's name in the app's manifest): every cell is escaped and kept on one line,
as the text report's messages are, so no row can move the cursor or forge a line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import CheckResult, FleetReport
from ..tables import tabulate
from .style import escape_text, one_line

__all__ = ["benchmark_rows", "render_benchmark_tables"]

HEADERS = [
    "check",
    "name",
    "n",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "min ms",
    "max ms",
    "errors",
    "per s",
    "time s",
    "vs prev",
    "verdict",
]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return one_line(value)


def benchmark_rows(result: CheckResult) -> list[Mapping[str, Any]]:
    """The sample summaries a result carries (empty for checks that measure nothing)."""
    block = result.details.get("benchmark")
    rows = block.get("rows") if isinstance(block, Mapping) else None
    return [r for r in rows or () if isinstance(r, Mapping)]


def _line(check: str, row: Mapping[str, Any]) -> list[str]:
    ratio = row.get("regression")
    return [
        one_line(check),
        one_line(row.get("name", "")),
        _cell(row.get("n")),
        *(_cell(row.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms", "min_ms", "max_ms")),
        _cell(row.get("errors")),
        _cell(row.get("throughput_per_s")),
        _cell(row.get("duration_s")),
        f"{ratio:.2f}x" if isinstance(ratio, (int, float)) else "-",
        one_line(row.get("verdict", "")),
    ]


def render_benchmark_tables(report: FleetReport) -> list[str]:
    """``BENCHMARKS — host`` and a table per host that has any; [] when none has."""
    out: list[str] = []
    for host in report.hosts:
        lines = [_line(r.check_name, row) for r in host.results for row in benchmark_rows(r)]
        if not lines:
            continue
        out += ["", f"BENCHMARKS — {escape_text(host.host)}"]
        out.append(tabulate(lines, headers=HEADERS, tablefmt="simple", disable_numparse=True))
    return out
