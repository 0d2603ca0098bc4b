"""known_hosts, ssh-agent, Include and ProxyJump, over real loopback sshd hosts (#18 items 11, 12).

A malformed known_hosts line used to make every host UNREACHABLE; ``@revoked`` was ignored
(a revoked key trusted and recorded); ``@cert-authority`` silently skipped; trust on first
use corrupted a file without a final newline and wrote plain names into a hashed file.
An encrypted key with a running ssh-agent made the fleet UNREACHABLE with a raw
``TypeError``; ``Include`` was ignored; ``ProxyJump`` was ignored and readiness connected
directly. The agent here is a real ``ssh-agent`` process started by the test.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from readiness import validate
from readiness.loopback import LoopbackFleet, LoopbackHost, keypair, start_fleet
from readiness.model import FleetReport, Status
from readiness.runner import RunOptions
from readiness.ssh import KnownHosts
from tests.services.ports import closed_port
from tests.services.sshd import host_entry, write_inventory

pytestmark = pytest.mark.ssh

Options = Callable[..., RunOptions]
CHECKS = ["environment"]
BIN = Path(sys.executable).parent


def _audit(
    fleet: LoopbackFleet, options: RunOptions, host: LoopbackHost | None = None
) -> FleetReport:
    target = host or fleet.hosts[0]
    return validate(target.name, CHECKS, inventory=str(fleet.inventory), options=options)


def _known_hosts(tmp_path: Path, text: str) -> Path:
    known = tmp_path / "known_hosts"
    known.write_text(text)
    return known


def _audit_tofu(fleet: LoopbackFleet, ssh_options: Options, known: Path) -> FleetReport:
    """Audit the first host against ``known`` with trust-on-first-use on."""
    return _audit(fleet, ssh_options(known_hosts=str(known), accept_new_host_keys=True))


def _reached(report: FleetReport) -> bool:
    return report.hosts[0].status is not Status.UNREACHABLE


# --- known_hosts ------------------------------------------------------------------------------


def test_a_malformed_line_is_reported_with_file_and_line_and_the_rest_is_kept(
    tmp_path: Path, ssh_fleet: LoopbackFleet
) -> None:
    host = ssh_fleet.hosts[0]
    known = _known_hosts(
        tmp_path,
        "garbage-host ssh-ed25519 !!!not-base64!!!\n"
        "@bogus-marker * ssh-ed25519 AAAA\n"
        f"{host.known_hosts_name} {host.host_key_line}\n",
    )
    argv = ["validate", "-i", str(ssh_fleet.inventory), "--hosts", host.name, "-c"]
    argv += ["environment", "--known-hosts", str(known), "--format", "json"]
    res = subprocess.run(
        [str(BIN / "readiness"), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
        cwd=tmp_path,
    )
    assert '"status": "unreachable"' not in res.stdout, res.stdout[-2000:]
    assert (
        f"known_hosts {known}:1: cannot be parsed (invalid key data) (line skipped)" in res.stderr
    )
    assert f"{known}:2: unknown marker @bogus-marker" in res.stderr


def test_a_revoked_key_is_refused_and_never_recorded(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    host = ssh_fleet.hosts[0]
    known = _known_hosts(tmp_path, f"@revoked * {host.host_key_line}\n")
    before = known.read_text()
    report = _audit_tofu(ssh_fleet, ssh_options, known)
    assert report.hosts[0].status is Status.UNREACHABLE
    reason = report.hosts[0].reason or ""
    assert "is REVOKED" in reason
    assert f"{known}:1" in reason
    assert known.read_text() == before  # trust on first use did not record it


def test_a_revoked_key_listed_for_the_host_too_is_still_refused(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    host = ssh_fleet.hosts[0]
    known = _known_hosts(
        tmp_path,
        f"{host.known_hosts_name} {host.host_key_line}\n@revoked {host.known_hosts_name} "
        f"{host.host_key_line}\n",
    )
    report = _audit(ssh_fleet, ssh_options(known_hosts=str(known)))
    assert report.hosts[0].status is Status.UNREACHABLE
    assert "is REVOKED" in (report.hosts[0].reason or "")


def test_a_cert_authority_host_gets_host_certificates_not_supported(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    host = ssh_fleet.hosts[0]
    ca = keypair(tmp_path / "ca")
    known = _known_hosts(tmp_path, f"@cert-authority [{host.address}]:* {ca}\n")
    report = _audit_tofu(ssh_fleet, ssh_options, known)
    assert report.hosts[0].status is Status.UNREACHABLE
    reason = report.hosts[0].reason or ""
    assert "host certificates not supported" in reason
    assert f"{known}:1" in reason
    assert f"(ssh-keyscan -p {host.port} -- {host.address} >> {known})" in reason
    assert known.read_text().count("\n") == 1  # nothing recorded


def test_trust_on_first_use_adds_the_missing_final_newline(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    host = ssh_fleet.hosts[0]
    other = keypair(tmp_path / "other")
    known = tmp_path / "known_hosts"
    known.write_text(f"other.example {other}")  # no final newline
    first = _audit_tofu(ssh_fleet, ssh_options, known)
    assert _reached(first), first.hosts[0].reason
    assert known.read_text() == (
        f"other.example {other}\n{host.known_hosts_name} {host.host_key_line}\n"
    )
    second = _audit(ssh_fleet, ssh_options(known_hosts=str(known)))
    assert _reached(second), second.hosts[0].reason


def test_trust_on_first_use_hashes_the_name_in_a_hashed_file(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    host = ssh_fleet.hosts[0]
    other = keypair(tmp_path / "other")
    known = _known_hosts(tmp_path, f"{paramiko.HostKeys.hash_host('other.example')} {other}\n")
    first = _audit_tofu(ssh_fleet, ssh_options, known)
    assert _reached(first), first.hosts[0].reason
    lines = known.read_text().splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("|1|")
    assert host.address not in known.read_text()
    assert lines[1].endswith(host.host_key_line)
    second = _audit(ssh_fleet, ssh_options(known_hosts=str(known)))
    assert _reached(second), second.hosts[0].reason


def test_concurrent_trust_on_first_use_appends_never_interleave(tmp_path: Path) -> None:
    """Two KnownHosts (two runs) appending at once, under the file lock."""
    known = _known_hosts(tmp_path, "")
    keys = [paramiko.Ed25519Key.from_private_key_file(str(_key(tmp_path, i))) for i in range(8)]
    runs = [KnownHosts(known), KnownHosts(known)]

    def add(run: KnownHosts, first: int) -> None:
        for i in range(first, 8, 2):
            run.record(f"[127.0.0.{i + 2}]:2222", keys[i])

    threads = [threading.Thread(target=add, args=(runs[n], n)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    reread = KnownHosts(known)
    assert reread.problems == []
    for i in range(8):
        assert reread.keys_for(f"[127.0.0.{i + 2}]:2222") == [keys[i]]


def _key(tmp_path: Path, i: int) -> Path:
    path = tmp_path / f"k{i}"
    keypair(path)
    return path


# --- ssh-agent and encrypted keys ---------------------------------------------------------------


def _accepts(path: Path) -> bool:
    """Whether a listener takes connections at ``path``: the socket file exists from
    bind(), before listen(), and a connection in between is refused."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        try:
            client.connect(str(path))
        except OSError:
            return False
    return True


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A real ssh-agent (foreground, its own socket), found through SSH_AUTH_SOCK as ssh
    finds it; yields that environment (for ``ssh-add``)."""
    if shutil.which("ssh-agent") is None:
        pytest.fail("ssh-agent not found: apt-get install openssh-client (see .ci/run)")
    sock_dir = Path(tempfile.mkdtemp(prefix="agent-"))
    sock = sock_dir / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _accepts(sock) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _accepts(sock), "ssh-agent does not accept connections on its socket"
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield {"SSH_AUTH_SOCK": str(sock)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(sock_dir, ignore_errors=True)


def _with_key(fleet: LoopbackFleet, tmp_path: Path, key: Path) -> str:
    """An inventory whose one host uses ``key`` (the inventory's own key file wins)."""
    host = fleet.hosts[0]
    path = write_inventory(
        tmp_path / "inv.yml",
        {host.name: host_entry(fleet, host, ansible_ssh_private_key_file=str(key))},
    )
    return str(path)


def _audit_with_encrypted_key(
    fleet: LoopbackFleet, tmp_path: Path, ssh_options: Options
) -> tuple[FleetReport, Path]:
    """Audit the first host with a passphrase-protected copy of the fleet's client key."""
    encrypted = _encrypted_copy(fleet, tmp_path)
    report = validate(
        fleet.hosts[0].name,
        CHECKS,
        inventory=_with_key(fleet, tmp_path, encrypted),
        options=ssh_options(),
    )
    return report, encrypted


def _encrypted_copy(fleet: LoopbackFleet, tmp_path: Path) -> Path:
    copy = tmp_path / "encrypted_key"
    shutil.copy(fleet.client_key, copy)
    copy.chmod(0o600)
    subprocess.run(
        ["ssh-keygen", "-q", "-p", "-N", "Passphrase-9", "-P", "", "-f", str(copy)],
        check=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return copy


def test_an_encrypted_key_is_used_through_the_running_ssh_agent(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options, agent: dict[str, str]
) -> None:
    subprocess.run(
        ["ssh-add", "-q", str(ssh_fleet.client_key)],
        env={**os.environ, **agent},
        check=True,
        timeout=30,
        capture_output=True,
    )
    report, _ = _audit_with_encrypted_key(ssh_fleet, tmp_path, ssh_options)
    assert _reached(report), report.hosts[0].reason


def test_an_encrypted_key_with_an_agent_that_lacks_it_is_a_clear_per_host_reason(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options, agent: dict[str, str]
) -> None:
    report, encrypted = _audit_with_encrypted_key(ssh_fleet, tmp_path, ssh_options)
    reason = report.hosts[0].reason or ""
    assert report.hosts[0].status is Status.UNREACHABLE
    assert f"private key {encrypted} is encrypted" in reason
    assert "ssh-agent offered no key the host accepts" in reason
    assert "TypeError" not in reason


def test_an_encrypted_key_without_an_agent_says_to_load_it(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    report, encrypted = _audit_with_encrypted_key(ssh_fleet, tmp_path, ssh_options)
    reason = report.hosts[0].reason or ""
    assert report.hosts[0].status is Status.UNREACHABLE
    assert f"private key {encrypted} is encrypted (passphrase-protected)" in reason
    assert f"ssh-add {encrypted}" in reason
    assert "TypeError" not in reason


# --- ssh_config Include and ProxyJump ------------------------------------------------------------


def test_ssh_config_include_is_honoured(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alias is defined only in an included file (relative to ~/.ssh, with a glob)."""
    host = ssh_fleet.hosts[0]
    home = tmp_path / "home"
    (home / ".ssh" / "conf.d").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    (home / ".ssh" / "conf.d" / "fleet.conf").write_text(
        f"Host included-alias\n  HostName {host.address}\n  Port {host.port}\n"
        f"  User {ssh_fleet.user}\n  IdentityFile {ssh_fleet.client_key}\n"
    )
    config = home / ".ssh" / "config"
    config.write_text("Include conf.d/*.conf\n")
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    included-alias: {}\n")
    report = validate(
        "included-alias",
        CHECKS,
        inventory=str(inventory),
        options=ssh_options(ssh_config=str(config)),
        profile_overrides={"app_root": str(host.app_root)},
    )
    assert _reached(report), report.hosts[0].reason


@pytest.fixture(scope="module")
def jump_fleet() -> Iterator[LoopbackFleet]:
    """h0000 is the jump host (logs its direct-tcpip requests), h0001 the audited host."""
    with start_fleet(2, sshd_options=["LogLevel DEBUG1"]) as fleet:
        yield fleet


def test_proxy_jump_connects_through_the_jump_hosts_connection(
    tmp_path: Path, jump_fleet: LoopbackFleet
) -> None:
    jump, target = jump_fleet.hosts
    config = tmp_path / "ssh_config"
    config.write_text(f"Host {target.address}\n  ProxyJump root@{jump.address}:{jump.port}\n")
    options = RunOptions(
        known_hosts=str(jump_fleet.known_hosts),
        ssh_config=str(config),
        connect_timeout=5.0,
        progress=False,
    )
    start = jump.log.stat().st_size  # the module's log: count from here
    report = _audit(jump_fleet, options, target)
    assert _reached(report), report.hosts[0].reason

    def hopped() -> bool:  # the hop went through h0000 (its log line written asynchronously)
        return f"target {target.address} port {target.port}" in jump.log_since(start)

    deadline = time.monotonic() + 10
    while not hopped() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hopped()


def test_an_unreachable_jump_host_is_a_clear_reason_and_no_direct_connection(
    tmp_path: Path, jump_fleet: LoopbackFleet
) -> None:
    target = jump_fleet.hosts[1]
    closed = closed_port()
    config = tmp_path / "ssh_config"
    config.write_text(f"Host {target.address}\n  ProxyJump 127.0.0.1:{closed}\n")
    logins = target.accepted_logins()
    options = RunOptions(
        known_hosts=str(jump_fleet.known_hosts), ssh_config=str(config), connect_timeout=5.0
    )
    report = _audit(jump_fleet, options, target)
    reason = report.hosts[0].reason or ""
    assert report.hosts[0].status is Status.UNREACHABLE
    assert f"jump host 127.0.0.1 (127.0.0.1:{closed}) of {target.name}" in reason
    assert "connection refused" in reason
    assert target.accepted_logins() == logins  # never connected directly


def _jump_inventory(tmp_path: Path, fleet: LoopbackFleet, host: LoopbackHost, args: str) -> str:
    entry = host_entry(fleet, host, ansible_ssh_common_args=args)
    return str(write_inventory(tmp_path / "inv.yml", {host.name: entry}))


def test_a_jump_host_in_ansible_ssh_common_args_is_used_as_ansible_uses_it(
    tmp_path: Path, jump_fleet: LoopbackFleet
) -> None:
    """``ansible_ssh_common_args: -o ProxyJump=...`` is where Ansible users put their
    bastion; readiness ignored it and connected straight to the host."""
    jump, target = jump_fleet.hosts
    options = RunOptions(
        known_hosts=str(jump_fleet.known_hosts), connect_timeout=5.0, progress=False
    )
    start = jump.log.stat().st_size
    inventory = _jump_inventory(
        tmp_path,
        jump_fleet,
        target,
        f"-o StrictHostKeyChecking=no -o 'ProxyJump=root@{jump.address}:{jump.port}'",
    )
    report = validate(target.name, CHECKS, inventory=inventory, options=options)
    assert _reached(report), report.hosts[0].reason

    def hopped() -> bool:
        return f"target {target.address} port {target.port}" in jump.log_since(start)

    deadline = time.monotonic() + 10
    while not hopped() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hopped()


@pytest.mark.parametrize("form", ["-J 127.0.0.1:{port}", "-oProxyJump=127.0.0.1:{port}"])
def test_an_unreachable_jump_host_from_ssh_args_is_never_bypassed(
    tmp_path: Path, jump_fleet: LoopbackFleet, form: str
) -> None:
    target = jump_fleet.hosts[1]
    closed = closed_port()
    inventory = _jump_inventory(tmp_path, jump_fleet, target, form.format(port=closed))
    logins = target.accepted_logins()
    options = RunOptions(known_hosts=str(jump_fleet.known_hosts), connect_timeout=5.0)
    report = validate(target.name, CHECKS, inventory=inventory, options=options)
    reason = report.hosts[0].reason or ""
    assert report.hosts[0].status is Status.UNREACHABLE
    assert f"jump host 127.0.0.1 (127.0.0.1:{closed}) of {target.name}" in reason
    assert target.accepted_logins() == logins  # never connected directly


def test_a_proxy_command_in_ssh_args_is_refused_never_connected_directly(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    host = ssh_fleet.hosts[0]
    inventory = _jump_inventory(tmp_path, ssh_fleet, host, "-o ProxyCommand='nc bastion %p'")
    logins = host.accepted_logins()
    report = validate(host.name, CHECKS, inventory=inventory, options=ssh_options())
    reason = report.hosts[0].reason or ""
    assert report.hosts[0].status is Status.UNREACHABLE
    assert "ProxyCommand (nc bastion %p)" in reason and "does not run" in reason
    assert host.accepted_logins() == logins


def test_proxy_command_is_refused_up_front_never_connected_directly(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    host = ssh_fleet.hosts[0]
    config = tmp_path / "ssh_config"
    config.write_text(f"Host {host.address}\n  ProxyCommand nc bastion.example %p\n")
    logins = host.accepted_logins()
    report = _audit(ssh_fleet, ssh_options(ssh_config=str(config)))
    reason = report.hosts[0].reason or ""
    assert report.hosts[0].status is Status.UNREACHABLE
    assert "ProxyCommand (nc bastion.example" in reason
    assert "does not run" in reason
    assert host.accepted_logins() == logins


def test_an_ipv6_host_is_rendered_in_brackets(tmp_path: Path, ssh_options: Options) -> None:
    """``::1`` port N is ``[::1]:N`` in the report and its reason, never ``::1:N``."""
    port = closed_port("::1")
    inventory = tmp_path / "inv.yml"
    inventory.write_text(
        f"all:\n  hosts:\n    v6:\n      ansible_host: '::1'\n      ansible_port: {port}\n"
    )
    report = validate("v6", CHECKS, inventory=str(inventory), options=ssh_options())
    host = report.hosts[0]
    assert host.status is Status.UNREACHABLE
    assert host.address == f"[::1]:{port}"
    assert f"connection refused by [::1]:{port}" in (host.reason or "")
    assert f"::1:{port}" not in (host.reason or "").replace(f"[::1]:{port}", "")


@pytest.mark.parametrize("connection", ["docker", "community.docker.docker", "winrm"])
def test_a_host_ansible_reaches_another_way_is_never_logged_into_over_ssh(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options, connection: str
) -> None:
    """``ansible_connection: docker`` names a container; its name (or ansible_host) may
    resolve to another machine, which readiness audited over ssh instead."""
    host = ssh_fleet.hosts[0]
    entry = host_entry(ssh_fleet, host, ansible_connection=connection)
    inventory = str(write_inventory(tmp_path / "inv.yml", {host.name: entry}))
    logins = host.accepted_logins()
    report = validate(host.name, CHECKS, inventory=inventory, options=ssh_options())
    reason = report.hosts[0].reason or ""
    assert report.hosts[0].status is Status.UNREACHABLE
    assert f"uses ansible_connection={connection}" in reason
    assert host.accepted_logins() == logins


@pytest.mark.parametrize(
    ("variable", "what"),
    [
        ("ansible_user", "user"),
        ("ansible_ssh_private_key_file", "key file"),
        ("ansible_host", "address"),
    ],
)
def test_a_login_setting_that_is_a_jinja_template_is_never_used_as_written(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options, variable: str, what: str
) -> None:
    """Ansible renders ``{{ ... }}`` in ansible_host/ansible_user/the key file; readiness
    does not, and logged in with the text as written (a wildcard DNS record resolves
    '{{ inventory_hostname }}.example.com' to some other machine). Now UNREACHABLE, saying
    which setting, with no login attempted."""
    host = ssh_fleet.hosts[0]
    entry = host_entry(ssh_fleet, host, **{variable: "{{ lookup('env', 'X') }}"})
    inventory = str(write_inventory(tmp_path / "inv.yml", {host.name: entry}))
    logins = host.accepted_logins()
    report = validate(host.name, CHECKS, inventory=inventory, options=ssh_options())
    reason = report.hosts[0].reason or ""
    assert report.hosts[0].status is Status.UNREACHABLE
    assert f"the {what} of {host.name}" in reason and "is a Jinja template" in reason
    assert host.accepted_logins() == logins


def test_an_ssh_connection_name_is_still_ssh(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    host = ssh_fleet.hosts[0]
    entry = host_entry(ssh_fleet, host, ansible_connection="ansible.builtin.ssh")
    inventory = str(write_inventory(tmp_path / "inv.yml", {host.name: entry}))
    report = validate(host.name, CHECKS, inventory=inventory, options=ssh_options())
    assert _reached(report), report.hosts[0].reason


def test_a_jump_host_without_a_user_is_logged_in_to_as_ssh_does(
    tmp_path: Path, jump_fleet: LoopbackFleet
) -> None:
    """``ProxyJump bastion`` with no user: ssh -J runs ``ssh -W ... bastion``, which logs in
    as the bastion's own ``User`` or else the local user, never as the destination's user
    (bastion accounts are personal, target accounts are deploy accounts). readiness logged
    in to the jump host as the inventory's ``ansible_user`` of the destination, so every
    host Ansible reaches through its bastion was UNREACHABLE. Compared with the real ssh,
    seen from the jump host's sshd log."""
    jump, target = jump_fleet.hosts
    local = getpass.getuser()
    known = jump_fleet.known_hosts
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host {target.address}\n  ProxyJump {jump.address}:{jump.port}\n"
        f"Host *\n  UserKnownHostsFile {known}\n  IdentityFile {jump_fleet.client_key}\n"
        "  BatchMode yes\n  GlobalKnownHostsFile /dev/null\n"
    )
    start = jump.log.stat().st_size
    ssh = shutil.which("ssh")
    assert ssh is not None
    subprocess.run(
        [ssh, "-F", str(config), "-p", str(target.port), "-l", "readiness-nosuch",
         target.address, "true"],
        capture_output=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert f"Accepted publickey for {local} " in jump.log_since(start)  # the reference
    start = jump.log.stat().st_size
    entry = host_entry(jump_fleet, target, ansible_user="readiness-nosuch")
    inventory = write_inventory(tmp_path / "inv.yml", {target.name: entry})
    options = RunOptions(
        known_hosts=str(known), ssh_config=str(config), connect_timeout=5.0, progress=False
    )
    report = validate(target.name, CHECKS, inventory=str(inventory), options=options)
    seen = jump.log_since(start)
    assert f"Accepted publickey for {local} " in seen, seen[-2000:]
    assert "readiness-nosuch" not in seen
    reason = report.hosts[0].reason or ""
    assert f"authentication failed for readiness-nosuch@{target.address}" in reason
    assert "jump host" not in reason
