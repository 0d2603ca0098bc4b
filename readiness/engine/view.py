"""``readiness workers``: who is up, on which queues, auditing which shards."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from .app import NETWORK_TIMEOUT_S, broker_redactor, make_app, safe_broker
from .controller import check_broker

__all__ = ["WorkerInfo", "inspect_workers", "render_workers"]

_QUESTIONS = ("active_queues", "active", "stats")


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    queues: tuple[str, ...]
    active: tuple[str, ...]  # task ids of the shards it is auditing now
    active_hosts: int
    concurrency: int | None


def inspect_workers(broker: str, *, timeout: float) -> list[WorkerInfo]:
    """Ask every worker through the broker; each answer waits at most ``timeout`` seconds."""
    app = make_app(broker)
    check_broker(app, broker)
    answers: dict[str, Any] = {}

    def ask(what: str) -> None:
        # each broadcast waits the whole timeout for replies: ask the three at once
        inspect = app.control.inspect(timeout=timeout)
        try:
            answers[what] = getattr(inspect, what)() or {}
        except Exception as exc:  # a dropped broker connection: reported below, redacted
            answers[what] = exc

    threads = [threading.Thread(target=ask, args=(w,), daemon=True) for w in _QUESTIONS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + NETWORK_TIMEOUT_S * 2)
    failed = [a for a in answers.values() if isinstance(a, Exception)]
    if failed or len(answers) < len(_QUESTIONS):
        redact = broker_redactor(broker).text
        why = f"{type(failed[0]).__name__}: {failed[0]}" if failed else "no answer"
        raise UsageError(f"broker {safe_broker(broker)} did not answer: {redact(why)}")
    queues, active, stats = (answers[w] for w in _QUESTIONS)
    out = []
    for name in sorted(set(queues) | set(active) | set(stats)):
        tasks = [t for t in active.get(name) or [] if isinstance(t, Mapping)]
        hosts = 0
        for t in tasks:
            args = t.get("args") or []
            if args and isinstance(args[0], Mapping):
                hosts += len(args[0].get("hosts") or [])
        pool = (stats.get(name) or {}).get("pool") or {}
        out.append(
            WorkerInfo(
                name=name,
                queues=tuple(str(q.get("name")) for q in queues.get(name) or []),
                active=tuple(str(t.get("id")) for t in tasks),
                active_hosts=hosts,
                concurrency=pool.get("max-concurrency") if isinstance(pool, Mapping) else None,
            )
        )
    return out


def render_workers(found: list[WorkerInfo], broker: str, fmt: str, timeout: float) -> str:
    if fmt == "json":
        return json.dumps(
            {
                "broker": safe_broker(broker),
                "workers": [
                    {
                        "name": w.name,
                        "queues": list(w.queues),
                        "concurrency": w.concurrency,
                        "active_shards": list(w.active),
                        "active_hosts": w.active_hosts,
                    }
                    for w in found
                ],
            },
            indent=2,
        )
    if not found:
        return f"no worker answered within {timeout:g}s (broker {safe_broker(broker)})"
    lines = [f"{len(found)} worker(s) on broker {safe_broker(broker)}"]
    for w in found:
        doing = (
            f"auditing {len(w.active)} shard(s), {w.active_hosts} host(s): {', '.join(w.active)}"
            if w.active
            else "idle"
        )
        slots = f", {w.concurrency} slot(s)" if w.concurrency else ""
        lines.append(f"{w.name}  queues {','.join(w.queues) or '-'}{slots}  {doing}")
    return "\n".join(lines)
