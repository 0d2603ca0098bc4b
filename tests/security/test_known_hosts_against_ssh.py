"""Host keys trusted exactly where OpenSSH trusts them: a real ``ssh`` (strict checking, the
same known_hosts) and readiness's connector log in to the same real sshd host, for seeded
generated known_hosts files and for the cases that differed.

Before, readiness accepted keys ssh refuses: an ``@revoked`` line whose fields were
separated by tabs or by two spaces, or whose name was hashed, was skipped (so a key listed
for the host too was trusted); a hashed name inside a name list (``a,|1|...``), or plain
names after a leading hashed one, counted as names. And it refused hosts ssh accepts: a line
with two spaces between its fields; a name listed with two keys of one type (a name two
machines answer for, a key roll-over: "host key CHANGED"); a host on another port whose key
is listed only for its bare address (ssh's "checking without port identifier").

One difference is kept on purpose: ``@revoked<TAB>NAME KEY`` (a tab after the marker, a
space later) is an invalid marker to ssh, which then ignores the line; readiness honours
the revocation (stricter). The generator does not write that form.
"""

from __future__ import annotations

import base64
import hmac
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from readiness.errors import TransportError
from readiness.inventory.model import Host
from readiness.loopback import LoopbackFleet, LoopbackHost, keypair
from readiness.ssh import SshConnector
from readiness.transport import ConnectionSettings
from tests.services.cli import run_cli
from tests.services.sshd import host_entry, write_inventory


def _hashed(name: str, salt: bytes) -> str:
    digest = hmac.digest(salt, name.encode(), "sha1")
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def _ssh_accepts(fleet: LoopbackFleet, host: LoopbackHost, known: Path, *extra: str) -> bool:
    ssh = shutil.which("ssh")
    assert ssh is not None, "the OpenSSH client is missing (apt-get install openssh-client)"
    done = subprocess.run(
        [ssh, "-F", "none", *extra, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
         "-o", "ConnectTimeout=5", "-i", str(fleet.client_key), "-p", str(host.port),
         f"{fleet.user}@{host.address}", "true"],
        capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0 or "Host key verification failed" in done.stderr, done.stderr
    return done.returncode == 0


def _readiness_accepts(
    fleet: LoopbackFleet,
    host: LoopbackHost,
    known: Path,
    *,
    ssh_config: str = "",
    tofu: bool = False,
) -> bool:
    settings = ConnectionSettings(
        known_hosts=str(known),
        ssh_config=ssh_config,
        identity_file=str(fleet.client_key),
        connect_timeout=5.0,
        accept_new_host_keys=tofu,
    )
    target = Host(
        host.name, host.address, host.port, fleet.user, None,
        {"ansible_port": host.port}, (), False, "test",
    )  # fmt: skip
    try:
        SshConnector(settings).open(target).close()
    except TransportError:
        return False
    return True


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    rsa = tmp_path / "other_rsa"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(rsa)],
        check=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return {
        "other": keypair(tmp_path / "other_ed25519"),
        "rsa": " ".join(rsa.with_suffix(".pub").read_text(encoding="utf-8").split()[:2]),
    }


def _generated(r: random.Random, host: LoopbackHost, keys: dict[str, str]) -> str:
    name, address = host.known_hosts_name, host.address
    names = [
        name, f"[127.0.0.*]:{host.port}", f"[{address}]:*", "*", address,
        f"[127.0.0.9]:{host.port}", f"!{name}", "![127.0.0.*]:*", name.upper(),
        f"[{address}]:{host.port + 1}",
    ]  # fmt: skip
    lines = []
    for _ in range(r.randint(1, 4)):
        marker = r.choice(["", "", "", "@revoked", "@cert-authority", "@Revoked"])
        chosen = r.sample(names, r.randint(1, 2))
        if r.random() < 0.3:  # a hashed name: alone, first in a list, or later in one
            hashed = _hashed(r.choice([name, address]), r.randbytes(20))
            chosen.insert(r.randrange(len(chosen) + 1), hashed)
            if r.random() < 0.5:
                chosen = [hashed]
        key = r.choice([host.host_key_line, host.host_key_line, keys["other"], keys["rsa"]])
        sep = r.choice([" ", " ", "\t", "  "])
        tail = r.choice(["", f"{sep}comment"])
        lines.append(sep.join([*([marker] if marker else []), ",".join(chosen), *key.split()]))
        lines[-1] += tail
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("chunk", range(3))
def test_generated_known_hosts_files_are_trusted_as_ssh_trusts_them(
    tmp_path: Path, ssh_fleet: LoopbackFleet, keys: dict[str, str], chunk: int
) -> None:
    """90 seeded files: names, [host]:port, wildcards, negations, hashed names (alone and in
    lists), upper case, markers (valid and not), tabs and double spaces, several keys and
    key types per host. readiness logs in exactly when ssh does."""
    host = ssh_fleet.hosts[0]
    known = tmp_path / "known_hosts"
    differ = []
    for seed in range(chunk * 30, chunk * 30 + 30):
        text = _generated(random.Random(seed), host, keys)
        known.write_text(text, encoding="utf-8")
        theirs = _ssh_accepts(ssh_fleet, host, known)
        ours = _readiness_accepts(ssh_fleet, host, known)
        if theirs != ours:
            differ.append(f"seed {seed}: ssh accepts {theirs}, readiness {ours}:\n{text}")
    assert not differ, "\n".join(differ[:3])


CASES = {
    # name -> (known_hosts text, what ssh does)
    "revoked with tabs": ("{n} {key}\n@revoked\t{n}\t{tkey}\n", False),
    "revoked with two spaces": ("{n} {key}\n@revoked {n}  {key}\n", False),
    "revoked under a hashed name": ("{n} {key}\n@revoked {hn} {key}\n", False),
    "hashed name later in a list": ("[127.0.0.9]:{port},{hn} {key}\n", False),
    "names after a hashed one": ("{hn},{n} {key}\n", False),
    "two spaces between fields": ("{n}  {key}\n", True),
    "two keys of one type, ours first": ("{n} {key}\n{n} {other}\n", True),
    "only the bare address listed": ("{a} {key}\n", True),
    "bare address, but the port has another key": ("{n} {other}\n{a} {key}\n", False),
}


@pytest.mark.parametrize("case", CASES)
def test_the_cases_that_differed(
    tmp_path: Path, ssh_fleet: LoopbackFleet, keys: dict[str, str], case: str
) -> None:
    host = ssh_fleet.hosts[0]
    text, expected = CASES[case]
    known = tmp_path / "known_hosts"
    known.write_text(
        text.format(
            n=host.known_hosts_name, a=host.address, port=host.port, key=host.host_key_line,
            tkey=host.host_key_line.replace(" ", "\t"), other=keys["other"],
            hn=_hashed(host.known_hosts_name, os.urandom(20)),
        ),
        encoding="utf-8",
    )  # fmt: skip
    assert _ssh_accepts(ssh_fleet, host, known) is expected
    assert _readiness_accepts(ssh_fleet, host, known) is expected


def test_a_tab_separated_revocation_is_enforced_by_readiness_validate(
    tmp_path: Path, ssh_fleet: LoopbackFleet
) -> None:
    """Through the real command: the host's key is listed, and revoked by a line whose
    fields are separated by tabs (as some tools write them). Before, the revocation was
    skipped ("unknown marker") and the host was audited."""
    host = ssh_fleet.hosts[0]
    line = host.host_key_line
    known = tmp_path / "known_hosts"
    known.write_text(
        f"{host.known_hosts_name} {line}\n@revoked\t*\t{line.replace(' ', chr(9))}\n",
        encoding="utf-8",
    )
    inventory = write_inventory(tmp_path / "inv.yml", {"h": host_entry(ssh_fleet, host)})
    done = run_cli(
        "validate", "-i", str(inventory), "--hosts", "fleet", "--known-hosts", str(known),
        "-c", "documentation", "--store", "none", "--format", "json",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "is REVOKED" in done.stdout
    assert f"{known}:2" in done.stdout


ALIAS_CASES = {
    # name -> (known_hosts text, what ssh does)
    "key listed under the alias only": ("web-alias {key}\n", True),
    "another key under the alias, ours under the address": (
        "{n} {key}\nweb-alias {other}\n",
        False,
    ),
    "the alias spelled in upper case": ("WEB-ALIAS {key}\n", True),
    "ours only under the bare address": ("{a} {key}\n", False),
}


@pytest.mark.parametrize("case", ALIAS_CASES)
def test_host_key_alias_names_the_key_as_ssh_names_it(
    tmp_path: Path, ssh_fleet: LoopbackFleet, keys: dict[str, str], case: str
) -> None:
    """ssh_config ``HostKeyAlias web-alias``: ssh looks the host's key up (and records it)
    under the alias alone. readiness ignored it and used ``[address]:port``: it refused a
    host whose key is listed under its alias, and accepted the key listed for the address
    where the alias lists another one (ssh: "host key changed")."""
    host = ssh_fleet.hosts[0]
    text, expected = ALIAS_CASES[case]
    known = tmp_path / "known_hosts"
    known.write_text(
        text.format(n=host.known_hosts_name, a=host.address, key=host.host_key_line,
                    other=keys["other"]),
        encoding="utf-8",
    )  # fmt: skip
    config = tmp_path / "ssh_config"
    config.write_text(f"Host {host.address}\n  HostKeyAlias Web-Alias\n", encoding="utf-8")
    assert _ssh_accepts(ssh_fleet, host, known, "-o", "HostKeyAlias=Web-Alias") is expected
    assert _readiness_accepts(ssh_fleet, host, known, ssh_config=str(config)) is expected


def test_trust_on_first_use_records_the_key_under_the_alias(
    tmp_path: Path, ssh_fleet: LoopbackFleet
) -> None:
    host = ssh_fleet.hosts[0]
    known = tmp_path / "known_hosts"
    config = tmp_path / "ssh_config"
    config.write_text(f"Host {host.address}\n  HostKeyAlias web-alias\n", encoding="utf-8")
    assert _readiness_accepts(ssh_fleet, host, known, ssh_config=str(config), tofu=True)
    assert known.read_text(encoding="utf-8") == f"web-alias {host.host_key_line}\n"
    assert _ssh_accepts(ssh_fleet, host, known, "-o", "HostKeyAlias=web-alias")


GLOBAL_CASES = {
    # name -> (user known_hosts, system-wide known_hosts, what ssh does)
    "key in the system-wide file only": ("", "{n} {key}\n", True),
    "listed by the user, revoked system-wide": ("{n} {key}\n", "@revoked * {key}\n", False),
    "another key system-wide": ("", "{n} {other}\n", False),
}


@pytest.mark.parametrize("case", GLOBAL_CASES)
def test_the_system_wide_known_hosts_counts_as_ssh_counts_it(
    tmp_path: Path,
    ssh_fleet: LoopbackFleet,
    keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    """ssh reads /etc/ssh/ssh_known_hosts besides the user's file (GlobalKnownHostsFile),
    where an organisation distributes its hosts' keys and revokes them. readiness read only
    the user's file: it refused hosts whose keys are distributed there, and accepted a key
    revoked there."""
    host = ssh_fleet.hosts[0]
    user_text, system_text, expected = GLOBAL_CASES[case]
    values = {"n": host.known_hosts_name, "key": host.host_key_line, "other": keys["other"]}
    known, system = tmp_path / "known_hosts", tmp_path / "ssh_known_hosts"
    known.write_text(user_text.format(**values), encoding="utf-8")
    system.write_text(system_text.format(**values), encoding="utf-8")
    monkeypatch.setattr("readiness.ssh.SYSTEM_KNOWN_HOSTS", (system,))
    theirs = _ssh_accepts(ssh_fleet, host, known, "-o", f"GlobalKnownHostsFile={system}")
    assert theirs is expected
    assert _readiness_accepts(ssh_fleet, host, known) is expected


def test_a_key_revoked_system_wide_is_refused_by_readiness_validate(
    tmp_path: Path, ssh_fleet: LoopbackFleet
) -> None:
    """Through the real command, with a test /etc/ssh bind-mounted in a private mount
    namespace (the machine's own /etc/ssh is untouched): the user's known_hosts lists the
    host's key, /etc/ssh/ssh_known_hosts revokes it."""
    host = ssh_fleet.hosts[0]
    etc = tmp_path / "etc_ssh"
    etc.mkdir()
    (etc / "ssh_known_hosts").write_text(f"@revoked * {host.host_key_line}\n", encoding="utf-8")
    known = tmp_path / "known_hosts"
    known.write_text(f"{host.known_hosts_name} {host.host_key_line}\n", encoding="utf-8")
    inventory = write_inventory(tmp_path / "inv.yml", {"h": host_entry(ssh_fleet, host)})
    unshare = shutil.which("unshare")
    assert unshare is not None, "unshare is missing (util-linux)"
    done = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c",
         'mount --bind "$0" /etc/ssh && exec "$@"', str(etc),
         str(Path(sys.executable).parent / "readiness"), "validate", "-i", str(inventory),
         "--hosts", "fleet", "--known-hosts", str(known), "-c", "documentation",
         "--store", "none", "--format", "json"],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "is REVOKED" in done.stdout
    assert "/etc/ssh/ssh_known_hosts:1" in done.stdout


USER_FILE_CASES = {
    # name -> (UserKnownHostsFile value, {file: text}, what ssh does); ~/.ssh/known_hosts
    # (the run's default file) always lists the host's key
    "the configured file lacks the key": ("{t}/prod_known_hosts", {"prod_known_hosts": ""}, False),
    "the key under a %h-named file": ("{t}/kh_%h", {"kh_{a}": "{n} {key}\n"}, True),
    "the key in the second file": ("{t}/a {t}/b", {"a": "", "b": "{n} {key}\n"}, True),
    "another key in the configured file": ("{t}/a", {"a": "{n} {other}\n"}, False),
}


@pytest.mark.parametrize("case", USER_FILE_CASES)
def test_user_known_hosts_file_from_ssh_config_is_the_one_checked(
    tmp_path: Path,
    ssh_fleet: LoopbackFleet,
    keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    """ssh_config ``UserKnownHostsFile`` (several files, ``%`` tokens): ssh checks the
    host's key against those files, not ~/.ssh/known_hosts. readiness always used
    ~/.ssh/known_hosts: it accepted a key listed there for a host whose configured file
    does not list it (or lists another one), and refused hosts whose key is listed only in
    their configured file. (``--known-hosts FILE`` still wins, as ``ssh -o
    UserKnownHostsFile=`` does.)"""
    host = ssh_fleet.hosts[0]
    value, files, expected = USER_FILE_CASES[case]
    values = {
        "t": str(tmp_path), "a": host.address, "n": host.known_hosts_name,
        "key": host.host_key_line, "other": keys["other"],
    }  # fmt: skip
    for name, text in files.items():
        (tmp_path / name.format(**values)).write_text(text.format(**values), encoding="utf-8")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(
        f"{host.known_hosts_name} {host.host_key_line}\n", encoding="utf-8"
    )
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host {host.address}\n  UserKnownHostsFile {value.format(**values)}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr("readiness.ssh.SYSTEM_KNOWN_HOSTS", ())
    done = subprocess.run(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
         "-i", str(ssh_fleet.client_key), "-p", str(host.port),
         f"{ssh_fleet.user}@{host.address}", "true"],
        capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert (done.returncode == 0) is expected, done.stderr
    settings = ConnectionSettings(
        ssh_config=str(config), identity_file=str(ssh_fleet.client_key), connect_timeout=5.0
    )
    target = Host(
        host.name, host.address, host.port, ssh_fleet.user, None,
        {"ansible_port": host.port}, (), False, "test",
    )  # fmt: skip
    try:
        SshConnector(settings).open(target).close()
    except TransportError:
        ours = False
    else:
        ours = True
    assert ours is expected


def test_trust_on_first_use_records_in_the_first_configured_file(
    tmp_path: Path, ssh_fleet: LoopbackFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = ssh_fleet.hosts[0]
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr("readiness.ssh.SYSTEM_KNOWN_HOSTS", ())
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host {host.address}\n  UserKnownHostsFile ~/first_kh {tmp_path}/second_kh\n",
        encoding="utf-8",
    )
    settings = ConnectionSettings(
        ssh_config=str(config),
        identity_file=str(ssh_fleet.client_key),
        connect_timeout=5.0,
        accept_new_host_keys=True,
    )
    target = Host(
        host.name, host.address, host.port, ssh_fleet.user, None,
        {"ansible_port": host.port}, (), False, "test",
    )  # fmt: skip
    SshConnector(settings).open(target).close()
    recorded = f"{host.known_hosts_name} {host.host_key_line}\n"
    assert (home / "first_kh").read_text(encoding="utf-8") == recorded
    assert not (home / ".ssh" / "known_hosts").exists()
    assert not (tmp_path / "second_kh").exists()


def test_a_key_revoked_in_known_hosts2_is_refused_as_ssh_refuses_it(
    tmp_path: Path, ssh_fleet: LoopbackFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ssh's default UserKnownHostsFile is ``~/.ssh/known_hosts ~/.ssh/known_hosts2``;
    readiness read only the first, so a revocation in the second was ignored."""
    host = ssh_fleet.hosts[0]
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(
        f"{host.known_hosts_name} {host.host_key_line}\n", encoding="utf-8"
    )
    (home / ".ssh" / "known_hosts2").write_text(
        f"@revoked * {host.host_key_line}\n", encoding="utf-8"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr("readiness.ssh.SYSTEM_KNOWN_HOSTS", ())
    files = f"{home}/.ssh/known_hosts {home}/.ssh/known_hosts2"  # ssh's default, in this HOME
    assert not _ssh_accepts(
        ssh_fleet, host, tmp_path / "unused", "-o", f"UserKnownHostsFile={files}"
    )
    settings = ConnectionSettings(
        ssh_config="", identity_file=str(ssh_fleet.client_key), connect_timeout=5.0
    )
    target = Host(
        host.name, host.address, host.port, ssh_fleet.user, None,
        {"ansible_port": host.port}, (), False, "test",
    )  # fmt: skip
    with pytest.raises(TransportError, match="is REVOKED"):
        SshConnector(settings).open(target).close()
