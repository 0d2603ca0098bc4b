"""``readiness worker``: a Celery worker that audits shards on the one fleet loop.

Pool: ``threads``. A shard is SSH-bound work that the runner already spreads over
``--forks`` threads; a thread pool keeps one process per worker, so a SIGKILL takes
the whole worker down at once (no orphaned prefork child keeps auditing) and Redis
redelivers its unacknowledged shard after the visibility timeout. ``--concurrency``
is how many shards run at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from .. import __version__
from ..model import Status, utcnow
from ..profile import Profile
from ..redact import Redactor, redact_url_password
from ..registry import all_checks
from ..runner import RunOptions, run_fleet
from .app import (
    LOST_AFTER_S,
    REMEDIATE_TASK,
    SHARD_TASK,
    broker_redactor,
    make_app,
    safe_broker,
)
from .payload import WORKER_OPTIONS, ShardHost, code_digest, specs_named

__all__ = [
    "PUBLISH_INTERVAL_S",
    "audit_shard",
    "hide_broker_flag",
    "register",
    "remediate_shard",
    "start_worker",
]

PUBLISH_INTERVAL_S = 0.25  # how often a running shard's finished hosts reach the controller
_WORKER_SETTINGS: dict[str, Any] = {}
# the shards this process runs now, for a cold shutdown to stop (see stop_running_shards)
_RUNNING: set[_ShardRun] = set()
_RUNNING_LOCK = threading.Lock()


def stop_running_shards() -> None:
    """A cold shutdown (a second Ctrl-C): every running shard stops as a revoked one does
    (open connections hung up, nothing more starts) and goes back to the broker
    unacknowledged (:class:`celery.exceptions.Reject`), to be audited again by a worker."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for shard in running:
        shard.requeue = True
        shard.cancel.set()


class _ShardRun:
    """One execution of a shard: the hosts it finished (first result of a host wins), the
    audit-log entries it made, and the thread that publishes both with a live beat."""

    def __init__(self, task: Any, execution: str, inherited: Mapping[str, Any] | None) -> None:
        self.task, self.execution = task, execution
        self.task_id = task.request.id
        self.where = f"{task.request.hostname or socket.gethostname()}"
        self.done: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []
        for data in (inherited or {}).get("hosts") or ():
            if isinstance(data, Mapping) and data.get("host"):
                self.done.setdefault(str(data["host"]), dict(data))
        self.lock = threading.Lock()
        self.cancel, self.finished = threading.Event(), threading.Event()
        # closed: the result is being returned, no PROGRESS may overwrite it; a publish in
        # flight finishes first (a host thread still ending after a stop publishes too)
        self.closed = False
        self.publishing = threading.Lock()
        self.beat = 0
        # when a publish last reached the result backend (monotonic), and why the last failed
        self.published_at: float | None = None
        self.publish_error = "nothing was published yet"
        self.publisher = threading.Thread(target=self._publish, name=f"shard-{self.task_id}")
        self.publisher.daemon = True
        self.requeue = False  # stopped by a cold shutdown: back to the broker, no result

    def host(self, name: str, data: dict[str, Any]) -> None:
        with self.lock:
            self.done.setdefault(name, data)

    def entry(self, entry: dict[str, Any]) -> None:
        """An audit-log entry, published at once: a worker killed right after a fix has
        already told the controller what it changed."""
        with self.lock:
            self.log.append({**entry, "seq": len(self.log)})
        self.publish_now()

    def meta(self) -> dict[str, Any]:
        with self.lock:
            self.beat += 1
            return {
                "execution": self.execution,
                "worker": self.where,
                "code": code_digest(),  # the controller takes rows of its own code only
                "beat": self.beat,
                "beat_at": time.time(),  # wall clock: other workers read it (keep NTP on)
                "hosts": list(self.done.values()),
                "log": list(self.log),
            }

    def publish_now(self) -> bool:
        """Publish the shard's progress; whether it reached the result backend."""
        with self.publishing:
            if self.closed:
                return False
            # the broker gone: an audit keeps working (the controller reports the shard
            # either way); an apply stops changing hosts (see cannot_report)
            try:
                self.task.update_state(task_id=self.task_id, state="PROGRESS", meta=self.meta())
            except Exception as exc:
                first = (str(exc).splitlines() or [""])[0][:200]
                self.publish_error = redact_url_password(f"{type(exc).__name__}: {first}")
                return False
            self.published_at = time.monotonic()
            return True

    def cannot_report(self) -> str:
        """Asked before each fix of an apply shard: why the worker must not change the
        host (no publish reached the controller for LOST_AFTER_S/2), or "" to go on. A
        fix the controller never hears of would be missing from its audit log."""
        fresh = self.published_at is not None and (
            time.monotonic() - self.published_at < LOST_AFTER_S / 2
        )
        if fresh or self.publish_now():
            return ""
        return (
            f"results cannot be reported to the controller: {self.publish_error}; "
            "nothing more was changed"
        )

    def _publish(self) -> None:  # its own thread: task.request (thread-local) is not set here
        from celery.worker import state as worker_state

        while not self.finished.is_set():
            if self.task_id in worker_state.revoked:
                self.cancel.set()
            self.publish_now()
            self.finished.wait(PUBLISH_INTERVAL_S)

    def __enter__(self) -> _ShardRun:
        with _RUNNING_LOCK:
            _RUNNING.add(self)
        self.publisher.start()  # the first beat is out before the payload is parsed
        return self

    def __exit__(self, *exc: object) -> None:
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        self.finished.set()
        self.publisher.join(timeout=10)
        with self.publishing:
            self.closed = True

    def requeued(self) -> None:
        """Raise Celery's Reject (requeue) when a cold shutdown stopped this shard: its
        partial rows are not a result, the broker gets the shard back."""
        if self.requeue:
            from celery.exceptions import Reject

            raise Reject("cold shutdown of the worker", requeue=True)

    def result(self, order: list[str]) -> dict[str, Any]:
        with self.lock:
            return {
                "execution": self.execution,
                "worker": self.where,
                "code": code_digest(),  # the controller takes rows of its own code only
                "revoked": self.cancel.is_set(),
                "hosts": [self.done[n] for n in order if n in self.done],
                "log": list(self.log),
            }


def _start(task: Any, payload: Mapping[str, Any], *, resume: bool) -> tuple[str, Any]:
    """(execution id, a finished result to return instead of running, or the hosts an
    earlier execution that went silent had reported when ``resume``)."""
    theirs, mine = str(payload.get("code") or ""), code_digest()
    if payload.get("version") != __version__ or theirs != mine:
        where = task.request.hostname or socket.gethostname()
        raise RuntimeError(
            f"worker {where} runs other readiness code than the controller (controller: "
            f"readiness {payload.get('version')}, code {theirs[:12] or 'unknown'}; worker: "
            f"readiness {__version__}, code {mine[:12]}): shard refused, nothing audited; "
            "install the same readiness on the controller and every worker"
        )
    execution = uuid.uuid4().hex
    earlier = _earlier_execution(
        task, execution, float(payload.get("budget_s") or 600), resume=resume
    )
    return execution, earlier


def _options(payload: Mapping[str, Any]) -> RunOptions:
    own = {k: v for k, v in _WORKER_SETTINGS.items() if k in WORKER_OPTIONS and v is not None}
    return RunOptions(**dict(payload["options"]), **own, progress=False, quiet=True)


def audit_shard(task: Any, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Audit one shard; stream each finished host to the result backend as it is made.

    The state ``PROGRESS`` carries the hosts finished so far, an ``execution`` id (a
    redelivered shard gets a new one) and a ``beat`` that proves this worker is alive.
    A revoked shard stops like Ctrl-C: open connections are hung up, nothing more starts.
    """
    execution, earlier = _start(task, payload, resume=False)
    if earlier is not None and not earlier.get("partial"):
        _dropped(task, earlier)
        return dict(earlier)
    with _ShardRun(task, execution, None) as shard:
        hosts = [ShardHost.from_dict(h) for h in payload["hosts"]]
        specs = specs_named(list(payload["checks"]))
        profiles = {name: Profile(data) for name, data in payload["profiles"].items()}
        report = run_fleet(
            hosts,
            specs,
            profiles,
            options=_options(payload),
            redactor=Redactor(),
            on_host=lambda r: shard.host(r.host, r.to_dict()),
            cancel=shard.cancel,
        )
    shard.requeued()
    for h in report.hosts:
        if h.status is not Status.INTERRUPTED:
            shard.host(h.host, h.to_dict())
    return shard.result([h.name for h in hosts])


def remediate_shard(task: Any, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Plan (phase ``plan``) or apply (phase ``apply``) the remediation of one shard.

    Plan: each host is audited and planned as a local dry run; its report carries the
    plan's hash. Apply: each host is planned afresh and its fixes applied only when the
    fresh plan's hash is the one the controller confirmed. Audit-log entries stream to
    the controller, which writes its log; nothing is logged here. A redelivered copy
    leaves alone the hosts an earlier execution of the shard had reported.
    """
    from ..remediate.run import Confirmed, remediate_hosts

    execution, earlier = _start(task, payload, resume=True)
    if earlier is not None and not earlier.get("partial"):
        _dropped(task, earlier)
        return dict(earlier)
    with _ShardRun(task, execution, earlier) as shard:
        hosts = [ShardHost.from_dict(h) for h in payload["hosts"]]
        apply = payload.get("phase") == "apply"
        salt = str(payload["run"])
        confirmed = {
            str(name): Confirmed(str(c["hash"]), tuple(str(x) for x in c.get("checks") or ()))
            for name, c in (payload.get("confirmed") or {}).items()
        }
        from ..remediate.plan import plan_hash

        def report(r: Any) -> None:
            data = r.to_dict()
            if not apply:
                data["plan_hash"] = plan_hash(r.plan, salt)
            shard.host(r.host, data)

        remediate_hosts(
            [h for h in hosts if h.name not in shard.done],
            specs_named(list(payload["checks"])),
            specs_named(list(payload.get("others") or ())),
            {name: Profile(data) for name, data in payload["profiles"].items()},
            _options(payload),
            apply=apply,
            log=_StreamedLog(shard) if apply else None,
            run_migrations=bool(payload.get("run_migrations")),
            on_host=report,
            cancel=shard.cancel,
            confirmed=confirmed if apply else None,
            salt=salt,
            may_apply=shard.cannot_report if apply else None,
        )
    shard.requeued()
    return shard.result([h.name for h in hosts])


class _StreamedLog:
    """The worker's side of the remediation audit log: entries go to the controller."""

    def __init__(self, shard: _ShardRun) -> None:
        self.shard = shard

    def record(
        self, host: str, check: str, changes: list[str], outcome: str, message: str = ""
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "at": utcnow().isoformat().replace("+00:00", "Z"),
            "host": host,
            "check": check,
            "changes": changes,
            "outcome": outcome,
            "message": message,
        }
        self.shard.entry(entry)
        return entry


def _dropped(task: Any, earlier: Mapping[str, Any]) -> None:
    why = "revoked by its controller" if earlier.get("revoked") else "done by another execution"
    _say(f"shard {task.request.id} dropped: {why}")


def _earlier_execution(
    task: Any, execution: str, budget_s: float, *, resume: bool = False
) -> dict[str, Any] | None:
    """The result of an execution of this same shard that finished, or None to audit it.

    Redis redelivers a shard that ran longer than the visibility timeout while its first
    execution is still running (or after it finished). Such a copy returns the finished
    result, or waits while the other execution's beat is fresh, instead of auditing every
    host a second time. A copy whose other execution went silent audits the shard itself;
    with ``resume`` it gets ``{"partial": True, "hosts": [...]}``: the hosts that execution
    had reported, which it must not touch again (a remediation applied on them).
    A shard the controller revoked (gave up on, or was interrupted) is never audited.
    """
    from celery.worker import state as worker_state

    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        try:
            meta = task.backend.get_task_meta(task.request.id)
        except Exception:  # the result backend is gone: audit, the controller decides
            return None
        state, info = meta.get("status"), meta.get("result")
        if state == "REVOKED":  # the controller gave the shard up: its run is over
            return {"execution": execution, "worker": "", "revoked": True, "hosts": []}
        if not isinstance(info, Mapping) or info.get("execution") in (None, execution):
            return None
        if state == "SUCCESS" and isinstance(info.get("hosts"), list):
            return dict(info)
        alive = time.time() - float(info.get("beat_at") or 0) < LOST_AFTER_S
        if state != "PROGRESS" or not alive or task.request.id in worker_state.revoked:
            hosts = info.get("hosts") if resume else None
            return {"partial": True, "hosts": hosts} if isinstance(hosts, list) else None
        time.sleep(PUBLISH_INTERVAL_S * 2)
    return None


def register(app: Any) -> Any:
    """Register the shard tasks on ``app`` (audit and remediation; JSON arguments)."""
    app.task(name=REMEDIATE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(
        remediate_shard
    )
    return app.task(name=SHARD_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(
        audit_shard
    )


def hide_broker_flag(broker: str, env_name: str) -> None:
    """Run this process again with ``--broker URL`` moved to ``$env_name`` when
    the URL holds a password: a command line is readable by every local user
    (``/proc/PID/cmdline``, ``ps``) for as long as the worker runs, its environment only
    by its own user. The same PID, so a service manager or a shell's ``kill`` sees no
    change; returns (nothing to hide, or no ``--broker`` of that URL) without it."""
    if safe_broker(broker) == broker:
        return  # no password in it
    argv = list(getattr(sys, "orig_argv", ()))
    kept: list[str] = []
    dropped = False
    i = 0
    while i < len(argv):
        if argv[i] == f"--broker={broker}":
            dropped = True
        elif argv[i] == "--broker" and i + 1 < len(argv) and argv[i + 1] == broker:
            dropped, i = True, i + 1
        else:
            kept.append(argv[i])
        i += 1
    if not dropped or broker in " ".join(kept):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    # this same program again (argv as Python was started), without the flag
    os.execve(sys.executable, kept, {**os.environ, env_name: broker})  # noqa: S606


def start_worker(
    broker: str,
    *,
    concurrency: int,
    queues: list[str],
    visibility_timeout: float,
    settings: Mapping[str, Any],
) -> int:
    """Run a Celery worker in this process until SIGTERM/SIGINT (Celery's warm shutdown);
    its exit code: 0 when a signal stopped it, 1 when an error did (the broker lost for
    good, a cold shutdown)."""
    _WORKER_SETTINGS.clear()
    _WORKER_SETTINGS.update(settings)
    app = make_app(broker, visibility_timeout=visibility_timeout)
    register(app)
    # threads (module docstring) that carry out a cold shutdown; the configured pool, as
    # Celery's --pool takes only its own names
    app.conf.worker_pool = "readiness.engine.pool:ShardPool"
    # paramiko logs every connection at INFO: a worker's log would be mostly that
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    all_checks()  # discover the checks now, not while the first shard waits
    code_digest()  # of the code this process loaded, not of files replaced while it runs
    name = f"readiness-{os.getpid()}@{socket.gethostname()}"
    _say(
        f"readiness worker {name}: broker {safe_broker(broker)}, queues {','.join(queues)}, "
        f"{concurrency} shard(s) at once"
    )
    started = time.monotonic()
    # Celery logs why its worker stopped on an error ("Unrecoverable error: ...") and keeps
    # the exit code, which app.worker_main drops: a worker that lost its broker for good
    # ended "stopped", exit 0, as if SIGTERM had stopped it (systemd's Restart=on-failure
    # then left the region without a worker).
    cause = _Cause(broker_redactor(broker))
    celery_log = logging.getLogger("celery")
    celery_log.addHandler(cause)
    # a shard handed back by a cold shutdown is logged on one line, not with a traceback
    trace_log = logging.getLogger("celery.app.trace")
    quiet_reject = _NoRejectTraceback()
    trace_log.addFilter(quiet_reject)
    # Celery keeps exit code 0 after a cold shutdown: it is told by how it shut down
    from celery import signals

    shutdowns: list[str] = []

    def shutting_down(**kw: Any) -> None:
        shutdowns.append(str(kw.get("how") or ""))

    signals.worker_shutting_down.connect(shutting_down, weak=False)
    code = _celery(
        app,
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--queues={','.join(queues)}",
            f"--hostname={name}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ],
    )
    celery_log.removeHandler(cause)
    trace_log.removeFilter(quiet_reject)
    signals.worker_shutting_down.disconnect(shutting_down)
    took = f"{time.monotonic() - started:.0f}s"
    cold = "Cold" in shutdowns
    if not code and not cold:
        _say(f"readiness worker {name}: stopped after {took}")
        return 0
    if cold or not cause.text:  # a second Ctrl-C: Redis gets the running shards back
        _say(f"readiness worker {name}: cold shutdown after {took}, running shards requeued")
        return 1
    _say(f"readiness worker {name}: stopped on an error after {took}: {cause.text} (exit 1)")
    return 1


def _celery(app: Any, argv: list[str]) -> int:
    """``app.start(argv)`` with the exit code Celery decided (app.start and app.worker_main
    drop it: click returns it in non-standalone mode)."""
    from celery.bin.celery import celery

    celery.params[0].default = app
    try:
        code = celery.main(args=argv, standalone_mode=False)
    finally:
        celery.params[0].default = None
    return code if isinstance(code, int) else 0


class _NoRejectTraceback(logging.Filter):
    """Drops the traceback Celery attaches to its "reject requeue=True" line: handing a
    shard back on a cold shutdown is what the worker chose, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        from celery.exceptions import Reject

        if record.exc_info and isinstance(record.exc_info[1], Reject):
            record.exc_info, record.exc_text = None, None
        return True


class _Cause(logging.Handler):
    """The first line of the last critical error Celery logged (password masked)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__(logging.CRITICAL)
        self.redactor, self.text = redactor, ""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            first = (record.getMessage().splitlines() or [""])[0][:300]
            self.text = self.redactor.text(redact_url_password(first))


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
