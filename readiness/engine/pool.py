"""The worker's pool: Celery's thread pool, with a cold shutdown it can carry out.

Celery's cold shutdown (a second Ctrl-C) asks the pool to kill each running task's job;
threads cannot be killed and Celery's thread pool raised NotImplementedError, which
stopped the worker "on an error" with a traceback in its log. Here the running shards are
stopped as a revoke stops them (connections hung up, nothing more starts) and handed back
to the broker unacknowledged, for another worker to audit (:mod:`readiness.engine.worker`).
Imported by Celery only when ``readiness worker`` starts (``--pool=`` names this class).
"""

from __future__ import annotations

from typing import Any

from celery.concurrency.thread import TaskPool

from .worker import stop_running_shards

__all__ = ["ShardPool"]


class ShardPool(TaskPool):  # type: ignore[misc]  # Celery is untyped
    """Celery's thread pool whose ``terminate_job`` stops every running shard."""

    def terminate_job(self, pid: Any, signal: Any = None) -> None:
        # a thread pool's jobs all share the worker's pid: every running shard is its job
        stop_running_shards()
