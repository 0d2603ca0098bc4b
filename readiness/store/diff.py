"""``readiness diff``: what changed between two runs, per host x check.

A *problem* is any result worse than READY (DEGRADED and up); SKIPPED and READY are
fine. Between the old and the new run each host x check is one of:

- ``new``: not a problem before (or not audited: the host UNREACHABLE or INTERRUPTED, the
  check in ERROR), a problem now — got worse
- ``worse``: a problem both times, more severe now — got worse
- ``resolved``: a problem before, fine now
- ``better``: a problem both times, less severe now
- ``changed``: the same problem status, a different message

Hosts only in one run are listed as added/removed; an added host's problems count
as ``new``, as do problems of a check the old run did not audit. A check the new run
did not audit is not compared (it is not resolved by being skipped), nor one it was cut
short before (INTERRUPTED). ``worse`` (the diff's exit 1) is true when any change is new or worse.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..model import CheckResult, FleetReport, Status
from ..tables import tabulate
from ._text import field, md_cell, md_text, plain
from .db import RunSummary

__all__ = ["FORMATS", "Change", "RunDiff", "diff_reports", "render_diff"]

FORMATS = ("text", "table", "json", "markdown")
WORSE_KINDS = ("new", "worse")
_ORDER = ("new", "worse", "changed", "better", "resolved")


@dataclass(frozen=True)
class Change:
    host: str
    check: str
    kind: str
    old: Status | None
    new: Status | None
    old_message: str = ""
    new_message: str = ""
    recommendations: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "check": self.check,
            "change": self.kind,
            "old_status": self.old.value if self.old else None,
            "new_status": self.new.value if self.new else None,
            "old_message": self.old_message,
            "new_message": self.new_message,
            "recommendations": list(self.recommendations),
        }


@dataclass(frozen=True)
class RunDiff:
    old_run: str
    new_run: str
    changes: tuple[Change, ...]
    hosts_added: tuple[str, ...] = ()
    hosts_removed: tuple[str, ...] = ()
    interrupted: tuple[str, ...] = ()  # hosts with checks the new run was cut short before
    checks_not_compared: tuple[str, ...] = ()  # run by the old run only
    unseen: tuple[str, ...] = ()  # hosts with a check neither run could see (down, error)

    @property
    def worse(self) -> bool:
        return any(c.kind in WORSE_KINDS for c in self.changes)

    @property
    def exit_code(self) -> int:
        return 1 if self.worse else 0

    def notes(self) -> list[str]:
        """Hosts added and removed, and what could not be compared, one line each."""
        notes = []
        for what, names in (
            ("hosts added", self.hosts_added),
            ("hosts removed", self.hosts_removed),
            ("not compared (interrupted in the new run)", self.interrupted),
            ("not compared (checks not run in the new run)", self.checks_not_compared),
            ("not compared (nothing seen in either run: unreachable or error)", self.unseen),
        ):
            if names:
                notes.append(f"{what}: {', '.join(names)}")
        return notes

    def count(self, kind: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "readiness.diff/1",
            "old_run": self.old_run,
            "new_run": self.new_run,
            "worse": self.worse,
            "exit_code": self.exit_code,
            "counts": {k: self.count(k) for k in _ORDER},
            "hosts_added": list(self.hosts_added),
            "hosts_removed": list(self.hosts_removed),
            "not_compared_interrupted": list(self.interrupted),
            "checks_not_compared": list(self.checks_not_compared),
            "not_compared_unseen": list(self.unseen),
            "changes": [c.to_dict() for c in self.changes],
        }


def _problem(status: Status | None) -> bool:
    return status is not None and status > Status.READY


def undetermined(status: Status) -> bool:
    """ERROR, UNREACHABLE, INTERRUPTED: the check could not look, so it found nothing."""
    return status > Status.NOT_READY


def _classify(old: CheckResult | None, new: CheckResult | None) -> str | None:
    if new is None or new.status is Status.INTERRUPTED:
        # not audited this time (a run cut short by Ctrl-C never got to it): neither
        # resolved nor worse; it was "new" (READY → INTERRUPTED), exit 1
        return None
    was, now = (old.status if old else None), new.status
    if was is None or not _problem(was):
        return "new" if _problem(now) else None
    if not _problem(now):
        return "resolved"
    if undetermined(was) and not undetermined(now):
        # nothing was seen before (the host was down, the check crashed): a problem found
        # now is new, not "better" than the outage (that let it pass with exit 0)
        return "new"
    if now != was:
        return "worse" if now > was else "better"
    return "changed" if old is not None and old.message != new.message else None


def diff_reports(old: FleetReport, new: FleetReport, old_id: str = "", new_id: str = "") -> RunDiff:
    old_hosts = {h.host: h for h in old.hosts}
    new_hosts = {h.host: h for h in new.hosts}
    changes: list[Change] = []
    for name, host in new_hosts.items():
        before = old_hosts.get(name)
        checks = list(
            dict.fromkeys(
                [r.check_name for r in host.results]
                + ([r.check_name for r in before.results] if before else [])
            )
        )
        for check in checks:
            o = before.result(check) if before else None
            n = host.result(check)
            kind = _classify(o, n)
            if kind:
                changes.append(
                    Change(
                        name,
                        check,
                        kind,
                        o.status if o else None,
                        n.status if n else None,
                        o.message if o else "",
                        n.message if n else "",
                        tuple(n.recommendations) if n and kind in WORSE_KINDS else (),
                    )
                )
    changes.sort(key=lambda c: (_ORDER.index(c.kind), c.host, c.check))
    # what could not be compared is named: "no changes" read as the whole fleet's when the
    # new run ran fewer checks (`-c environment` after a full run) or a host was down both
    # times (UNREACHABLE → UNREACHABLE is no change, and nothing was seen)
    new_checks = set(new.check_names)
    unseen = []
    for name, host in new_hosts.items():
        before = old_hosts.get(name)
        if before is None:
            continue
        for r in host.results:
            o = before.result(r.check_name)
            if (
                o is not None
                and undetermined(o.status)
                and undetermined(r.status)
                and r.status is not Status.INTERRUPTED  # named as interrupted already
            ):
                unseen.append(name)
                break
    return RunDiff(
        old_id,
        new_id,
        tuple(changes),
        hosts_added=tuple(h for h in new_hosts if h not in old_hosts),
        hosts_removed=tuple(h for h in old_hosts if h not in new_hosts),
        interrupted=tuple(
            name
            for name, host in new_hosts.items()
            if any(r.status is Status.INTERRUPTED for r in host.results)
        ),
        checks_not_compared=tuple(c for c in old.check_names if c not in new_checks),
        unseen=tuple(unseen),
    )


def _status(s: Status | None) -> str:
    return s.label if s else "-"


def render_diff(diff: RunDiff, fmt: str, runs: Sequence[RunSummary] = ()) -> str:
    # Runs named the wrong way round are compared as given (readiness.store.cli warns on
    # stderr); the output says so too: a PR comment or a JSON consumer never sees stderr,
    # and there the newer run's regressions read as "resolved".
    backwards = len(runs) == 2 and runs[0].started_at > runs[1].started_at
    if fmt == "json":
        data = diff.to_dict()
        if runs:
            data["runs"] = [r.to_dict() for r in runs]
            data["backwards"] = backwards
        return json.dumps(data, indent=2)
    counts = ", ".join(f"{diff.count(k)} {k}" for k in _ORDER)
    verdict = "WORSE" if diff.worse else "NOT WORSE"
    head = f"diff {diff.old_run} → {diff.new_run}: {verdict} ({counts})"
    if backwards:
        head += f"; backwards: {diff.old_run} is the newer run"
    hosts = diff.notes()
    if fmt == "markdown":
        return _markdown(diff, head, hosts)
    if fmt == "text":  # host text one field per line (field): no host forges a line
        lines = [head, *(field(h) for h in hosts)]
        for c in diff.changes:
            lines.append(
                f"  {c.kind:<8} {field(c.host)} / {field(c.check)}: "
                f"{_status(c.old)} → {_status(c.new)}"
            )
            if c.kind == "changed" or (c.old_message and c.kind in ("worse", "better")):
                lines.append(f"           was: {field(c.old_message)}")
            if c.new_message and c.kind != "resolved":
                lines.append(f"           now: {field(c.new_message)}")
            lines.extend(f"           → {field(rec)}" for rec in c.recommendations)
        if not diff.changes and not hosts:
            lines.append("  no changes")
        return plain("\n".join(lines))
    rows = [
        [
            c.kind,
            field(c.host),
            field(c.check),
            _status(c.old),
            _status(c.new),
            field(c.new_message or c.old_message),
        ]
        for c in diff.changes
    ]
    headers = ["change", "host", "check", "was", "now", "message"]
    table = tabulate(
        rows, headers=headers, tablefmt="grid", maxcolwidths=[None, None, None, None, None, 60]
    )
    return plain("\n".join([head, *(field(h) for h in hosts), table if rows else "no changes"]))


def _markdown(diff: RunDiff, head: str, hosts: list[str]) -> str:
    """A PR comment: heading, host changes, one table row per change (cells escaped)."""
    lines = [f"### readiness {head}", ""]  # run ids, verdict and counts: no host text
    lines.extend(f"- {md_text(h)}" for h in hosts)
    if hosts:
        lines.append("")
    if not diff.changes:
        lines.append("_no changes_")
        return "\n".join(lines)
    lines.append("| change | host | check | was | now | message |")
    lines.append("|---|---|---|---|---|---|")
    for c in diff.changes:
        cells = [
            c.kind,
            c.host,
            c.check,
            _status(c.old),
            _status(c.new),
            c.new_message or c.old_message,
        ]
        lines.append("| " + " | ".join(md_cell(x) for x in cells) + " |")
    return "\n".join(lines)
