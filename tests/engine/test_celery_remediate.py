"""`remediate --engine celery` on real components: redis-server, two `readiness worker`
processes and a loopback sshd fleet whose app trees need fixes.

The same fleet is remediated locally and through the workers, its app trees rewritten to
the same starting state in between, so the two runs can be compared byte for byte. Every
wait is bounded; every process started here is stopped by PID.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from readiness.engine.remediation import DRAIN_S
from readiness.errors import UsageError
from readiness.loopback import LoopbackFleet, start_fleet
from readiness.remediate import remediate, render
from readiness.remediate.run import PLAN_CHANGED
from readiness.runner import RunOptions
from tests.services.apps import write_app
from tests.services.redis import RedisServer, redis_server
from tests.services.sshd import APP_STATES, _share

from .test_celery_engine import BIN, WAIT_S, Cluster, Workers, _config, _env, _wait_until

pytestmark = pytest.mark.ssh

CANARY = "celery-remediate-canary-7d1e4b9a0c52f3"
STATES = ["not_ready", "degraded", "not_ready", "degraded"]
CHECKS = "environment,documentation,error_handling,resource_limits"


def _write(index: int, root: Path) -> None:
    """Host ``index``'s app tree in its starting state (the canary is host 0's secret)."""
    if root.exists():
        shutil.rmtree(root)
    kwargs: dict[str, Any] = dict(APP_STATES[STATES[index]])
    if index == 0:
        kwargs["env"] = {"MAHAVISHNU_AUTH__SECRET": None, "MAHAVISHNU_DB_PASSWORD": CANARY}
        kwargs["settings"] = {"zz_note": CANARY}  # in the context lines of a settings diff
    write_app(root, **kwargs)
    _share(root)


@dataclass
class Site:
    cluster: Cluster
    workers: Workers

    @property
    def fleet(self) -> LoopbackFleet:
        return self.cluster.fleet

    @property
    def redis(self) -> RedisServer:
        return self.cluster.redis

    def reset(self) -> None:
        for i, host in enumerate(self.fleet.hosts):
            _write(i, host.app_root)

    def trees(self) -> dict[str, dict[str, bytes]]:
        """Every host's app files (backup copies by their name without the time stamp)."""
        out: dict[str, dict[str, bytes]] = {}
        for host in self.fleet.hosts:
            files: dict[str, bytes] = {}
            for p in sorted(host.app_root.rglob("*")):
                name = re.sub(r"\.readiness-bak\.[0-9TZ]+", ".readiness-bak.STAMP", str(p))
                data = p.read_bytes() if p.is_file() else b""
                # a secret generated on the host differs on every apply: keep its length
                data = re.sub(
                    rb"(MAHAVISHNU_AUTH__SECRET=)(\S+)",
                    lambda m: m[1] + b"<%d chars>" % len(m[2]),
                    data,
                )
                files[name + ("/" if p.is_dir() else "")] = data
            out[host.name] = files
        return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("celery-remediate")
    with redis_server() as redis, start_fleet(len(STATES), app_writer=_write) as fleet:
        bashrc = fleet.root / "home" / ".bashrc"
        # every SSH session waits a little while the marker exists: a shard runs for a while
        marker = fleet.root / "home" / "slow"
        bashrc.write_text(f"if [ -f {marker} ]; then sleep 0.3; fi\n" + bashrc.read_text())
        home = root / "home"
        (home / ".ssh").mkdir(parents=True)
        shutil.copy(fleet.known_hosts, home / ".ssh" / "known_hosts")
        cluster = Cluster(redis, fleet, home, fleet.write_inventory(root / "inventory.yml"), root)
        workers = Workers(cluster, root / "workers")
        try:
            workers.start()
            workers.start()
            workers.wait_ready()
            yield Site(cluster, workers)
        finally:
            workers.stop_all()


def _remediate(
    site: Site, cwd: Path, *extra: str, engine: str = "celery", timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """`readiness remediate` as a user types it (audit log in ``cwd``)."""
    _config(cwd, shard_size=2, shard_wait=20)
    argv = [
        str(BIN / "readiness"),
        "remediate",
        f"--inventory={site.cluster.inventory}",
        "--hosts=fleet",
        f"--check={CHECKS}",
        "--store=none",
        f"--audit-log={cwd / 'audit.jsonl'}",
        f"--engine={engine}",
        *([f"--broker={site.redis.url}"] if engine == "celery" else []),
        *extra,
    ]
    return subprocess.run(
        argv,
        cwd=cwd,
        env=_env(site.cluster),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _stable(text: str) -> str:
    """Output without what changes between two runs: backup stamps."""
    return re.sub(r"\.readiness-bak\.[0-9TZ]+", ".readiness-bak.STAMP", text)


def _log(path: Path) -> list[dict[str, Any]]:
    """The audit log's entries without when and by which worker."""
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    return sorted(
        ({k: v for k, v in e.items() if k not in ("ts", "worker")} for e in entries),
        key=lambda e: (e["host"], e["check"]),
    )


class Monitor:
    """Every command redis-server receives (Redis MONITOR), as text: the shards sent, the
    states the workers publish and the results."""

    def __init__(self, redis: RedisServer) -> None:
        self.sock = socket.create_connection(("127.0.0.1", redis.port), timeout=WAIT_S)
        self.sock.sendall(f"AUTH {redis.password}\r\nMONITOR\r\n".encode())
        self.chunks: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                data = self.sock.recv(65536)
                if not data:
                    return
                self.chunks.append(data)

    def text(self) -> str:
        """What redis-server saw, with the base64 message bodies (the shards sent) decoded."""
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()
        seen = b"".join(self.chunks).decode("utf-8", "replace")
        bodies = re.findall(r'body\\?": ?\\?"([A-Za-z0-9+/=]{16,})', seen)
        decoded = [base64.b64decode(b).decode("utf-8", "replace") for b in bodies]
        return "\n".join([seen, *decoded])


@pytest.mark.timeout(240)
def test_distributed_remediate_equals_local_and_never_carries_a_secret(
    site: Site, tmp_path: Path
) -> None:
    # dry run: the same text, row for row, and the same exit code; nothing changed
    site.reset()
    pristine = site.trees()
    t0 = time.monotonic()
    local_dry = _remediate(site, tmp_path / "local-dry", engine="local")
    local_dry_s = time.monotonic() - t0
    monitor = Monitor(site.redis)
    t0 = time.monotonic()
    dist_dry = _remediate(site, tmp_path / "dist-dry")
    dist_dry_s = time.monotonic() - t0
    assert dist_dry.returncode == local_dry.returncode == 0, dist_dry.stderr
    assert dist_dry.stdout == local_dry.stdout
    assert "(dry run)" in dist_dry.stdout and "+++ b" in dist_dry.stdout
    assert "***" in dist_dry.stdout  # the canary was in a diff, masked as locally
    assert site.trees() == pristine
    assert not (tmp_path / "dist-dry" / "audit.jsonl").exists()

    # apply: the same files on every host, the same audit log, the same output
    t0 = time.monotonic()
    local = _remediate(site, tmp_path / "local", "--apply", "--yes", engine="local")
    local_s = time.monotonic() - t0
    after_local = site.trees()
    assert after_local != pristine
    site.reset()
    t0 = time.monotonic()
    dist = _remediate(site, tmp_path / "dist", "--apply", "--yes")
    dist_s = time.monotonic() - t0
    wire = monitor.text()
    assert dist.returncode == local.returncode, dist.stderr
    assert _stable(dist.stdout) == _stable(local.stdout)
    assert site.trees() == after_local
    dist_log, local_log = tmp_path / "dist" / "audit.jsonl", tmp_path / "local" / "audit.jsonl"
    assert _log(dist_log) == _log(local_log)
    assert {e["outcome"] for e in _log(dist_log)} >= {"applied"}
    workers_named = {json.loads(line).get("worker") for line in dist_log.read_text().splitlines()}
    assert len(workers_named) == 2 and None not in workers_named  # both workers applied
    # the [remediate] lines on stderr name the same hosts, checks and outcomes
    lines = [re.sub(r"^\[remediate\] \S+ ", "", s) for s in dist.stderr.splitlines()]
    local_lines = [re.sub(r"^\[remediate\] \S+ ", "", s) for s in local.stderr.splitlines()]
    assert sorted(s for s in lines if "[remediate]" not in s and " root " in s) == sorted(
        s for s in local_lines if " root " in s
    )

    # the secret canary: the broker saw the runs, never the secret
    assert "remediate_shard" in wire and "plan_hash" in wire
    assert '"phase": "apply"' in wire and '"confirmed": {"h0000"' in wire  # the shards, decoded
    for text in (wire, dist.stdout, dist.stderr, dist_dry.stdout, dist_log.read_text()):
        assert CANARY not in text
    print(
        f"\ndry run: local {local_dry_s:.2f}s, celery {dist_dry_s:.2f}s; "
        f"apply: local {local_s:.2f}s, celery {dist_s:.2f}s"
    )


@pytest.mark.timeout(120)
def test_a_host_changed_between_confirmation_and_apply_is_refused_and_untouched(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.reset()
    monkeypatch.setenv("HOME", str(site.cluster.home))
    changed = site.fleet.hosts[1]
    readme = changed.app_root / "README.md"
    asked: list[list[str]] = []

    def confirm(names: list[str]) -> bool:
        # between the plan and the apply, someone writes a file the plan would create
        asked.append(names)
        readme.write_text("# Edited by hand after the dry run\n")
        readme.chmod(0o644)
        return True

    options = RunOptions(
        engine="celery",
        broker=site.redis.url,
        known_hosts=str(site.fleet.known_hosts),
        ssh_config="",
        shard_size=2,
        shard_wait=20,
        progress=False,
        quiet=True,
    )
    before = site.trees()[changed.name]
    stream = io.StringIO()
    report = remediate(
        "fleet",
        CHECKS.split(","),
        inventory=str(site.cluster.inventory),
        apply=True,
        confirm=confirm,
        options=options,
        audit_log=tmp_path / "audit.jsonl",
        log_stream=stream,
    )
    assert asked == [[h.name for h in site.fleet.hosts]]  # asked once, after the plan
    rows = {h.host: h for h in report.hosts}
    refused = rows[changed.name]
    assert refused.plan.error.startswith(PLAN_CHANGED + ": "), render(report)
    assert "nothing was changed on this host" in refused.plan.error
    assert not refused.outcomes and not refused.ok
    after = site.trees()[changed.name]
    assert readme.read_text() == "# Edited by hand after the dry run\n"
    # nothing else on the host was touched either: only the hand edit differs
    assert {k for k in after if after[k] != before.get(k)} == {str(readme)}
    assert set(after) == set(before) | {str(readme)}
    for name, row in rows.items():
        if name != changed.name:
            assert row.ok and {o.outcome for o in row.outcomes} == {"applied"}, render(report)
    assert report.exit_code == 1
    entries = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [e["outcome"] for e in entries if e["host"] == changed.name] == ["refused"]
    assert f"{changed.name} -: refused ({PLAN_CHANGED}" in stream.getvalue()

    # a confirmation refused after the plan: nothing is applied anywhere
    site.reset()
    pristine = site.trees()
    from readiness.remediate import ConfirmationRefused

    with pytest.raises(ConfirmationRefused, match="not confirmed"):
        remediate(
            "fleet",
            CHECKS.split(","),
            inventory=str(site.cluster.inventory),
            apply=True,
            confirm=lambda names: False,
            options=options,
            audit_log=tmp_path / "refused.jsonl",
        )
    assert site.trees() == pristine
    assert not (tmp_path / "refused.jsonl").exists()
    # a bad broker is a usage error before anything is planned
    with pytest.raises(UsageError, match="unreachable"):
        remediate(
            "fleet",
            CHECKS.split(","),
            inventory=str(site.cluster.inventory),
            options=RunOptions(engine="celery", broker="redis://:pw@127.0.0.1:1/0"),
        )


@pytest.mark.timeout(180)
def test_a_worker_killed_mid_apply_never_applies_a_host_twice(site: Site, tmp_path: Path) -> None:
    """One shard of all hosts on its own queue; its worker is SIGKILLed while the second
    host is being fixed. Redis redelivers the shard to another worker, which leaves the
    host the first one reported alone, refuses the half-fixed host (its fresh plan is no
    longer the confirmed one) and applies the rest: no fix is ever applied twice."""
    site.reset()
    fleet = site.fleet
    inventory = fleet.write_inventory(
        tmp_path / "inventory.yml", host_vars=lambda h: {"readiness_queue": "kill"}
    )
    marker = fleet.root / "home" / "slow"
    extra = Workers(site.cluster, tmp_path / "extra")
    cwd = _config(tmp_path / "ctl", shard_size=8, shard_wait=30, visibility_timeout=4)
    log = cwd / "audit.jsonl"
    argv = [
        str(BIN / "readiness"),
        "remediate",
        f"--inventory={inventory}",
        "--hosts=fleet",
        f"--check={CHECKS}",
        "--store=none",
        f"--audit-log={log}",
        "--engine=celery",
        f"--broker={site.redis.url}",
        "--apply",
        "--yes",
        "--forks=1",
        "--format=json",
    ]
    try:
        first = extra.start(queues="kill")
        extra.wait_ready()
        marker.write_text("")
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=_env(site.cluster),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        second_host = fleet.hosts[1].name
        _wait_until(
            "the second host's first fix", lambda: log.exists() and second_host in log.read_text()
        )
        extra.kill(first)  # SIGKILL, mid-shard, mid-host
        marker.unlink()
        extra.start(queues="kill")
        out, err = proc.communicate(timeout=120)
    finally:
        marker.unlink(missing_ok=True)
        extra.stop_all()
    report = {h["host"]: h for h in json.loads(out)["hosts"]}
    assert proc.returncode in (0, 1), err
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len({e.get("worker") for e in entries}) == 2, entries  # the killed one and another
    for host in fleet.hosts:
        mine = [e for e in entries if e["host"] == host.name]
        applied = [e["check"] for e in mine if e["outcome"] == "applied"]
        assert applied and len(applied) == len(set(applied)), (host.name, mine)
        row = report[host.name]
        if host.name == second_host and [e for e in mine if e["outcome"] == "refused"]:
            assert [e["outcome"] for e in mine].count("refused") == 1
            assert row["error"].startswith(PLAN_CHANGED), row
        else:
            assert {e["outcome"] for e in mine} == {"applied"}, mine
            assert {f["outcome"] for f in row["fixes"]} == {"applied"}, row
    # the first host was reported before the kill: the second worker never connected to it
    assert {e.get("worker") for e in entries if e["host"] == fleet.hosts[0].name} == {
        entries[0].get("worker")
    }


@pytest.mark.timeout(120)
def test_sigint_during_apply_revokes_the_shards_and_logs_what_was_applied(
    site: Site, tmp_path: Path
) -> None:
    site.reset()
    pristine = site.trees()
    marker = site.fleet.root / "home" / "slow"
    cwd = _config(tmp_path, shard_size=1, shard_wait=20)
    log = cwd / "audit.jsonl"
    argv = [
        str(BIN / "readiness"),
        "remediate",
        f"--inventory={site.cluster.inventory}",
        "--hosts=fleet",
        f"--check={CHECKS}",
        "--store=none",
        f"--audit-log={log}",
        "--engine=celery",
        f"--broker={site.redis.url}",
        "--apply",
        "--yes",
        "--format=json",
    ]
    marker.write_text("")
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=_env(site.cluster),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        _wait_until("a first fix applied", lambda: log.exists() and log.read_text().strip())
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        marker.unlink(missing_ok=True)
    # the revoke plus at most DRAIN_S of reading what the stopping shards did
    assert time.monotonic() - stopped_at < DRAIN_S + 10
    assert proc.returncode == 130, err
    report = json.loads(out)
    assert report["interrupted_by"] == "SIGINT"
    assert any(h["interrupted"] for h in report["hosts"]), report  # stopped mid-run
    time.sleep(1.0)  # a shard still running would change a host now
    changed = {name for name, files in site.trees().items() if files != pristine[name]}
    logged = {json.loads(line)["host"] for line in log.read_text().splitlines()}
    # every host something was done to is in the controller's audit log
    assert changed and changed <= logged, (changed, logged)
    time.sleep(1.0)
    assert {n for n, f in site.trees().items() if f != pristine[n]} == changed  # nothing more
