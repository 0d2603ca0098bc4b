"""Benchmark: the full ``validate`` suite over N loopback sshd hosts against the SSH floor.

The floor is the least any SSH audit can cost: one verified connection per host and
one ``python3 -c pass``, at the same concurrency. Both are measured in the same run,
on the same fleet, so the ratio does not depend on how loaded the machine is.
See docs/performance.md for the method and the numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .inventory import load_inventory
from .loopback import MAX_HOSTS, LoopbackFleet, start_fleet
from .runner import HostLike, RunOptions
from .ssh import SshConnector

__all__ = ["BenchResult", "Phase", "format_result", "run_bench", "write_bench_app"]

_SETTINGS: dict[str, Any] = {
    "server_name": "bench",
    "repos_path": "repos.yaml",
    "max_concurrent_workflows": 10,
    "workflow_timeout": 600,
    "auth": {"enabled": True, "algorithm": "HS256"},
    "adapters": {"prefect": {"enabled": False}, "llamaindex": {"enabled": False}},
    "pools": {"enabled": True, "min_workers": 2, "max_workers": 8},
    "observability": {"metrics_enabled": True, "otlp_endpoint": None},
}
_ENV = "MAHAVISHNU_REPOS_PATH=repos.yaml\nMAHAVISHNU_AUTH__SECRET=Zq8w3Jr5Nv1Lx7Tb9Hc2Pm4Kd6Fs0Gy1Ae3Ru5Wi7O\n"


def write_bench_app(index: int, root: Path) -> None:
    """A small Mahavishnu-style app tree, the same on every host."""
    (root / "settings").mkdir(parents=True, exist_ok=True)
    (root / "settings" / "mahavishnu.yaml").write_text(yaml.safe_dump(_SETTINGS))
    (root / "repos.yaml").write_text("repos: []\n")
    env = root / ".env"
    env.write_text(_ENV)
    env.chmod(0o600)


@dataclass
class Phase:
    """One measured pass over the fleet."""

    name: str
    hosts: int
    wall_s: float
    cpu_s: float
    connections: dict[str, int] = field(default_factory=dict)
    commands: dict[str, int] = field(default_factory=dict)
    host_cpu_s: float = 0.0  # sshd + sessions + remote processes, all "hosts" together

    @property
    def cpu_ms_per_host(self) -> float:
        return 1000 * self.cpu_s / max(1, self.hosts)

    @property
    def host_cpu_ms_per_host(self) -> float:
        return 1000 * self.host_cpu_s / max(1, self.hosts)

    @property
    def wall_ms_per_host(self) -> float:
        return 1000 * self.wall_s / max(1, self.hosts)

    def per_host(self, counter: dict[str, int]) -> str:
        values = [counter.get(f"h{i:04d}", 0) for i in range(self.hosts)]
        return f"{min(values)}..{max(values)}" if values else "-"


@dataclass
class BenchResult:
    hosts: int
    forks: int
    startup_s: float
    floor: list[Phase]
    suite: list[Phase]
    statuses: dict[str, int]
    # Hosts the suite could not audit (UNREACHABLE/ERROR), any round: a bench must not
    # report a fast run that quietly skipped hosts.
    problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return min(p.wall_s for p in self.suite) / max(1e-9, min(p.wall_s for p in self.floor))


def _measure(name: str, fleet: LoopbackFleet, body: Callable[[], SshConnector | None]) -> Phase:
    h0 = fleet.cpu_seconds()
    w0, c0 = time.perf_counter(), time.process_time()
    connector = body()
    n = len(fleet.hosts)
    phase = Phase(name, n, time.perf_counter() - w0, time.process_time() - c0)
    time.sleep(0.3)  # let each sshd reap its finished sessions so their CPU is counted
    phase.host_cpu_s = fleet.cpu_seconds() - h0
    if connector is not None:
        phase.connections = dict(connector.stats.connections)
        phase.commands = dict(connector.stats.commands)
    return phase


def _floor(hosts: Sequence[HostLike], options: RunOptions) -> SshConnector:
    """Verified connect + ``python3 -c pass`` on every host, ``forks`` at a time."""
    connector = SshConnector(options)

    def one(host: HostLike) -> bool:
        transport = connector.open(host)
        try:
            return transport.run(["python3", "-c", "pass"], timeout=options.command_timeout).ok
        finally:
            transport.close()

    with ThreadPoolExecutor(max_workers=max(1, min(options.forks, len(hosts)))) as pool:
        results = list(pool.map(one, hosts))
    if not all(results):
        raise RuntimeError(f"floor: {results.count(False)} host(s) failed `python3 -c pass`")
    return connector


def run_bench(
    n: int,
    *,
    forks: int = 32,
    rounds: int = 1,
    checks: Sequence[str] | None = None,
    command_timeout: float = 60.0,
) -> BenchResult:
    """Start ``n`` sshd hosts, measure floor and suite ``rounds`` times each, stop the fleet."""
    if not 1 <= n <= MAX_HOSTS:
        raise ValueError(f"--hosts must be 1..{MAX_HOSTS}")
    rounds = max(1, min(rounds, 5))
    t0 = time.perf_counter()
    fleet = start_fleet(n, app_writer=write_bench_app)
    try:
        startup = time.perf_counter() - t0
        return _run_rounds(
            fleet,
            n,
            forks=forks,
            rounds=rounds,
            checks=checks,
            command_timeout=command_timeout,
            startup=startup,
        )
    finally:
        fleet.stop()


def _run_rounds(
    fleet: LoopbackFleet,
    n: int,
    *,
    forks: int,
    rounds: int,
    checks: Sequence[str] | None,
    command_timeout: float,
    startup: float,
) -> BenchResult:
    from .api import validate

    options = RunOptions(
        forks=forks,
        known_hosts=str(fleet.known_hosts),
        ssh_config="",
        connect_timeout=10.0,
        command_timeout=command_timeout,
        host_deadline=command_timeout * 2 + 20,
        progress=False,
        quiet=True,
    )
    hosts = load_inventory(fleet.inventory).select("fleet")
    floor: list[Phase] = []
    suite: list[Phase] = []
    statuses: dict[str, int] = {}
    problems: list[str] = []
    for _ in range(rounds):
        floor.append(_measure("floor", fleet, lambda: _floor(hosts, options)))

        def audit() -> SshConnector:
            connector = SshConnector(options)
            report = validate(
                hosts, list(checks) if checks else None, options=options, connector=connector
            )
            statuses.clear()
            for h in report.hosts:
                statuses[h.status.value] = statuses.get(h.status.value, 0) + 1
                if h.reason:
                    problems.append(
                        f"round {len(suite) + 1}: {h.host}: {h.status.value}: {h.reason}"
                    )
            return connector

        suite.append(_measure("suite", fleet, audit))
    return BenchResult(n, forks, startup, floor, suite, statuses, problems)


def format_result(res: BenchResult) -> str:
    """A plain-text table of every phase plus the verdict line."""
    lines = [
        f"hosts={res.hosts} forks={res.forks} fleet start {res.startup_s:.1f}s",
        f"{'phase':<7} {'wall s':>8} {'ms/host':>8} {'ctl cpu s':>9} {'ctl ms/host':>11} "
        f"{'host cpu ms/host':>16} {'conn/host':>9} {'cmd/host':>8}",
    ]
    for p in [*res.floor, *res.suite]:
        lines.append(
            f"{p.name:<7} {p.wall_s:>8.2f} {p.wall_ms_per_host:>8.1f} {p.cpu_s:>9.2f} "
            f"{p.cpu_ms_per_host:>11.1f} {p.host_cpu_ms_per_host:>16.1f} "
            f"{p.per_host(p.connections):>9} {p.per_host(p.commands):>8}"
        )
    lines.append(f"host statuses (last round): {res.statuses}")
    if res.problems:
        lines.append(f"hosts not audited: {len(res.problems)}")
        lines += [f"  {p}" for p in res.problems[:10]]
    lines.append(f"suite/floor wall ratio (best of each): {res.ratio:.2f}")
    return "\n".join(lines)
