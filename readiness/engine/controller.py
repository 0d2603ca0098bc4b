"""The controller side: send a plan's shards, follow them, merge one FleetReport.

Every wait is bounded. A shard ends in exactly one of these ways, and each of its hosts
gets exactly one row (the first result recorded for a run and host wins, so a shard
delivered twice is never counted twice):

- its worker finishes it (SUCCESS): the hosts' reports, as a local run makes them;
- no worker takes it within ``shard_wait`` (PENDING), counted from the last time a worker
  took, beat on or finished a shard of its queue: UNREACHABLE, "no worker took ...";
- its worker stops beating (killed, lost its network): Redis redelivers the shard after
  ``visibility_timeout``; if no worker restarts it within that plus ``shard_wait``, the
  hosts not yet reported are UNREACHABLE, "worker lost ...";
- a live worker runs past the shard's own deadline (host deadline x rounds): UNREACHABLE;
- the broker stops answering for ``shard_wait``: UNREACHABLE, "broker unreachable ...";
- a shard given up in any of these ways is revoked, so that no worker audits (or fixes)
  its hosts after the report;
- Ctrl-C/SIGTERM: every outstanding shard is revoked (its worker hangs up its hosts) and
  the hosts not reported are INTERRUPTED, as in a local run.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Generic, TypeVar

from ..errors import UsageError
from ..interrupt import reraise_if_the_task_ends, signal_name
from ..model import FleetReport, HostReport, Status
from ..progress import Progress
from ..runner import NOT_AUDITED, RunOptions, _failed_host
from .app import (
    LOST_AFTER_S,
    NETWORK_TIMEOUT_S,
    SHARD_TASK,
    broker_redactor,
    make_app,
    restore_interval,
    safe_broker,
)
from .payload import CONTROLLER_OPTIONS, code_digest, shard_payload, wire_hosts, wire_profiles
from .shards import Shard, split

__all__ = [
    "LOST_AFTER_S",
    "POLL_S",
    "check_broker",
    "prepare",
    "run_distributed",
    "run_shards",
]

POLL_S = 0.2  # how often the controller reads the shards' states
# A shard's state holds its finished hosts' rows: more than this a host is no report (the
# default output cap of a whole command is 8 MiB); a bigger state is not read.
STATE_BYTES_PER_HOST = 16 * 1024 * 1024
SILENT_S = 3.0  # a shard without a beat this long (12 missed) is named on the progress line
R = TypeVar("R")


@dataclass
class _Tracked:
    shard: Shard
    task_id: str
    sent_at: float
    started_at: float | None = None
    execution: str = ""
    beat: int = -1
    beat_at: float = 0.0
    worker: str = ""
    done: bool = False


@dataclass
class _Run(Generic[R]):
    """One run's rows by host index; ``parse`` reads a worker's host dict, ``fail`` makes the
    row of a host no worker reported, ``status_of`` counts a row on the progress line."""

    names: Sequence[str]
    progress: Progress
    redact: Callable[[str], str]
    parse: Callable[[Mapping[str, Any]], R]
    fail: Callable[[int, Status, str, float], R]
    status_of: Callable[[R], Status]
    results: list[R | None] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)  # shards given up: revoke them
    # when a worker last took, beat on or finished a shard of each queue: a queued shard
    # waits while its queue moves, and is given up after shard_wait without a sign of life
    served_at: dict[str, float] = field(default_factory=dict)
    # sees every state read of a shard (the remediation audit log entries ride on them)
    on_meta: Callable[[_Tracked, Mapping[str, Any]], None] | None = None

    def record(self, i: int, row: R) -> None:
        if self.results[i] is None:  # first result for this run and host wins
            self.results[i] = row
            self.progress.finished(i, self.status_of(row))

    def give_up(self, shard: Shard, status: Status, reason: str, now: float) -> None:
        text = self.redact(reason)
        for i in shard.indices:
            if self.results[i] is None:
                self.record(i, self.fail(i, status, text, now))


def check_broker(app: Any, broker: str) -> None:
    """One bounded connection attempt; an unreachable broker is a usage error (exit 2)."""
    redact = broker_redactor(broker).text
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=NETWORK_TIMEOUT_S)
        app.backend.client.ping()
    except Exception as exc:
        raise UsageError(
            f"broker {safe_broker(broker)} unreachable: {redact(f'{type(exc).__name__}: {exc}')}"
        ) from None


def run_distributed(
    planned: Any, options: RunOptions, *, stderr: IO[str] | None = None
) -> FleetReport:
    """Audit ``planned`` on Celery workers; the report a local run of it would give."""
    stream = stderr or sys.stderr
    wire_hosts(planned.hosts)  # refused before any broker
    profiles = wire_profiles(planned.hosts, planned.profiles, planned.specs)
    app, run_budget = prepare(options, planned.hosts, stream)
    broker = options.broker or ""
    redact = broker_redactor(broker).text
    run: _Run[HostReport] = _Run(
        [h.name for h in planned.hosts],
        Progress.for_run(planned.hosts, options, stream),
        redact,
        HostReport.from_dict,
        lambda i, status, reason, now: _failed_host(
            planned.hosts[i], planned.specs, status, reason, now
        ),
        lambda r: r.status,
        [None] * len(planned.hosts),
    )
    run_id = uuid.uuid4().hex[:16]
    names = [s.name for s in planned.specs]
    opts = {k: getattr(options, k) for k in CONTROLLER_OPTIONS}

    def payload(shard: Shard) -> dict[str, Any]:
        return shard_payload(
            run_id,
            number=shard.number,
            hosts=[planned.hosts[i] for i in shard.indices],
            profiles=profiles,
            checks=names,
            options=opts,
            budget_s=run_budget,
        )

    interrupted_by = run_shards(
        app,
        run,
        SHARD_TASK,
        [(shard, payload(shard)) for shard in split(planned.hosts, options.shard_size)],
        prefix=f"readiness-{run_id}",
        options=options,
        run_budget=run_budget,
    )
    reason = f"{NOT_AUDITED} ({interrupted_by})" if interrupted_by else NOT_AUDITED
    now = time.monotonic()
    results = tuple(
        r
        if r is not None
        else _failed_host(planned.hosts[i], planned.specs, Status.INTERRUPTED, reason, now)
        for i, r in enumerate(run.results)
    )
    run.progress.summary([r.status for r in results], interrupted_by)
    reraise_if_the_task_ends(interrupted_by)  # bench --engine celery: shards revoked by now
    return FleetReport(
        hosts=results,
        checks=tuple(names),
        interrupted=bool(interrupted_by),
        interrupted_by=interrupted_by,
    )


def prepare(options: RunOptions, hosts: Sequence[Any], stream: IO[str]) -> tuple[Any, float]:
    """The Celery app for ``options.broker`` (reachable, or a usage error) and the shard budget."""
    broker = options.broker or ""
    if not broker:
        raise UsageError(
            "--engine celery needs a broker: --broker URL, $READINESS_BROKER_URL or "
            "readiness.broker in the configuration file"
        )
    local = [h.name for h in hosts if h.local]
    if local:
        raise UsageError(
            f"host {local[0]} is local (ansible_connection=local): the celery engine works "
            "over SSH only; use --engine local for it"
        )
    app = make_app(broker, visibility_timeout=options.visibility_timeout)
    check_broker(app, broker)
    run_budget = _shard_budget(options)
    if run_budget > options.visibility_timeout:
        print(
            f"readiness: warning: a shard may run {run_budget:g}s, longer than visibility_timeout "
            f"{options.visibility_timeout:g}s: Redis may deliver it twice (counted once)",
            file=stream,
        )
    return app, run_budget


def run_shards(
    app: Any,
    run: _Run[R],
    task: str,
    shards: Sequence[tuple[Shard, Mapping[str, Any]]],
    *,
    prefix: str,
    options: RunOptions,
    run_budget: float,
    drain_s: float = 0.0,
) -> str:
    """Send every shard as ``task``, follow them to their end; the signal that stopped the
    run ("" when none). Outstanding shards are revoked on every way out; with ``drain_s``
    the controller then reads their last states that long (what they finished meanwhile)."""
    tracked: list[_Tracked] = []
    interrupted_by = ""
    try:
        for shard, payload in shards:
            item = _Tracked(shard, f"{prefix}-{shard.number}", time.monotonic())
            tracked.append(item)
            try:
                app.send_task(
                    task,
                    args=[payload],
                    task_id=item.task_id,
                    queue=shard.queue,
                    retry=True,
                    retry_policy={
                        "max_retries": 2,
                        "interval_start": 0.2,
                        "interval_step": 0.5,
                        "interval_max": 1.0,
                    },
                )
            except Exception as exc:
                run.give_up(
                    shard,
                    Status.UNREACHABLE,
                    f"broker unreachable while sending shard {shard.number}: {exc}",
                    time.monotonic(),
                )
                item.done = True
        _follow(app, run, tracked, options, run_budget)
    except KeyboardInterrupt as exc:
        interrupted_by = signal_name(exc)
    finally:
        run.progress.close()
        outstanding = [t.task_id for t in tracked if not t.done] + run.abandoned
        if outstanding:
            if drain_s > 0:
                _stop(app, outstanding)
                _drain(app, run, [t for t in tracked if not t.done], options, drain_s)
            _revoke(app, outstanding)
    return interrupted_by


def _shard_budget(options: RunOptions) -> float:
    """How long a shard may run on a live worker: its rounds of host deadlines, plus slack."""
    rounds = math.ceil(options.shard_size / max(1, options.forks))
    return rounds * options.host_deadline + 10.0


def _follow(
    app: Any, run: _Run[R], tracked: list[_Tracked], options: RunOptions, run_budget: float
) -> None:
    backend = app.backend
    broker_down_since: float | None = None
    while True:
        pending = [t for t in tracked if not t.done]
        if not pending:
            return
        now = time.monotonic()
        try:
            values = _read_states(backend, pending)
            broker_down_since = None
        except Exception as exc:
            broker_down_since = broker_down_since or now
            if now - broker_down_since > options.shard_wait:
                for t in pending:
                    run.give_up(
                        t.shard,
                        Status.UNREACHABLE,
                        f"broker unreachable for {options.shard_wait:g}s: "
                        f"{type(exc).__name__}: {exc}",
                        now,
                    )
                    _abandon(run, t)  # if the broker comes back, no worker runs it late
                return
            _sleep(run)
            continue
        for t, raw in zip(pending, values, strict=True):
            if isinstance(raw, int):  # over the bound: never read, never decoded
                # deleted, as revoking reads the state it overwrites (Celery keeps SUCCESS)
                with contextlib.suppress(Exception):
                    backend.client.delete(backend.get_key_for_task(t.task_id))
                _abandon(run, t)
                run.give_up(
                    t.shard,
                    Status.ERROR,
                    f"shard {t.shard.number}'s state in the result backend is {_mib(raw)}, over "
                    f"the bound of {_mib(_state_bound(t))} ({_mib(STATE_BYTES_PER_HOST)} a "
                    "host): not read",
                    now,
                )
                continue
            meta = backend.decode_result(raw) if raw else {"status": "PENDING"}
            if run.on_meta is not None:
                run.on_meta(t, meta)
            _update(run, t=t, meta=meta, options=options, run_budget=run_budget, now=now)
        run.progress.note = _waiting_note(run, [t for t in pending if not t.done], options, now)
        if run.abandoned:
            _revoke(app, run.abandoned)
            run.abandoned.clear()
        _sleep(run)


def _state_bound(t: _Tracked) -> int:
    return STATE_BYTES_PER_HOST * len(t.shard.indices) + 1024 * 1024


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.0f} MiB"


def _read_states(backend: Any, tracked: Sequence[_Tracked]) -> list[bytes | int | None]:
    """Each shard's state as stored (None: none yet), or its size when it is over
    :func:`_state_bound`: its length is asked first, so an oversized value is never
    fetched nor decoded (a 300 MiB state took the controller to 1.6 GB)."""
    keys = [backend.get_key_for_task(t.task_id) for t in tracked]
    pipe = backend.client.pipeline(transaction=False)
    for key in keys:
        pipe.strlen(key)
    sizes = [int(n or 0) for n in pipe.execute()]
    small = [k for k, t, n in zip(keys, tracked, sizes, strict=True) if n <= _state_bound(t)]
    got = dict(zip(small, backend.mget(small), strict=True)) if small else {}
    return [
        got.get(k) if n <= _state_bound(t) else n
        for k, t, n in zip(keys, tracked, sizes, strict=True)
    ]


def _sleep(run: _Run[R]) -> None:
    run.progress.tick()
    time.sleep(POLL_S)


def _update(
    run: _Run[R],
    *,
    t: _Tracked,
    meta: Mapping[str, Any],
    options: RunOptions,
    run_budget: float,
    now: float,
) -> None:
    state = meta.get("status")
    info = meta.get("result")
    if state in ("STARTED", "PROGRESS") and t.started_at is None:
        t.started_at = t.beat_at = now
        run.served_at[t.shard.queue] = now
        for i in t.shard.indices:
            run.progress.started(i)
    if (
        isinstance(info, Mapping)
        and state in ("PROGRESS", "SUCCESS")
        and _refused(run, t, info, now)
    ):
        return
    if state == "PROGRESS" and isinstance(info, Mapping):
        _progress(run, t, info, now)
    if state == "SUCCESS" and isinstance(info, Mapping):
        _take_hosts(run, t, info.get("hosts"))
        t.done = True
        run.served_at[t.shard.queue] = now
        run.give_up(t.shard, Status.ERROR, f"worker {info.get('worker')} returned no result", now)
        return
    if state in ("FAILURE", "REVOKED"):
        t.done = True
        run.served_at[t.shard.queue] = now
        why = info.get("exc_message") if isinstance(info, Mapping) else info
        run.give_up(t.shard, Status.ERROR, f"shard {t.shard.number} failed on a worker: {why}", now)
        return
    if t.started_at is None:
        # Measured from the queue's last sign of life, not from sending: with more shards
        # than worker slots, shards wait their turn behind running ones (given up after
        # shard_wait from sending, a busy fleet's later shards came back "no worker took")
        if now - max(t.sent_at, run.served_at.get(t.shard.queue, 0.0)) > options.shard_wait:
            _abandon(run, t)  # a worker that comes late must not run it
            run.give_up(
                t.shard,
                Status.UNREACHABLE,
                f"no worker took shard {t.shard.number} from queue {t.shard.queue!r} "
                f"within {options.shard_wait:g}s",
                now,
            )
        return
    silent = now - t.beat_at
    if silent > LOST_AFTER_S:
        # the worker is gone: wait for Redis to redeliver the shard, then for a worker
        redelivery = (
            options.visibility_timeout
            + restore_interval(options.visibility_timeout)
            + options.shard_wait
        )
        if silent > redelivery:
            # the unacknowledged shard is still in Redis: a worker that starts (or wakes
            # up) after the report must not audit, or fix, its hosts behind it
            _abandon(run, t)
            run.give_up(
                t.shard,
                Status.UNREACHABLE,
                f"worker lost: {t.worker or 'its worker'} stopped answering and shard "
                f"{t.shard.number} was not taken again within {redelivery:g}s",
                now,
            )
    elif now - t.started_at > run_budget:
        _abandon(run, t)  # its worker stops it: hangs up its hosts, starts no more
        run.give_up(
            t.shard,
            Status.UNREACHABLE,
            f"shard deadline of {run_budget:g}s exceeded on {t.worker or 'a worker'}",
            now,
        )


def _waiting_note(
    run: _Run[R], pending: Sequence[_Tracked], options: RunOptions, now: float
) -> str:
    """What the run waits on besides hosts being audited, and when it gives up on it: a
    shard whose worker went silent (killed, frozen: redelivery awaited), or one no worker
    of its queue took for a while. "" when every shard is moving."""
    waits: list[tuple[float, str]] = []
    # _update gives a silent shard up past both LOST_AFTER_S and the redelivery wait
    lost_after = max(
        LOST_AFTER_S,
        options.visibility_timeout
        + restore_interval(options.visibility_timeout)
        + options.shard_wait,
    )
    for t in pending:
        if t.started_at is None:
            idle = now - max(t.sent_at, run.served_at.get(t.shard.queue, 0.0))
            if idle > LOST_AFTER_S:
                waits.append(
                    (
                        options.shard_wait - idle,
                        f"no worker took shard {t.shard.number} (queue {t.shard.queue!r}) "
                        f"for {_seconds(idle)}",
                    )
                )
        elif now - t.beat_at > SILENT_S:
            waits.append(
                (
                    lost_after - (now - t.beat_at),
                    f"{t.worker or 'a worker'} silent {_seconds(now - t.beat_at)} on shard "
                    f"{t.shard.number}",
                )
            )
    if not waits:
        return ""
    left, what = min(waits)
    more = f" (+{len(waits) - 1} more)" if len(waits) > 1 else ""
    return f"{what}{more}, given up in {_seconds(max(0.0, left))} unless a worker takes it"


def _seconds(value: float) -> str:
    return f"{value:.0f}s"


def _abandon(run: _Run[R], t: _Tracked) -> None:
    """Stop following ``t`` and revoke it: the run reports its hosts without it."""
    t.done = True
    run.abandoned.append(t.task_id)


def _progress(run: _Run[R], t: _Tracked, info: Mapping[str, Any], now: float) -> None:
    """A running shard's state: the hosts it finished, its execution and its beat."""
    _take_hosts(run, t, info.get("hosts"))
    if info.get("execution") != t.execution:  # first or redelivered execution
        t.execution, t.started_at = str(info.get("execution")), now
    if info.get("beat") != t.beat:
        t.beat, t.beat_at = int(info.get("beat") or 0), now
        run.served_at[t.shard.queue] = now
    t.worker = str(info.get("worker") or "")


def _refused(run: _Run[R], t: _Tracked, info: Mapping[str, Any], now: float) -> bool:
    """Give ``t`` up (and revoke it) when its rows were made by other readiness code: a
    worker from before the digest check runs a shard of any code."""
    if not _foreign(info):
        return False
    _abandon(run, t)
    run.give_up(
        t.shard,
        Status.ERROR,
        f"worker {info.get('worker') or '?'} returned rows made by other readiness code "
        f"(its code {str(info.get('code') or 'unknown')[:12]}, the controller's "
        f"{code_digest()[:12]}): not taken; install the same readiness on the controller "
        "and every worker",
        now,
    )
    return True


def _foreign(info: Mapping[str, Any]) -> bool:
    """Whether a shard state holds rows that other readiness code made."""
    return bool(info.get("hosts")) and info.get("code") != code_digest()


def _take_hosts(run: _Run[R], t: _Tracked, hosts: Any) -> None:
    if not isinstance(hosts, list):
        return
    position = {run.names[i]: i for i in t.shard.indices}
    for data in hosts:
        i = position.get(str(data.get("host"))) if isinstance(data, Mapping) else None
        if i is not None:
            run.record(i, run.parse(data))


def _stop(app: Any, task_ids: list[str]) -> None:
    """Tell the workers running these shards to stop (the broadcast only); bounded."""

    def send() -> None:
        with contextlib.suppress(Exception):  # the broker gone: nothing can be stopped
            app.control.revoke(task_ids)

    sender = threading.Thread(target=send, name="readiness-stop", daemon=True)
    sender.start()
    sender.join(timeout=NETWORK_TIMEOUT_S + 1)


def _drain(
    app: Any, run: _Run[R], tracked: list[_Tracked], options: RunOptions, wait_s: float
) -> None:
    """After a stop: read the shards' states for at most ``wait_s`` seconds, keeping what
    their workers finished meanwhile (a fix applied just before the stop reaches the audit
    log). A second Ctrl-C ends the wait."""
    backend = app.backend
    deadline = time.monotonic() + wait_s
    with contextlib.suppress(KeyboardInterrupt):
        while tracked and time.monotonic() < deadline:
            try:
                values = _read_states(backend, tracked)
            except Exception:  # the broker gone: what arrived before stands
                return
            left = []
            for t, raw in zip(tracked, values, strict=True):
                if isinstance(raw, int):  # over the bound: nothing more is read from it
                    continue
                meta = backend.decode_result(raw) if raw else {"status": "PENDING"}
                info = meta.get("result")
                if run.on_meta is not None:
                    run.on_meta(t, meta)
                if (
                    meta.get("status") in ("PROGRESS", "SUCCESS")
                    and isinstance(info, Mapping)
                    and not _foreign(info)
                ):
                    _take_hosts(run, t, info.get("hosts"))
                # a shard no worker took, or one whose worker finished or was lost: nothing
                # more will come from it
                beat_at = float(info.get("beat_at") or 0) if isinstance(info, Mapping) else 0.0
                if meta.get("status") == "PROGRESS" and time.time() - beat_at < LOST_AFTER_S:
                    left.append(t)
            tracked = left
            if tracked:
                time.sleep(POLL_S)


def _revoke(app: Any, task_ids: list[str]) -> None:
    """Revoke shards (queued ones are dropped, running ones stop); bounded if the broker is gone."""

    def send() -> None:
        # the broker gone: nothing can be revoked, and the report still stands
        with contextlib.suppress(Exception):
            app.control.revoke(task_ids)
        # Remote revokes reach only the workers up now; the REVOKED state in the result
        # backend also stops a worker that starts later and finds the shard still queued.
        for task_id in task_ids:
            with contextlib.suppress(Exception):
                app.backend.mark_as_revoked(task_id, reason="readiness: run over")

    sender = threading.Thread(target=send, name="readiness-revoke", daemon=True)
    sender.start()
    sender.join(timeout=NETWORK_TIMEOUT_S + 1)
