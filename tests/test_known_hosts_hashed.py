"""Hashed known_hosts names (``HashKnownHosts yes``, Debian's client default): each line's
salt and digest are decoded once per run, and a lookup is one HMAC per hashed line.
Answers are checked against paramiko's own ``HostKeys`` on the same file."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import paramiko
import pytest

from readiness.inventory import load_inventory
from readiness.loopback import LoopbackFleet, keypair
from readiness.ssh import KnownHosts, SshConnector, SshTransport
from readiness.transport import ConnectionSettings

from .services.sshd import fleet_options


def _public(tmp_path: Path, name: str) -> str:
    return keypair(tmp_path / name)


def _names(entry_keys: list[paramiko.PKey]) -> list[str]:
    return sorted(f"{k.get_name()} {k.get_base64()}" for k in entry_keys)


def test_hashed_lookups_answer_as_paramikos_own_host_keys(tmp_path: Path) -> None:
    a, b, c = (_public(tmp_path, n) for n in "abc")
    hosts = ["web1.example", "[127.0.0.5]:2222", "127.0.0.9", "db.example"]
    lines = [
        f"{paramiko.HostKeys.hash_host(hosts[0])} {a}",
        f"{paramiko.HostKeys.hash_host(hosts[0])} {b}",  # a second key, another salt
        f"{paramiko.HostKeys.hash_host(hosts[1])} {c}",
        f"{hosts[2]} {a}",  # a plain line among hashed ones
        f"{paramiko.HostKeys.hash_host('elsewhere.example')} {b}",
    ]
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    known = KnownHosts(path)
    theirs = paramiko.HostKeys(str(path))
    assert known.problems == []
    # what the lines say (ssh accepts any key listed for the host) ...
    expected = {hosts[0]: [a, b], hosts[1]: [c], hosts[2]: [a], hosts[3]: []}
    for name in hosts:
        assert _names(known.keys_for(name)) == sorted(expected[name]), name
        # ... and paramiko's own lookup (one key per type) finds one of the same keys
        found = theirs.lookup(name)
        if found is None:
            assert expected[name] == []
        else:
            assert set(_names([found[t] for t in found])) <= set(expected[name])


def test_a_bad_hashed_name_is_one_skipped_line_and_the_rest_is_kept(tmp_path: Path) -> None:
    a = _public(tmp_path, "a")
    path = tmp_path / "known_hosts"
    path.write_text(
        "|1|bm90IGJhc2U2NCBvZiAyMCBieXRlcw==|AAAA "  # a salt that is not 20 bytes
        + f"{a}\n"
        + f"{paramiko.HostKeys.hash_host('ok.example')} {a}\n"
    )
    known = KnownHosts(path)
    assert known.problems == [f"{path}:1: cannot be parsed (bad hashed host name)"]
    assert _names(known.keys_for("ok.example")) == [a]


def test_a_key_recorded_in_a_hashed_file_is_found_by_the_next_lookup(tmp_path: Path) -> None:
    a, b = _public(tmp_path, "a"), _public(tmp_path, "b")
    path = tmp_path / "known_hosts"
    path.write_text(f"{paramiko.HostKeys.hash_host('one.example')} {a}\n")
    known = KnownHosts(path)
    kind, data = b.split()[:2]
    key = paramiko.PKey.from_type_string(kind, base64.b64decode(data))
    known.record("[127.0.0.7]:2200", key)
    assert path.read_text().splitlines()[1].startswith("|1|")
    assert _names(known.keys_for("[127.0.0.7]:2200")) == [b]
    assert _names(KnownHosts(path).keys_for("[127.0.0.7]:2200")) == [b]


@pytest.mark.ssh
def test_a_fleet_verified_against_a_fully_hashed_known_hosts_connects(
    tmp_path: Path, ssh_fleet: LoopbackFleet
) -> None:
    hashed = tmp_path / "known_hosts"
    lines = []
    for line in ssh_fleet.known_hosts.read_text().splitlines():
        name, rest = line.split(" ", 1)
        lines.append(f"{paramiko.HostKeys.hash_host(name)} {rest}")
    hashed.write_text("\n".join(lines) + "\n")
    connector = SshConnector(fleet_options(ssh_fleet, known_hosts=str(hashed)))
    assert connector.known.hashed
    for host in load_inventory(ssh_fleet.inventory).select("all"):
        transport = connector.open(host)
        try:
            assert isinstance(transport, SshTransport)
            assert transport.run(["true"], timeout=15).exit_code == 0
        finally:
            transport.close()


def test_a_key_recorded_on_first_use_is_found_by_openssh_under_the_name_ssh_uses(
    tmp_path: Path,
) -> None:
    """ssh lower-cases the destination before it looks it up in known_hosts, and a hashed
    name is the HMAC of exactly that text: a key recorded for `Web1.Example.COM` as typed
    was one OpenSSH (and so Ansible) never found, and asked about again."""
    if shutil.which("ssh-keygen") is None:
        pytest.fail("OpenSSH's ssh-keygen is not installed: .ci/run installs openssh-client")
    path = tmp_path / "known_hosts"
    path.write_text(f"{paramiko.HostKeys.hash_host('other.example')} {_public(tmp_path, 'a')}\n")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[fleet]\nweb1 ansible_host=Web1.Example.COM ansible_port=2222\n")
    connector = SshConnector(ConnectionSettings(known_hosts=str(path), ssh_config=""))
    target = connector.target(load_inventory(str(inventory)).hosts["web1"])
    kind, data = _public(tmp_path, "b").split()[:2]
    connector.known.record(
        target.known_hosts_name, paramiko.PKey.from_type_string(kind, base64.b64decode(data))
    )
    found = subprocess.run(
        ["ssh-keygen", "-F", "[web1.example.com]:2222", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert found.returncode == 0, (path.read_text(), found.stdout, found.stderr)
    assert data in found.stdout
