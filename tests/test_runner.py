"""Fleet runner logic: inventory order, bounded forks, deadlines, broken checks, probe failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from readiness.api import host_profile
from readiness.errors import TransportError
from readiness.model import Outcome, Status
from readiness.registry import CheckSpec, resolve_names
from readiness.runner import RunOptions, run_fleet
from readiness.transport import CommandResult, LocalTransport, Transport
from tests.services.apps import LocalTestHost, write_app


def _hosts(tmp_path: Path, n: int) -> list[LocalTestHost]:
    root = write_app(tmp_path / "app")
    return [
        LocalTestHost(name=f"h{i}", vars={"readiness": {"app_root": str(root)}}) for i in range(n)
    ]


def _profiles(hosts: Sequence[LocalTestHost]) -> dict[str, object]:
    return {h.name: host_profile(h, []) for h in hosts}


class HangingTransport:
    """Blocks every command until closed, like a host that hangs after the handshake."""

    is_local = False

    def __init__(self) -> None:
        self.closed = threading.Event()

    def run(
        self, argv: Sequence[str], *, stdin: bytes = b"", timeout: float, max_output: int = 0
    ) -> CommandResult:
        self.closed.wait(30)
        raise TransportError("connection closed")

    def close(self) -> None:
        self.closed.set()


class Connector:
    def __init__(self, slow: set[str] | None = None, refuse: set[str] | None = None) -> None:
        self.slow, self.refuse = slow or set(), refuse or set()
        self.active = self.peak = 0
        self.lock = threading.Lock()

    def open(self, host: LocalTestHost) -> Transport:
        if host.name in self.refuse:
            raise TransportError("connection refused")
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.05)
        with self.lock:
            self.active -= 1
        return HangingTransport() if host.name in self.slow else LocalTransport()

    def close(self) -> None:
        return None


def test_results_come_back_in_inventory_order_with_bounded_forks(tmp_path: Path) -> None:
    hosts = _hosts(tmp_path, 6)
    conn = Connector()
    report = run_fleet(
        hosts,
        resolve_names(["environment"]),
        _profiles(hosts),
        options=RunOptions(forks=2),
        connector=conn,
    )  # type: ignore[arg-type]
    assert [h.host for h in report.hosts] == [f"h{i}" for i in range(6)]
    assert conn.peak <= 2
    assert all(h.status is Status.READY for h in report.hosts)


def test_a_hanging_host_is_unreachable_at_its_deadline_and_others_finish(tmp_path: Path) -> None:
    hosts = _hosts(tmp_path, 3)
    started = time.monotonic()
    report = run_fleet(
        hosts,
        resolve_names(["environment"]),
        _profiles(hosts),  # type: ignore[arg-type]
        options=RunOptions(host_deadline=1.0),
        connector=Connector(slow={"h1"}),
    )
    assert time.monotonic() - started < 5
    assert report.hosts[1].status is Status.UNREACHABLE
    assert "deadline of 1s exceeded" in report.hosts[1].reason
    assert report.hosts[0].status is Status.READY and report.hosts[2].status is Status.READY


def test_a_refused_host_is_unreachable_with_its_reason(tmp_path: Path) -> None:
    hosts = _hosts(tmp_path, 2)
    report = run_fleet(
        hosts, resolve_names(["environment"]), _profiles(hosts), connector=Connector(refuse={"h0"})
    )  # type: ignore[arg-type]
    assert report.hosts[0].status is Status.UNREACHABLE
    assert report.hosts[0].results[0].message == "connection refused"
    assert report.exit_code() == 1


def test_a_check_that_raises_becomes_error_without_stopping_the_others(tmp_path: Path) -> None:
    def boom(ctx: object) -> Outcome:
        raise RuntimeError("kaput")

    broken = CheckSpec(
        name="broken", evaluate=boom, title="b", description="d", categories=("operations",)
    )
    hosts = _hosts(tmp_path, 1)
    report = run_fleet(hosts, [*resolve_names(["environment"]), broken], _profiles(hosts))  # type: ignore[arg-type]
    statuses = {r.check_name: r.status for r in report.results}
    assert statuses == {"environment": Status.READY, "broken": Status.ERROR}
    assert "RuntimeError: kaput" in report.hosts[0].result("broken").message  # type: ignore[union-attr]


class HugeOutput(LocalTransport):
    is_local = False

    def run(
        self, argv: Sequence[str], *, stdin: bytes = b"", timeout: float, max_output: int = 0
    ) -> CommandResult:
        return super().run(
            ["head", "-c", "50000000", "/dev/zero"], timeout=timeout, max_output=max_output
        )


def test_output_over_the_cap_is_a_per_host_error(tmp_path: Path) -> None:
    class C(Connector):
        def open(self, host: LocalTestHost) -> Transport:
            return HugeOutput()

    hosts = _hosts(tmp_path, 1)
    report = run_fleet(
        hosts,
        resolve_names(["environment"]),
        _profiles(hosts),
        options=RunOptions(max_output=1 << 20),
        connector=C(),
    )  # type: ignore[arg-type]
    assert report.hosts[0].status is Status.ERROR
    assert "output exceeded limit" in report.hosts[0].reason


# --- run_hosts: the one fleet loop, for any per-host work -----------------------------------


class _Plain:
    """A host for the generic loop: only a name (the fake connector ignores the rest)."""

    def __init__(self, name: str) -> None:
        self.name, self.address, self.port, self.user = name, "127.0.0.1", 22, None
        self.key_file, self.groups, self.local = None, (), True


class _Connector:
    """Opens a LocalTransport, after ``delay[name]`` seconds; raises Ctrl-C at ``stop_at``."""

    def __init__(self, delay: dict[str, float] | None = None, stop_at: str = "") -> None:
        self.delay, self.stop_at = delay or {}, stop_at

    def open(self, host: object) -> Transport:
        name = getattr(host, "name", "")
        if name == self.stop_at:
            raise KeyboardInterrupt
        time.sleep(self.delay.get(name, 0.0))
        return LocalTransport()

    def close(self) -> None:
        return None


def _failed(host: object, status: Status, reason: str, began: float) -> str:
    return f"{status.value}: {reason}"


def test_run_hosts_keeps_inventory_order_and_applies_the_deadline_to_any_work() -> None:
    from readiness.runner import run_hosts

    hosts = [_Plain(n) for n in ("a", "slow", "b")]
    t0 = time.monotonic()
    loop = run_hosts(
        hosts,
        lambda host, transport: f"done {host.name}",
        _failed,
        status_of=lambda r: Status.READY if r.startswith("done") else Status.UNREACHABLE,
        options=RunOptions(forks=3, host_deadline=0.5, progress=False),
        connector=_Connector({"slow": 30.0}),
    )
    assert time.monotonic() - t0 < 5  # the loop does not wait for the stuck worker
    assert loop.results == ("done a", "unreachable: host deadline of 0.5s exceeded", "done b")
    assert loop.interrupted_by == ""


def test_run_hosts_ctrl_c_keeps_finished_hosts_and_marks_the_rest_interrupted() -> None:
    from readiness.runner import run_hosts

    hosts = [_Plain(n) for n in ("a", "b", "c")]
    loop = run_hosts(
        hosts,
        lambda host, transport: f"done {host.name}",
        _failed,
        status_of=lambda r: Status.READY,
        options=RunOptions(forks=1, progress=False),
        connector=_Connector(stop_at="b"),
    )
    assert loop.interrupted_by == "SIGINT"
    assert loop.results[0] == "done a"
    assert loop.results[1:] == ("interrupted: not audited: run interrupted (SIGINT)",) * 2


class _CountingResults(list[str | None]):
    """The loop's result slots, counting every slot the loop reads."""

    reads = 0

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        _CountingResults.reads += 1
        return super().__getitem__(i)

    def __iter__(self):  # type: ignore[no-untyped-def]
        for item in super().__iter__():
            _CountingResults.reads += 1
            yield item


def test_run_hosts_bookkeeping_per_host_does_not_grow_with_the_fleet(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # After every finished host the loop asks "all done?" and looks for hosts past their
    # deadline: both must look at the hosts in flight, not rescan the whole fleet (that
    # made the controller's CPU per host grow with N). Counted, not timed.
    from readiness import runner

    original_init = runner._Loop.__init__

    def counting_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original_init(self, *args, **kwargs)
        self.results = _CountingResults(self.results)

    monkeypatch.setattr(runner._Loop, "__init__", counting_init)
    reads_per_host = {}
    for n in (40, 400):
        _CountingResults.reads = 0
        loop = runner.run_hosts(
            [_Plain(f"h{i}") for i in range(n)],
            lambda host, transport: f"done {host.name}",
            _failed,
            status_of=lambda r: Status.READY,
            options=RunOptions(forks=2, progress=False),
            connector=_Connector(),
        )
        assert loop.results == tuple(f"done h{i}" for i in range(n))
        reads_per_host[n] = _CountingResults.reads / n
    assert reads_per_host[400] <= 6, reads_per_host
    assert reads_per_host[400] <= reads_per_host[40] + 1, reads_per_host


def test_a_host_deadline_is_enforced_while_other_hosts_finish_in_a_steady_stream() -> None:
    """Before: the loop looked at deadlines only after 50 ms without any host finishing, so
    a big fleet finishing hosts faster than that (a result every few ms) never let it: a
    hung host went on past its deadline until the stream thinned out."""
    from readiness.runner import run_hosts

    hosts = [_Plain("stuck"), *(_Plain(f"h{n}") for n in range(6000))]
    closed: list[float] = []
    stream_end: list[float] = []

    def work(host: _Plain, transport: Transport) -> str:
        if host.name != "stuck":
            time.sleep(0.002)
            stream_end[:] = [time.monotonic()]
            return f"done {host.name}"
        while not getattr(transport, "_closed", False):  # until the deadline hangs it up
            time.sleep(0.005)
        closed.append(time.monotonic())
        return "too late"

    t0 = time.monotonic()
    loop = run_hosts(
        hosts,
        work,
        _failed,
        status_of=lambda r: Status.READY if r.startswith("done") else Status.UNREACHABLE,
        options=RunOptions(forks=8, host_deadline=0.3, progress=False),
        connector=_Connector(),
    )
    assert loop.results[0] == "unreachable: host deadline of 0.3s exceeded"
    waited = time.monotonic() + 5
    while not closed and time.monotonic() < waited:  # the stuck worker sees the hang-up
        time.sleep(0.01)
    assert stream_end[0] - t0 > 1.5, "the other hosts finished too soon to tell"
    # enforced on time (the loop's own 50 ms tick, and a loaded machine), not at the end
    assert closed and closed[0] < stream_end[0] - 0.5, (closed, stream_end[0] - t0)
