"""Where readiness connects for hosts with ssh options in their inventory variables
(``ansible_ssh_args``, ``ansible_ssh_common_args``, ``ansible_ssh_extra_args``), against the
reference pair: real ansible-core builds each host's ssh command line (``ansible -m raw
-vvv`` with ``/bin/false`` as ssh, so nothing reaches the network) and the real OpenSSH client
resolves that very command line (``ssh -G``: the address, port, user, key and jump host it
would use, without connecting), with the same ssh_config.

Before, readiness read only ProxyJump/ProxyCommand from those variables: a ``-p 2222`` or
``-o User=deploy`` there (common for hosts behind a NAT) made it log in somewhere else than
Ansible and ssh do.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from readiness.errors import TransportError
from readiness.inventory import load_inventory
from readiness.loopback import LoopbackFleet
from readiness.ssh import SshConnector
from readiness.transport import ConnectionSettings
from tests.services.cli import run_cli
from tests.services.ports import closed_port
from tests.services.sshd import fleet_config, host_entry, write_inventory

from .ansible_cli import BIN, require_ansible, run_ansible

SSH_CONFIG = """\
Host 127.0.0.4
  HostName 127.0.0.44
  Port 2444
Host Mixed-CFG.Example
  HostName Db9.Example.NET
  Port 2445
Host cfg-*
  Port 2999
  User cfguser
  HostName 127.0.0.9
Host *
  IdentityFile {keys}/id_cfg
"""

# name -> inventory variables (INI syntax); each line is one kind of case.
HOSTS = {
    "p-common": "ansible_host=127.0.0.1 ansible_ssh_common_args='-p 2201'",
    "p-joined": "ansible_host=127.0.0.1 ansible_ssh_common_args='-4p2202 -v'",
    "o-port": "ansible_host=127.0.0.1 ansible_ssh_common_args='-o Port=2203 -o Port=2204'",
    "o-space": "ansible_host=127.0.0.1 ansible_ssh_common_args='-o \"Port 2205\" -l cuser'",
    "inv-port-wins": "ansible_host=127.0.0.1 ansible_port=2300 ansible_user=iu "
    "ansible_ssh_common_args='-p 2206 -oUser=cuser'",
    "args-win": "ansible_host=127.0.0.1 ansible_port=2300 ansible_user=iu "
    "ansible_ssh_args='-o Port=2207 -o User=auser'",
    "extra": "ansible_host=127.0.0.1 ansible_ssh_extra_args='-o Port=2208 -l xuser'",
    "common-before-extra": "ansible_host=127.0.0.1 ansible_ssh_common_args='-p 2209' "
    "ansible_ssh_extra_args='-p 2210'",
    "cipher-arg": "ansible_host=127.0.0.1 ansible_ssh_common_args='-c aes128-ctr -p 2211'",
    "key-common": "ansible_host=127.0.0.1 ansible_ssh_common_args='-i {keys}/id_common'",
    "key-inv-wins": "ansible_host=127.0.0.1 ansible_private_key_file={keys}/id_inv "
    "ansible_ssh_common_args='-i {keys}/id_common'",
    "key-args-win": "ansible_host=127.0.0.1 ansible_private_key_file={keys}/id_inv "
    "ansible_ssh_args='-o IdentityFile={keys}/id_args'",
    "hostname": "ansible_host=127.0.0.1 ansible_ssh_common_args='-o HostName=127.0.0.7'",
    "hostname-h": "ansible_host=127.0.0.3 ansible_ssh_common_args='-o HostName=%h'",
    "cfg-plain": "",
    "cfg-overridden": "ansible_ssh_common_args='-p 2212 -l cuser -o HostName=127.0.0.8'",
    "jump": "ansible_host=127.0.0.1 ansible_ssh_common_args='-J jumper@127.0.0.5:2213 -p 2214'",
    "no-args": "ansible_host=127.0.0.1 ansible_port=2215",
    # ssh_config applies to the destination ansible_host names: its HostName wins
    "hostname-on-ansible-host": "ansible_host=127.0.0.4",
    "hostname-on-ansible-host-port": "ansible_host=127.0.0.4 ansible_port=2216",
    # ssh lower-cases the destination and HostName (and so the known_hosts name) and
    # matches Host patterns without regard to case
    "mixed-case": "ansible_host=Db1.Example.COM ansible_port=2217",
    "mixed-case-cfg": "ansible_host=mixed-cfg.EXAMPLE",
}
KEYS = ("id_cfg", "id_common", "id_inv", "id_args")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    require_ansible()
    if shutil.which("ssh") is None:
        pytest.fail("OpenSSH client (ssh) is not installed: .ci/run installs openssh-client")
    base = tmp_path_factory.mktemp("ssh-args")
    keys = base / "keys"
    keys.mkdir()
    for key in KEYS:  # ssh -G lists only key files that exist
        (keys / key).write_text("not a key: never read by ssh -G\n")
    inventory = base / "inventory.ini"
    lines = [f"{name} {vars_.format(keys=keys)}".strip() for name, vars_ in HOSTS.items()]
    inventory.write_text("[all]\n" + "\n".join(lines) + "\n")
    config = base / "ssh_config"
    config.write_text(SSH_CONFIG.format(keys=keys))
    return base, inventory, config


def _ansible_command_lines(inventory: Path, config: Path, home: Path) -> dict[str, list[str]]:
    """Each host's ssh arguments as Ansible's ssh connection builds them."""
    done = run_ansible(
        [
            str(BIN / "ansible"),
            "all",
            "-i",
            str(inventory),
            "-m",
            "raw",
            "-a",
            "echo {{ inventory_hostname }}",  # the last word names the host
            "-vvv",
            "-f",
            "4",
        ],
        home,
        env={"ANSIBLE_SSH_EXECUTABLE": "/bin/false", "ANSIBLE_HOST_KEY_CHECKING": "False"},
    )
    lines: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        _, found, command = line.partition("SSH: EXEC ")
        if not found:
            continue
        words = shlex.split(command)
        name = words[-1].removeprefix("echo ")
        lines.setdefault(name, words[1:-1])  # without the program and the remote command
    assert set(lines) == set(HOSTS), f"ansible logged no command for some hosts: {done.stdout}"
    return lines


def _ssh_resolves(args: list[str], config: Path) -> dict[str, str]:
    """What OpenSSH would use for that command line: ``ssh -G`` (first value of each key)."""
    done = subprocess.run(
        ["ssh", "-G", "-F", str(config), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    resolved: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        resolved.setdefault(key, value)
    return resolved


def test_hosts_are_reached_where_ansibles_ssh_command_line_reaches_them(
    setup: tuple[Path, Path, Path],
) -> None:
    base, inventory, config = setup
    command_lines = _ansible_command_lines(inventory, config, base / "home")
    connector = SshConnector(
        ConnectionSettings(ssh_config=str(config), known_hosts=str(base / "kh"))
    )
    hosts = load_inventory(str(inventory)).hosts
    compared = 0
    for name, args in sorted(command_lines.items()):
        ssh = _ssh_resolves(args, config)
        target = connector.target(hosts[name])
        expected = {
            "address": ssh["hostname"],
            "port": int(ssh["port"]),
            "user": ssh["user"],
            "key": ssh.get("identityfile", "").replace("~", str(Path.home()), 1),
            # ssh -G prints "user@[addr]:port"; the brackets are its spelling only
            "jump": re.sub(r"\[([^]]*)\]", r"\1", ssh.get("proxyjump", "none")),
        }
        actual = {
            "address": target.address,
            "port": target.port,
            "user": target.user,
            "key": target.key_files[0] if target.key_files else "",
            "jump": target.proxy_jump or "none",
        }
        assert actual == expected, f"{name}: readiness against ansible + ssh -G ({args})"
        compared += 1
    assert compared == len(HOSTS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # "-p http" and "-o Port=70000" stop the inventory now, as they stop ssh
        # (test_ssh_options_against_ssh.py)
        ("-o HostName=%r.lan", "uses %r, which readiness does not expand"),
        ("-o 'unbalanced", "cannot be read as ssh options"),
    ],
)
def test_an_unusable_ssh_option_is_a_clear_reason(tmp_path: Path, args: str, message: str) -> None:
    inventory = tmp_path / "inv.ini"
    inventory.write_text(
        f"web1 ansible_host=127.0.0.1 ansible_ssh_common_args={shlex.quote(args)}\n"
    )
    connector = SshConnector(ConnectionSettings(ssh_config=""))
    with pytest.raises(TransportError, match=message):
        connector.target(load_inventory(str(inventory)).hosts["web1"])


def test_readiness_validate_logs_in_where_the_ssh_args_say(
    tmp_path: Path, ssh_fleet: LoopbackFleet
) -> None:
    """Through the command a user types, on real sshd: the host's port and user are given
    only in ``ansible_ssh_common_args`` (``-p``, ``-l``); the inventory's ``ansible_port``
    points at a closed port that ``-p`` does not override (Ansible puts ``ansible_port``
    first), so the second host must be UNREACHABLE, never audited elsewhere."""
    host = ssh_fleet.hosts[0]
    common = f"-o StrictHostKeyChecking=no -p {host.port} -l {ssh_fleet.user}"
    by_args = host_entry(ssh_fleet, host, ansible_ssh_common_args=common)
    del by_args["ansible_port"], by_args["ansible_user"]
    closed = closed_port()
    port_wins = host_entry(ssh_fleet, host, ansible_port=closed, ansible_ssh_common_args=common)
    inventory = write_inventory(tmp_path / "inv.yml", {"by-args": by_args, "port-wins": port_wins})
    config = fleet_config(ssh_fleet, tmp_path / "readiness.yaml")
    logins = host.accepted_logins()
    done = run_cli(
        "-f", str(config), "validate", "--hosts", "all", "-i", str(inventory),
        "-c", "environment", "--json",
    )  # fmt: skip
    report = json.loads(done.stdout)
    status = {h["host"]: h["status"] for h in report["hosts"]}
    assert status["by-args"] != "unreachable", done.stdout
    assert status["port-wins"] == "unreachable", done.stdout
    assert host.accepted_logins() == logins + 1  # only by-args logged in
