"""The celery engine with a real RabbitMQ broker: `amqp://user:password@...` on loopback,
the shards' states in a real Redis ($READINESS_RESULT_BACKEND), two `readiness worker`
subprocesses and a loopback sshd fleet. One rabbitmq-server for the module (Erlang starts
slowly); every process started here is stopped by PID at the end.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from readiness.loopback import start_fleet
from tests.services.apps import write_app
from tests.services.rabbitmq import RabbitMQServer, rabbitmq_server
from tests.services.redis import redis_server
from tests.services.sshd import APP_STATES, _share

from .test_celery_engine import (
    STATES,
    Cluster,
    Workers,
    _config,
    _logins,
    _rows,
    _validate,
    _wait_for_ends,
)

pytestmark = pytest.mark.ssh


@pytest.fixture(scope="module")
def rabbit_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Cluster, RabbitMQServer]]:
    root = tmp_path_factory.mktemp("rabbitmq")

    def write(index: int, app_root: Path) -> None:
        write_app(app_root, **dict(APP_STATES[STATES[index]]))
        _share(app_root)

    with (
        redis_server() as redis,
        rabbitmq_server() as rabbit,
        start_fleet(len(STATES), app_writer=write) as fleet,
    ):
        home = root / "home"
        (home / ".ssh").mkdir(parents=True)
        shutil.copy(fleet.known_hosts, home / ".ssh" / "known_hosts")
        inventory = fleet.write_inventory(root / "inventory.yml")
        yield Cluster(redis, fleet, home, inventory, root), rabbit


@pytest.mark.timeout(120)
def test_a_rabbitmq_broker_run_equals_a_local_run_and_never_shows_its_password(
    rabbit_cluster: tuple[Cluster, RabbitMQServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster, rabbit = rabbit_cluster
    # controller and workers keep the shards' states in Redis (the test's env is theirs)
    monkeypatch.setenv("READINESS_RESULT_BACKEND", cluster.redis.url)
    cwd = _config(tmp_path / "controller", shard_size=2, shard_wait=20)
    workers = Workers(cluster, tmp_path)
    try:
        workers.start(broker=rabbit.url)
        workers.start(broker=rabbit.url)
        workers.wait_ready()
        local = _validate(cluster, cwd, engine="local")
        before = _logins(cluster)
        distributed = _validate(cluster, cwd, broker=rabbit.url)
        ends = _wait_for_ends(workers, 3)  # logged just after the results the controller read
        logs = [workers.log(n) for n in range(2)]
    finally:
        workers.stop_all()
    assert distributed.returncode == local.returncode == 1, distributed.stderr
    ours, theirs = json.loads(distributed.stdout), json.loads(local.stdout)
    assert [h["host"] for h in ours["hosts"]] == [h.name for h in cluster.fleet.hosts]
    assert _rows(ours) == _rows(theirs)
    assert {h["status"] for h in ours["hosts"]} >= {"degraded", "not_ready"}
    # through RabbitMQ: each host audited once, the 3 shards of 2 taken by the workers
    after = _logins(cluster)
    assert {after[n] - before[n] for n in after} == {1}
    assert sum(ends) == 3, logs
    assert all(f"amqp://{rabbit.user}:**@127.0.0.1:{rabbit.port}//" in log for log in logs), logs
    seen = [distributed.stdout, distributed.stderr, *logs]
    seen += [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    leaks = [text[:200] for text in seen if rabbit.password in text]
    assert not leaks, leaks
