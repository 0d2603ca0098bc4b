"""An explicit known_hosts file that cannot be used is refused before any host is contacted;
the default ~/.ssh/known_hosts may be missing, and trust on first use may create the file."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from readiness.errors import UsageError
from readiness.loopback import LoopbackFleet
from readiness.options import check_known_hosts
from tests.services.sshd import write_inventory

REPO = Path(__file__).resolve().parent.parent
READINESS = str(REPO / ".venv" / "bin" / "readiness")


def _readiness(*argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [READINESS, *argv, "--store", "none", "--quiet"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(home)},
        check=False,
    )


def test_an_explicit_known_hosts_file_is_checked_and_the_default_is_not(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "known_hosts"
    with pytest.raises(UsageError, match=r"no such file, and host keys are verified against it"):
        check_known_hosts(str(missing), accept_new=False)
    with pytest.raises(UsageError, match=r"is a directory"):
        check_known_hosts(str(tmp_path), accept_new=True)
    check_known_hosts(str(missing), accept_new=True)  # trust on first use creates it
    check_known_hosts(None, accept_new=False)  # the default may be missing
    check_known_hosts("", accept_new=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    check_known_hosts(str(blocker), accept_new=False)  # exists, readable (even empty)
    with pytest.raises(
        UsageError,
        match=r"\(no such file, to be created\): cannot write: .*a-file is not a directory$",
    ):
        check_known_hosts(str(blocker / "sub" / "known_hosts"), accept_new=True)
    assert not missing.parent.exists()  # checking creates nothing


def test_a_missing_known_hosts_file_is_one_line_exit_2_before_any_host_is_contacted(
    tmp_path: Path,
) -> None:
    """It used to contact every host and report each as an unknown key naming the file."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    try:
        port = listener.getsockname()[1]
        inv = write_inventory(
            tmp_path / "inv.yml", {"web1": {"ansible_host": "127.0.0.1", "ansible_port": port}}
        )
        missing = tmp_path / "nowhere" / "known_hosts"
        for flags in ((), ("--format", "json")):
            res = _readiness(
                "validate", "--hosts", "web1", "-i", str(inv), "--known-hosts", str(missing),
                *flags, home=tmp_path,
            )  # fmt: skip
            assert res.returncode == 2 and res.stdout == "", res
            assert res.stderr == (
                f"readiness: known_hosts file {missing}: no such file, and host keys are "
                "verified against it: create it (ssh-keyscan HOST >> FILE, after checking "
                "the keys) or pass --accept-new-host-keys to record keys on first use\n"
            )
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()
    assert not missing.parent.exists()


def test_trust_on_first_use_creates_a_missing_file_and_the_default_may_be_missing(
    tmp_path: Path, ssh_fleet: LoopbackFleet
) -> None:
    host = ssh_fleet.hosts[0]
    checks = ("--check", "environment,configuration")
    inv = ("--hosts", host.name, "-i", str(ssh_fleet.inventory), *checks)
    new = tmp_path / "new" / "known_hosts"
    res = _readiness("validate", *inv, "--known-hosts", str(new), "--accept-new-host-keys",
                     home=tmp_path)  # fmt: skip
    assert res.returncode == 0, res
    assert new.read_text() == f"{host.known_hosts_name} {host.host_key_line}\n"
    # No --known-hosts and no ~/.ssh/known_hosts: as documented, the host is unreachable
    # with its unknown key and the ssh-keyscan line, not a usage error.
    res = _readiness("validate", *inv, "--format", "json", home=tmp_path)
    assert res.returncode == 1, res
    assert "unknown host key" in res.stdout and str(tmp_path / ".ssh" / "known_hosts") in res.stdout
    assert not (tmp_path / ".ssh").exists()


def test_a_missing_known_hosts_file_does_not_stop_a_run_that_selects_only_local_hosts(
    tmp_path: Path,
) -> None:
    """A local run makes no SSH connection; the file used to stop it with exit 2 anyway
    (a configuration naming a shared known_hosts broke `--hosts local` on a fresh machine).
    A selection with any remote host is still refused before it is contacted."""
    inv = write_inventory(
        tmp_path / "inv.yml",
        {
            "box": {"ansible_connection": "local"},
            "web1": {"ansible_host": "127.0.0.1", "ansible_port": 9},
        },
    )
    missing = tmp_path / "nowhere" / "known_hosts"
    common = ("-i", str(inv), "--known-hosts", str(missing), "--check", "environment")
    res = _readiness("validate", "--hosts", "box", *common, home=tmp_path)
    assert "known_hosts" not in res.stderr + res.stdout, res
    assert res.returncode in (0, 1), res  # audited: the verdict is the host's own
    refused = _readiness("validate", "--hosts", "box,web1", *common, home=tmp_path)
    assert refused.returncode == 2 and refused.stdout == "", refused
    assert "no such file, and host keys are verified" in refused.stderr
    assert not missing.parent.exists()
