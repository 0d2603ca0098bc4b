"""The SSH algorithms a connection negotiates (readiness.ssh.CIPHER_PREFERENCE).

paramiko's own set of ciphers is offered, in another order: AES-GCM first. Checked from
both ends: the client's transport, and each sshd's own log (LogLevel DEBUG1 prints the
kex result) — for the audit's connections and for the bench floor's alike.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import paramiko
import pytest

from readiness.bench import _floor
from readiness.inventory import load_inventory
from readiness.loopback import LoopbackFleet, LoopbackHost, start_fleet
from readiness.ssh import CIPHER_PREFERENCE, _preferred

from .services.sshd import fleet_options, fleet_transport

pytestmark = pytest.mark.ssh


@pytest.fixture(scope="module")
def fleet() -> Iterator[LoopbackFleet]:
    with start_fleet(2, sshd_options=["LogLevel DEBUG1"]) as started:
        yield started


@pytest.fixture(scope="module")
def ctr_only() -> Iterator[LoopbackFleet]:
    """A server that allows only AES-CTR (as a hardened or old sshd might)."""
    with start_fleet(1, sshd_options=["LogLevel DEBUG1", "Ciphers aes256-ctr"]) as started:
        yield started


def _kex_ciphers(host: LoopbackHost, count: int) -> list[str]:
    """The client->server ciphers sshd logged for its connections (waits for ``count``:
    sshd's monitor writes its children's log lines a moment later)."""
    deadline = time.monotonic() + 5
    while True:
        text = host.log.read_text(errors="replace")
        found = re.findall(r"kex: client->server cipher: (\S+) MAC: (\S+)", text)
        if len(found) >= count or time.monotonic() > deadline:
            return [f"{cipher} {mac}" for cipher, mac in found]
        time.sleep(0.05)


def test_connections_negotiate_aes_gcm_seen_from_both_ends(fleet: LoopbackFleet) -> None:
    before = len(_kex_ciphers(fleet.hosts[0], 0))
    with fleet_transport(fleet) as ssh:
        transport = ssh.conn.transport
        assert transport is not None
        assert transport.local_cipher == transport.remote_cipher == "aes128-gcm@openssh.com"
        res = ssh.run(["true"], timeout=10)
        assert res.exit_code == 0
    logged = _kex_ciphers(fleet.hosts[0], before + 1)
    assert logged[before:] == ["aes128-gcm@openssh.com <implicit>"]


def test_the_bench_floor_negotiates_what_the_audit_does(fleet: LoopbackFleet) -> None:
    """The floor goes through the same connector: its ratio is not flattered by cheaper
    (or dearer) transport settings."""
    before = [len(_kex_ciphers(h, 0)) for h in fleet.hosts]
    hosts = load_inventory(fleet.inventory).select("fleet")
    _floor(hosts, fleet_options(fleet))
    for host, n in zip(fleet.hosts, before, strict=True):
        assert _kex_ciphers(host, n + 1)[n:] == ["aes128-gcm@openssh.com <implicit>"]


def test_a_server_without_aes_gcm_still_gets_a_cipher_paramiko_offers(
    ctr_only: LoopbackFleet,
) -> None:
    with fleet_transport(ctr_only) as ssh:
        transport = ssh.conn.transport
        assert transport is not None
        assert transport.local_cipher == transport.remote_cipher == "aes256-ctr"
        assert transport.local_mac == "hmac-sha2-256"  # paramiko's own first choice
        assert ssh.run(["true"], timeout=10).exit_code == 0
    assert _kex_ciphers(ctr_only.hosts[0], 1)[-1] == "aes256-ctr hmac-sha2-256"


def test_the_preference_only_reorders_what_paramiko_offers() -> None:
    offered = paramiko.Transport._preferred_ciphers
    ordered = _preferred(offered, CIPHER_PREFERENCE)
    assert sorted(ordered) == sorted(offered)  # nothing added, nothing lost
    assert ordered[: len(CIPHER_PREFERENCE)] == CIPHER_PREFERENCE
    rest = [c for c in offered if c not in CIPHER_PREFERENCE]
    assert list(ordered[len(CIPHER_PREFERENCE) :]) == rest  # paramiko's order otherwise
    # a preferred cipher paramiko does not offer (disabled, or absent) is never added
    assert _preferred(("aes128-ctr",), CIPHER_PREFERENCE) == ("aes128-ctr",)
