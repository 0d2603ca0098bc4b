"""Controller side of the applier: the probe's constant command line, a request on stdin.

:func:`apply_fix` is the transaction of one fix on one host: the applier snapshots
and applies in one round trip, the check is re-audited on the same connection, and
when the findings the fix was meant to clear are still there (or the check got
worse) the snapshot is restored byte for byte. A fix that ran a command on the host
(migrations) cannot be restored that way: it is reported ``failed``, never ``reverted``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ..collect import ProbeError, check_exit, run_bootstrapped
from ..errors import TransportError
from ..hostdata import HostDataError, load_json
from ..model import CheckResult, Status
from ..redact import redact_url_password
from ..transport import Transport
from .plan import FileState, Fix, ReportedChange, RunCommand

__all__ = [
    "RESTART_NEEDED",
    "FixOutcome",
    "applier_source",
    "apply_fix",
    "read_files",
    "run_applier",
]


@cache
def applier_source() -> bytes:
    return resources.files("readiness").joinpath("applier.py").read_bytes()


def run_applier(
    transport: Transport, request: Mapping[str, Any], *, timeout_s: float = 60.0, sudo: bool = False
) -> dict[str, Any]:
    """Run the host-side applier once; its answer as a dict (``ok`` says if it succeeded)."""
    limit = 64 * 1024 * 1024
    res = run_bootstrapped(
        transport,
        applier_source(),
        json.dumps(request).encode(),
        timeout_s=timeout_s,
        sudo=sudo,
        max_output=limit,
    )
    check_exit(res, "applier", timeout_s=timeout_s, sudo=sudo, max_output=limit)
    try:
        answer = load_json(res.answer.decode("utf-8", "replace"), max_size=64 * 1024 * 1024)
    except HostDataError as exc:
        raise ProbeError(f"applier answer is not JSON: {exc}") from None
    if not isinstance(answer, dict):
        raise ProbeError("applier answer is not an object")
    return answer


def read_files(
    transport: Transport, paths: Sequence[str], *, timeout_s: float, sudo: bool
) -> dict[str, FileState]:
    if not paths:
        return {}
    answer = run_applier(
        transport, {"op": "read", "paths": list(paths)}, timeout_s=timeout_s, sudo=sudo
    )
    files = answer.get("files") or {}
    return {p: FileState.from_answer(p, files.get(p) or {}) for p in paths}


@dataclass(frozen=True)
class FixOutcome:
    """What happened to one fix: planned (dry run), applied, noop, reverted or failed."""

    fix: Fix
    outcome: str
    message: str = ""
    before: Status | None = None
    after: Status | None = None
    remaining: tuple[str, ...] = ()
    backups: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    output: str = ""  # the tail of a command's output (masked by the host run's redactor)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.fix.check,
            "description": self.fix.description,
            "outcome": self.outcome,
            "message": self.message,
            "changes": self.fix.summaries(),
            "addresses": list(self.fix.addresses),
            "notes": list(self.fix.notes),
            "restart_needed": self.fix.restart_needed,
            "status_before": self.before.value if self.before else None,
            "status_after": self.after.value if self.after else None,
            "remaining": list(self.remaining),
            "backups": list(self.backups),
            "output": self.output or None,
            "details": list(self.details),
            "diff": self.fix.diff(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FixOutcome:
        """The outcome :meth:`to_dict` wrote (a worker's report): the fix keeps its
        summaries and masked diff, never the content it wrote."""

        def status(key: str) -> Status | None:
            value = data.get(key)
            return Status(value) if value else None

        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(v) for v in data.get(key) or ())

        fix = Fix(
            check=str(data["check"]),
            description=str(data.get("description") or ""),
            changes=tuple(ReportedChange(t) for t in strings("changes")),
            addresses=strings("addresses"),
            notes=strings("notes"),
            restart_needed=bool(data.get("restart_needed")),
            shown_diff=str(data.get("diff") or ""),
        )
        return cls(
            fix,
            str(data["outcome"]),
            str(data.get("message") or ""),
            status("status_before"),
            status("status_after"),
            strings("remaining"),
            strings("backups"),
            strings("details"),
            str(data.get("output") or ""),
        )


Recheck = Callable[[], CheckResult]

NOT_REVERTIBLE = (
    "what the command changed cannot be reverted by remediate: migrations are the app's "
    "responsibility (check the output, fix, and re-run)"
)


def _budget(fix: Fix, timeout_s: float) -> float:
    """The applier's time to make the fix: the usual one plus every command's own timeout.
    Past it the applier undoes the fix (``applier.RESTORE_RESERVE_S`` more at most)."""
    return timeout_s + sum(c.timeout_s for c in fix.changes if isinstance(c, RunCommand))


# applier.RESTORE_RESERVE_S: how long the applier may take to undo a fix it stopped.
RESTORE_RESERVE_S = 15.0


def _not_applied(fix: Fix, answer: Mapping[str, Any]) -> str:
    """What the host is left with after an apply that failed: the applier undid it
    (``undone``: what it put back or removed), or says what it could not put back."""
    undo = [str(e) for e in answer.get("restore_errors") or ()]
    undone = [str(u) for u in answer.get("undone") or ()]
    at = answer.get("stopped_at")
    doing = ""
    if isinstance(at, int) and 0 <= at < len(fix.changes):
        doing = f" during `{fix.summaries()[at]}`"
    if undo:
        kept = f" (put back: {', '.join(undone)})" if undone else ""
        return f"{doing}; restoring left problems: {'; '.join(undo)}{kept}"
    if not fix.revertible:
        return f"{doing}; {NOT_REVERTIBLE}"
    if answer.get("stopped"):
        if undone:
            return f"{doing}; everything this fix had changed was undone ({', '.join(undone)})"
        return f"{doing}; it had changed nothing yet, so nothing was left changed"
    return "; nothing was left changed"


def _output(answer: Mapping[str, Any]) -> str:
    outputs = answer.get("outputs") or {}
    return "\n".join(redact_url_password(str(v)) for _, v in sorted(outputs.items()))


def apply_fix(
    transport: Transport,
    fix: Fix,
    before: CheckResult,
    recheck: Recheck,
    *,
    timeout_s: float,
    sudo: bool,
    keep_backups: int = 5,
    stopping: Callable[[], str] | None = None,
    on_applied: Callable[[tuple[str, ...]], None] | None = None,
) -> FixOutcome:
    """Snapshot + apply, re-audit the check, restore the snapshot when the fix did not work.

    ``keep_backups``: how many ``.readiness-bak.*`` copies of each rewritten file are kept.
    ``on_applied``: told (with the backups) once the change is on the host, before it is
    verified: a host given up from then on is left with it unless the undo gets through.
    ``stopping``: why the host's work must stop ("run interrupted (SIGINT)", its deadline),
    "" while it may go on; when it must by the time the fix is applied, the fix is not
    verified but restored at once (a Ctrl-C must not leave an unverified change behind).
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    work_s = _budget(fix, timeout_s)
    request = {
        "op": "apply",
        "stamp": stamp,
        "changes": [c.request() for c in fix.changes],
        "keep_backups": keep_backups,
        "prune": False,  # older backups go only once the fix is verified (_prune)
        # Past work_s the applier stops and undoes the fix, then answers: the wait for its
        # answer (and its own hard deadline) leaves it RESTORE_RESERVE_S for that.
        "work_s": work_s,
    }
    answer = run_applier(transport, request, timeout_s=work_s + RESTORE_RESERVE_S, sudo=sudo)
    output = _output(answer)
    if not answer.get("ok"):
        why = redact_url_password(str(answer.get("error") or "unknown error"))
        extra = redact_url_password(_not_applied(fix, answer))
        return FixOutcome(fix, "failed", why + extra, before.status, output=output)
    results = [str(r) for r in answer.get("results") or ()]
    backups = tuple(str(b) for b in answer.get("backups") or ())
    if on_applied is not None and any(results):  # on the host now, not yet verified
        on_applied(backups)
    if not any(results):
        return _nothing_changed(fix, before, recheck, stopping)

    def restore_snapshot(
        why: str, after: CheckResult | None = None, remaining: tuple[str, ...] = ()
    ) -> FixOutcome:
        """Restore the snapshot; ``after`` None: never verified (an interruption)."""
        if after is None:
            after = CheckResult(before.check_name, before.status, "not verified")
        return _undo(
            transport,
            fix,
            answer,
            why,
            before=before,
            after=after,
            remaining=remaining,
            timeout_s=timeout_s,
            sudo=sudo,
        )

    stopped = stopping() if stopping is not None else ""
    if stopped:  # not verified: undone at once, the loop is waiting for this host
        return restore_snapshot(f"{stopped} before the fix was verified")
    try:
        after = recheck()
    except Exception as exc:  # the re-audit failed: we cannot prove the fix, so undo it
        stopped = stopping() if stopping is not None else ""
        if stopped:  # hung up past the interruption's grace: not a verdict on the fix
            return restore_snapshot(f"{stopped} while the fix was being verified")
        after = CheckResult(before.check_name, Status.ERROR, f"re-audit failed: {exc}")
    remaining = fix.still_reported(_findings(after))
    if not remaining and not after.status > before.status:
        if backups:
            _prune(transport, backups, keep_backups, timeout_s=timeout_s, sudo=sudo)
        done = [f"{c.summary()}: {r}" for c, r in zip(fix.changes, results, strict=True) if r]
        return FixOutcome(
            fix,
            "applied",
            _verdict(after),
            before.status,
            after.status,
            (),
            backups,
            tuple(done),
            output,
        )
    why = (
        "the check still reports: " + "; ".join(remaining)
        if remaining
        else (
            f"the check got worse ({before.status.label} -> {after.status.label}): {after.message}"
        )
    )
    return restore_snapshot(why, after, remaining)


def _prune(
    transport: Transport, backups: Sequence[str], keep: int, *, timeout_s: float, sudo: bool
) -> None:
    """Of each file a verified fix backed up, keep the newest ``keep`` copies (its own
    included). Housekeeping: the fix is applied whether or not this succeeds."""
    request = {"op": "prune", "backups": list(backups), "keep_backups": keep}
    with contextlib.suppress(TransportError):
        run_applier(transport, request, timeout_s=timeout_s, sudo=sudo)


def _nothing_changed(
    fix: Fix, before: CheckResult, recheck: Recheck, stopping: Callable[[], str] | None
) -> FixOutcome:
    """The applier changed nothing. "Already in place" only when a re-audit agrees: the
    audit just reported what the fix addresses, so a value the applier would not touch
    (one it read differently, say) is a failure, never a success."""
    if stopping is not None and stopping():
        return FixOutcome(fix, "noop", "nothing changed", before.status, before.status)
    try:
        after = recheck()
    except Exception as exc:  # cannot tell whether it is in place
        after = CheckResult(before.check_name, Status.ERROR, f"re-audit failed: {exc}")
        return FixOutcome(
            fix, "failed", f"nothing was changed; {after.message}", before.status, after.status
        )
    remaining = fix.still_reported(_findings(after))
    if remaining:
        return FixOutcome(
            fix,
            "failed",
            "nothing was changed (the host's file did not hold what the plan expected); "
            "the check still reports: " + "; ".join(remaining),
            before.status,
            after.status,
            remaining,
        )
    return FixOutcome(fix, "noop", "already in place: nothing changed", before.status, after.status)


def _undo(
    transport: Transport,
    fix: Fix,
    answer: Mapping[str, Any],
    why: str,
    *,
    before: CheckResult,
    after: CheckResult,
    remaining: tuple[str, ...],
    timeout_s: float,
    sudo: bool,
) -> FixOutcome:
    """Restore the snapshot ``answer`` (an applied fix's) holds; the outcome says why."""
    output = _output(answer)
    restore = {
        "op": "restore",
        "snapshot": answer.get("snapshot") or {},
        "created": answer.get("created") or [],
        # only what still holds what the fix wrote is put back (none of a later writer's)
        "written": answer.get("written") or {},
    }
    try:
        undone = run_applier(transport, restore, timeout_s=timeout_s, sudo=sudo)
    except TransportError as exc:  # hung up (a deadline, Ctrl-C past its grace): say so
        backups = [str(b) for b in answer.get("backups") or ()]
        kept = f" (backups: {', '.join(backups)})" if backups else ""
        return FixOutcome(
            fix,
            "failed",
            f"{why}; restore failed: {exc}: the change stays on the host{kept}",
            before.status,
            after.status,
            remaining,
            tuple(backups),
            output=output,
        )
    if not undone.get("ok"):
        errs = "; ".join(str(e) for e in undone.get("errors") or ())
        newer = "; ".join(str(e) for e in undone.get("kept_newer") or ())
        text = f"{why}; restore failed: {errs}" if errs else why
        if newer:  # a refusal to overwrite what someone wrote since: not a failed restore
            text += (
                f"; not restored, newer content kept: {newer}; compare it with its version "
                "before the fix, merge by hand, then re-run remediate"
            )
        return FixOutcome(
            fix,
            "failed",
            text,
            before.status,
            after.status,
            remaining,
            output=output,
        )
    if not fix.revertible:
        return FixOutcome(
            fix,
            "failed",
            f"{why}; {NOT_REVERTIBLE}",
            before.status,
            after.status,
            remaining,
            output=output,
        )
    return FixOutcome(
        fix, "reverted", f"{why}; the snapshot was restored", before.status, after.status, remaining
    )


def _findings(result: CheckResult) -> list[str]:
    d = result.details
    return [str(p) for p in (*(d.get("problems") or ()), *(d.get("warnings") or ()))]


RESTART_NEEDED = "fixed on disk, restart needed"


def _verdict(after: CheckResult) -> str:
    if after.details.get("restart_needed"):
        # The re-audit sees the file fixed but the running service still on the old one:
        # never READY until the service is restarted.
        stale = [p for p in _findings(after) if p.startswith("running with stale configuration")]
        return f"{RESTART_NEEDED}: check is {after.status.label}" + (
            f" ({stale[0]})" if stale else ""
        )
    if after.status in (Status.READY, Status.SKIPPED):
        return f"check is now {after.status.label}"
    left = _findings(after)
    more = (
        f": still {left[0]}" + (f" (+{len(left) - 1} more)" if len(left) > 1 else "")
        if left
        else ""
    )
    return f"fixed what it addresses; check is {after.status.label}{more}"
