"""Nagios/Icinga plugin output: one status line with perfdata, then long text.

``READINESS CRITICAL - 3/200 hosts not ready: web07 (database_migration), … | ready=197;;;0;200 …``

:func:`nagios_state` maps a report onto the plugin convention (0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN). Those exit codes are used only by the dedicated ``nagios`` task
(docs/reports.md); ``--format nagios`` under ``validate`` keeps readiness' own exit codes.
Host text is flattened to one line and ``|`` (the perfdata separator) is replaced, so a
host cannot forge perfdata or extra lines.
"""

from __future__ import annotations

import enum
from dataclasses import replace
from typing import Any

from ..model import FleetReport, HostReport, Status
from ._clean import one_line

__all__ = ["NagiosState", "nagios_state", "nagios_unknown", "render_nagios"]

SHOWN_HOSTS = 5  # problem hosts named on the status line
LONG_LINES = 100  # problem hosts listed in the long text (plugins' buffers are finite)


class NagiosState(enum.IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


def _safe(text: object, limit: int = 200) -> str:
    return one_line(text, limit).replace("|", "/")


def _warn_status(fail_on: Status) -> bool:
    """DEGRADED is CRITICAL when it fails the run, otherwise WARNING."""
    return fail_on > Status.DEGRADED


def nagios_state(report: FleetReport, fail_on: Status | None = None) -> NagiosState:
    """The plugin state of a report: UNKNOWN when interrupted or nothing was selected;
    otherwise the model's verdict (gates included) decides CRITICAL, and DEGRADED results
    that do not fail the run are a WARNING."""
    threshold = fail_on or report.fail_on
    if report.interrupted or not report.hosts:
        return NagiosState.UNKNOWN
    if "baseline" in report.extra:  # the fleet's state: a CI ratchet's pass pages nobody less
        report = replace(report, extra={k: v for k, v in report.extra.items() if k != "baseline"})
    verdict = report.verdict(threshold)
    if verdict == "fail":
        return NagiosState.CRITICAL
    # Gates that tolerate failures (integration: 90 %) pass over a NOT_READY or UNREACHABLE
    # host: the run passes, but a host with a problem is never OK (a DEGRADED one was not).
    if verdict == "warn" or report.overall_status >= Status.DEGRADED:
        return NagiosState.WARNING
    return NagiosState.OK


def _problem_checks(host: HostReport, floor: Status) -> list[str]:
    return [r.check_name for r in host.results if r.status >= floor]


def _status_text(report: FleetReport, state: NagiosState, threshold: Status) -> str:
    total = len(report.hosts)
    if state is NagiosState.UNKNOWN:
        if report.interrupted:
            audited = sum(h.status is not Status.INTERRUPTED for h in report.hosts)
            return f"run interrupted ({report.interrupted_by or 'SIGINT'}): {audited}/{total} hosts audited"
        return "no host selected"
    floor = Status.NOT_READY if state is NagiosState.CRITICAL else Status.DEGRADED
    if state is NagiosState.CRITICAL and not _warn_status(threshold):
        floor = Status.DEGRADED
    if state is NagiosState.WARNING and report.overall_status.blocking:
        floor = Status.NOT_READY  # name the hosts that are not ready, not every degraded one
    bad = [h for h in report.hosts if h.status >= floor]
    if not bad:
        ready = sum(h.status is Status.READY for h in report.hosts)
        text = f"{ready}/{total} hosts ready"
        if ready < total:  # the rest were skipped: nothing applicable there, not 'ready'
            text += f", {total - ready} skipped"
        if report.gates is not None and state is not NagiosState.OK:
            return f"quality gates {report.verdict(threshold)}, {text}"
        return text
    # a WARNING from a non-critical gate can carry NOT_READY hosts: never call them degraded
    mild = state is NagiosState.WARNING and all(h.status is Status.DEGRADED for h in bad)
    word = "degraded" if mild else "not ready"
    named = []
    for host in bad[:SHOWN_HOSTS]:
        checks = _problem_checks(host, floor)
        if host.status in (Status.UNREACHABLE, Status.INTERRUPTED) or not checks:
            named.append(f"{_safe(host.host, 60)} ({host.status.value})")
        else:
            named.append(f"{_safe(host.host, 60)} ({_safe(', '.join(checks), 120)})")
    more = f", … {len(bad) - SHOWN_HOSTS} more" if len(bad) > SHOWN_HOSTS else ""
    # gates decide the state: say so, or a WARNING/OK beside NOT_READY hosts reads as a bug
    gated = (
        f"quality gates {report.verdict(threshold)}, " if report.gates and report.gates.rows else ""
    )
    return f"{gated}{len(bad)}/{total} hosts {word}: " + ", ".join(named) + more


def _perfdata(report: FleetReport, threshold: Status) -> str:
    total = len(report.hosts)
    counts = dict.fromkeys(Status, 0)
    for host in report.hosts:
        counts[host.status] += 1
    parts = []
    for status in Status:
        # warn/crit ranges "0": alert when the count leaves 0..0, as the state above does
        warn = crit = ""
        if status.blocking:
            crit = "0"
        elif status is Status.DEGRADED:
            warn, crit = ("0", "") if _warn_status(threshold) else ("", "0")
        parts.append(f"{status.value}={counts[status]};{warn};{crit};0;{total}")
    return " ".join(parts)


def render_nagios(report: FleetReport, *, fail_on: Status = Status.NOT_READY, **_: Any) -> str:
    state = nagios_state(report, fail_on)
    head = f"READINESS {state.name} - {_status_text(report, state, fail_on)} | {_perfdata(report, fail_on)}"
    long_text = []
    problems = [h for h in report.hosts if h.status > Status.READY]
    for host in problems[:LONG_LINES]:
        if host.reason:
            long_text.append(f"{_safe(host.host, 60)}: {host.status.label} - {_safe(host.reason)}")
            continue
        for r in host.results:
            if r.status > Status.READY:
                long_text.append(
                    f"{_safe(host.host, 60)}: {r.status.label} {_safe(r.check_name, 60)} - "
                    f"{_safe(r.message)}"
                )
    if len(problems) > LONG_LINES:
        long_text.append(f"… {len(problems) - LONG_LINES} more hosts")
    return "\n".join([head, *long_text])


def nagios_unknown(reason: object) -> str:
    """The UNKNOWN line for a run that produced no report (usage error, interruption)."""
    return f"READINESS UNKNOWN - {_safe(reason, 300)}"
