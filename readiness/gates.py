"""Quality gates: a minimum pass rate per category over every (host, check) result.

:func:`evaluate_gates` is pure: a :class:`~readiness.model.FleetReport` and gates in, a
:class:`GateReport` out (fleet rows decide the exit code; per-group rows explain it).
Gates come from the profile key ``quality_gates``; docs/suites.md defines pass rates.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ProfileError
from .model import FleetReport, HostReport, Status, verdict_exit_code
from .profile import PERCENT_WANTED, is_percentage
from .registry import CATEGORIES, all_checks

__all__ = [
    "GATE_KEYS",
    "PROFILE_KEY",
    "GateReport",
    "GateRow",
    "QualityGate",
    "Verdict",
    "evaluate_gates",
    "gates_from_profile",
]

PROFILE_KEY = "quality_gates"
GATE_KEYS = frozenset({"category", "min_pass_rate", "critical", "description"})


class Verdict(enum.Enum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    NO_DATA = "no_data"

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


@dataclass(frozen=True)
class QualityGate:
    """At least ``min_pass_rate`` percent of the category's results must pass."""

    name: str
    category: str
    min_pass_rate: float
    critical: bool = True
    description: str = ""

    @property
    def required(self) -> str:
        rate = _pct(self.min_pass_rate)
        return f"{rate} %" if self.min_pass_rate >= 100 else f">= {rate} %"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "min_pass_rate": self.min_pass_rate,
            "critical": self.critical,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityGate:
        return cls(
            name=str(data["name"]),
            category=str(data["category"]),
            min_pass_rate=float(data["min_pass_rate"]),
            critical=bool(data.get("critical", True)),
            description=str(data.get("description", "")),
        )


def gates_from_profile(profile: Mapping[str, Any]) -> list[QualityGate]:
    """Read ``quality_gates`` from a merged profile; a gate set to null is disabled."""
    raw = profile.get(PROFILE_KEY) or {}
    if not isinstance(raw, Mapping):
        raise ProfileError(f"profile key {PROFILE_KEY!r} must be a mapping of gate name to gate")
    return [_gate(str(name), spec) for name, spec in raw.items() if spec is not None]


def _gate(name: str, spec: Any) -> QualityGate:
    where = f"{PROFILE_KEY}.{name}"
    if not isinstance(spec, Mapping):
        raise ProfileError(f"{where} must be a mapping (category, min_pass_rate, critical) or null")
    unknown = sorted(set(spec) - GATE_KEYS)
    if unknown:
        raise ProfileError(f"{where}: unknown keys {unknown} (valid: {sorted(GATE_KEYS)})")
    category = spec.get("category", name)
    if category not in CATEGORIES:
        raise ProfileError(f"{where}.category: {category!r} is not one of {', '.join(CATEGORIES)}")
    rate = spec.get("min_pass_rate", 100)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not is_percentage(rate):
        raise ProfileError(f"{where}.min_pass_rate must be {PERCENT_WANTED}, got {rate!r}")
    critical = spec.get("critical", True)
    if not isinstance(critical, bool):
        raise ProfileError(f"{where}.critical must be true or false, got {critical!r}")
    return QualityGate(name, str(category), float(rate), critical, str(spec.get("description", "")))


@dataclass(frozen=True)
class GateRow:
    """One gate measured over one scope: ``fleet`` or an inventory group."""

    gate: QualityGate
    scope: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def counted(self) -> int:
        return self.passed + self.failed

    @property
    def measured(self) -> float | None:
        """Pass rate in percent; ``None`` when nothing was measured (no data)."""
        return 100.0 * self.passed / self.counted if self.counted else None

    @property
    def verdict(self) -> Verdict:
        if not self.counted:
            return Verdict.NO_DATA
        ok = self.passed * 100 >= self.gate.min_pass_rate * self.counted
        return Verdict.PASS if ok else Verdict.FAIL

    @property
    def measured_text(self) -> str:
        if self.measured is None:
            return f"no data ({self.skipped} skipped)" if self.skipped else "no data"
        return f"{_pct(_floored(self.measured, 1))} % ({self.passed}/{self.counted})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate.name,
            "category": self.gate.category,
            "scope": self.scope,
            "critical": self.gate.critical,
            "required": self.gate.min_pass_rate,
            "measured": None if self.measured is None else _floored(self.measured, 2),
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
            "verdict": self.verdict.value,
        }


@dataclass(frozen=True)
class GateReport:
    """Every gate row, fleet rows first; the exit code is decided by the fleet rows."""

    rows: tuple[GateRow, ...]
    notes: tuple[str, ...] = ()
    interrupted: bool = False

    @property
    def fleet_rows(self) -> tuple[GateRow, ...]:
        return tuple(r for r in self.rows if r.scope == "fleet")

    @property
    def group_rows(self) -> tuple[GateRow, ...]:
        return tuple(r for r in self.rows if r.scope != "fleet")

    @property
    def verdict(self) -> str:
        """``fail`` a critical gate fails (or the run was interrupted); ``warn`` only
        non-critical gates fail or lack data; ``pass`` every fleet gate passes."""
        rows = self.fleet_rows
        if self.interrupted or any(r.verdict is Verdict.FAIL and r.gate.critical for r in rows):
            return "fail"
        return "warn" if any(r.verdict is not Verdict.PASS for r in rows) else "pass"

    @property
    def exit_code(self) -> int:
        """The verdict's exit code (0, 1 or 3), the same table FleetReport uses."""
        return verdict_exit_code(self.verdict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateReport:
        """Back from :meth:`to_dict` (a saved report), every row and note kept."""
        gates = {g["name"]: QualityGate.from_dict(g) for g in data.get("gates", ())}
        rows = [
            GateRow(
                gates.get(str(r["gate"]))
                or QualityGate(
                    str(r["gate"]),
                    str(r["category"]),
                    float(r["required"]),
                    bool(r.get("critical", True)),
                ),
                str(r["scope"]),
                int(r.get("passed", 0)),
                int(r.get("failed", 0)),
                int(r.get("skipped", 0)),
            )
            for r in (*data.get("fleet", ()), *data.get("groups", ()))
        ]
        return cls(tuple(rows), tuple(str(n) for n in data.get("notes", ())))

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "gates": [r.gate.to_dict() for r in self.fleet_rows],
            "fleet": [r.to_dict() for r in self.fleet_rows],
            "groups": [r.to_dict() for r in self.group_rows],
            "notes": list(self.notes),
        }


def evaluate_gates(
    report: FleetReport,
    gates: Sequence[QualityGate],
    group_by_inventory_group: bool = True,
    *,
    categories: Mapping[str, Sequence[str]] | None = None,
    degraded_passes: bool = True,
) -> GateReport:
    """Measure each gate over the fleet and (optionally) each inventory group.

    Pass = READY (and DEGRADED unless ``degraded_passes`` is false); SKIPPED is left
    out of the denominator; NOT_READY, ERROR and UNREACHABLE fail. ``categories``
    maps check name to categories (default: the registry).
    """
    cats = categories if categories is not None else {s.name: s.categories for s in all_checks()}
    passing = {Status.READY, Status.DEGRADED} if degraded_passes else {Status.READY}
    scopes: list[tuple[str, list[HostReport]]] = [("fleet", list(report.hosts))]
    if group_by_inventory_group:
        scopes += list(_by_group(report.hosts).items())
    rows = tuple(
        _measure(gate, scope, hosts, cats, passing) for scope, hosts in scopes for gate in gates
    )
    return GateReport(rows, tuple(_notes(report, gates, cats)), report.interrupted)


def _by_group(hosts: Iterable[HostReport]) -> dict[str, list[HostReport]]:
    groups: dict[str, list[HostReport]] = {}
    for host in hosts:
        for group in host.groups:
            groups.setdefault(group, []).append(host)
    return groups


def _measure(
    gate: QualityGate,
    scope: str,
    hosts: Sequence[HostReport],
    cats: Mapping[str, Sequence[str]],
    passing: set[Status],
) -> GateRow:
    statuses = [
        r.status for h in hosts for r in h.results if gate.category in cats.get(r.check_name, ())
    ]
    skipped = sum(s is Status.SKIPPED for s in statuses)
    passed = sum(s in passing for s in statuses)
    return GateRow(gate, scope, passed, len(statuses) - skipped - passed, skipped)


def _notes(
    report: FleetReport, gates: Sequence[QualityGate], cats: Mapping[str, Sequence[str]]
) -> list[str]:
    gated = {g.category for g in gates}
    ungated = [
        c for c in report.check_names if c in cats and not gated.intersection(cats.get(c, ()))
    ]
    if not ungated:
        return []
    return [f"not judged by any gate (no gate for their categories): {', '.join(ungated)}"]


def _floored(rate: float, digits: int) -> float:
    """A pass rate cut (never rounded up) to ``digits`` decimals: 2499 of 2500 is 99.96 %,
    which rounded showed "100.0 %" beside a failed 100 % gate."""
    scale = 10.0**digits
    return math.floor(rate * scale + 1e-9) / scale


def _pct(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
