"""Benchmark of the celery engine: the same fleet audited locally and by 1, 2, 4 workers.

Starts a loopback sshd fleet (the bench app of :mod:`readiness.bench`), a password-
protected redis-server on loopback and N ``readiness worker`` processes per round, and
measures wall time, hosts/s, the engine's overhead against a local run of the same hosts,
and hosts per CPU-second of the workers (the sizing number of docs/distributed.md).
Everything started here is stopped by PID before returning.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from ..loopback import MAX_HOSTS, LoopbackFleet, process_cpu_s, start_fleet, stop_process_groups
from ..runner import RunOptions

__all__ = ["EngineBenchResult", "EngineRound", "format_engine_bench", "run_engine_bench"]

REDIS_SERVER = "/usr/bin/redis-server"
_READY_S = 30.0


@dataclass(frozen=True)
class EngineRound:
    engine: str
    workers: int
    wall_s: float
    worker_cpu_s: float  # CPU of every worker process during the run (0 for local)
    same_rows: bool  # statuses and messages equal to the local run's, row for row


@dataclass
class EngineBenchResult:
    hosts: int
    forks: int
    shard_size: int
    rounds: list[EngineRound] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _redis(workdir: Path) -> Iterator[str]:
    if not Path(REDIS_SERVER).exists():
        raise RuntimeError(f"{REDIS_SERVER} not found: apt-get install -y redis-server")
    port, password = _free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(
        [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", password,
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + _READY_S
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://:{password}@127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def _workers(n: int, broker: str, home: Path, workdir: Path) -> Iterator[list[int]]:
    exe = str(Path(sys.executable).parent / "readiness")
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    env = {**os.environ, "HOME": str(home)}
    try:
        for k in range(n):
            cwd = workdir / f"worker-{n}-{k}"
            cwd.mkdir(parents=True)
            (cwd / "readiness.yaml").write_text(yaml.safe_dump({"readiness": {"ssh_config": ""}}))
            logs.append(cwd / "worker.log")
            with logs[-1].open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [exe, "worker", f"--broker={broker}", "--concurrency=1"],
                        cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                        stderr=subprocess.STDOUT, start_new_session=True,
                    )
                )  # fmt: skip
        deadline = time.monotonic() + _READY_S
        for proc, log_path in zip(procs, logs, strict=True):
            while "ready." not in log_path.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"a worker did not start: {log_path.read_text()[-500:]}")
                time.sleep(0.1)
        yield [p.pid for p in procs]
    finally:
        stop_process_groups(procs, grace_s=20)


def _rows(report: object) -> list[tuple[str, str, tuple[tuple[str, str, str], ...]]]:
    return [
        (
            h.host,
            h.status.value,
            tuple((r.check_name, r.status.value, r.message) for r in h.results),
        )
        for h in report.hosts  # type: ignore[attr-defined]
    ]


def run_engine_bench(
    n: int,
    *,
    worker_counts: Sequence[int] = (1, 2, 4),
    forks: int = 32,
    checks: Sequence[str] | None = None,
    command_timeout: float = 60.0,
) -> EngineBenchResult:
    """Audit the same ``n``-host fleet locally, then with each number of workers."""
    from ..api import plan, run_plan
    from .controller import run_distributed

    if not 1 <= n <= MAX_HOSTS:
        raise ValueError(f"--hosts must be 1..{MAX_HOSTS}")
    shard_size = max(1, math.ceil(n / (4 * max(worker_counts))))
    workdir = Path(tempfile.mkdtemp(prefix="engine-bench-"))
    fleet: LoopbackFleet | None = None
    try:
        from ..bench import write_bench_app

        fleet = start_fleet(n, app_writer=write_bench_app)
        home = workdir / "home"
        (home / ".ssh").mkdir(parents=True)
        shutil.copy(fleet.known_hosts, home / ".ssh" / "known_hosts")
        options = RunOptions(
            forks=forks,
            known_hosts=str(fleet.known_hosts),
            ssh_config="",
            command_timeout=command_timeout,
            host_deadline=command_timeout * 2 + 20,
            progress=False,
            quiet=True,
            shard_size=shard_size,
            shard_wait=60.0,
        )
        planned = plan("fleet", list(checks) if checks else None, inventory=str(fleet.inventory))
        result = EngineBenchResult(n, forks, shard_size)
        t0 = time.perf_counter()
        local = run_plan(planned, options=options)
        result.rounds.append(EngineRound("local", 0, time.perf_counter() - t0, 0.0, True))
        with _redis(workdir) as broker:
            for count in worker_counts:
                with _workers(count, broker, home, workdir) as pids:
                    cpu0 = sum(process_cpu_s(p) for p in pids)
                    t0 = time.perf_counter()
                    report = run_distributed(
                        planned, replace(options, engine="celery", broker=broker)
                    )
                    wall = time.perf_counter() - t0
                    cpu = sum(process_cpu_s(p) for p in pids) - cpu0
                result.rounds.append(
                    EngineRound("celery", count, wall, cpu, _rows(report) == _rows(local))
                )
        return result
    finally:
        if fleet is not None:
            fleet.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def format_engine_bench(res: EngineBenchResult) -> str:
    local = next(r for r in res.rounds if r.engine == "local")
    lines = [
        f"hosts={res.hosts} forks={res.forks} shard_size={res.shard_size} cpus={os.cpu_count()}",
        f"{'engine':<7} {'workers':>7} {'wall s':>7} {'hosts/s':>8} {'overhead s':>10} "
        f"{'worker cpu s':>12} {'hosts/cpu-s':>11} {'rows = local':>12}",
    ]
    for r in res.rounds:
        per_cpu = f"{res.hosts / r.worker_cpu_s:.1f}" if r.worker_cpu_s else "-"
        lines.append(
            f"{r.engine:<7} {r.workers or '-':>7} {r.wall_s:>7.2f} {res.hosts / r.wall_s:>8.1f} "
            f"{r.wall_s - local.wall_s:>+10.2f} {r.worker_cpu_s:>12.2f} {per_cpu:>11} "
            f"{'yes' if r.same_rows else 'NO':>12}"
        )
    return "\n".join(lines)
