"""Sharding and the broker redactor (pure logic: no broker, no hosts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from readiness.engine.app import broker_redactor, make_app, safe_broker
from readiness.engine.shards import split
from readiness.errors import InventoryError, UsageError


@dataclass(frozen=True)
class FakeHost:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)


def test_shards_keep_inventory_order_and_split_by_queue_then_size() -> None:
    hosts = [
        FakeHost(f"h{i}", {"readiness_queue": "eu"} if i in (1, 4, 5) else {}) for i in range(7)
    ]
    shards = split(hosts, 2)
    assert [(s.number, s.queue, s.indices) for s in shards] == [
        (0, "readiness", (0, 2)),
        (1, "eu", (1, 4)),
        (2, "readiness", (3, 6)),
        (3, "eu", (5,)),
    ]
    covered = sorted(i for s in shards for i in s.indices)
    assert covered == list(range(7))  # every host in exactly one shard


def test_a_bad_queue_name_is_one_clear_error() -> None:
    with pytest.raises(InventoryError, match="h0: readiness_queue must be a queue name"):
        split([FakeHost("h0", {"readiness_queue": "eu west; rm"})], 5)


def test_the_broker_password_is_masked_and_only_json_is_accepted() -> None:
    url = "redis://:s3cr3t-p@ss@127.0.0.1:6379/0"
    assert safe_broker(url) == "redis://:***@127.0.0.1:6379/0"
    app = make_app(url, visibility_timeout=30)
    conf = app.conf
    assert conf.accept_content == ["json"] and conf.result_accept_content == ["json"]
    assert conf.task_serializer == conf.result_serializer == "json"
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == 30


def test_a_rabbitmq_broker_needs_a_redis_result_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    amqp = "amqp://readiness:rabbit-pw@127.0.0.1:5672//"
    monkeypatch.delenv("READINESS_RESULT_BACKEND", raising=False)
    with pytest.raises(UsageError, match=r"a amqp:// broker needs a Redis result backend"):
        make_app(amqp)
    monkeypatch.setenv("READINESS_RESULT_BACKEND", "redis://:backend-pw@127.0.0.1:6379/1")
    app = make_app(amqp)
    assert app.conf.result_backend == "redis://:backend-pw@127.0.0.1:6379/1"
    assert app.conf.broker_url == amqp
    masked = broker_redactor(amqp).text("rabbit-pw and backend-pw")
    assert "rabbit-pw" not in masked and "backend-pw" not in masked
    monkeypatch.setenv("READINESS_RESULT_BACKEND", "rpc://")
    with pytest.raises(UsageError, match="READINESS_RESULT_BACKEND: expected a redis://"):
        make_app(amqp)
