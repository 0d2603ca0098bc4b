"""A remediation run as a FleetReport, so the store records it like any audit.

Per host x fixable check: the status after the fixes when they were applied and
re-audited, else the audited status the plan was made from; the message says what
happened to the fix, and ``details.fixes`` holds each fix's outcome. The whole
remediation document is kept in ``extra.remediation``.
"""

from __future__ import annotations

from typing import Any

from ..model import CheckResult, FleetReport, HostReport, Status

__all__ = ["remediation_to_fleet"]


def remediation_to_fleet(rem: Any) -> FleetReport:
    """``rem`` is a :class:`readiness.remediate.run.RemediationReport`."""
    hosts = [_host(h, tuple(rem.checks)) for h in rem.hosts]
    mode = "apply" if rem.applied else "dry-run"
    return FleetReport(
        hosts=tuple(hosts),
        checks=tuple(rem.checks),
        title=f"REMEDIATION ({mode})",
        interrupted=bool(rem.interrupted_by),
        interrupted_by=str(rem.interrupted_by or ""),
        extra={"remediation": rem.to_dict()},
    )


def _host(h: Any, checks: tuple[str, ...]) -> HostReport:
    if h.status is not None or h.unreachable:
        status = h.status or Status.UNREACHABLE
        results = tuple(
            CheckResult(check_name=c, status=status, message=h.unreachable, host=h.host)
            for c in checks
        )
        return HostReport(host=h.host, results=results, reason=h.unreachable)
    rows: list[CheckResult] = []
    for check, before in h.before.items():
        outcomes = [o for o in h.outcomes if o.fix.check == check]
        after = [o.after for o in outcomes if o.after is not None]
        status = max(after) if after else before
        if outcomes:
            message = "; ".join(f"fix {o.outcome}: {o.fix.description}" for o in outcomes)
        elif h.plan.error:
            message = f"not remediated: {h.plan.error}"
        else:
            message = "no fix needed" if status <= Status.READY else "no automatic fix"
        rows.append(
            CheckResult(
                check_name=check,
                status=status,
                message=message,
                details={"fixes": [o.to_dict() for o in outcomes]},
                host=h.host,
            )
        )
    return HostReport(host=h.host, results=tuple(rows))
