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
from ..model import HostReport, Status
from ..profile import Profile
from ..redact import Redactor
from ..registry import all_checks
from ..runner import RunOptions, run_fleet
from .app import LOST_AFTER_S, SHARD_TASK, make_app, safe_broker
from .payload import WORKER_OPTIONS, ShardHost, specs_named

__all__ = ["PUBLISH_INTERVAL_S", "audit_shard", "register", "start_worker"]

PUBLISH_INTERVAL_S = 0.25  # how often a running shard's finished hosts reach the controller
_WORKER_SETTINGS: dict[str, Any] = {}


def audit_shard(task: Any, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Audit one shard; stream each finished host to the result backend as it is made.

    The state ``PROGRESS`` carries the hosts finished so far, an ``execution`` id (a
    redelivered shard gets a new one) and a ``beat`` that proves this worker is alive.
    A revoked shard stops like Ctrl-C: open connections are hung up, nothing more starts.
    """
    from celery.worker import state as worker_state

    if payload.get("version") != __version__:
        raise RuntimeError(
            f"controller runs readiness {payload.get('version')}, this worker {__version__}"
        )
    execution = uuid.uuid4().hex
    task_id = task.request.id
    earlier = _earlier_execution(task, execution, float(payload.get("budget_s") or 600))
    if earlier is not None:  # a redelivered copy of a shard another execution finished
        why = "revoked by its controller" if earlier.get("revoked") else "done by another execution"
        _say(f"shard {task_id} dropped: {why}")
        return earlier
    done: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    cancel, finished = threading.Event(), threading.Event()
    where = f"{task.request.hostname or socket.gethostname()}"

    def on_host(report: HostReport) -> None:
        with lock:
            done.setdefault(report.host, report.to_dict())  # first result of a host wins

    def publish() -> None:  # its own thread: task.request (thread-local) is not set here
        beat = 0
        while not finished.is_set():
            if task_id in worker_state.revoked:
                cancel.set()
            beat += 1
            with lock:
                hosts_done = list(done.values())
            meta = {
                "execution": execution,
                "worker": where,
                "beat": beat,
                "beat_at": time.time(),  # wall clock: other workers read it (keep NTP on)
                "hosts": hosts_done,
            }
            # the broker gone: keep auditing; the controller reports the shard either way
            with contextlib.suppress(Exception):
                task.update_state(task_id=task_id, state="PROGRESS", meta=meta)
            finished.wait(PUBLISH_INTERVAL_S)

    publisher = threading.Thread(target=publish, name=f"shard-{task_id}", daemon=True)
    publisher.start()
    try:  # the first beat is out before the payload is parsed: the shard is taken
        hosts = [ShardHost.from_dict(h) for h in payload["hosts"]]
        specs = specs_named(list(payload["checks"]))
        profiles = {name: Profile(data) for name, data in payload["profiles"].items()}
        own = {k: v for k, v in _WORKER_SETTINGS.items() if k in WORKER_OPTIONS and v is not None}
        options = RunOptions(**dict(payload["options"]), **own, progress=False, quiet=True)
        report = run_fleet(
            hosts,
            specs,
            profiles,
            options=options,
            redactor=Redactor(),
            on_host=on_host,
            cancel=cancel,
        )
    finally:
        finished.set()
        publisher.join(timeout=10)
    with lock:
        for h in report.hosts:
            if h.status is not Status.INTERRUPTED:
                done.setdefault(h.host, h.to_dict())
        hosts_done = [done[h.name] for h in hosts if h.name in done]
    return {
        "execution": execution,
        "worker": where,
        "revoked": cancel.is_set(),
        "hosts": hosts_done,
    }


def _earlier_execution(task: Any, execution: str, budget_s: float) -> dict[str, Any] | None:
    """The result of an execution of this same shard that finished, or None to audit it.

    Redis redelivers a shard that ran longer than the visibility timeout while its first
    execution is still running (or after it finished). Such a copy returns the finished
    result, or waits while the other execution's beat is fresh, instead of auditing every
    host a second time. A copy whose other execution went silent audits the shard itself.
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
            return None
        time.sleep(PUBLISH_INTERVAL_S * 2)
    return None


def register(app: Any) -> Any:
    """Register the shard task on ``app`` (one name, JSON arguments)."""
    return app.task(name=SHARD_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(
        audit_shard
    )


def start_worker(
    broker: str,
    *,
    concurrency: int,
    queues: list[str],
    visibility_timeout: float,
    settings: Mapping[str, Any],
) -> None:
    """Run a Celery worker in this process until SIGTERM/SIGINT (Celery's warm shutdown)."""
    _WORKER_SETTINGS.clear()
    _WORKER_SETTINGS.update(settings)
    app = make_app(broker, visibility_timeout=visibility_timeout)
    register(app)
    # paramiko logs every connection at INFO: a worker's log would be mostly that
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    all_checks()  # discover the checks now, not while the first shard waits
    name = f"readiness-{os.getpid()}@{socket.gethostname()}"
    _say(
        f"readiness worker {name}: broker {safe_broker(broker)}, queues {','.join(queues)}, "
        f"{concurrency} shard(s) at once"
    )
    started = time.monotonic()
    app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--queues={','.join(queues)}",
            f"--hostname={name}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    _say(f"readiness worker {name}: stopped after {time.monotonic() - started:.0f}s")


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
