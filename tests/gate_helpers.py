"""Small fleets and gates for the gate and suite tests (pure data, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from readiness.gates import QualityGate, evaluate_gates
from readiness.model import CheckResult, FleetReport, HostReport, Status

CATS: dict[str, tuple[str, ...]] = {
    "cfg": ("configuration",),
    "sec": ("security",),
    "cfgsec": ("configuration", "security"),
    "integ": ("integration",),
    "bench": ("performance",),
}
CONFIG = QualityGate("configuration", "configuration", 100, critical=True)
SECURITY = QualityGate("security", "security", 100, critical=True)
INTEGRATION = QualityGate("integration", "integration", 90, critical=True)
PERFORMANCE = QualityGate("performance", "performance", 100, critical=False)


def host(name: str, groups: Sequence[str] = (), **statuses: Status) -> HostReport:
    results = tuple(CheckResult(c, s, "", host=name) for c, s in statuses.items())
    return HostReport(name, results, groups=tuple(groups))


def fleet(*hosts: HostReport, interrupted: bool = False) -> FleetReport:
    return FleetReport(hosts=hosts, interrupted=interrupted)


def judge(report: FleetReport, *gates: QualityGate, **kw: Any) -> Any:
    return evaluate_gates(report, gates, categories=CATS, **kw)


def row(gates: Any, gate: str, scope: str = "fleet") -> Any:
    return next(r for r in gates.rows if r.gate.name == gate and r.scope == scope)
