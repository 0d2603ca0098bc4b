"""Benchmark: the full ``validate`` suite over N loopback sshd hosts against the SSH floor.

The floor is the least any SSH audit can cost: one verified connection per host and
one ``python3 -c pass``, at the same concurrency. Both are measured in the same run,
on the same fleet, so the ratio does not depend on how loaded the machine is.
See docs/performance.md for the method and the numbers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .inventory import load_inventory
from .loopback import MAX_HOSTS, LoopbackFleet, start_fleet
from .model import Status
from .runner import HostLike, RunOptions, run_hosts
from .ssh import SshConnector
from .transport import Transport

__all__ = [
    "BenchResult",
    "DelayProxy",
    "HostileResult",
    "Phase",
    "format_hostile",
    "format_result",
    "measure_round_trips",
    "run_bench",
    "run_hostile_bench",
    "write_bench_app",
    "write_example_app",
]

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


EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "mahavishnu"
# The apps a bench audits on every host: the minimal tree above, and the bundled example
# deployment (what a user's first fleet audit looks like; the headline number).
APPS = ("minimal", "example")


def write_example_app(index: int, root: Path) -> None:
    """A copy of the bundled ``examples/mahavishnu/`` deployment (without a running demo)."""
    if not EXAMPLE_DIR.is_dir():
        raise RuntimeError(f"bundled example not found at {EXAMPLE_DIR} (run from a checkout)")
    shutil.copytree(
        EXAMPLE_DIR, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("run", "*.pyc")
    )


def _example_root(app_root: Path) -> Path:
    return app_root.parent / "example"


def _write_both_apps(index: int, root: Path) -> None:
    write_bench_app(index, root)
    write_example_app(index, _example_root(root))


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
    peak_rss_mb: float = 0.0  # the controller's peak resident set during the phase
    logins: dict[str, int] = field(default_factory=dict)  # sshd's own count, per host
    sessions_reaped: bool = True  # False: some sessions outlived the wait, host CPU is short

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
        if not counter:
            return "-"
        values = [counter.get(f"h{i:04d}", 0) for i in range(self.hosts)]
        return f"{min(values)}..{max(values)}" if values else "-"


@dataclass
class BenchResult:
    hosts: int
    forks: int
    startup_s: float
    floor: list[Phase]
    suite: list[Phase]  # the headline app's suite phases (the example when measured)
    statuses: dict[str, int]
    # Hosts the suite could not audit (UNREACHABLE/ERROR), any round: a bench must not
    # report a fast run that quietly skipped hosts.
    problems: list[str] = field(default_factory=list)
    apps: dict[str, list[Phase]] = field(default_factory=dict)  # every app's suite phases
    extra: list[Phase] = field(default_factory=list)  # recording + every report format
    reference: list[Phase] = field(default_factory=list)  # Ansible raw / command
    reference_note: str = ""
    load: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0, 0, 0), (0, 0, 0))
    round_trips: RoundTrips | None = None

    @property
    def ratio(self) -> float:
        return min(p.wall_s for p in self.suite) / max(1e-9, self.floor_s)

    @property
    def floor_s(self) -> float:
        return min(p.wall_s for p in self.floor)

    def ratio_of(self, app: str) -> float:
        return min(p.wall_s for p in self.apps[app]) / max(1e-9, self.floor_s)


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so each phase reports its own peak."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(name: str, fleet: LoopbackFleet, body: Callable[[], SshConnector | None]) -> Phase:
    logins0 = [h.accepted_logins() for h in fleet.hosts]
    _reset_peak_rss()
    h0 = fleet.cpu_seconds()
    w0, c0 = time.perf_counter(), time.process_time()
    connector = body()
    n = len(fleet.hosts)
    phase = Phase(name, n, time.perf_counter() - w0, time.process_time() - c0)
    phase.peak_rss_mb = _peak_rss_mb()
    # a session's CPU is counted once its sshd has reaped it: wait for that, not a fixed time
    phase.sessions_reaped = fleet.wait_until_sessions_reaped()
    phase.host_cpu_s = fleet.cpu_seconds() - h0
    phase.logins = {
        h.name: h.accepted_logins() - before for h, before in zip(fleet.hosts, logins0, strict=True)
    }
    if connector is not None:
        phase.connections = dict(connector.stats.connections)
        phase.commands = dict(connector.stats.commands)
    return phase


def _floor(hosts: Sequence[HostLike], options: RunOptions) -> SshConnector:
    """Verified connect + ``python3 -c pass`` on every host, ``forks`` at a time, on the same
    fleet loop as the audit (so both phases pay for the same parallelism and pty)."""
    connector = SshConnector(options)

    def one(host: HostLike, transport: Transport) -> bool:
        return transport.run(["python3", "-c", "pass"], timeout=options.command_timeout).ok

    loop = run_hosts(
        hosts,
        one,
        lambda host, status, reason, began: False,
        status_of=lambda ok: Status.READY if ok else Status.ERROR,
        options=options,
        connector=connector,
    )
    failed = loop.results.count(False)
    if failed:
        raise RuntimeError(f"floor: {failed} host(s) failed `python3 -c pass`")
    return connector


def run_bench(
    n: int,
    *,
    forks: int = 32,
    rounds: int = 1,
    checks: Sequence[str] | None = None,
    command_timeout: float = 60.0,
    apps: Sequence[str] = APPS,
    ansible: bool = True,
    delay_ms: float = 25.0,
) -> BenchResult:
    """Start ``n`` sshd hosts, measure the floor and each app's suite ``rounds`` times, the
    recording and every report format, then Ansible's raw and command modules once (when
    ansible-core is installed and ``ansible``); stop the fleet."""
    if not 1 <= n <= MAX_HOSTS:
        raise ValueError(f"--hosts must be 1..{MAX_HOSTS}")
    unknown = [a for a in apps if a not in APPS]
    if unknown or not apps:
        raise ValueError(f"apps must be among {', '.join(APPS)}")
    rounds = max(1, min(rounds, 5))
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    fleet = start_fleet(n, app_writer=_write_both_apps if "example" in apps else write_bench_app)
    try:
        startup = time.perf_counter() - t0
        result = _run_rounds(
            fleet,
            n,
            forks=forks,
            rounds=rounds,
            checks=checks,
            command_timeout=command_timeout,
            startup=startup,
            apps=apps,
        )
        if delay_ms > 0:
            headline = "example" if "example" in apps else apps[0]
            result.round_trips = measure_round_trips(
                fleet, _app_inventory(fleet, headline), delay_s=delay_ms / 1000
            )
        if ansible:
            result.reference, result.reference_note = _ansible_rows(fleet, forks)
        result.load = (load_before, os.getloadavg())
        return result
    finally:
        fleet.stop()


def _app_inventory(fleet: LoopbackFleet, app: str) -> Path:
    if app == "minimal":
        return fleet.inventory
    return fleet.write_inventory(
        fleet.root / f"inventory-{app}.yml",
        host_vars=lambda h: {"readiness": {"app_root": str(_example_root(h.app_root))}},
    )


def _run_rounds(
    fleet: LoopbackFleet,
    n: int,
    *,
    forks: int,
    rounds: int,
    checks: Sequence[str] | None,
    command_timeout: float,
    startup: float,
    apps: Sequence[str] = ("minimal",),
) -> BenchResult:
    from .api import validate
    from .model import FleetReport

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
    floor_hosts = load_inventory(fleet.inventory).select("fleet")
    app_hosts = {app: load_inventory(_app_inventory(fleet, app)).select("fleet") for app in apps}
    floor: list[Phase] = []
    by_app: dict[str, list[Phase]] = {app: [] for app in apps}
    extra: list[Phase] = []
    statuses: dict[str, int] = {}
    problems: list[str] = []
    headline = "example" if "example" in apps else apps[0]
    last: list[FleetReport] = []
    for round_no in range(1, rounds + 1):
        floor.append(_measure("floor", fleet, lambda: _floor(floor_hosts, options)))
        for app in apps:

            def audit(app: str = app, round_no: int = round_no) -> SshConnector:
                connector = SshConnector(options)
                report = validate(
                    app_hosts[app],
                    list(checks) if checks else None,
                    options=options,
                    connector=connector,
                )
                if app == headline:
                    statuses.clear()
                    last[:] = [report]
                for h in report.hosts:
                    if app == headline:
                        statuses[h.status.value] = statuses.get(h.status.value, 0) + 1
                    if h.reason:
                        problems.append(
                            f"round {round_no} {app}: {h.host}: {h.status.value}: {h.reason}"
                        )
                return connector

            by_app[app].append(_measure(f"suite:{app}", fleet, audit))
        extra.append(
            _measure("record+reports", fleet, lambda: _record_and_render(last[0], fleet.root))
        )
    return BenchResult(
        n,
        forks,
        startup,
        floor,
        by_app[headline],
        statuses,
        problems,
        apps=by_app,
        extra=extra,
    )


def _record_and_render(report: Any, root: Path) -> None:
    """What follows an audit: the run recorded in a (fresh SQLite) results store, and the
    report written in every format."""
    import tempfile

    from .model import utcnow
    from .report import EXTENSIONS, FORMATS, render, save
    from .store.location import parse_location
    from .store.record import record_run, run_meta

    with tempfile.TemporaryDirectory(dir=root) as tmp:
        location = parse_location(str(Path(tmp) / "store.sqlite"))
        meta = run_meta("validate", "fleet", started=utcnow(), argv=["readiness", "bench"])
        if record_run(location, report, meta) is None:
            raise RuntimeError("bench: recording the run in the results store failed")
        for fmt in FORMATS:
            save(render(report, fmt), Path(tmp) / f"report.{EXTENSIONS[fmt]}")


def _ansible_bin() -> str | None:
    beside = Path(sys.executable).parent / "ansible"
    return str(beside) if beside.is_file() else shutil.which("ansible")


# Reference rows: Ansible doing nothing on the same fleet. ansible-core is GPL: it is only
# ever run as a program (a dev-extra tool), never imported.
_ANSIBLE_ROWS = (
    ("ansible raw", ["-m", "raw", "-a", "python3 -c pass"]),
    ("ansible command", ["-m", "command", "-a", "true"]),
)


def _ansible_rows(fleet: LoopbackFleet, forks: int) -> tuple[list[Phase], str]:
    import resource
    import subprocess
    import tempfile

    ansible = _ansible_bin()
    if ansible is None:
        return [], "ansible not installed (pip install -e '.[dev]'): no reference rows"
    rows: list[Phase] = []
    with tempfile.TemporaryDirectory(dir=fleet.root) as empty:  # no ansible.cfg around
        env = {
            **os.environ,
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            # The same verified host keys as readiness. Ansible at its fastest for one
            # command: pipelining (the module goes over stdin, one connection per host), no
            # ControlMaster processes left behind (one command per host gains nothing).
            "ANSIBLE_SSH_ARGS": f"-o ControlMaster=no -o UserKnownHostsFile={fleet.known_hosts}"
            " -o StrictHostKeyChecking=yes",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",  # no discovery round trip
            "ANSIBLE_LOCAL_TEMP": str(Path(empty) / "tmp"),
            "ANSIBLE_REMOTE_TEMP": str(fleet.root / "ansible-remote"),  # loopback hosts
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
        }
        for name, args in _ANSIBLE_ROWS:
            argv = [ansible, "fleet", "-i", str(fleet.inventory), "-f", str(forks), "-o", *args]
            children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            done: list[subprocess.CompletedProcess[str]] = []

            def run(argv: list[str] = argv, done: list[Any] = done) -> None:
                done.append(
                    subprocess.run(
                        argv,
                        cwd=empty,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        capture_output=True,
                        text=True,
                        timeout=600,
                        check=False,
                    )
                )

            phase = _measure(name, fleet, lambda run=run: run())  # type: ignore[misc]
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            phase.cpu_s = (children.ru_utime + children.ru_stime) - (
                children0.ru_utime + children0.ru_stime
            )
            phase.peak_rss_mb = 0.0  # another process: see cpu (its children are counted)
            ok = sum(
                1
                for line in done[0].stdout.splitlines()
                if "| SUCCESS" in line or "| CHANGED" in line
            )
            if ok != len(fleet.hosts):
                return (
                    rows,
                    f"{name}: only {ok}/{len(fleet.hosts)} hosts succeeded: {done[0].stdout[-300:]}{done[0].stderr[-300:]}",
                )
            rows.append(phase)
    return rows, ""


def format_result(res: BenchResult) -> str:
    """A plain-text table of every phase plus the verdict lines."""
    lines = [
        f"hosts={res.hosts} forks={res.forks} fleet start {res.startup_s:.1f}s; "
        f"load average {res.load[0][0]:.2f} before, {res.load[1][0]:.2f} after "
        f"({os.cpu_count()} cores)",
        f"{'phase':<16} {'wall s':>7} {'ratio':>6} {'ctl cpu s':>9} {'ctl ms/host':>11} "
        f"{'host ms/host':>12} {'peak MB':>7} {'conn/host':>9} {'cmd/host':>8}",
    ]
    floor_s = res.floor_s
    phases = [*res.floor]
    for app_phases in res.apps.values():
        phases += app_phases
    for p in [*phases, *res.extra, *res.reference]:
        conn = p.per_host(p.connections) if p.connections else p.per_host(p.logins)
        lines.append(
            f"{p.name:<16} {p.wall_s:>7.2f} {p.wall_s / max(1e-9, floor_s):>6.2f} {p.cpu_s:>9.2f} "
            f"{p.cpu_ms_per_host:>11.1f} {p.host_cpu_ms_per_host:>12.1f} "
            f"{p.peak_rss_mb:>7.0f} {conn:>9} {p.per_host(p.commands):>8}"
        )
    lines.append(f"host statuses (last round): {res.statuses}")
    unreaped = [p.name for p in phases if not p.sessions_reaped]
    if unreaped:
        lines.append(
            f"host CPU undercounted in {', '.join(unreaped)}: sessions still alive 10 s after"
        )
    if res.problems:
        lines.append(f"hosts not audited: {len(res.problems)}")
        lines += [f"  {p}" for p in res.problems[:10]]
    if res.reference_note:
        lines.append(f"reference: {res.reference_note}")
    for app in res.apps:
        lines.append(f"suite:{app}/floor wall ratio (best of each): {res.ratio_of(app):.2f}")
    rt = res.round_trips
    if rt is not None:
        lines.append(
            f"round trips per host with {rt.delay_s * 1000:g} ms added each way "
            f"({rt.hosts} hosts, one at a time): floor {rt.floor:.1f}, "
            f"suite:{_headline(res)} {rt.suite:.1f} (+{rt.suite - rt.floor:.1f}); per host "
            f"floor {rt.floor_s * 1000:.0f} -> {rt.floor_delayed_s * 1000:.0f} ms, suite "
            f"{rt.suite_s * 1000:.0f} -> {rt.suite_delayed_s * 1000:.0f} ms"
        )
    for ref in res.reference:
        lines.append(
            f"{ref.name} / suite:{_headline(res)} wall: {ref.wall_s / max(1e-9, min(p.wall_s for p in res.suite)):.1f}x"
        )
    return "\n".join(lines)


def _headline(res: BenchResult) -> str:
    return "example" if "example" in res.apps else next(iter(res.apps), "minimal")


# --- round trips: a delay proxy in front of each host ----------------------------------------


class DelayProxy:
    """A loopback TCP proxy that holds every byte ``delay_s`` in each direction (so one
    round trip costs ``2 * delay_s`` more), one listener per host on that host's own
    loopback address. Bounded: at most ``max_connections`` at once, 64 KiB reads, and
    :meth:`close` ends every thread's sockets. Loopback only: it refuses any other address.
    """

    def __init__(
        self, targets: Sequence[tuple[str, int]], *, delay_s: float, max_connections: int = 64
    ) -> None:
        import socket
        import threading

        self.delay_s, self.max_connections = delay_s, max_connections
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._active = 0
        self.listeners: list[tuple[str, int]] = []
        for address, port in targets:
            if not address.startswith("127."):
                raise ValueError(f"delay proxy: {address} is not a loopback address")
            listener = socket.socket()
            listener.bind((address, 0))
            listener.listen(16)
            self._sockets.append(listener)
            self.listeners.append((address, int(listener.getsockname()[1])))
            threading.Thread(
                target=self._accept, args=(listener, (address, port)), daemon=True
            ).start()

    def _accept(self, listener: Any, target: tuple[str, int]) -> None:
        import socket
        import threading

        while not self._closed.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                if self._active >= self.max_connections or self._closed.is_set():
                    client.close()
                    continue
                self._active += 1
            try:
                upstream = socket.create_connection(target, timeout=10)
            except OSError:
                client.close()
                with self._lock:
                    self._active -= 1
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            done = threading.Event()
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst, done), daemon=True).start()

    def _pipe(self, src: Any, dst: Any, done: Any) -> None:
        """Read ``src``; each chunk is sent to ``dst`` ``delay_s`` after it arrived, in order."""
        import queue
        import threading

        due: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

        def sender() -> None:
            while True:
                at, chunk = due.get()
                if not chunk:
                    break
                wait = at - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                try:
                    dst.sendall(chunk)
                except OSError:
                    break
            with contextlib.suppress(OSError):
                dst.shutdown(1)  # SHUT_WR: the other side sees the end, delayed too

        writer = threading.Thread(target=sender, daemon=True)
        writer.start()
        while True:
            try:
                chunk = src.recv(65536)
            except OSError:
                chunk = b""
            due.put((time.monotonic() + self.delay_s, chunk))
            if not chunk:
                break
        writer.join(timeout=self.delay_s + 5)
        if done.is_set():  # both directions ended: release the connection
            with self._lock:
                self._active -= 1
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.close()
        done.set()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()


@dataclass
class RoundTrips:
    """Per-host wall time with and without the delay, hosts one at a time: the extra time
    divided by one round trip (``2 * delay``) is how many round trips a host costs."""

    delay_s: float
    hosts: int
    floor_s: float  # per host, no delay
    floor_delayed_s: float
    suite_s: float
    suite_delayed_s: float

    @property
    def floor(self) -> float:
        return (self.floor_delayed_s - self.floor_s) / (2 * self.delay_s)

    @property
    def suite(self) -> float:
        return (self.suite_delayed_s - self.suite_s) / (2 * self.delay_s)


def measure_round_trips(
    fleet: LoopbackFleet, inventory: Path, *, delay_s: float = 0.025, hosts: int = 4
) -> RoundTrips:
    """Floor and suite on ``hosts`` hosts, one at a time (forks 1), straight and through a
    :class:`DelayProxy` adding ``delay_s`` each way; best of two passes each."""
    from .api import validate

    chosen = fleet.hosts[: max(1, min(hosts, len(fleet.hosts)))]
    proxy = DelayProxy([(h.address, h.port) for h in chosen], delay_s=delay_s)
    try:
        known = fleet.root / "known_hosts.delayed"
        known.write_text(
            "".join(
                f"[{addr}]:{port} {h.host_key_line}\n"
                for h, (addr, port) in zip(chosen, proxy.listeners, strict=True)
            )
        )
        ports = {h.name: port for h, (_addr, port) in zip(chosen, proxy.listeners, strict=True)}
        delayed = fleet.write_inventory(
            fleet.root / "inventory-delayed.yml",
            host_vars=lambda h: {"ansible_port": ports.get(h.name, h.port)},
        )
        names = [h.name for h in chosen]

        def per_host(inv: Path, known_hosts: Path, what: str) -> float:
            options = RunOptions(
                forks=1,
                known_hosts=str(known_hosts),
                ssh_config="",
                connect_timeout=10.0,
                command_timeout=60.0,
                progress=False,
                quiet=True,
            )
            hosts_ = [h for h in load_inventory(inv).select("fleet") if h.name in names]
            best = float("inf")
            for _ in range(2):
                t0 = time.perf_counter()
                if what == "floor":
                    _floor(hosts_, options)
                else:
                    validate(hosts_, None, options=options, connector=SshConnector(options))
                best = min(best, time.perf_counter() - t0)
            return best / len(hosts_)

        return RoundTrips(
            delay_s,
            len(chosen),
            per_host(fleet.inventory, fleet.known_hosts, "floor"),
            per_host(delayed, known, "floor"),
            per_host(inventory, fleet.known_hosts, "suite"),
            per_host(_delayed_app_inventory(fleet, inventory, ports), known, "suite"),
        )
    finally:
        proxy.close()


def _delayed_app_inventory(fleet: LoopbackFleet, inventory: Path, ports: dict[str, int]) -> Path:
    data = yaml.safe_load(inventory.read_text())
    for name, entry in data["all"]["children"]["fleet"]["hosts"].items():
        entry["ansible_port"] = ports.get(name, entry["ansible_port"])
    target = inventory.with_name(inventory.stem + "-delayed.yml")
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


# --- hostile fleet ---------------------------------------------------------------------------


@dataclass
class HostileResult:
    """A run over a fleet with refused, silent and hanging hosts: is every row right?"""

    hosts: int
    forks: int
    command_timeout: float
    startup_s: float
    wall_s: float
    cpu_s: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    rows: int
    statuses: dict[str, int]
    misclassified: list[str]
    logins: dict[str, int]  # sshd's own "Accepted publickey" count per sshd host
    leftovers: dict[str, list[int]]
    kinds: dict[str, int]

    @property
    def one_connection_each(self) -> bool:
        return all(n == 1 for n in self.logins.values())


# What each kind of host must be reported as: status and a piece of the reason.
_EXPECTED = {
    "refused": ("unreachable", "connection refused"),
    "stalling": ("unreachable", "no SSH banner"),
    "hanging": ("error", "timed out"),
}


def _kinds(n: int, refused: int, stalling: int, hanging: int) -> list[str]:
    """Hostile hosts spread evenly through the inventory (not all at its end)."""
    kinds = ["healthy"] * n
    spread = sorted(
        ((k + 0.5) / count, kind)
        for kind, count in (("refused", refused), ("stalling", stalling), ("hanging", hanging))
        for k in range(count)
    )
    step = n / max(1, len(spread))
    for j, (_where, kind) in enumerate(spread):
        kinds[int(j * step)] = kind
    return kinds


def run_hostile_bench(
    n: int = 500,
    *,
    refused: int = 25,
    stalling: int = 13,
    hanging: int = 12,
    forks: int = 32,
    command_timeout: float = 30.0,
    checks: Sequence[str] | None = None,
) -> HostileResult:
    """``n`` hosts: ``refused`` closed ports, ``stalling`` that accept TCP and never send a
    banner, ``hanging`` whose python3 hangs before Python runs; the rest healthy sshd hosts.

    One validate run over all of them; then every row's classification, sshd's own login
    counts and a process census on the sshd hosts (0 left within 5 s) are checked.
    """
    import socket

    from .loopback import hang_python

    if not 1 <= n <= MAX_HOSTS or refused + stalling + hanging > n:
        raise ValueError(f"--hosts must be 1..{MAX_HOSTS} and hold every hostile host")
    kinds = _kinds(n, refused, stalling, hanging)
    ssh_kinds = [k for k in kinds if k in ("healthy", "hanging")]
    t0 = time.perf_counter()

    def setup(index: int, host: Any) -> None:
        if ssh_kinds[index] == "hanging":
            hang_python(host)

    fleet = start_fleet(len(ssh_kinds), app_writer=write_bench_app, host_setup=setup)
    listeners: list[socket.socket] = []
    try:
        startup = time.perf_counter() - t0
        ssh_hosts = iter(fleet.hosts)
        entries: dict[str, dict[str, Any]] = {}
        kind_of: dict[str, str] = {}
        for i, kind in enumerate(kinds):
            name = f"x{i:04d}"
            if kind in ("healthy", "hanging"):
                h = next(ssh_hosts)
                addr, port, root = h.address, h.port, str(h.app_root)
            else:
                addr = f"127.1.{i // 250}.{2 + i % 250}"
                sock = socket.socket()
                sock.bind((addr, 0))
                port = int(sock.getsockname()[1])
                if kind == "stalling":
                    sock.listen(8)  # the kernel accepts; nobody ever speaks SSH
                    listeners.append(sock)
                else:
                    sock.close()  # nothing listens there: refused
                root = "/nonexistent"
            kind_of[name] = kind
            entries[name] = {
                "ansible_host": addr,
                "ansible_port": port,
                "ansible_user": fleet.user,
                "ansible_ssh_private_key_file": str(fleet.client_key),
                "readiness": {"app_root": root},
            }
        inventory = fleet.root / "hostile.yml"
        inventory.write_text(
            yaml.safe_dump({"all": {"children": {"fleet": {"hosts": entries}}}}, sort_keys=False)
        )
        return _hostile_round(
            fleet,
            inventory,
            kind_of,
            forks=forks,
            command_timeout=command_timeout,
            checks=checks,
            startup=startup,
            load_before=os.getloadavg(),
        )
    finally:
        for sock in listeners:
            sock.close()
        for pids in fleet.leftovers().values():  # counted already; never leave them running
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, 9)
        fleet.stop()


def _hostile_round(
    fleet: LoopbackFleet,
    inventory: Path,
    kind_of: dict[str, str],
    *,
    forks: int,
    command_timeout: float,
    checks: Sequence[str] | None,
    startup: float,
    load_before: tuple[float, float, float],
) -> HostileResult:
    from .api import validate

    options = RunOptions(
        forks=forks,
        known_hosts=str(fleet.known_hosts),
        ssh_config="",
        command_timeout=command_timeout,
        progress=False,
        quiet=True,
    )
    hosts = load_inventory(inventory).select("fleet")
    w0, c0 = time.perf_counter(), time.process_time()
    report = validate(hosts, list(checks) if checks else None, options=options)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    deadline = time.monotonic() + 5
    leftovers = fleet.leftovers()
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.1)
        leftovers = fleet.leftovers()
    statuses: dict[str, int] = {}
    wrong: list[str] = []
    for h in report.hosts:
        statuses[h.status.value] = statuses.get(h.status.value, 0) + 1
        kind = kind_of[h.host]
        message = h.reason or (h.results[0].message if h.results else "")
        if kind in _EXPECTED:
            status, words = _EXPECTED[kind]
            if h.status.value != status or words not in message:
                wrong.append(f"{h.host} ({kind}): {h.status.value}: {message}")
        elif h.status.value in ("unreachable", "error", "interrupted"):
            wrong.append(f"{h.host} (healthy): {h.status.value}: {message}")
    kinds: dict[str, int] = {}
    for kind in kind_of.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    return HostileResult(
        hosts=len(kind_of),
        forks=forks,
        command_timeout=command_timeout,
        startup_s=startup,
        wall_s=wall,
        cpu_s=cpu,
        load_before=load_before,
        load_after=os.getloadavg(),
        rows=len(report.hosts),
        statuses=statuses,
        misclassified=wrong,
        logins={h.name: h.accepted_logins() for h in fleet.hosts},
        leftovers=leftovers,
        kinds=kinds,
    )


def format_hostile(res: HostileResult) -> str:
    logins = list(res.logins.values())
    lines = [
        f"hosts={res.hosts} {res.kinds} forks={res.forks} "
        f"--command-timeout {res.command_timeout:g}; fleet start {res.startup_s:.1f}s",
        f"load average before {res.load_before[0]:.2f}, after {res.load_after[0]:.2f} "
        f"({os.cpu_count()} cores)",
        f"wall {res.wall_s:.1f}s, controller CPU {res.cpu_s:.1f}s",
        f"rows {res.rows}; statuses {res.statuses}; misclassified {len(res.misclassified)}",
        f"sshd logins per host: min {min(logins, default=0)} max {max(logins, default=0)} "
        f"(one connection each: {res.one_connection_each})",
        f"remote leftovers 5 s after the run: {sum(len(p) for p in res.leftovers.values())}",
    ]
    lines += [f"  {w}" for w in res.misclassified[:10]]
    return "\n".join(lines)
