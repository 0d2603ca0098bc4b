"""The shared result model: statuses, check results, host and fleet reports.

No I/O lives here. Every other room (checks, runner, renderers, suites) speaks
these types, and the fleet's verdict and exit code are derived here, never in a
renderer.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # gates.py imports this module; the model only holds a GateReport
    from .gates import GateReport

__all__ = [
    "EXIT_FAIL",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_WARN",
    "SCHEMA",
    "CheckResult",
    "FleetReport",
    "HostReport",
    "Outcome",
    "Status",
    "utcnow",
]

SCHEMA = "readiness.report/1"

# Process exit codes (docs/exit-codes.md). Interrupted runs exit 128 + the signal number.
EXIT_OK = 0
EXIT_FAIL = 1  # not ready, a critical gate failed, or the --fail-on threshold reached
EXIT_USAGE = 2  # usage errors only (raised before any report exists)
EXIT_WARN = 3  # a suite whose only failures are non-critical gates (usable, with warnings)
_SIGNAL_EXIT = {"SIGHUP": 129, "SIGINT": 130, "SIGTERM": 143}
_VERDICT_EXIT = {"pass": EXIT_OK, "fail": EXIT_FAIL, "warn": EXIT_WARN}


def verdict_exit_code(verdict: str) -> int:
    """The exit code of a verdict (``pass``, ``warn``, ``fail``, ``interrupted:SIGTERM``)."""
    if verdict.startswith("interrupted"):
        return _SIGNAL_EXIT.get(verdict.partition(":")[2], 130)
    return _VERDICT_EXIT[verdict]


def utcnow() -> datetime:
    """Timezone-aware 'now' in UTC (every timestamp we emit is UTC)."""
    return datetime.now(timezone.utc)


class Status(enum.Enum):
    """A check's verdict, ordered by severity so a fleet's verdict is ``max()``.

    SKIPPED < READY < DEGRADED < NOT_READY < ERROR < UNREACHABLE < INTERRUPTED.
    SKIPPED sorts lowest because "not applicable here" must never hide a READY or
    worse. INTERRUPTED marks a host the run stopped before auditing (Ctrl-C, SIGTERM):
    never ready, and counted apart from hosts that were audited and failed.
    Values are the original validator's lowercase strings.
    """

    SKIPPED = "skipped"
    READY = "ready"
    DEGRADED = "degraded"
    NOT_READY = "not_ready"
    ERROR = "error"
    UNREACHABLE = "unreachable"
    INTERRUPTED = "interrupted"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def symbol(self) -> str:
        return _SYMBOL[self]

    @property
    def label(self) -> str:
        """Upper-case label for tables and text reports (``NOT_READY``)."""
        return self.name

    @property
    def blocking(self) -> bool:
        """True when this status must stop a release (exit code 1)."""
        return self.rank >= _RANK[Status.NOT_READY]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.rank >= other.rank

    @classmethod
    def parse(cls, value: str) -> Status:
        """Accept ``ready``, ``READY`` or ``not-ready`` spellings."""
        norm = value.strip().lower().replace("-", "_")
        for status in cls:
            if status.value == norm:
                return status
        valid = ", ".join(s.value for s in cls)
        raise ValueError(f"unknown status {value!r} (valid: {valid})")


_RANK = {s: i for i, s in enumerate(Status)}
_SYMBOL = {
    Status.SKIPPED: "-",
    Status.READY: "✓",
    Status.DEGRADED: "⚠",
    Status.NOT_READY: "✗",
    Status.ERROR: "!",
    Status.UNREACHABLE: "?",
    Status.INTERRUPTED: "~",
}


@dataclass(frozen=True)
class Outcome:
    """What a check decides, before the runner stamps host, time and duration."""

    status: Status
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)
    recommendations: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    """One check on one host: the original's six fields plus host and duration."""

    check_name: str
    status: Status
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)
    recommendations: tuple[str, ...] = ()
    timestamp: datetime = field(default_factory=utcnow)
    host: str = "local"
    duration_s: float = 0.0

    def is_ready(self) -> bool:
        return self.status is Status.READY

    def is_degraded(self) -> bool:
        return self.status is Status.DEGRADED

    def is_not_ready(self) -> bool:
        """True for anything that blocks a release (NOT_READY, ERROR, UNREACHABLE)."""
        return self.status.blocking

    def to_dict(self) -> dict[str, Any]:
        return {
            "check_name": self.check_name,
            "status": self.status.value,
            "message": self.message,
            "details": dict(self.details),
            "recommendations": list(self.recommendations),
            "timestamp": _iso(self.timestamp),
            "host": self.host,
            "duration_s": round(self.duration_s, 4),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(
            check_name=str(data["check_name"]),
            status=Status.parse(str(data["status"])),
            message=str(data.get("message", "")),
            details=dict(data.get("details") or {}),
            recommendations=tuple(data.get("recommendations") or ()),
            timestamp=_parse_iso(data.get("timestamp")),
            host=str(data.get("host", "local")),
            duration_s=float(data.get("duration_s", 0.0)),
        )

    @classmethod
    def from_outcome(
        cls,
        check_name: str,
        outcome: Outcome,
        *,
        host: str,
        started: datetime,
        duration_s: float,
    ) -> CheckResult:
        return cls(
            check_name=check_name,
            status=outcome.status,
            message=outcome.message,
            details=dict(outcome.details),
            recommendations=tuple(outcome.recommendations),
            timestamp=started,
            host=host,
            duration_s=duration_s,
        )


@dataclass(frozen=True)
class HostReport:
    """Every result of one host, in check order.

    ``reason`` is set when the host could not be audited at all (UNREACHABLE,
    or interrupted): its ``results`` then hold one such result per check.
    """

    host: str
    results: tuple[CheckResult, ...] = ()
    address: str = ""
    groups: tuple[str, ...] = ()
    reason: str = ""
    duration_s: float = 0.0
    facts_meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        if not self.results:
            return Status.UNREACHABLE if self.reason else Status.SKIPPED
        return max(r.status for r in self.results)

    def result(self, check_name: str) -> CheckResult | None:
        for r in self.results:
            if r.check_name == check_name:
                return r
        return None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "host": self.host,
            "status": self.status.value,
            "address": self.address,
            "groups": list(self.groups),
            "duration_s": round(self.duration_s, 4),
            "checks": [r.to_dict() for r in self.results],
        }
        if self.reason:
            data["reason"] = self.reason
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostReport:
        return cls(
            host=str(data["host"]),
            results=tuple(CheckResult.from_dict(r) for r in data.get("checks", ())),
            address=str(data.get("address", "")),
            groups=tuple(data.get("groups", ())),
            reason=str(data.get("reason", "")),
            duration_s=float(data.get("duration_s", 0.0)),
        )


@dataclass(frozen=True)
class FleetReport:
    """The merged report of every audited host, in inventory order.

    The verdict and the exit code are computed here and only here (:meth:`verdict`,
    :meth:`exit_code`): from the interruption, then the suite's quality gates when it
    has any, then the hosts' statuses against ``fail_on``. Renderers only show them.
    """

    hosts: tuple[HostReport, ...]
    generated_at: datetime = field(default_factory=utcnow)
    checks: tuple[str, ...] = ()
    title: str = "PRODUCTION READINESS VALIDATION REPORT"
    interrupted: bool = False
    interrupted_by: str = ""  # "SIGINT" or "SIGTERM" when interrupted
    suite: str = ""  # the named suite that produced the report, if any
    gates: GateReport | None = None  # the suite's quality gates, judged
    fail_on: Status = Status.NOT_READY  # the lowest status that fails the run
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def results(self) -> list[CheckResult]:
        return [r for h in self.hosts for r in h.results]

    @property
    def check_names(self) -> tuple[str, ...]:
        """Checks in first-seen order (the order columns appear in)."""
        if self.checks:
            return self.checks
        seen: dict[str, None] = {}
        for r in self.results:
            seen.setdefault(r.check_name, None)
        return tuple(seen)

    def summary(self) -> dict[str, int]:
        counts = Counter(r.status for r in self.results)
        out = {"total": len(self.results)}
        out.update({s.value: counts.get(s, 0) for s in Status})
        out["hosts"] = len(self.hosts)
        return out

    @property
    def overall_status(self) -> Status:
        statuses = [h.status for h in self.hosts]
        return max(statuses) if statuses else Status.SKIPPED

    def verdict(self, fail_on: Status | None = None) -> str:
        """``pass``, ``warn`` (only non-critical gates failed), ``fail`` or
        ``interrupted:SIGINT`` / ``interrupted:SIGTERM``."""
        if self.interrupted:
            return f"interrupted:{self.interrupted_by or 'SIGINT'}"
        ratchet = self.extra.get("baseline")
        if isinstance(ratchet, Mapping) and isinstance(ratchet.get("exit_code"), int):
            # --baseline: the CLI exits with the ratchet's code, so every report says so too
            # (they said "exit 1" / readiness_run_exit_code 1 for a run that exited 0)
            return "fail" if ratchet["exit_code"] else "pass"
        if self.gates is not None and self.gates.rows:
            return self.gates.verdict
        threshold = fail_on or self.fail_on
        worst = self.overall_status
        if worst.blocking or (threshold is Status.DEGRADED and worst is Status.DEGRADED):
            return "fail"
        return "pass"

    def exit_code(self, fail_on: Status | None = None) -> int:
        """0 pass; 1 anything NOT_READY/ERROR/UNREACHABLE, a critical gate failed, or
        ``fail_on`` reached (DEGRADED with ``--fail-on degraded``); 3 only non-critical
        gates failed; 130/143 interrupted by SIGINT/SIGTERM. ``fail_on`` defaults to the
        report's own."""
        return verdict_exit_code(self.verdict(fail_on))

    def _repr_html_(self) -> str:
        """Jupyter's rich display: a small heat map (readiness/report/html.py)."""
        from .report.html import render_html_fragment  # here: the renderers import the model

        return render_html_fragment(self)

    def with_hosts(self, hosts: Iterable[HostReport]) -> FleetReport:
        return replace(self, hosts=tuple(hosts))

    def to_dict(self, fail_on: Status | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "title": self.title,
            "generated_at": _iso(self.generated_at),
            "overall_status": self.overall_status.value,
            "verdict": self.verdict(fail_on).partition(":")[0],
            "exit_code": self.exit_code(fail_on),
            "fail_on": (fail_on or self.fail_on).value,
            "summary": self.summary(),
            "checks": list(self.check_names),
            "interrupted": self.interrupted,
            "interrupted_by": self.interrupted_by,
            "hosts": [h.to_dict() for h in self.hosts],
        }
        if self.suite:
            data["suite"] = self.suite
        if self.gates is not None:
            data["quality_gates"] = self.gates.to_dict()
        for key, value in self.extra.items():  # extra never overrides the model's own keys
            data.setdefault(key, value)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FleetReport:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document (schema={data.get('schema')!r})")
        gates = None
        if isinstance(data.get("quality_gates"), Mapping):
            from .gates import GateReport  # here: gates.py imports this module

            gates = GateReport.from_dict(data["quality_gates"])
        return cls(
            hosts=tuple(HostReport.from_dict(h) for h in data.get("hosts", ())),
            generated_at=_parse_iso(data.get("generated_at")),
            checks=tuple(data.get("checks", ())),
            title=str(data.get("title", cls.title)),
            interrupted=bool(data.get("interrupted", False)),
            interrupted_by=str(data.get("interrupted_by") or ""),
            suite=str(data.get("suite") or ""),
            gates=gates,
            fail_on=Status.parse(str(data.get("fail_on") or Status.NOT_READY.value)),
        )


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse_iso(value: Any) -> datetime:
    if not value:
        return utcnow()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
