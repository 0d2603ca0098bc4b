"""The Celery application both sides share: JSON only, late acks, bounded network waits."""

from __future__ import annotations

import contextlib
import os
from typing import Any
from urllib.parse import urlsplit

from ..errors import UsageError
from ..redact import Redactor, redact_url_password, url_passwords

__all__ = [
    "DEFAULT_QUEUE",
    "LOST_AFTER_S",
    "NETWORK_TIMEOUT_S",
    "REMEDIATE_TASK",
    "RESULT_BACKEND_ENV",
    "SHARD_TASK",
    "broker_redactor",
    "make_app",
    "restore_interval",
    "result_backend_for",
    "safe_broker",
]

SHARD_TASK = "readiness.audit_shard"
REMEDIATE_TASK = "readiness.remediate_shard"
DEFAULT_QUEUE = "readiness"
RESULT_BACKEND_ENV = "READINESS_RESULT_BACKEND"
_REDIS = ("redis://", "rediss://")
NETWORK_TIMEOUT_S = 5.0  # every broker / result-backend socket operation
# A running shard publishes a beat every quarter second; silent this long, its worker is gone.
LOST_AFTER_S = 10.0


def broker_redactor(broker: str) -> Redactor:
    """A redactor that knows the broker's and the result backend's passwords (masked even
    outside a URL)."""
    passwords = []
    for url in (broker, os.environ.get(RESULT_BACKEND_ENV) or ""):
        with contextlib.suppress(ValueError):  # an unparsable URL has no password to find
            passwords.append(urlsplit(url).password or "")
        # A password with an unencoded '/' ends urlsplit's netloc early: its parts are what
        # an error quotes ("Port could not be cast to integer value as 'HEAD'").
        passwords += url_passwords(url)
    return Redactor([p for p in passwords if p])


def result_backend_for(broker: str) -> str:
    """Redis keeps the shards' states: the broker itself, or $READINESS_RESULT_BACKEND
    (required with a RabbitMQ ``amqp://`` broker: the controller reads states by key)."""
    chosen = os.environ.get(RESULT_BACKEND_ENV) or ""
    if chosen:
        if not chosen.startswith(_REDIS):
            raise UsageError(f"${RESULT_BACKEND_ENV}: expected a redis:// or rediss:// URL")
        return chosen
    if broker.startswith(_REDIS):
        return broker
    scheme = broker.partition("://")[0] or broker[:10]
    raise UsageError(
        f"a {scheme}:// broker needs a Redis result backend: set "
        f"{RESULT_BACKEND_ENV}=redis://:PASSWORD@HOST:6379/0 (docs/distributed.md)"
    )


def safe_broker(broker: str) -> str:
    """The broker URL as it may be shown: the password replaced by ``***``."""
    return broker_redactor(broker).text(redact_url_password(broker))


def restore_interval(visibility_timeout: float) -> float:
    """Seconds between a worker's sweeps for shards whose worker died."""
    return min(10.0, max(1.0, float(visibility_timeout) / 4))


def make_app(broker: str, *, visibility_timeout: float = 300.0) -> Any:
    """The Celery app for ``broker`` (Redis; RabbitMQ by URL, results then in Redis).

    - JSON is the only accepted content type: a pickle from a hostile broker peer is
      never loaded.
    - Late acknowledgement + reject on worker loss: a shard whose worker dies is
      redelivered. With Redis, a worker killed outright leaves the message unacked until
      ``visibility_timeout`` passes, then another worker gets it; a shard running longer
      than that is delivered twice, so recording is first-wins per run and host.
    - Prefetch multiplier 1: a worker holds at most its concurrency in shards, so the
      queue stays fair between workers.
    """
    from celery import Celery

    backend = result_backend_for(broker)
    app = Celery("readiness", broker=broker, backend=backend, set_as_current=False)
    app.conf.update(
        accept_content=["json"],
        result_accept_content=["json"],
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # no STARTED state: a redelivered copy of a shard would overwrite the result (or the
        # live progress) of the execution it duplicates; workers publish PROGRESS at once
        task_track_started=False,
        worker_prefetch_multiplier=1,
        task_default_queue=DEFAULT_QUEUE,
        task_create_missing_queues=True,
        broker_transport_options={
            "visibility_timeout": float(visibility_timeout),
            # kombu sweeps for unacked messages every interval x throttle seconds (100 s by
            # default): sweep often enough that a dead worker's shard comes back soon after
            # its visibility timeout
            "unacked_restore_interval": restore_interval(visibility_timeout),
            "unacked_restore_throttle": 1,
            # a sweep holds a Redis lock that outlives a worker killed mid-sweep by its
            # expiry (300 s by default), and no worker sweeps until then: a dead worker's
            # shard would stay invisible past the controller's wait. One interval is enough:
            # a sweep restores each message in a WATCH transaction, so two sweeps that
            # overlap never restore one twice.
            "unacked_mutex_expire": restore_interval(visibility_timeout),
            "socket_timeout": NETWORK_TIMEOUT_S,
            "socket_connect_timeout": NETWORK_TIMEOUT_S,
        },
        broker_connection_timeout=NETWORK_TIMEOUT_S,
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=3,
        broker_pool_limit=4,
        redis_socket_timeout=NETWORK_TIMEOUT_S,
        redis_socket_connect_timeout=NETWORK_TIMEOUT_S,
        redis_retry_on_timeout=False,
        redis_backend_health_check_interval=10,
        result_expires=24 * 3600,
        result_backend_always_retry=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_enable_remote_control=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_heartbeat=10,
    )
    return app
