"""The garbage collector during a fleet run (readiness/runner.py ``_FleetGc``): the heap
from before the run frozen, the young generation collected less often, everything as it
was when the run ends, however it ends."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from readiness import runner
from readiness.model import Status
from readiness.runner import FLEET_GC_THRESHOLD, RunOptions, run_hosts
from readiness.transport import LocalTransport
from tests.services.apps import LocalTestHost


def _failed(host: Any, status: Status, reason: str, began: float) -> str:
    return f"{status.value}: {reason}"


def _hosts(n: int) -> list[LocalTestHost]:
    return [LocalTestHost(name=f"h{i}") for i in range(n)]


@pytest.fixture(autouse=True)
def gc_state() -> Iterator[None]:
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.set_threshold(*threshold)
    gc.enable() if enabled else gc.disable()
    gc.unfreeze()


def run(work: Any, n: int = 3, forks: int = 2) -> Any:
    return run_hosts(
        _hosts(n),
        work,
        _failed,
        status_of=lambda r: Status.READY,
        options=RunOptions(forks=forks, progress=False),
    )


def test_during_a_run_the_old_heap_is_frozen_and_young_collections_are_rarer() -> None:
    before = gc.get_threshold()
    seen: list[tuple[tuple[int, int, int], int]] = []

    def work(host: Any, transport: LocalTransport) -> str:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return "ok"

    assert run(work).results == ("ok", "ok", "ok")
    for threshold, frozen in seen:
        assert threshold == tuple(
            max(a, b) for a, b in zip(FLEET_GC_THRESHOLD, before, strict=True)
        )
        assert frozen > 1000  # every module and class loaded before the run
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_left_by_hosts_are_collected() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    collected = threading.Event()

    def work(host: Any, transport: LocalTransport) -> str:
        cycle = Cycle()
        import weakref

        weakref.finalize(cycle, collected.set)
        del cycle
        return "ok"

    run(work, n=1, forks=1)
    gc.collect()
    assert collected.is_set()


def test_an_interrupted_run_restores_the_collector() -> None:
    before = gc.get_threshold()

    def work(host: Any, transport: LocalTransport) -> str:
        raise KeyboardInterrupt

    loop = run(work, n=2, forks=1)
    assert loop.interrupted_by
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_callers_own_settings_are_left_alone() -> None:
    gc.freeze()  # e.g. a pre-forking server froze its heap
    frozen = gc.get_freeze_count()
    run(lambda host, transport: "ok")
    assert gc.get_freeze_count() > frozen - 1000  # not unfrozen by the run (some died)
    gc.unfreeze()

    gc.disable()
    gc.set_threshold(123, 4, 5)
    run(lambda host, transport: (gc.get_threshold(), gc.get_freeze_count()))
    assert gc.get_threshold() == (123, 4, 5) and not gc.isenabled()


def test_concurrent_runs_restore_once_the_last_one_ends() -> None:
    before = gc.get_threshold()
    release = threading.Event()
    inside = threading.Event()

    def slow(host: Any, transport: LocalTransport) -> str:
        inside.set()
        release.wait(10)
        return "ok"

    other = threading.Thread(target=run, args=(slow, 1, 1))
    other.start()
    assert inside.wait(10)
    run(lambda host, transport: "ok")  # ends first
    assert gc.get_threshold() != before  # the other run is still going
    release.set()
    other.join(10)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_an_interrupt_during_set_up_restores_the_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = gc.get_threshold()
    real_set_threshold = gc.set_threshold
    calls: list[tuple[int, ...]] = []

    def interrupted_after_freezing(*threshold: int) -> None:
        calls.append(threshold)
        if len(calls) == 1:  # the run's own: the heap is frozen, then Ctrl-C lands
            raise KeyboardInterrupt
        real_set_threshold(*threshold)

    monkeypatch.setattr(gc, "set_threshold", interrupted_after_freezing)
    with pytest.raises(KeyboardInterrupt):
        run(lambda host, transport: "ok")
    monkeypatch.undo()
    assert runner._fleet_gc.runs == 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert run(lambda host, transport: gc.get_freeze_count()).results[0] > 1000  # works again
    assert gc.get_freeze_count() == 0


class _InterruptedOnce:
    """A lock whose first acquire after ``arm`` is interrupted (Ctrl-C while waiting)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.armed = False

    def acquire(self) -> bool:
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt
        return self.lock.acquire()

    def release(self) -> None:
        self.lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_an_interrupt_while_leaving_waits_restores_and_is_still_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = gc.get_threshold()
    lock = _InterruptedOnce()
    monkeypatch.setattr(runner._fleet_gc, "lock", lock)
    with pytest.raises(KeyboardInterrupt), runner._fleet_gc.during_run():
        assert gc.get_freeze_count() > 1000
        lock.armed = True  # the finally's wait for the lock is interrupted
    assert runner._fleet_gc.runs == 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
