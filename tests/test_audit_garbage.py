"""A host's audit leaves nothing for the garbage collector (docs/performance.md).

A refused tunnel (the bundled example's database, Prometheus and Grafana: nothing listens)
used to keep its error, with its traceback, on the attempt the error's own frames held: a
reference cycle that kept every frame of the host's audit (and its facts) alive until the
collector found it. Over real loopback sshd hosts.
"""

from __future__ import annotations

import gc
import types
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from readiness import validate
from readiness.bench import write_example_app
from readiness.errors import TunnelError
from readiness.inventory import load_inventory
from readiness.loopback import LoopbackFleet, start_fleet
from readiness.ssh import SshConnector, SshTransport

from .services.ports import closed_port
from .services.sshd import fleet_options, fleet_transport

pytestmark = [pytest.mark.ssh]


@pytest.fixture(scope="module")
def fleet() -> Iterator[LoopbackFleet]:
    with start_fleet(1, app_writer=write_example_app) as started:
        yield started


class _Marker:
    """Something only the caller's frame holds."""


def _refused_from(ssh: SshTransport, port: int) -> tuple[weakref.ref[_Marker], str, bool]:
    marker = _Marker()
    held = weakref.ref(marker)
    try:
        ssh.tunnel("127.0.0.1", port)
    except TunnelError as exc:
        return held, str(exc), exc.refused
    raise AssertionError("a closed port was reached")


@pytest.mark.parametrize("prefetched", [False, True])
def test_a_refused_tunnel_leaves_no_cycle_holding_its_callers_frame(
    fleet: LoopbackFleet, prefetched: bool
) -> None:
    port = closed_port()
    with fleet_transport(fleet) as ssh:
        if prefetched:
            ssh.prefetch([("127.0.0.1", port)])
        was_enabled = gc.isenabled()
        gc.disable()  # only reference counting may free the caller's frame
        try:
            held, text, refused = _refused_from(ssh, port)
            assert held() is None, "the error's traceback keeps the caller's frame alive"
        finally:
            if was_enabled:
                gc.enable()
        # the error reads as before
        assert refused is True
        assert text.startswith(
            f"connection refused: {ssh.target.name} could not connect to 127.0.0.1:{port}"
        )
        # and a later caller gets the same error again (asked again: not cached for ever)
        again_held, again, _ = _refused_from(ssh, port)
        assert again == text
        assert again_held() is None


def test_auditing_the_bundled_example_leaves_no_audit_frame_to_the_collector(
    fleet: LoopbackFleet, tmp_path: Path
) -> None:
    inventory = fleet.write_inventory(
        tmp_path / "inventory.yml",
        host_vars=lambda h: {"readiness": {"app_root": str(h.app_root)}},
    )
    hosts = load_inventory(inventory).select("fleet")
    options = fleet_options(fleet)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept in gc.garbage
    try:
        report = validate(hosts, options=options, connector=SshConnector(options))
        gc.collect()
        frames = sorted(
            o.f_code.co_name
            for o in gc.garbage
            if type(o) is types.FrameType  # (gc.garbage holds dead weak proxies too)
            and o.f_code.co_name in {"audit_host", "_evaluate", "tunnel", "_establish"}
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not [h.reason for h in report.hosts if h.reason]
    # the example's three refused tunnels were really tried (the case that made cycles)
    messages = repr([r.to_dict() for r in report.results])
    assert messages.count("connection refused") >= 3, messages
    assert frames == []
