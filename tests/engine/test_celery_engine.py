"""The celery engine on real components: redis-server (with a password), `readiness worker`
subprocesses, a loopback sshd fleet and `readiness validate --engine celery` subprocesses.

One fleet and one redis for the module (each test starts and kills its own workers); every
wait is bounded and every process started here is killed by PID at the end.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.loopback import LoopbackFleet, start_fleet, stop_process_groups
from tests.services.apps import GOOD_SECRET, write_app
from tests.services.ports import closed_port
from tests.services.redis import RedisServer, redis_server
from tests.services.sshd import APP_STATES, _share, wait_for_no_leftovers

pytestmark = pytest.mark.ssh

BIN = Path(sys.executable).parent
STATES = ["healthy", "degraded", "not_ready", "healthy", "degraded", "healthy"]
CHECKS = "environment,configuration"
WAIT_S = 30.0  # the longest any single wait in this module may take


@dataclass
class Cluster:
    redis: RedisServer
    fleet: LoopbackFleet
    home: Path  # HOME of controller and workers: .ssh/known_hosts is the fleet's
    inventory: Path
    root: Path

    @property
    def marker(self) -> Path:
        return self.fleet.root / "home" / "slow"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("celery")

    def write(index: int, app_root: Path) -> None:
        write_app(app_root, **dict(APP_STATES[STATES[index]]))
        _share(app_root)

    with redis_server() as redis:
        fleet = start_fleet(len(STATES), app_writer=write)
        try:
            bashrc = fleet.root / "home" / ".bashrc"
            marker = fleet.root / "home" / "slow"
            # every SSH session sleeps while the marker exists: a shard is "mid-run" for a while
            bashrc.write_text(
                f'if [ -f {marker} ]; then sleep "$(cat {marker})"; fi\n' + bashrc.read_text()
            )
            home = root / "home"
            (home / ".ssh").mkdir(parents=True)
            shutil.copy(fleet.known_hosts, home / ".ssh" / "known_hosts")

            def region(h: Any) -> dict[str, Any]:
                return {"readiness_queue": "eu"} if h.name in ("h0004", "h0005") else {}

            inventory = fleet.write_inventory(root / "inventory.yml")
            fleet.write_inventory(root / "regions.yml", host_vars=region)
            yield Cluster(redis, fleet, home, inventory, root)
        finally:
            fleet.stop()


def _env(cluster: Cluster, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("READINESS_ENGINE")}
    env.pop("READINESS_BROKER_URL", None)
    env.update({"HOME": str(cluster.home), "COLUMNS": "100"}, **extra)
    return env


def _config(where: Path, **settings: Any) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "readiness.yaml").write_text(yaml.safe_dump({"readiness": settings}))
    return where


class Workers:
    """`readiness worker` subprocesses; every one is killed (by PID) on exit."""

    def __init__(self, cluster: Cluster, tmp: Path) -> None:
        self.cluster, self.tmp = cluster, tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        queues: str = "readiness",
        concurrency: int = 1,
        broker: str | None = None,
        env: Mapping[str, str] | None = None,
        **settings: Any,
    ) -> int:
        n = len(self.procs)
        cwd = _config(self.tmp / f"worker-{n}", **{"ssh_config": "", **settings})
        with (cwd / "worker.log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    str(BIN / "readiness"),
                    "worker",
                    f"--broker={broker or self.cluster.redis.url}",
                    f"--queues={queues}",
                    f"--concurrency={concurrency}",
                    "--visibility-timeout=4",
                ],
                cwd=cwd,
                env=_env(self.cluster, **(env or {})),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return n

    def log(self, n: int) -> str:
        return (self.tmp / f"worker-{n}" / "worker.log").read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + WAIT_S
        for n in range(len(self.procs)):
            while "ready." not in self.log(n):
                assert self.procs[n].poll() is None, self.log(n)
                assert time.monotonic() < deadline, self.log(n)
                time.sleep(0.1)

    def kill(self, n: int, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.procs[n].pid, sig)
        self.procs[n].wait(timeout=WAIT_S)

    def stop_all(self) -> None:
        stop_process_groups(self.procs, grace_s=10)


@pytest.fixture
def workers(cluster: Cluster, tmp_path: Path) -> Iterator[Workers]:
    made = Workers(cluster, tmp_path)
    try:
        yield made
    finally:
        made.stop_all()
        cluster.marker.unlink(missing_ok=True)


def _validate(
    cluster: Cluster,
    cwd: Path,
    *extra: str,
    engine: str | None = "celery",
    inventory: Path | None = None,
    timeout: float = 120,
    broker: str | None = None,
    checks: str = CHECKS,
) -> subprocess.CompletedProcess[str]:
    task = "validate"
    if extra and extra[0].startswith("--task="):
        task, extra = extra[0].split("=", 1)[1], extra[1:]
    argv = [
        str(BIN / "readiness"),
        task,
        f"--inventory={inventory or cluster.inventory}",
        "--hosts=fleet",
        f"--check={checks}",
        "--json",
        "--store=none",
        "--connect-timeout=5",
        "--command-timeout=20",
        *([f"--engine={engine}"] if engine else []),
        *extra,
    ]
    if engine == "celery":
        argv.append(f"--broker={broker or cluster.redis.url}")
    return subprocess.run(
        argv,
        cwd=cwd,
        env=_env(cluster),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


_VOLATILE = {"timestamp", "duration_s", "generated_at", "facts_meta", "probe_s"}


def _rows(report: Mapping[str, Any]) -> list[Any]:
    """The report without what changes on every run (times, durations, probe timing)."""

    def strip(node: Any) -> Any:
        if isinstance(node, Mapping):
            return {k: strip(v) for k, v in node.items() if k not in _VOLATILE}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return [strip(h) for h in report["hosts"]]


def _controller(
    cluster: Cluster, cwd: Path, *extra: str, broker: str | None = None
) -> subprocess.Popen[str]:
    """A `readiness validate --engine celery` still running (for signals and mid-run events)."""
    argv = [
        str(BIN / "readiness"),
        "validate",
        f"--inventory={cluster.inventory}",
        "--hosts=fleet",
        f"--check={CHECKS}",
        "--json",
        "--store=none",
        "--connect-timeout=5",
        "--command-timeout=20",
        "--engine=celery",
        f"--broker={broker or cluster.redis.url}",
        *extra,
    ]
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=_env(cluster),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


SHARD_RE = re.compile(r"audit_shard\[readiness-[0-9a-f]+-(\d+)\] received")


DROPPED_RE = re.compile(r"shard readiness-[0-9a-f]+-(\d+) dropped")


def _received(workers: Workers, n: int) -> list[int]:
    """Shard numbers worker ``n`` took to audit, from its own log (a redelivered copy it
    dropped, of a shard revoked or done elsewhere, is not counted)."""
    log = workers.log(n)
    taken = [int(m) for m in SHARD_RE.findall(log)]
    for m in DROPPED_RE.findall(log):
        taken.remove(int(m))
    return taken


def _timeline(workers: Workers) -> str:
    """Each worker's shard events (received, dropped, succeeded, its run summary), timed."""
    events = ("received", "dropped", "succeeded", "failed", "hosts in")
    return "\n".join(
        f"worker {n}: {line[:200]}"
        for n in range(len(workers.procs))
        for line in workers.log(n).splitlines()
        if any(e in line for e in events)
    )


def _wait_until(what: str, predicate: Any, within: float = WAIT_S) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"not within {within}s: {what}"
        time.sleep(0.1)


def _wait_for_ends(workers: Workers, count: int) -> list[int]:
    """Each worker's "succeeded" lines, once they add up to ``count`` (bounded): Celery logs
    a shard's end just after it stores the result, so a controller that read that result
    can exit before the line is written."""
    ends: list[int] = []

    def logged() -> bool:
        ends[:] = [workers.log(n).count("succeeded") for n in range(len(workers.procs))]
        return sum(ends) >= count

    with contextlib.suppress(AssertionError):  # too few after the wait: the caller says so
        _wait_until(f"{count} shard ends logged", logged, within=10)
    return ends


def _logins(cluster: Cluster) -> dict[str, int]:
    return {h.name: h.accepted_logins() for h in cluster.fleet.hosts}


def _delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


# --- 1. a distributed run equals a local run ---------------------------------------------------


@pytest.mark.timeout(120)
def test_distributed_run_equals_local_run_row_for_row(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    cwd = _config(tmp_path / "controller", shard_size=2, shard_wait=20)
    workers.start()
    workers.start()
    workers.wait_ready()
    local = _validate(cluster, cwd, engine="local")
    before = _logins(cluster)
    distributed = _validate(cluster, cwd)
    assert distributed.returncode == local.returncode == 1, distributed.stderr
    ours, theirs = json.loads(distributed.stdout), json.loads(local.stdout)
    assert [h["host"] for h in ours["hosts"]] == [h.name for h in cluster.fleet.hosts]
    assert _rows(ours) == _rows(theirs)
    assert {h["status"] for h in ours["hosts"]} >= {"degraded", "not_ready"}
    # each host audited exactly once, and by both workers between them (3 shards of 2)
    assert set(_delta(before, _logins(cluster)).values()) == {1}
    # a worker logs "succeeded" just after it stores the result the controller waits for
    audited = _wait_for_ends(workers, 3)
    assert sum(audited) == 3, audited

    # a suite with quality gates: same rows, same gates, same exit code
    suite_local = _validate(cluster, cwd, "--task=check-config", engine="local")
    suite_dist = _validate(cluster, cwd, "--task=check-config")
    assert suite_dist.returncode == suite_local.returncode, suite_dist.stderr
    ours, theirs = json.loads(suite_dist.stdout), json.loads(suite_local.stdout)
    assert _rows(ours) == _rows(theirs)
    assert ours["quality_gates"] == theirs["quality_gates"]
    assert (ours["summary"], ours["verdict"]) == (theirs["summary"], theirs["verdict"])


# --- 2. a worker killed mid-shard ---------------------------------------------------------------


def _hold_restore_lock(cluster: Cluster) -> None:
    """Leave kombu's sweep lock held, as a worker killed in the middle of its sweep for
    unacknowledged shards (each second here) leaves it: for the expiry the workers set.
    With kombu's default (300 s) no worker swept again and the dead worker's shard was
    never redelivered: its hosts came back "worker lost" (seen once in a full run)."""
    from kombu.transport.redis import Channel
    from redis import Redis

    from readiness.engine.app import make_app

    options = make_app(cluster.redis.url, visibility_timeout=4).conf.broker_transport_options
    expire = float(options.get("unacked_mutex_expire", Channel.unacked_mutex_expire))
    with Redis(
        host="127.0.0.1", port=cluster.redis.port, password=cluster.redis.password
    ) as client:
        # what redis-py's Lock.acquire writes: a token, only if free, expiring in PX ms
        client.set(Channel.unacked_mutex_key, "killed-worker", nx=True, px=int(expire * 1000))


@pytest.mark.timeout(120)
def test_a_worker_killed_mid_shard_has_its_hosts_audited_by_the_other_once(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    cwd = _config(
        tmp_path / "controller",
        shard_size=3,
        shard_wait=30,
        visibility_timeout=4,
        progress_interval=0.5,
    )
    workers.start()
    workers.start()
    workers.wait_ready()
    before = _logins(cluster)
    cluster.marker.write_text("5")  # every SSH session sleeps 5 s: the shards are mid-run
    controller = _controller(cluster, cwd)
    try:
        _wait_until(
            "both workers hold a shard", lambda: _received(workers, 0) and _received(workers, 1)
        )
        killed_shard = _received(workers, 0)[0]
        mine = [h.name for h in cluster.fleet.hosts[killed_shard * 3 : killed_shard * 3 + 3]]
        # mid-shard: logged in on each of its hosts, sleeping in the session
        _wait_until(
            "the shard's hosts are logged in",
            lambda: all(_delta(before, _logins(cluster))[n] >= 1 for n in mine),
        )
        _hold_restore_lock(cluster)  # as if killed in the middle of its sweep (see there)
        workers.kill(0)  # SIGKILL: no warm shutdown, the shard stays unacknowledged
        out, err = controller.communicate(timeout=90)
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()
    assert controller.returncode == 1, err
    report = json.loads(out)
    names = [h.name for h in cluster.fleet.hosts]
    assert [h["host"] for h in report["hosts"]] == names  # each host exactly once, in order
    failed = [
        (h["host"], h["status"], sorted({c["message"] for c in h["checks"]}))
        for h in report["hosts"]
        if h["status"] in ("unreachable", "error")
    ]
    # on failure, the message and both workers' shard timeline say which deadline gave up
    # (the controller's or the worker's own)
    assert not failed, (failed, err, _timeline(workers))
    # progress counts hosts done across workers while the redelivered shard is outstanding
    assert re.search(r"\[readiness\] 3/6 done", err), err
    assert "[readiness] 6 hosts in" in err
    # redelivered to the surviving worker, which audited both shards in the end
    assert set(_received(workers, 1)) == {0, 1}
    assert killed_shard in _received(workers, 1)
    redelivered = set(names[killed_shard * 3 : killed_shard * 3 + 3])
    logins = _delta(before, _logins(cluster))
    assert logins == {n: 2 if n in redelivered else 1 for n in names}


# --- 2b. a worker that disappears with no other worker to take its shard ---------------------


def _kill_worker_mid_run(
    cluster: Cluster,
    workers: Workers,
    controller: subprocess.Popen[str],
    before: Mapping[str, int],
) -> tuple[str, str]:
    """SIGKILL worker 0 once it is logged in on every host; the controller's output."""
    try:
        _wait_until("the worker holds the shard", lambda: _received(workers, 0))
        _wait_until("logged in everywhere", lambda: all(_delta(before, _logins(cluster)).values()))
        workers.kill(0)
        return controller.communicate(timeout=60)
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()


@pytest.mark.timeout(90)
def test_a_lost_worker_whose_shard_nobody_takes_again_is_reported_not_waited_for(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    cwd = _config(
        tmp_path / "controller",
        shard_size=6,
        shard_wait=4,
        visibility_timeout=1,
        progress_interval=0.5,
    )
    with redis_server() as own:  # the dead worker's shard stays unacknowledged in there
        workers.start(broker=own.url)
        workers.wait_ready()
        before = _logins(cluster)
        cluster.marker.write_text("30")  # outlives the run: no session ends by itself
        started = time.monotonic()
        controller = _controller(cluster, cwd, broker=own.url)
        out, err = _kill_worker_mid_run(cluster, workers, controller, before)
        nobody = subprocess.run(
            [str(BIN / "readiness"), "workers", f"--broker={own.url}", "--timeout=0.5"],
            env=_env(cluster),
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        # SIGKILL mid-shard leaves nothing on the hosts (each session's pty hangs up), long
        # before the sessions' own 30 s sleep would end
        assert wait_for_no_leftovers(cluster.fleet, within=3) == {}
        # The dead worker's shard is still unacknowledged in Redis. It was not revoked, so
        # a worker that started after the report audited its hosts behind it (and with
        # remediate --apply would have fixed them, with no audit log to hear of it).
        after = _logins(cluster)
        cluster.marker.unlink()
        late = workers.start(broker=own.url)
        workers.wait_ready()
        _wait_until("the late worker drops the shard", lambda: "dropped" in workers.log(late))
        assert re.search(r"-0 dropped: revoked by its controller", workers.log(late))
        assert _received(workers, late) == []
        assert _delta(after, _logins(cluster)) == dict.fromkeys(after, 0)
    assert nobody.returncode == 1, nobody.stderr  # no worker is up any more
    assert nobody.stdout.startswith("no worker answered within 0.5s (broker redis://:***@")
    assert controller.returncode == 1, err
    # silent for 10 s (LOST_AFTER_S), and no redelivery within 1 + 1 + 4 s: given up
    assert time.monotonic() - started < 40
    # and the progress line said what it waited on, and until when (it said only "waiting
    # on h0000 (14s)" before, for the whole redelivery wait: 6 minutes by default)
    assert re.search(
        r"waiting on h0000 \(\d+s\), readiness-\d+@\S+ silent [3-9]s on shard 0, given up in "
        r"[1-7]s unless a worker takes it\n",
        err,
    ), err
    report = json.loads(out)
    assert [h["status"] for h in report["hosts"]] == ["unreachable"] * len(cluster.fleet.hosts)
    for h in report["hosts"]:
        assert re.fullmatch(
            r"worker lost: readiness-\d+@\S+ stopped answering and shard 0 was not taken "
            r"again within 6s",
            h["reason"],
        ), h["reason"]


# --- 3. the broker stops mid-run ----------------------------------------------------------------


@pytest.mark.timeout(120)
def test_the_broker_stopped_mid_run_ends_the_run_with_the_missing_hosts_reported(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    with redis_server() as own:
        cwd = _config(tmp_path / "controller", shard_size=2, shard_wait=5)
        workers.start(broker=own.url)
        workers.wait_ready()
        cluster.marker.write_text("4")
        started = time.monotonic()
        controller = _controller(cluster, cwd, broker=own.url)
        try:
            _wait_until("the worker holds a shard", lambda: _received(workers, 0))
            own.proc.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
            out, err = controller.communicate(timeout=60)
        finally:
            if controller.poll() is None:
                controller.kill()
                controller.wait()
    elapsed = time.monotonic() - started
    assert controller.returncode == 1, err
    assert elapsed < 40, elapsed  # shard_wait 5 s after the broker went: never a hang
    report = json.loads(out)
    assert [h["host"] for h in report["hosts"]] == [h.name for h in cluster.fleet.hosts]
    lost = [h for h in report["hosts"] if h["status"] == "unreachable"]
    assert len(lost) >= 4  # at most the first shard (2 hosts) was reported before
    for h in lost:
        assert "broker unreachable for 5s" in h["reason"], h["reason"]
    assert own.password not in out + err


@pytest.mark.timeout(120)
def test_a_worker_that_loses_its_broker_for_good_exits_1_saying_why(
    cluster: Cluster, workers: Workers
) -> None:
    """Celery gives up on a broker after 3 reconnection attempts and stops the worker with
    its exit code 1, which app.worker_main dropped: the worker said "stopped" and exited 0
    as after a SIGTERM, so a unit with Restart=on-failure left its region without a worker
    and nothing told the two stops apart."""
    with redis_server() as own:
        lost = workers.start(broker=own.url)
        stopped = workers.start()
        workers.wait_ready()
        own.proc.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
        workers.procs[lost].wait(timeout=60)
    workers.kill(stopped, signal.SIGTERM)
    assert workers.procs[stopped].returncode == 0, workers.log(stopped)
    assert re.search(r"readiness-\d+@\S+: stopped after \d+s\n\Z", workers.log(stopped))
    log = workers.log(lost)
    assert workers.procs[lost].returncode == 1, log
    last = log.rstrip().splitlines()[-1]
    assert re.search(
        r"readiness worker readiness-\d+@\S+: stopped on an error after \d+s: Unrecoverable "
        r"error: OperationalError\('Error 111 connecting to 127\.0\.0\.1:\d+\. Connection "
        r"refused\.'\) \(exit 1\)$",
        last,
    ), last
    assert own.password not in log


@pytest.mark.timeout(120)
def test_a_double_ctrl_c_mid_shard_is_one_line_and_exit_1_never_a_traceback(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    """A second Ctrl-C while a shard ran (Celery's cold shutdown) asked the thread pool to
    kill the shard's job, which threads cannot: Celery logged a NotImplementedError
    traceback from ``terminate_job`` into the worker's log. Now the shard is left to the
    broker (redelivered, acks_late) and the worker ends on its one cold-shutdown line."""
    cwd = _config(tmp_path / "controller", shard_size=6, shard_wait=30)
    n = workers.start()
    workers.wait_ready()
    before = _logins(cluster)
    cluster.marker.write_text("5")  # every SSH session sleeps 5 s: the shard is mid-run
    controller = _controller(cluster, cwd)
    try:
        _wait_until("the worker holds the shard", lambda: _received(workers, n))
        _wait_until("logged in everywhere", lambda: all(_delta(before, _logins(cluster)).values()))
        os.kill(workers.procs[n].pid, signal.SIGINT)
        _wait_until("the warm shutdown began", lambda: "Warm shutdown" in workers.log(n))
        os.kill(workers.procs[n].pid, signal.SIGINT)
        workers.procs[n].wait(timeout=WAIT_S)
        cluster.marker.unlink()
        other = workers.start()  # the shard it handed back is audited by the next worker
        _wait_until("the shard was audited again", lambda: _received(workers, other) == [0])
    finally:
        controller.kill()
        controller.communicate()
    log = workers.log(n)
    assert workers.procs[n].returncode == 1, log
    assert "Traceback" not in log, log
    assert "NotImplementedError" not in log, log
    last = log.rstrip().splitlines()[-1]
    assert re.search(
        r"readiness worker readiness-\d+@\S+: cold shutdown after \d+s, running shards requeued$",
        last,
    ), last


@pytest.mark.timeout(120)
def test_a_shard_state_over_its_bound_is_never_read(cluster: Cluster, tmp_path: Path) -> None:
    """A shard's state in the result backend was read and decoded whatever its size (a
    300 MiB one took the controller to 1.6 GB): anyone who can write to the backend could
    exhaust the controller's memory. Now its size is asked first and a state over 16 MiB a
    host is deleted unread, its hosts ERROR."""
    from redis import Redis

    from readiness.engine.payload import code_digest

    cwd = _config(tmp_path / "controller", shard_size=1, shard_wait=5)
    controller = _controller(cluster, cwd)
    try:
        with Redis(
            host="127.0.0.1", port=cluster.redis.port, password=cluster.redis.password
        ) as client:
            queued: list[bytes] = []
            _wait_until(
                "the shards are queued",
                lambda: bool(queued.extend(client.lrange("readiness", 0, -1)) or queued),
            )
            ids = [json.loads(m)["headers"]["id"] for m in queued]
            first = min(ids, key=lambda i: int(i.rsplit("-", 1)[1]))
            row = {"host": "h0000", "status": "ready", "checks": [], "pad": "x" * (18 << 20)}
            state = {
                "status": "PROGRESS",
                "result": {"execution": "e", "worker": "w", "code": code_digest(), "beat": 1,
                           "beat_at": time.time(), "hosts": [row], "log": []},
                "task_id": first,
            }  # fmt: skip
            client.set(f"celery-task-meta-{first}", json.dumps(state))
            out, err = controller.communicate(timeout=60)
            assert client.strlen(f"celery-task-meta-{first}") < 10_000  # deleted, then revoked
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()
    assert controller.returncode == 1, err
    rows = {h["host"]: h for h in json.loads(out)["hosts"]}
    assert rows["h0000"]["status"] == "error"
    assert rows["h0000"]["reason"] == (
        "shard 0's state in the result backend is 18 MiB, over the bound of 17 MiB (16 MiB a "
        "host): not read"
    )
    assert all(rows[f"h000{i}"]["status"] == "unreachable" for i in range(1, 6))


# --- 4. queues: a region's hosts go to that region's workers -----------------------------------


@pytest.mark.timeout(120)
def test_a_worker_in_another_queue_gets_only_its_regions_hosts(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    cwd = _config(tmp_path / "controller", shard_size=2, shard_wait=20)
    workers.start(queues="readiness")
    workers.start(queues="eu")
    workers.wait_ready()
    regions = cluster.root / "regions.yml"
    local = _validate(cluster, cwd, engine="local", inventory=regions)
    distributed = _validate(cluster, cwd, inventory=regions)
    assert distributed.returncode == local.returncode == 1, distributed.stderr
    assert _rows(json.loads(distributed.stdout)) == _rows(json.loads(local.stdout))
    # shards in order of their first host: 0=(h0000,h0001) 1=(h0002,h0003) 2=eu (h0004,h0005)
    assert sorted(_received(workers, 0)) == [0, 1]
    assert _received(workers, 1) == [2]

    # no worker on the eu queue: its hosts are reported after shard_wait, the rest audited
    workers.kill(1, signal.SIGTERM)
    # engine and broker from the configuration file alone this time (no flag, no env)
    quick = _config(
        tmp_path / "quick",
        shard_size=2,
        shard_wait=3,
        engine="celery",
        broker=cluster.redis.url,
    )
    started = time.monotonic()
    res = _validate(cluster, quick, inventory=regions, engine=None)
    assert time.monotonic() - started < 30
    assert res.returncode == 1, res.stderr
    hosts = {h["host"]: h for h in json.loads(res.stdout)["hosts"]}
    for name in ("h0004", "h0005"):
        assert hosts[name]["status"] == "unreachable"
        assert "no worker took shard 2 from queue 'eu' within 3s" in hosts[name]["reason"]
    assert all(hosts[n]["status"] != "unreachable" for n in ("h0000", "h0001", "h0002"))

    # the given-up shard is still queued for 'eu': a worker that starts now must not audit it
    before = _logins(cluster)
    late = workers.start(queues="eu")
    workers.wait_ready()
    _wait_until("the late worker drops the shard", lambda: "succeeded" in workers.log(late))
    assert SHARD_RE.findall(workers.log(late)) == ["2"]
    assert re.search(r"-2 dropped: revoked by its controller", workers.log(late))
    assert _received(workers, late) == []
    assert _delta(before, _logins(cluster)) == dict.fromkeys(before, 0)


@pytest.mark.timeout(120)
def test_shards_queued_behind_a_busy_worker_wait_their_turn_and_are_all_audited(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    """shard_wait counted from sending: with more shards than worker slots, the shards
    waiting behind running ones were given up ("no worker took shard 3 ... within 3s")
    while the only worker was busy auditing the others. Now a queued shard waits while its
    queue moves (a shard taken, beating or finished within shard_wait)."""
    cwd = _config(tmp_path / "controller", shard_size=1, shard_wait=3, visibility_timeout=30)
    workers.start(concurrency=1)
    workers.wait_ready()
    before = _logins(cluster)
    cluster.marker.write_text("2")  # each one-host shard takes over 2 s: 6 of them in turn
    res = _validate(cluster, cwd)
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    assert [h["host"] for h in report["hosts"]] == [h.name for h in cluster.fleet.hosts]
    assert {h["status"] for h in report["hosts"]} <= {"ready", "degraded", "not_ready"}, [
        (h["host"], h["status"], h.get("reason")) for h in report["hosts"]
    ]
    assert sorted(_received(workers, 0)) == list(range(6))
    assert _delta(before, _logins(cluster)) == dict.fromkeys(before, 1)


@pytest.mark.timeout(120)
def test_a_worker_logs_in_as_a_local_run_would_from_the_hosts_login_variables(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    """A shard carried no host variable, so a worker audited over ssh a host whose
    ansible_connection is docker, and ignored the port (jump host, user, HostName) of its
    ansible_ssh_*_args: it logged in where a local run does not. Now the login variables
    travel (ssh.LOGIN_VARS) and the rows are the local run's."""
    closed = closed_port("127.0.0.1")

    def login(h: Any) -> dict[str, Any]:
        if h.name == "h0000":
            return {"ansible_connection": "docker"}
        if h.name == "h0001":
            return {"ansible_ssh_args": f"-p {closed}"}  # wins over ansible_port, as in ssh
        return {}

    inventory = cluster.fleet.write_inventory(tmp_path / "login.yml", host_vars=login)
    cwd = _config(tmp_path / "controller", shard_size=2, shard_wait=20)
    workers.start()
    workers.wait_ready()
    local = _validate(cluster, cwd, engine="local", inventory=inventory)
    before = _logins(cluster)
    distributed = _validate(cluster, cwd, inventory=inventory)
    assert distributed.returncode == local.returncode == 1, distributed.stderr
    rows = _rows(json.loads(distributed.stdout))
    assert rows == _rows(json.loads(local.stdout))
    status = {row["host"]: (row["status"], row.get("reason") or "") for row in rows}
    assert status["h0000"][0] == status["h0001"][0] == "unreachable"
    assert "uses ansible_connection=docker" in status["h0000"][1]
    assert str(closed) in status["h0001"][1]
    delta = _delta(before, _logins(cluster))
    assert delta["h0000"] == delta["h0001"] == 0
    assert all(delta[h] == 1 for h in delta if h not in ("h0000", "h0001"))


# --- 5 and 6. Ctrl-C on the controller; `readiness workers` -----------------------------------


def _workers_json(cluster: Cluster) -> dict[str, Any]:
    res = subprocess.run(
        [
            str(BIN / "readiness"),
            "workers",
            f"--broker={cluster.redis.url}",
            "--format=json",
            "--timeout=1",
        ],
        env=_env(cluster),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert res.returncode in (0, 1), res.stderr
    data: dict[str, Any] = json.loads(res.stdout)
    return data


@pytest.mark.timeout(120)
def test_sigint_on_the_controller_revokes_every_shard_and_writes_the_partial_report(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    cwd = _config(tmp_path / "controller", shard_size=2, shard_wait=30)
    workers.start(queues="readiness")
    workers.start(queues="readiness,eu")
    workers.wait_ready()
    listed = _workers_json(cluster)["workers"]
    assert len(listed) == 2
    assert sorted(sorted(w["queues"]) for w in listed) == [["eu", "readiness"], ["readiness"]]
    assert all(w["active_shards"] == [] for w in listed)
    text = subprocess.run(
        [str(BIN / "readiness"), "workers", f"--broker={cluster.redis.url}"],
        env=_env(cluster),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert text.returncode == 0 and "2 worker(s)" in text.stdout, text.stdout + text.stderr
    assert all(w["name"] in text.stdout for w in listed)

    before = _logins(cluster)
    cluster.marker.write_text("10")
    controller = _controller(cluster, cwd)
    try:
        _wait_until(
            "both workers hold a shard", lambda: _received(workers, 0) and _received(workers, 1)
        )
        busy = _workers_json(cluster)["workers"]
        assert sorted(len(w["active_shards"]) for w in busy) == [1, 1]
        assert sum(w["active_hosts"] for w in busy) == 4
        time.sleep(0.5)
        controller.send_signal(signal.SIGINT)
        out, err = controller.communicate(timeout=30)
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()
    assert controller.returncode == 130, err
    report = json.loads(out)
    assert report["interrupted"] is True
    statuses = [h["status"] for h in report["hosts"]]
    assert statuses == ["interrupted"] * len(cluster.fleet.hosts)
    # no shard left running: the workers hung up their hosts and are idle again
    assert wait_for_no_leftovers(cluster.fleet, within=15) == {}
    _wait_until(
        "the workers are idle",
        lambda: all(w["active_shards"] == [] for w in _workers_json(cluster)["workers"]),
    )
    # the queued third shard was revoked before any worker ran it
    cluster.marker.unlink()
    time.sleep(1.0)
    third = {h.name for h in cluster.fleet.hosts[4:6]}
    assert all(_delta(before, _logins(cluster))[n] == 0 for n in third)


# --- 6b. a worker running other code than the controller -------------------------------------


@pytest.mark.timeout(120)
def test_a_worker_running_other_readiness_code_refuses_the_shard_and_no_row_is_merged(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    """The shard carried only the version string: a worker whose code differed under the
    same "0.1.0" (an older checkout, a patched install) returned rows the controller merged
    as its own. Now the shard carries a digest of the controller's code and such a worker
    refuses it: every host ERROR, naming both sides, and none of its rows is taken."""
    import readiness

    skew = tmp_path / "skew"
    shutil.copytree(
        Path(readiness.__file__).parent,
        skew / "readiness",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    check = skew / "readiness" / "checks" / "environment.py"
    said = '"All required environment variables are properly configured"'  # READY's message
    assert check.read_text().count(said) == 1
    check.write_text(check.read_text().replace(said, '"configured by other code"'))
    cwd = _config(tmp_path / "controller", shard_size=3, shard_wait=20)
    workers.start(env={"PYTHONPATH": str(skew)})
    workers.wait_ready()
    before = _logins(cluster)
    res = _validate(cluster, cwd)
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    assert "other code" not in res.stdout
    assert [h["status"] for h in report["hosts"]] == ["error"] * len(cluster.fleet.hosts)
    for h in report["hosts"]:
        assert re.fullmatch(
            r"shard \d failed on a worker: worker readiness-\d+@\S+ runs other readiness code "
            r"than the controller \(controller: readiness \S+, code [0-9a-f]{12}; worker: "
            r"readiness \S+, code [0-9a-f]{12}\): shard refused, nothing audited; install the "
            r"same readiness on the controller and every worker",
            h["reason"],
        ), h["reason"]
    assert _delta(before, _logins(cluster)) == dict.fromkeys(before, 0)

    # a worker from before the digest (it checks the version only and says nothing of its
    # code) audits the shard: the controller refuses its rows itself
    workers.kill(0, signal.SIGTERM)
    worker = skew / "readiness" / "engine" / "worker.py"
    code = worker.read_text()
    check = 'if payload.get("version") != __version__ or theirs != mine:'
    told = '"code": code_digest(),'
    assert code.count(check) == 1 and code.count(told) == 2
    worker.write_text(
        code.replace(check, 'if payload.get("version") != __version__:').replace(told, "")
    )
    workers.start(env={"PYTHONPATH": str(skew)})
    workers.wait_ready()
    res = _validate(cluster, cwd)
    assert res.returncode == 1, res.stderr
    assert "other code" not in res.stdout
    report = json.loads(res.stdout)
    assert [h["status"] for h in report["hosts"]] == ["error"] * len(cluster.fleet.hosts)
    for h in report["hosts"]:
        assert re.fullmatch(
            r"worker readiness-\d+@\S+ returned rows made by other readiness code \(its code "
            r"unknown, the controller's [0-9a-f]{12}\): not taken; install the same readiness "
            r"on the controller and every worker",
            h["reason"],
        ), h["reason"]


# --- 7. the broker password never shows; engine and broker from the environment --------------


@pytest.mark.timeout(120)
def test_the_broker_password_never_appears_in_any_output_log_report_or_error(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    password = cluster.redis.password
    cwd = _config(tmp_path / "controller", shard_size=3, shard_wait=20)
    workers.start()
    workers.wait_ready()
    # `--broker URL` was on the worker's command line for as long as it ran: readable by
    # every local user (ps, /proc/PID/cmdline). The worker re-runs itself with the URL in
    # its environment (readable by its own user only), under the same PID.
    cmdline = Path(f"/proc/{workers.procs[0].pid}/cmdline").read_bytes().decode()
    assert "worker" in cmdline and password not in cmdline and "--broker" not in cmdline
    store = tmp_path / "history.sqlite3"
    # engine and broker from the environment only (no flag): READINESS_ENGINE, *_BROKER_URL
    res = subprocess.run(
        [
            str(BIN / "readiness"),
            "validate",
            f"--inventory={cluster.inventory}",
            "--hosts=fleet",
            f"--check={CHECKS}",
            f"--save={tmp_path / 'saved.json'}",
            f"--report=junit:{tmp_path / 'report.xml'}",
            f"--store={store}",
        ],
        cwd=cwd,
        env=_env(cluster, READINESS_ENGINE="celery", READINESS_BROKER_URL=cluster.redis.url),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert res.returncode == 1, res.stderr
    assert sorted(_received(workers, 0)) == [0, 1]  # it did go through the worker
    # recorded in the store like a local run: the merged run, every host's row
    shown = subprocess.run(
        [str(BIN / "readiness"), "show", "latest", f"--store={store}", "--format=json"],
        cwd=cwd,
        env=_env(cluster),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    recorded = json.loads(shown.stdout)
    assert [h["host"] for h in recorded["hosts"]] == [h.name for h in cluster.fleet.hosts]
    assert _rows(recorded) == _rows(json.loads((tmp_path / "saved.json").read_text()))
    seen = [res.stdout, res.stderr, workers.log(0)]
    seen += [p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file()]

    closed = f"redis://:{password}@127.0.0.1:{closed_port()}/0"
    wrong = f"redis://:wrong-{password}@127.0.0.1:{cluster.redis.port}/0"
    commands = [
        ["validate", f"--inventory={cluster.inventory}", "--hosts=fleet", "--engine=celery"],
        ["workers", "--timeout=0.5"],
        ["worker", "--queues=readiness"],
    ]

    def refused(case: tuple[str, list[str]]) -> subprocess.CompletedProcess[str]:
        broker, args = case
        return subprocess.run(
            [str(BIN / "readiness"), *args, f"--broker={broker}"],
            cwd=cwd,
            env=_env(cluster),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    cases = [(broker, args) for broker in (closed, wrong) for args in commands]
    with ThreadPoolExecutor(3) as pool:
        for (_, args), bad in zip(cases, pool.map(refused, cases), strict=True):
            assert bad.returncode == 2, (args, bad.stdout, bad.stderr)
            lines = bad.stderr.strip().splitlines()
            assert len(lines) == 1 and "redis://:***@127.0.0.1" in lines[0], bad.stderr
            assert "Traceback" not in bad.stderr
            seen += [bad.stdout, bad.stderr]
    leaks = [text[:200] for text in seen if password in text]
    assert not leaks, leaks


@pytest.mark.timeout(120)
def test_what_the_worker_starts_is_not_handed_the_broker_url(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    """The worker re-runs itself with ``--broker URL`` moved to $READINESS_BROKER_URL (out
    of ``ps``); it kept it there, so every process it started inherited the password: a
    ``Match exec`` command, pg_dump, a local host's probe and the commands that probe runs.
    Here the worker's own ssh_config records the environment its ``Match exec`` is given."""
    password = cluster.redis.password
    seen = tmp_path / "exec-env"
    worker_config = tmp_path / "worker_ssh_config"
    worker_config.write_text(f'Match exec "env >> {seen}"\n  User {cluster.fleet.user}\n')
    cwd = _config(tmp_path / "controller", shard_size=3, shard_wait=20)
    workers.start(ssh_config=str(worker_config))
    workers.wait_ready()
    res = _validate(cluster, cwd)
    assert res.returncode == 1, res.stderr
    assert sorted(_received(workers, 0)) == [0, 1]  # the worker audited the hosts
    environment = seen.read_text()
    assert "PATH=" in environment  # the command did run, and wrote what it was given
    assert password not in environment, "the broker password reached a child of the worker"


# --- 8. no credential of a profile travels through the broker or rests in it -----------------


class Monitor:
    """``MONITOR`` on the broker for a while: every command any client sends, as Redis
    prints it (the shards' messages as they are queued, every result written)."""

    def __init__(self, redis: RedisServer) -> None:
        self.sock = socket.create_connection(("127.0.0.1", redis.port), timeout=WAIT_S)
        self.sock.sendall(f"AUTH {redis.password}\r\nMONITOR\r\n".encode())
        self.data = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        _wait_until("MONITOR started", lambda: b"+OK\r\n+OK" in self.data, within=10)

    def _read(self) -> None:
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(65536):
                self.data += chunk
                if len(self.data) > 200_000_000:  # bounded: a runaway run fails the test
                    return

    def stop(self) -> str:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.reader.join(timeout=WAIT_S)
        return self.data.decode("utf-8", "replace")


def _redis_contents(redis: RedisServer) -> list[str]:
    """Every key and value in the broker's databases 0-15 (a bounded SCAN; strings, lists,
    hashes, sets and sorted sets read whole, and each key's DUMP)."""
    import redis as redis_py

    texts: list[str] = []
    for db in range(16):
        client = redis_py.Redis(port=redis.port, password=redis.password, db=db, socket_timeout=10)
        try:
            for n, key in enumerate(client.scan_iter(count=500)):
                assert n < 20_000, "too many keys to scan"
                texts += [key.decode("utf-8", "replace"), repr(client.dump(key))]
                texts += [v.decode("utf-8", "replace") for v in _values(client, key)]
        finally:
            client.close()
    return texts


def _values(client: Any, key: bytes) -> list[bytes]:
    kind = client.type(key).decode()
    if kind == "string":
        return [client.get(key)]
    if kind == "list":
        return list(client.lrange(key, 0, -1))
    if kind == "hash":
        return [b for kv in client.hgetall(key).items() for b in kv]
    if kind == "set":
        return list(client.smembers(key))
    if kind == "zset":
        return [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
    return []


def _decoded(text: str) -> list[str]:
    """``text`` and the base64 runs in it decoded (kombu sends a message body base64-encoded;
    MONITOR prints it inside an escaped JSON envelope), each also JSON-unescaped."""
    out = [text]
    for run in re.findall(r"[A-Za-z0-9+/]{16,}={0,2}", text):
        for cut in range(4):  # a run may start mid-quantum when MONITOR escapes cut it
            piece = run[cut:]
            piece = piece[: len(piece) - len(piece) % 4] if not piece.endswith("=") else piece
            with contextlib.suppress(ValueError):
                out.append(base64.b64decode(piece, validate=False).decode("utf-8", "replace"))
    return out + [t.replace("\\\\", "\\") for t in out]


def _leaked(canary: str, texts: list[str]) -> list[str]:
    return [t[:200] for text in texts for t in _decoded(text) if canary in t]


@pytest.fixture
def app_db(pg_cluster: Any) -> Iterator[tuple[Any, Any, str]]:
    from psycopg import sql

    role = pg_cluster.new_role("brk")
    name = f"brk_{uuid.uuid4().hex[:8]}"
    pg_cluster.create_database(name, owner=role.name)
    try:
        yield pg_cluster, role, name
    finally:
        pg_cluster.admin(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.timeout(180)
def test_no_profile_password_reaches_the_broker_and_a_worker_uses_its_own_pgpass(
    cluster: Cluster, workers: Workers, tmp_path: Path, app_db: tuple[Any, Any, str]
) -> None:
    pg, role, dbname = app_db
    canary = role.password  # the database password, in two DSNs of the profile
    profile = tmp_path / "profile.yml"  # the one file here that holds it
    profile.write_text(
        yaml.safe_dump(
            {
                "database_dsn": pg.dsn(role.name, canary, dbname),
                "backup_roundtrip": {
                    "admin_dsn": f"host=127.0.0.1 port={pg.port} user={role.name} "
                    f"password={canary} dbname=postgres"
                },
            }
        )
    )
    # the worker's own password file, outside everything scanned below
    secrets_dir = Path(tempfile.mkdtemp(prefix="worker-secrets-"))
    try:
        pgpass = secrets_dir / "pgpass"
        pgpass.write_text(f"127.0.0.1:{pg.port}:*:{role.name}:{canary}\n")
        pgpass.chmod(0o600)
        cwd = _config(tmp_path / "run" / "controller", shard_size=3, shard_wait=20)
        workers.start(env={"PGPASSFILE": str(pgpass)})
        workers.wait_ready()
        checks = "database_migration,environment"
        local = _validate(cluster, cwd, f"--profile={profile}", engine="local", checks=checks)
        monitor = Monitor(cluster.redis)
        distributed = _validate(
            cluster,
            cwd,
            f"--profile={profile}",
            f"--save={tmp_path / 'run' / 'saved.json'}",
            checks=checks,
        )
        # remediate ships the profile too (plan phase; a dry run changes nothing)
        remediated = subprocess.run(
            [
                str(BIN / "readiness"),
                "remediate",
                f"--inventory={cluster.inventory}",
                "--hosts=fleet",
                f"--check={checks}",
                f"--profile={profile}",
                "--store=none",
                "--engine=celery",
                f"--broker={cluster.redis.url}",
            ],
            cwd=cwd,
            env=_env(cluster),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        during = monitor.stop()
    finally:
        shutil.rmtree(secrets_dir, ignore_errors=True)
    assert distributed.returncode == local.returncode, distributed.stderr
    ours, theirs = json.loads(distributed.stdout), json.loads(local.stdout)
    assert _rows(ours) == _rows(theirs)
    assert sorted(_received(workers, 0)) == [0, 1]  # it did go through the worker
    # the worker reached the database with the password from its own PGPASSFILE
    for host in ours["hosts"]:
        (row,) = [r for r in host["checks"] if r["check_name"] == "database_migration"]
        assert row["details"]["privileges"]["schema"]["USAGE"] is True, row
        assert "authentication" not in row["message"], row
    assert remediated.returncode == 0, remediated.stderr
    assert "remediate_shard" in during and "celery-task-meta-readiness-" in during
    seen = [during, distributed.stdout, distributed.stderr, local.stdout, local.stderr]
    seen += [remediated.stdout, remediated.stderr, workers.log(0)]
    stored = _redis_contents(cluster.redis)  # after the run: queues, results, everything
    assert any('"check_name": "database_migration"' in t for t in stored)  # the rows are there
    seen += stored
    seen += [p.read_text(errors="replace") for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert not _leaked(canary, seen)
    # what came back (rows, details, findings) holds no secret the hosts hold either
    assert not _leaked(GOOD_SECRET, seen)

    # a worker without the password says so: authentication failed, never READY
    workers.kill(0, signal.SIGTERM)
    workers.start()
    workers.wait_ready()
    bare = _validate(cluster, cwd, f"--profile={profile}", checks="database_migration")
    assert bare.returncode == 1, bare.stderr
    for host in json.loads(bare.stdout)["hosts"]:
        (row,) = host["checks"]
        assert row["status"] == "not_ready", row
        assert "authentication failed" in row["message"], row
    assert not _leaked(canary, [bare.stdout, bare.stderr, workers.log(1)])


@pytest.mark.timeout(120)
def test_a_credential_no_worker_can_look_up_refuses_the_run_before_anything_is_queued(
    cluster: Cluster, tmp_path: Path
) -> None:
    canary = "canary-" + uuid.uuid4().hex
    cases = {
        "alert_delivery.webhook_url": {
            "alert_delivery": {"webhook_url": f"https://hook:{canary}@127.0.0.1:9/x"}
        },
        "observability_logging.marker_url": {
            "observability_logging": {"marker_url": f"http://127.0.0.1:9/m?access_token={canary}"}
        },
        # a secret under a name of the app's own (a header map takes any name; adapter
        # rules now take only their own keys, so they can no longer carry one)
        "workflow_state.headers.X-Api-Token": {
            "workflow_state": {"headers": {"X-Api-Token": canary}}
        },
        # through the host's tunnel a worker's libpq is pinned to the DSN's own password
        "database_dsn": {
            "service_access": "ssh",
            "database_dsn": f"postgresql://app:{canary}@127.0.0.1:9/app",
        },
    }
    cwd = _config(tmp_path / "controller", shard_size=3, shard_wait=20)
    monitor = Monitor(cluster.redis)
    results = {}
    for key, values in cases.items():
        profile = tmp_path / f"{key}.yml"
        profile.write_text(yaml.safe_dump(values))
        # refused when a check of the run reads the key (see the next test when none does)
        section = key.split(".")[0]
        checks = CHECKS if section == "database_dsn" else f"{CHECKS},{section}"
        results[key] = _validate(cluster, cwd, f"--profile={profile}", checks=checks)
    during = monitor.stop()
    every = "all 6 hosts (h0000, h0001, h0002, ...)"  # the --profile layer is every host's
    for key, res in results.items():
        assert res.returncode == 2, (key, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        whose = "host h0000" if key == "database_dsn" else every
        assert len(lines) == 1 and f"profile key {key} of {whose} holds" in lines[0], res.stderr
        assert "--engine local" in lines[0] and "Traceback" not in res.stderr
        assert canary not in res.stdout + res.stderr
    # refused before the broker was even asked: no shard, no result, nothing to scan
    assert "readiness" not in during and not _leaked(canary, [during])
    # the local engine is unchanged: the same profile audits (and is redacted) as before
    profile = tmp_path / "alert_delivery.webhook_url.yml"
    local = _validate(cluster, cwd, f"--profile={profile}", engine="local")
    assert local.returncode in (0, 1), local.stderr
    assert len(json.loads(local.stdout)["hosts"]) == len(cluster.fleet.hosts)
    assert canary not in local.stdout + local.stderr


@pytest.mark.timeout(120)
def test_a_credential_only_checks_outside_the_run_read_stays_home_and_the_run_goes_on(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    """A webhook token in alert_delivery refused `validate --check environment,...` with
    --engine celery (exit 2), though no check of that run reads alert_delivery: one
    setting of another check refused the whole profile. Now a section that only checks
    outside the run declare (their profile_keys) and that holds a credential does not
    travel, and the run's rows are the local run's; the refusal, when it stands, names the
    key, how many hosts hold it, and the other keys."""
    canary = "canary-" + uuid.uuid4().hex
    profile = tmp_path / "other-checks.yml"
    profile.write_text(
        yaml.safe_dump(
            {
                "alert_delivery": {"webhook_url": f"https://hook:{canary}@127.0.0.1:9/x"},
                "observability_logging": {"marker_url": f"http://127.0.0.1:9/?token={canary}"},
                "workflow_state": {"headers": {"X-Api-Token": canary}},
            }
        )
    )
    cwd = _config(tmp_path / "controller", shard_size=3, shard_wait=20)
    workers.start()
    workers.wait_ready()
    local = _validate(cluster, cwd, f"--profile={profile}", engine="local")
    monitor = Monitor(cluster.redis)
    distributed = _validate(cluster, cwd, f"--profile={profile}")
    during = monitor.stop()
    assert distributed.returncode == local.returncode == 1, distributed.stderr
    assert _rows(json.loads(distributed.stdout)) == _rows(json.loads(local.stdout))
    assert "readiness.audit_shard" in during  # the shards did go through this broker
    assert not _leaked(canary, [during, distributed.stdout, distributed.stderr, workers.log(0)])
    assert not _leaked(canary, _redis_contents(cluster.redis))

    refused = _validate(cluster, cwd, f"--profile={profile}", checks=f"{CHECKS},workflow_state")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr == (
        "readiness: profile key workflow_state.headers.X-Api-Token of all 6 hosts (h0000, "
        "h0001, h0002, ...) holds a password or token that --engine celery never sends "
        "through the broker and a worker cannot look up on its own machine: take it out of "
        "the value, or audit these hosts with --engine local (docs/distributed.md)\n"
    )


@pytest.mark.timeout(180)
def test_an_sshpass_password_in_a_proxycommand_never_reaches_the_broker(
    cluster: Cluster, workers: Workers, tmp_path: Path
) -> None:
    """``ansible_ssh_common_args: -o 'ProxyCommand=sshpass -p SECRET ssh -W %h:%p bastion'``
    travelled in clear with the host's login variables (queued shard, MONITOR, the worker's
    result in Redis). readiness never runs a ProxyCommand, so its text only names the
    refusal: it travels masked, and the host's row is the local run's (masked) row. A
    secret in a setting the login does use (``-o User=`` is no place for one, but the
    redactor decides) refuses the run before anything is queued."""
    canary = "pw-" + uuid.uuid4().hex
    proxy = f"-o 'ProxyCommand=sshpass -p {canary} ssh -W %h:%p bastion'"

    def login(h: Any) -> dict[str, Any]:
        return {"ansible_ssh_common_args": proxy} if h.name == "h0001" else {}

    inventory = cluster.fleet.write_inventory(tmp_path / "proxy.yml", host_vars=login)
    # the worker's own ssh_config names one too: its refusal comes back through Redis
    worker_config = tmp_path / "worker_ssh_config"
    address = cluster.fleet.hosts[2].address
    worker_config.write_text(f"Host {address}\n  ProxyCommand sshpass -p {canary} nc %h %p\n")
    cwd = _config(
        tmp_path / "run" / "controller",
        shard_size=3,
        shard_wait=20,
        ssh_config=str(worker_config),
    )
    workers.start(ssh_config=str(worker_config))
    workers.wait_ready()
    local = _validate(cluster, cwd, engine="local", inventory=inventory)
    monitor = Monitor(cluster.redis)
    distributed = _validate(
        cluster, cwd, f"--save={tmp_path / 'run' / 'saved.json'}", inventory=inventory
    )
    during = monitor.stop()
    assert distributed.returncode == local.returncode == 1, distributed.stderr
    rows = _rows(json.loads(distributed.stdout))
    assert rows == _rows(json.loads(local.stdout))
    for name in ("h0001", "h0002"):
        (row,) = [r for r in rows if r["host"] == name]
        assert row["status"] == "unreachable", row
        assert "ProxyCommand (sshpass -p ***" in row["reason"], row
    assert "audit_shard" in during  # it did go through the broker
    seen = [during, distributed.stdout, distributed.stderr, local.stdout, local.stderr]
    seen += [workers.log(0), *_redis_contents(cluster.redis)]
    seen += [p.read_text(errors="replace") for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert not _leaked(canary, seen)

    # the same secret where the login would use it: refused, one line, nothing queued
    used = cluster.fleet.write_inventory(
        tmp_path / "used.yml",
        host_vars=lambda h: (
            {"ansible_ssh_extra_args": f"-J ssh://jump:{canary}@127.0.0.9"}
            if h.name == "h0001"
            else {}
        ),
    )
    monitor = Monitor(cluster.redis)
    refused = _validate(cluster, cwd, inventory=used)
    during = monitor.stop()
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "ansible_ssh_extra_args of host h0001" in lines[0], lines
    assert "--engine local" in lines[0] and canary not in refused.stdout + refused.stderr
    assert "audit_shard" not in during and not _leaked(canary, [during])
