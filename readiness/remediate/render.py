"""Text and JSON renderings of a :class:`RemediationReport` (pure functions)."""

from __future__ import annotations

import json
from collections import Counter

from .run import HostRemediation, RemediationReport

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "json")
_MARK = {"applied": "✓", "noop": "=", "reverted": "↺", "failed": "✗", "planned": "~"}


def render(report: RemediationReport, fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, sort_keys=True)
    return _text(report)


def _text(report: RemediationReport) -> str:
    out: list[str] = []
    for host in report.hosts:
        out += _host(host, report.applied)
    counts = Counter(o.outcome for h in report.hosts for o in h.outcomes)
    unreachable = sum(1 for h in report.hosts if h.unreachable or h.plan.error)
    if report.applied:
        parts = [f"{counts[k]} {k}" for k in ("applied", "noop", "reverted", "failed") if counts[k]]
        summary = ", ".join(parts) or "nothing to fix"
        out.append(f"Applied on {len(report.hosts)} host(s): {summary}.")
    else:
        out.append(
            f"Dry run: {counts['planned']} fix(es) planned on {len(report.hosts)} host(s); "
            "nothing was changed. Re-run with --apply to carry them out."
        )
    if unreachable:
        out.append(f"{unreachable} host(s) could not be remediated (see above).")
    return "\n".join(out)


def _output(text: str, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of a command's output (the JSON report keeps the capped tail)."""
    shown = text.rstrip("\n").splitlines()[-lines:] if text.strip() else []
    if not shown:
        return []
    return [f"      output (last {len(shown)} line(s)):", *(f"      | {line}" for line in shown)]


def _host(host: HostRemediation, applied: bool) -> list[str]:
    out = [f"== {host.host}" + ("" if applied else " (dry run)")]
    if host.unreachable:
        return [*out, f"  ? unreachable: {host.unreachable}", ""]
    if host.plan.error:
        return [*out, f"  ! error: {host.plan.error}", ""]
    if not host.outcomes:
        out.append("  nothing to fix: every fixable check passes (or has nothing a fixer can do)")
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
    for check, left in host.plan.unfixable.items():
        for problem in left:
            out.append(f"  - {check}: not fixed automatically: {problem}")
    out.append("")
    return out
