"""The quality-gate table shared by the text, table and markdown renderers.

Suites judge their gates into ``FleetReport.gates`` (a typed
:class:`readiness.gates.GateReport`); a report without gates (``validate``) renders no
gate table. The verdict and the exit code shown are the model's: nothing is decided here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..model import FleetReport
from ..tables import tabulate
from .style import escape_markdown

__all__ = ["gate_lines", "gate_markdown_lines"]

_VERDICT = {"pass": "✓ PASS", "fail": "✗ FAIL", "no_data": "- NO DATA"}
_HEADERS = ["gate", "required", "measured", "verdict"]


def _gates(report: FleetReport) -> Mapping[str, Any] | None:
    return report.gates.to_dict() if report.gates is not None else None


def _cells(row: Mapping[str, Any]) -> list[str]:
    required = float(row["required"])
    rate = f"{required:g} %"
    measured = row.get("measured")
    if measured is None:
        shown = "no data"
    else:
        shown = f"{float(measured):g} % ({row['passed']}/{int(row['passed']) + int(row['failed'])})"
    verdict = _VERDICT.get(str(row["verdict"]), str(row["verdict"]))
    if row["verdict"] != "pass":
        verdict += " (critical)" if row.get("critical") else " (non-critical)"
    return [str(row["gate"]), rate if required >= 100 else f">= {rate}", shown, verdict]


def _headline(report: FleetReport, gates: Mapping[str, Any]) -> str:
    return (
        f"QUALITY GATES ({report.suite}): {str(gates['verdict']).upper()}, "
        f"exit {report.exit_code()}"
    )


def gate_lines(report: FleetReport) -> list[str]:
    """Plain-text gate tables (fleet, then per inventory group) and notes; [] without gates."""
    gates = _gates(report)
    if gates is None:
        return []
    lines = [_headline(report, gates), "-" * 40]
    fleet: Sequence[Mapping[str, Any]] = gates.get("fleet", ())
    if fleet:
        rows = [_cells(r) for r in fleet]
        lines.append(tabulate(rows, headers=_HEADERS, tablefmt="simple", disable_numparse=True))
    else:
        lines.append("no quality gate applies to this suite")
    groups: Sequence[Mapping[str, Any]] = gates.get("groups", ())
    if groups:
        rows = [[str(r["scope"]), *_cells(r)] for r in groups]
        lines += ["", "per inventory group:"]
        lines.append(
            tabulate(rows, headers=["group", *_HEADERS], tablefmt="simple", disable_numparse=True)
        )
    lines += [f"note: {n}" for n in gates.get("notes", ())]
    return lines


def gate_markdown_lines(report: FleetReport) -> list[str]:
    """The same gate tables as markdown; [] without gates."""
    gates = _gates(report)
    if gates is None:
        return []
    lines = ["", f"### {_headline(report, gates)}", ""]
    rows = [("fleet", r) for r in gates.get("fleet", ())]
    rows += [(escape_markdown(r["scope"]), r) for r in gates.get("groups", ())]
    lines += ["| scope | " + " | ".join(_HEADERS) + " |", "|---" * (len(_HEADERS) + 1) + "|"]
    for scope, row in rows:
        cells = [scope, *_cells(row)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    notes = [f"- {n}" for n in gates.get("notes", ())]
    return [*lines, "", *notes] if notes else lines
