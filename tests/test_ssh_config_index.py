"""ssh_config lookups through readiness.ssh.SshConfigIndex answer exactly as
``SshConfig.lookup`` on the whole file (differential), for names named by literal
blocks, by wildcards, by negations, by ``Match`` blocks, and by none. (That the whole
file is read as ssh reads it is tests/test_ssh_config_openssh.py's part.)"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from readiness.runner import RunOptions
from readiness.ssh import SshConfigIndex, SshConnector
from readiness.ssh_config import SshConfig

CONFIG = """\
User everyone
IdentityFile ~/.ssh/global_key

Host web1 web2 web1
  HostName 10.0.0.1
  IdentityFile ~/.ssh/web_key

Host web2
  Port 2202
  User second-block

Host *.example !bad.example
  User wildcard
  IdentityFile ~/.ssh/example_key

Host db? app[12]
  ProxyJump jump.example

Match host cache*
  Port 2299

Host bad.example good.example
  HostName %h.internal
  Port 2201

Host *
  ServerAliveInterval 30
"""

NAMES = [
    "web1",
    "web2",
    "web3",
    "good.example",
    "bad.example",
    "other.example",
    "db1",
    "db12",
    "app1",
    "cache7",
    "127.0.0.9",
    "[::1]",
    "nothing",
]


class _Whole:
    """The whole file looked up, as the index's reference."""

    def __init__(self, text: str) -> None:
        self.config = SshConfig.from_text(text)

    def lookup(self, name: str) -> dict[str, object]:
        return self.config.lookup(name, local_user="me", home="/home/me", run=None)


def _both(text: str) -> tuple[_Whole, SshConfigIndex]:
    index = SshConfigIndex(SshConfig.from_text(text), local_user="me", home="/home/me", run=None)
    return _Whole(text), index


def test_every_lookup_answers_as_the_whole_file_on_the_whole_file() -> None:
    whole, index = _both(CONFIG)
    for name in NAMES:
        assert dict(index.lookup(name)) == dict(whole.lookup(name)), name
    # what the differential covers: literal blocks merged in file order, the wildcard with
    # a negation, a Match block, identity files accumulated across blocks
    web2 = index.lookup("web2")
    assert (web2["hostname"], web2["port"], web2["user"]) == ("10.0.0.1", "2202", "everyone")
    assert "example_key" not in str(index.lookup("bad.example")["identityfile"])
    assert "example_key" in str(index.lookup("good.example")["identityfile"])
    assert index.lookup("good.example")["hostname"] == "good.example.internal"
    assert index.lookup("cache7")["port"] == "2299"
    assert len(index.lookup("web1")["identityfile"]) == 2


def test_a_generated_config_with_a_block_per_host_answers_as_the_whole_file() -> None:
    text = (
        "".join(
            f"Host web{i}.example w{i}\n  HostName 127.0.{i // 250}.{i % 250 + 1}\n"
            f"  User u{i % 7}\n  Port {2200 + i % 10}\n"
            for i in range(300)
        )
        + "Host w1*\n  IdentityFile ~/.ssh/w1_key\nHost *\n  IdentityFile ~/.ssh/id_ed25519\n"
    )
    whole, index = _both(text)
    for i in [*range(0, 300, 7), 299]:
        for name in (f"web{i}.example", f"w{i}"):
            assert dict(index.lookup(name)) == dict(whole.lookup(name)), name
    assert dict(index.lookup("web300.example")) == dict(whole.lookup("web300.example"))


def test_a_config_that_canonicalizes_names_is_looked_up_whole() -> None:
    text = (
        "Host web1\n  CanonicalizeHostname yes\n  CanonicalDomains example.invalid\n"
        "  CanonicalizeFallbackLocal yes\n" + CONFIG
    )
    whole, index = _both(text)
    for name in NAMES:
        assert dict(index.lookup(name)) == dict(whole.lookup(name)), name


def test_the_connector_resolves_hosts_through_the_index(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(CONFIG)
    known = tmp_path / "known_hosts"
    known.write_text("")
    connector = SshConnector(RunOptions(known_hosts=str(known), ssh_config=str(config)))
    assert isinstance(connector._ssh_index, SshConfigIndex)

    class Host:
        name = address = "web2"
        port = 22
        user = None
        key_file = None
        groups = ()
        local = False
        vars: ClassVar[dict[str, object]] = {}

    target = connector.target(Host())
    assert (target.address, target.port, target.user) == ("10.0.0.1", 2202, "everyone")
