"""ssh_config read as OpenSSH reads it: readiness's lookup against ``ssh -G`` (the real client
prints what it would use for a name, without connecting).

Covers ``Host`` patterns (wildcards, negation, several per line), first value wins,
``Match host``/``originalhost``, ``%h`` in HostName, several IdentityFile lines, and
``Include`` at the top, inside a ``Host`` block and inside a ``Match`` block (nested too): an
included file's blocks apply only where the enclosing block does, and the enclosing block goes
on after the ``Include`` line.
"""

from __future__ import annotations

import json
import os
import pwd
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from readiness.errors import TransportError
from readiness.inventory.model import Host
from readiness.ssh import SshConfigIndex, SshConnector, load_ssh_config_text
from readiness.ssh_config import SshConfig
from readiness.transport import ConnectionSettings

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
    found = SshConfigIndex(SshConfig.from_text(text), home=str(home)).lookup(name)
    keys = [value.replace("~", str(home), 1) for value in found.get("identityfile", [])]
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


# --- generated configs, through the connector, against ssh -G ----------------------------------
# Each config is a few blocks drawn (seeded) from the spellings that disagreed with ssh before:
# Match criteria in any case ("Match Host"), Match host after a HostName (expanded, compared
# case-insensitively), "Match final", trailing "# comments", quoted values, "=", "%%" and
# tokens in HostName/IdentityFile, "[" in Host patterns, ProxyJump/ProxyCommand given
# first, Include before and inside blocks.
Q = '"'
G_NAMES = ("web1", "web2", "Web1", "db1", "api.example.com", "10.0.0.5", "gw", "web[1]")
G_PATTERNS = (
    "web1", "web*", "!web2", "db*", "*.example.com", "*", "gw", "WEB1", "real*", "web[1]",
    "web[12]", f"{Q}web1{Q}",
)  # fmt: skip
G_KEYS = ("id_a", "id_c", "id_web1", "id_real1", "id_root", "id_2201", "id b", "id_zed")


def _comment(r: random.Random) -> str:
    return r.choice(["", "", " # note", " #x", "\t# a b"])


def _option(r: random.Random) -> str:
    choices = [
        lambda: (
            "HostName " + r.choice(["%h.internal", "real1", "x%%y", "REAL2.lan", f"{Q}real1{Q}"])
        ),
        lambda: "Port " + r.choice(["2201", f"{Q}2202{Q}", "= 2299"]),
        lambda: "User " + r.choice(["alice", f"{Q}bo b{Q}", "a#b", "=zed"]),
        lambda: (
            "IdentityFile "
            + r.choice(
                [
                    "~/.ssh/id_a",
                    "~/.ssh/id_%h",
                    "~/.ssh/id_%r",
                    "%d/.ssh/id_c",
                    "~/.ssh/id_%p",
                    "none",
                    f"{Q}~/.ssh/id b{Q}",
                ]
            )
        ),
    ]
    if r.random() < 0.3:
        return "ProxyJump " + r.choice(["none", "bastion", "ju@jump:2022"])
    if r.random() < 0.2:
        return "ProxyCommand " + r.choice(["none", "nc %h %p"])
    return r.choice(choices)() + _comment(r)


def _head(r: random.Random) -> str:
    kind = r.randrange(5)
    if kind <= 1:
        return "Host " + " ".join(r.sample(G_PATTERNS, r.randint(1, 3))) + _comment(r)
    if kind == 2:
        criterion = r.choice(["host", "originalhost", "!host", "Host", "HOST", "user", "localuser"])
        values = r.sample(["web*", "real*", "alice", "zed", "*.internal", "!db1", "REAL1"], 2)
        return f"Match {criterion} {','.join(values[: r.randint(1, 2)])}{_comment(r)}"
    if kind == 3:
        return "Match " + r.choice(
            ["canonical", "final", "!final", "all", "final all", "Final host real*",
             f"exec {Q}test %h = web1{Q}", "exec false"]
        )  # fmt: skip
    return "Include " + r.choice(["inc1.conf", "inc*.conf", "~/.ssh/inc2.conf", "missing.conf"])


def _block(r: random.Random) -> list[str]:
    return [_head(r)] + ["  " + _option(r) for _ in range(r.randint(1, 3))]


def _generated(r: random.Random) -> tuple[str, str, str]:
    lines = [_option(r) for _ in range(r.randint(0, 2))]
    for _ in range(r.randint(1, 4)):
        lines += _block(r)
    inc1 = "\n".join(_block(r)) + "\n"
    if r.random() < 0.3:  # nested: inc1.conf includes inc2.conf inside its block
        inc1 += "  Include inc2.conf\n  " + _option(r) + "\n"
    inc2 = _option(r) + "\n" + "\n".join(_block(r)) + "\n"
    return "\n".join(lines) + "\n", inc1, inc2


def _ssh_login(home: Path, name: str) -> tuple[Any, ...]:
    """(address, port, user, first existing key, jump host, ProxyCommand?) from ``ssh -G``;
    ("refused",) when ssh refuses the config."""
    ssh = shutil.which("ssh")
    assert ssh is not None, "the OpenSSH client is missing (apt-get install openssh-client)"
    done = subprocess.run(
        [ssh, "-G", "-F", str(home / ".ssh" / "config"), name],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "SHELL": "/bin/sh",
        },
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        return ("refused",)
    seen: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        seen.setdefault(key, []).append(value)
    host, port, user = seen["hostname"][0], seen["port"][0], seen["user"][0]
    tokens = {"~": str(home), "%d": str(home), "%h": host, "%r": user, "%p": port}
    keys = []
    for given in seen.get("identityfile", []):
        path = given
        for token, value in tokens.items():
            path = path.replace(token, value)
        keys.append(path)
    jump = seen.get("proxyjump", ["none"])[0]
    command = seen.get("proxycommand", ["none"])[0]
    return (
        host,
        int(port),
        user,
        tuple(k for k in keys if Path(k).is_file())[:1],
        "" if jump == "none" else jump,
        command != "none",
    )


def _readiness_login(home: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SHELL", "/bin/sh")
    settings = ConnectionSettings(
        ssh_config=str(home / ".ssh" / "config"), known_hosts=str(home / "known_hosts")
    )
    try:
        connector = SshConnector(settings)
    except TransportError:
        return ("refused",)
    host = Host(name, name, 0, None, None, {}, (), False, "test")
    found = connector.target(host)
    return (
        found.address,
        found.port,
        found.user,
        found.key_files,
        found.proxy_jump,
        bool(found.proxy_command),
    )


@pytest.mark.parametrize("chunk", range(4))
def test_generated_configs_resolve_as_ssh_resolves_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """120 seeded configs x 3 names each: where readiness logs in (through the connector, as
    `validate` does) is where ``ssh -G`` says ssh would, or both refuse the config."""
    home = tmp_path
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir()
    for key in G_KEYS:
        (ssh_dir / key).write_text("not a key\n", encoding="utf-8")
    differ = []
    for seed in range(chunk * 30, chunk * 30 + 30):
        r = random.Random(seed)
        main, inc1, inc2 = _generated(r)
        (ssh_dir / "config").write_text(main, encoding="utf-8")
        (ssh_dir / "inc1.conf").write_text(inc1, encoding="utf-8")
        (ssh_dir / "inc2.conf").write_text(inc2, encoding="utf-8")
        for name in r.sample(G_NAMES, 3):
            theirs = _ssh_login(home, name)
            ours = _readiness_login(home, name, monkeypatch)
            if theirs != ours:
                differ.append(f"seed {seed}, {name}: ssh {theirs}, readiness {ours}\n{main}")
    assert not differ, "\n".join(differ[:3])


def test_readiness_inventory_shows_the_login_ssh_would_make(tmp_path: Path) -> None:
    """Through the real command: trailing comments, a Match criterion spelled ``Host``, and
    ``Match originalhost`` compared without regard to case. Before, ``readiness inventory``
    died with a traceback on ``Port 2222 # sshd moved``; ``Match Host bastion`` sent every
    host to the bastion's HostName; and web2 was connected to directly where ssh runs its
    ProxyCommand."""
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host web1\n  HostName 10.0.0.5 # the primary\n  Port 2222 # sshd moved\n"
        "Match Host bastion\n  HostName 10.9.9.9\n"
        "Match originalhost WEB2\n  ProxyCommand nc %h %p\n",
        encoding="utf-8",
    )
    settings = tmp_path / "readiness.yaml"
    settings.write_text(
        f"readiness:\n  ssh_config: {config}\n  known_hosts: {tmp_path / 'kh'}\n",
        encoding="utf-8",
    )
    inventory = tmp_path / "inv.ini"
    inventory.write_text("web1\nweb2\ndb1\n", encoding="utf-8")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "readiness"), "-f", str(settings), "inventory",
         "-i", str(inventory), "--hosts", "all", "--format", "json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    logins = {h["host"]: h["ssh"] for h in json.loads(done.stdout)["hosts"]}
    assert (logins["web1"]["address"], logins["web1"]["port"]) == ("10.0.0.5", 2222)
    assert logins["db1"]["address"] == "db1"
    assert "ProxyCommand (nc %h %p) is set for web2" in logins["web2"]["error"]
    for name in ("web1", "db1"):  # and where ssh itself would go
        ssh = _ssh_login_of(config, name, tmp_path)
        assert (logins[name]["address"], logins[name]["port"]) == ssh[:2]
    assert _ssh_login_of(config, "web2", tmp_path)[2]


def _ssh_login_of(config: Path, name: str, home: Path) -> tuple[str, int, bool]:
    ssh = shutil.which("ssh")
    assert ssh is not None, "the OpenSSH client is missing (apt-get install openssh-client)"
    done = subprocess.run(
        [ssh, "-G", "-F", str(config), name],
        capture_output=True, text=True, timeout=10, check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)},
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    seen = dict(line.partition(" ")[::2] for line in done.stdout.splitlines())
    return seen["hostname"], int(seen["port"]), seen.get("proxycommand", "none") != "none"


def test_the_system_wide_ssh_config_is_read_after_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an ssh_config named, ssh reads ~/.ssh/config and then /etc/ssh/ssh_config
    (with its Include of /etc/ssh/ssh_config.d/*.conf), the user's values first; readiness
    read only the user's, so a ProxyJump that IT sets for the corporate hosts in the system
    file was skipped and the hosts were connected to directly. The reference is the real
    ``ssh -G`` with a test system file bind-mounted over /etc/ssh in a private mount
    namespace (the machine's own files are untouched)."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        "Host web1\n  User alice\nHost other\n  Port 2000\n", encoding="utf-8"
    )
    etc = tmp_path / "etc_ssh"
    (etc / "ssh_config.d").mkdir(parents=True)
    (etc / "ssh_config").write_text(
        "Include ssh_config.d/*.conf\nPort 2100\nHost web*\n  User sysuser\n  Port 2222\n",
        encoding="utf-8",
    )
    (etc / "ssh_config.d" / "corp.conf").write_text(
        "Host web*\n  ProxyJump bastion.corp\n", encoding="utf-8"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr("readiness.ssh.SYSTEM_SSH_CONFIG", etc / "ssh_config")
    connector = SshConnector(ConnectionSettings(known_hosts=str(tmp_path / "kh")))
    ours = {}
    for name in ("web1", "web2", "other"):
        found = connector.target(Host(name, name, 0, None, None, {}, (), False, "test"))
        ours[name] = (found.address, found.port, found.user, found.proxy_jump)
    assert ours["web1"] == ("web1", 2100, "alice", "bastion.corp")
    assert ours["web2"] == ("web2", 2100, "sysuser", "bastion.corp")
    assert ours["other"][1] == 2000
    own_home = pwd.getpwuid(os.getuid()).pw_dir  # where ssh looks for ~/.ssh/config
    script = (
        f"mount --bind {etc / 'ssh_config'} /etc/ssh/ssh_config && "
        f"mount --bind {etc / 'ssh_config.d'} /etc/ssh/ssh_config.d && "
        f"mount --bind {home} {own_home} && "
        "for n in web1 web2 other; do echo ==$n==; ssh -G $n; done"
    )
    unshare = shutil.which("unshare")
    assert unshare is not None, "unshare is missing (util-linux)"
    done = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True, text=True, timeout=30, check=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    theirs = {}
    for chunk in ("\n" + done.stdout).split("\n==")[1:]:
        name, _, rest = chunk.partition("==\n")
        seen = dict(line.partition(" ")[::2] for line in rest.splitlines())
        jump = seen.get("proxyjump", "")
        theirs[name] = (seen["hostname"], int(seen["port"]), seen["user"], jump)
    assert theirs == ours
