"""ssh_config read as OpenSSH reads it: readiness's lookup against ``ssh -G`` (the real client
prints what it would use for a name, without connecting).

Covers ``Host`` patterns (wildcards, negation, several per line), first value wins,
``Match host``/``originalhost``, ``%h`` in HostName, several IdentityFile lines, and
``Include`` at the top, inside a ``Host`` block and inside a ``Match`` block (nested too): an
included file's blocks apply only where the enclosing block does, and the enclosing block goes
on after the ``Include`` line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import paramiko
import pytest

from readiness.ssh import SshConfigIndex, load_ssh_config_text

MAIN = """
Host web* !web3
  User webuser
  Port 2201
Host web3
  HostName %h.internal
Host db? db-*
  User dbu
  IdentityFile ~/.ssh/id_db
  IdentityFile ~/.ssh/id_db2
Match host api*
  Port 2300
Match originalhost gw
  HostName gateway.lan
Include top.conf
Host bastion jump
  Include in_host.conf
  User after_include
Match originalhost edge*
  Include in_match.conf
  IdentityFile ~/.ssh/id_edge
Host plain
  Include no_blocks.conf
  User plain_user
Host *
  User default
  Port 2222
  IdentityFile ~/.ssh/id_all
"""
FILES = {
    "top.conf": "Host top*\n  User topuser\n",
    "in_host.conf": "Port 2400\nHost inner jump\n  User inneruser\n  Include nested.conf\n",
    "nested.conf": "Host jump\n  HostName nested.lan\nHost deep bastion\n  Port 2500\n",
    "in_match.conf": "Host edge1\n  Port 2600\nHost other-edge\n  User wrong\n",
    "no_blocks.conf": "Port 2700\n",
}
NAMES = (
    "web1", "web3", "db1", "db-x", "api1", "gw", "top1", "bastion", "jump", "inner", "deep",
    "edge1", "edge2", "other-edge", "plain", "nothing",
)  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Path:
    ssh = tmp_path / ".ssh"
    ssh.mkdir()
    (ssh / "config").write_text(MAIN, encoding="utf-8")
    for name, text in FILES.items():
        (ssh / name).write_text(text, encoding="utf-8")
    return tmp_path


def _openssh(home: Path, name: str) -> tuple[str, int, str, list[str]]:
    ssh = shutil.which("ssh")
    assert ssh is not None, "the OpenSSH client is missing (apt-get install openssh-client)"
    done = subprocess.run(
        [ssh, "-G", "-F", str(home / ".ssh" / "config"), name],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)},
        stdin=subprocess.DEVNULL,
    )
    seen: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        seen.setdefault(key, []).append(value)
    keys = [value.replace("~", str(home), 1) for value in seen.get("identityfile", [])]
    return seen["hostname"][0], int(seen["port"][0]), seen["user"][0], keys


def _readiness(home: Path, name: str) -> tuple[str, int, str, list[str]]:
    text = load_ssh_config_text(home / ".ssh" / "config", home)
    found = SshConfigIndex(paramiko.SSHConfig.from_text(text)).lookup(name)
    own_home = str(Path("~").expanduser())  # paramiko expands ~ with this HOME
    keys = [value.replace(own_home, str(home), 1) for value in found.get("identityfile", [])]
    return found.get("hostname", name), int(found.get("port", 22)), found["user"], keys


@pytest.mark.parametrize("name", NAMES)
def test_a_name_resolves_as_ssh_resolves_it(home: Path, name: str) -> None:
    assert _readiness(home, name) == _openssh(home, name)


def test_include_inside_a_block_keeps_the_block_and_its_scope(home: Path) -> None:
    """The two cases that differed before: lines after an Include inside a Host block belong
    to that block; an included file's Host blocks apply only inside the enclosing one."""
    bastion, jump, inner = (_readiness(home, name) for name in ("bastion", "jump", "inner"))
    assert (bastion[1], bastion[2]) == (2400, "after_include")
    assert inner[2] == "default"  # Host inner is inside 'Host bastion jump'
    assert (jump[0], jump[2]) == ("nested.lan", "inneruser")  # nested Include, both blocks
    assert bastion[0] == "bastion"  # nested.conf's 'Host deep bastion' is inside 'Host inner jump'
    assert _readiness(home, "deep")[1] == 2222


def test_include_after_match_all_and_at_the_top(tmp_path: Path) -> None:
    """``Match all`` is a block too (the lines after an Include in it stay in it); an Include
    before any block is read as if pasted."""
    ssh = tmp_path / ".ssh"
    ssh.mkdir()
    (ssh / "config").write_text(
        "Include first.conf\nMatch all\n  Include second.conf\n  Port 2900\nHost *\n  User u\n",
        encoding="utf-8",
    )
    (ssh / "first.conf").write_text("Host a1\n  User first\n", encoding="utf-8")
    (ssh / "second.conf").write_text("Host b1\n  Port 2800\n", encoding="utf-8")
    for name in ("a1", "b1", "c1"):  # (no IdentityFile here: ssh -G lists its defaults)
        assert _readiness(tmp_path, name)[:3] == _openssh(tmp_path, name)[:3], name
    assert _readiness(tmp_path, "c1")[1] == 2900
