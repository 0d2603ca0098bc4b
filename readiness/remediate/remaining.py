"""What remains on a host after remediation, and why.

``no fixer`` (no fixer addresses the finding), ``refused`` (a fixer declined, with its
reason), ``failed`` (a fix failed or was reverted), ``restart needed`` (fixed on disk,
the running service has not loaded it) or ``unreachable`` (nothing was audited).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .apply import RESTART_NEEDED, FixOutcome

if TYPE_CHECKING:
    from .run import HostRemediation

__all__ = ["WHY_ORDER", "Remaining", "remaining", "restart_needed"]

WHY_ORDER = ("unreachable", "failed", "refused", "no fixer", "restart needed")


@dataclass(frozen=True)
class Remaining:
    """One thing left on a host after remediation, and why it is left."""

    check: str
    why: str  # one of WHY_ORDER
    what: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "why": self.why, "what": self.what, "reason": self.reason}


def restart_needed(outcome: FixOutcome) -> bool:
    return outcome.outcome == "applied" and outcome.message.startswith(RESTART_NEEDED)


def _fix_remaining(o: FixOutcome) -> list[Remaining]:
    if o.outcome in ("failed", "reverted", "refused"):
        why = "refused" if o.outcome == "refused" else "failed"
        return [
            Remaining(o.fix.check, why, what, f"{o.outcome}: {o.message}")
            for what in o.remaining or (o.fix.description,)
        ]
    if restart_needed(o):
        return [Remaining(o.fix.check, "restart needed", o.fix.description, o.message)]
    return []


def remaining(host: HostRemediation) -> list[Remaining]:
    """What remains on ``host`` after its fixes (for a dry run: what the plan would leave)."""
    if host.unreachable and not host.outcomes:
        return [Remaining("*", "unreachable", "not audited, nothing changed", host.unreachable)]
    if host.unreachable:  # given up in the middle: the fixes made so far, then this
        made = [r for o in host.outcomes for r in _fix_remaining(o)]
        return [*made, Remaining("*", "unreachable", "remediation cut short", host.unreachable)]
    if host.plan.error:
        return [Remaining("*", "unreachable", "remediation stopped", host.plan.error)]
    out: list[Remaining] = [r for o in host.outcomes for r in _fix_remaining(o)]
    for check, findings in host.plan.unfixable.items():
        notes = host.plan.refused.get(check, ())
        why = "refused" if notes else "no fixer"
        out += [Remaining(check, why, f, "; ".join(notes)) for f in findings]
    for check, notes in host.plan.refused.items():
        if check not in host.plan.unfixable:
            # a note already says "refused: ..."; the line shows the reason once
            out += [Remaining(check, "refused", n.removeprefix("refused: ")) for n in notes]
    return out
