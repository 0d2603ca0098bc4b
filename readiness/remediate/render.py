"""Text and JSON renderings of a :class:`RemediationReport` (pure functions).

Every host ends with what remains on it and why (:mod:`.remaining`). The summary's
counts are the audit log's.
"""

from __future__ import annotations

import json
from collections import Counter

from .remaining import WHY_ORDER, remaining, restart_needed
from .run import HostRemediation, RemediationReport

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "json")
_MARK = {
    "applied": "✓",
    "noop": "=",
    "reverted": "↺",
    "failed": "✗",
    "refused": "⊘",
    "planned": "~",
}


def render(report: RemediationReport, fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, sort_keys=True)
    return _text(report)


def _text(report: RemediationReport) -> str:
    out: list[str] = []
    for host in report.hosts:
        out += _host(host, report.applied)
    counts = Counter(o.outcome for h in report.hosts for o in h.outcomes)
    down = [h for h in report.hosts if h.unreachable or h.plan.error]
    reached = len(report.hosts) - len(down)
    restarts = sum(1 for h in report.hosts for o in h.outcomes if restart_needed(o))
    if report.applied:
        parts = [
            f"{counts[k]} {k}"
            for k in ("applied", "noop", "reverted", "failed", "refused")
            if counts[k]
        ]
        if restarts and parts:
            parts[0] += f" ({restarts} need(s) a restart of the service)"
        idle = [h for h in report.hosts if h not in down and not h.outcomes]
        stuck = sum(1 for h in idle if remaining(h))
        if len(idle) - stuck:
            parts.append(f"{len(idle) - stuck} host(s) with nothing to fix")
        if stuck:
            parts.append(f"{stuck} host(s) with nothing a fixer could change")
        summary = ", ".join(parts) or "no host could be reached"
        out.append(f"Applied on {reached} of {len(report.hosts)} host(s): {summary}.")
        refused = [h.host for h in report.hosts if h.refusals]
        if refused:
            out.append(
                f"A fixer refused part of what it was asked on {len(refused)} host(s), left "
                f"unchanged (exit 1): {', '.join(refused)}."
            )
    else:
        out.append(
            f"Dry run: {counts['planned']} fix(es) planned on {reached} of "
            f"{len(report.hosts)} host(s); nothing was changed. Re-run with --apply to carry "
            "them out."
        )
    if down:
        out.append(
            f"{len(down)} host(s) could not be remediated (unreachable or stopped): "
            f"{', '.join(h.host for h in down)}."
        )
    left = [(h.host, remaining(h)) for h in report.hosts]
    left = [(name, items) for name, items in left if items]
    if left:
        out.append("Remaining:")
        for name, items in left:
            kinds = Counter(r.why for r in items)
            why = ", ".join(f"{kinds[k]} {k}" for k in WHY_ORDER if kinds[k])
            out.append(f"  {name}: {why}")
    return "\n".join(out)


def _output(text: str, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of a command's output (the JSON report keeps the capped tail)."""
    shown = text.rstrip("\n").splitlines()[-lines:] if text.strip() else []
    if not shown:
        return []
    return [f"      output (last {len(shown)} line(s)):", *(f"      | {line}" for line in shown)]


def _host(host: HostRemediation, applied: bool) -> list[str]:
    out = [f"== {host.host}" + ("" if applied else " (dry run)")]
    if host.unreachable and not host.outcomes:
        return [
            *out,
            f"  ? unreachable: {host.unreachable}",
            "  nothing was audited or changed",
            "",
        ]
    if host.unreachable:  # given up after fixes began: what they did comes below
        out.append(f"  ? unreachable: {host.unreachable}, after remediation began")
    if host.plan.error:
        return [*out, f"  ! error: {host.plan.error}", ""]
    left = remaining(host)
    if not host.outcomes:
        out.append(
            "  nothing a fixer could change: see what remains below"
            if left
            else "  nothing to fix: every fixable check passes"
        )
    for o in host.outcomes:
        before = o.before.label if o.before else "?"
        if applied:
            out.append(
                f"  {_MARK.get(o.outcome, '?')} {o.fix.check}: {o.outcome} ({before}) - {o.message}"
            )
            out += [f"      {line}" for line in o.details]
            out += _output(o.output)
            if o.backups:
                out.append(f"      backup copies: {', '.join(o.backups)}")
        else:
            out.append(f"  ~ {o.fix.check} ({before}): {o.fix.description}")
            out += [f"      {line}" for line in o.fix.diff().splitlines()]
        out += [f"      note: {n}" for n in o.fix.notes]
    if left:
        out.append("  remains:")
        for r in left:
            reason = f" ({r.reason})" if r.reason and r.why != "failed" else ""
            out.append(f"  - {r.check}: {r.why}: {r.what}{reason}")
    out.append("")
    return out
