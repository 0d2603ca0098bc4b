"""``remediate --engine celery``: plan on the workers, confirm here, apply what was confirmed.

Two phases over the same shards, queues and workers as an audit:

1. **plan** — each worker audits and plans its shard exactly as a local dry run does and
   returns every host's report plus a hash of its plan (:func:`..remediate.plan.plan_hash`,
   salted with the run id). The controller merges the rows in inventory order: a dry run
   ends here, with the output a local dry run prints.
2. **apply** (``--apply``, after the same confirmation as a local run) — each host goes
   out again with its confirmed plan's hash; the worker plans the host afresh and applies
   only when the fresh hash is the confirmed one, otherwise it changes nothing and reports
   "the plan changed since it was confirmed: ...". A host that could not be planned in
   phase 1 is not sent again: its phase-1 row stands.

The audit log is written here, from the entries the workers stream as they make them
(each with the worker's time and name). Every row is the first one recorded for the run
and host; a redelivered apply shard skips the hosts its earlier execution reported, and
the fresh-plan hash refuses a host that execution changed before it could report it.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from ..model import Status
from ..profile import Profile
from ..progress import Progress, remediation_wording
from ..registry import CheckSpec
from ..remediate.audit_log import AuditLog
from ..remediate.plan import HostPlan
from ..remediate.run import (
    NOT_CONFIRMED,
    ConfirmationRefused,
    HostRemediation,
    RemediationReport,
)
from ..runner import NOT_AUDITED, RunOptions
from .app import REMEDIATE_TASK, broker_redactor
from .controller import _Run, _Tracked, prepare, run_shards
from .payload import CONTROLLER_OPTIONS, shard_payload, wire_hosts, wire_profiles
from .shards import split

__all__ = ["DRAIN_S", "WORKER_LOST_NOTE", "remediate_distributed"]

DRAIN_S = 5.0  # after Ctrl-C: how long the controller still reads what stopping shards did
WORKER_LOST_NOTE = "what its worker applied before is in the audit log"

Row = tuple[HostRemediation, str]  # a host's result and (phase 1) its plan's hash


def remediate_distributed(
    selected: Sequence[Any],
    specs: Sequence[CheckSpec],
    others: Sequence[CheckSpec],
    profiles: Mapping[str, Profile],
    options: RunOptions,
    *,
    apply: bool,
    confirm: Callable[[list[str]], bool] | None,
    run_migrations: bool,
    audit_log: AuditLog | None,
    stderr: IO[str] | None = None,
) -> RemediationReport:
    """Remediate ``selected`` on Celery workers; the report a local run would give."""
    stream = stderr or sys.stderr
    wire_hosts(selected)  # refused before any broker
    sent = wire_profiles(selected, profiles, [*specs, *others])
    app, run_budget = prepare(options, selected, stream)
    run_id = uuid.uuid4().hex[:16]
    checks = tuple(s.name for s in specs)
    redact = broker_redactor(options.broker or "").text
    opts = {k: getattr(options, k) for k in CONTROLLER_OPTIONS}

    def phase(
        name: str,
        hosts: Sequence[Any],
        fail: Callable[[int, Status, str, float], Row],
        **extra: Any,
    ) -> tuple[list[Row | None], str, _Run[Row]]:
        def payload(indices: Sequence[int], number: int) -> dict[str, Any]:
            chosen = [hosts[i] for i in indices]
            body = shard_payload(
                run_id,
                number=number,
                hosts=chosen,
                profiles=sent,
                checks=[s.name for s in specs],
                options=opts,
                budget_s=run_budget,
            )
            confirmed = extra.get("confirmed") or {}
            return {
                **body,
                "phase": name,
                "others": [s.name for s in others],
                "run_migrations": run_migrations,
                "confirmed": {h.name: confirmed[h.name] for h in chosen if h.name in confirmed},
            }

        run: _Run[Row] = _Run(
            [h.name for h in hosts],
            Progress.for_run(hosts, options, stream, remediation_wording(name == "apply")),
            redact,
            lambda data: (HostRemediation.from_dict(data), str(data.get("plan_hash") or "")),
            fail,
            lambda row: row[0].progress_status(),
            [None] * len(hosts),
            on_meta=extra.get("on_meta"),
        )
        shards = split(hosts, options.shard_size)
        interrupted_by = run_shards(
            app,
            run,
            REMEDIATE_TASK,
            [(s, payload(s.indices, s.number)) for s in shards],
            prefix=f"readiness-{run_id}-{name}",
            options=options,
            run_budget=run_budget,
            drain_s=DRAIN_S,
        )
        return run.results, interrupted_by, run

    def stopped(host: Any, why: str) -> HostRemediation:
        reason = f"{NOT_AUDITED} ({why})" if why else NOT_AUDITED
        return HostRemediation(
            host.name, HostPlan(host.name), (), reason, status=Status.INTERRUPTED
        )

    def unplanned(i: int, status: Status, reason: str, now: float) -> Row:
        host = selected[i]
        return HostRemediation(host.name, HostPlan(host.name), (), reason, status=status), ""

    planned, interrupted_by, plan_run = phase("plan", selected, unplanned)
    rows = [
        r[0] if r is not None else stopped(h, interrupted_by)
        for r, h in zip(planned, selected, strict=True)
    ]
    if apply and interrupted_by:  # stopped while planning: nothing was changed anywhere
        rows = [stopped(h, interrupted_by) for h in selected]
    if not apply or interrupted_by:
        _summary(plan_run, rows, interrupted_by)
        return RemediationReport(tuple(rows), apply, checks, interrupted_by=interrupted_by)
    if confirm is not None and not confirm([h.name for h in selected]):
        raise ConfirmationRefused(NOT_CONFIRMED)

    # phase 2: only hosts with a plan go out again, each with its confirmed hash
    chosen = [
        i
        for i, r in enumerate(planned)
        if r is not None and r[1] and not r[0].unreachable and not r[0].plan.error
    ]
    targets = [selected[i] for i in chosen]
    confirmed = {
        selected[i].name: {
            "hash": r[1],
            "checks": [f.check for f in r[0].plan.fixes],
        }
        for i in chosen
        if (r := planned[i]) is not None
    }
    writer = _LogWriter(audit_log, {h.name for h in targets})

    def lost(i: int, status: Status, reason: str, now: float) -> Row:
        host = targets[i]
        # a shard nobody took changed nothing; any other loss may have changed something
        why = reason if reason.startswith("no worker took") else f"{reason}; {WORKER_LOST_NOTE}"
        return HostRemediation(host.name, HostPlan(host.name, error=why), (), "", status=status), ""

    applied, interrupted_by, apply_run = phase(
        "apply", targets, lost, confirmed=confirmed, on_meta=writer.take
    )
    for k, i in enumerate(chosen):
        got = applied[k]
        rows[i] = got[0] if got is not None else stopped(selected[i], interrupted_by)
    _summary(apply_run, rows, interrupted_by)
    return RemediationReport(tuple(rows), True, checks, interrupted_by=interrupted_by)


def _summary(run: _Run[Row], rows: Sequence[HostRemediation], interrupted_by: str) -> None:
    run.progress.summary([r.progress_status() for r in rows], interrupted_by)


class _LogWriter:
    """Writes the workers' audit-log entries to the controller's log, each exactly once
    (an entry is known by its execution and sequence number)."""

    def __init__(self, log: AuditLog | None, hosts: set[str]) -> None:
        self.log, self.hosts = log, hosts
        self.seen: set[tuple[str, int]] = set()

    def take(self, tracked: _Tracked, meta: Mapping[str, Any]) -> None:
        info = meta.get("result")
        if self.log is None or not isinstance(info, Mapping):
            return
        execution, worker = str(info.get("execution") or ""), str(info.get("worker") or "")
        entries = info.get("log")
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, Mapping) or str(entry.get("host")) not in self.hosts:
                continue
            key = (execution, int(entry.get("seq") or 0))
            if key in self.seen:
                continue
            self.seen.add(key)
            self.log.record(
                str(entry["host"]),
                str(entry.get("check") or "-"),
                [str(c) for c in entry.get("changes") or ()],
                str(entry.get("outcome") or ""),
                str(entry.get("message") or ""),
                at=str(entry.get("at") or "") or None,
                worker=worker or None,
            )
