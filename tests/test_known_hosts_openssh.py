"""known_hosts read as OpenSSH reads it: readiness's key lookup against ``ssh-keygen -F``.

Names, ``[host]:port`` forms, wildcards (``*``, ``?``), negation (``!``) on one line, several
names per line, upper-case names (ssh matches host names case-insensitively), and the same
file hashed by ``ssh-keygen -H``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from readiness.ssh import KnownHosts

NAMES = (
    "a.example.com", "bad.example.com", "example.com", "web1", "web12", "[web1]:2222", "db1",
    "[db1]:2222", "webx", "WEBX", "Web1", "10.0.0.5", "10.0.0.15", "[10.0.0.5]:22", "other",
    "[::1]:2200", "::1",
)  # fmt: skip


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is missing (apt-get install openssh-client)"
    return path


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    key = tmp_path / "key"
    subprocess.run(
        [_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        check=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    public = " ".join(key.with_suffix(".pub").read_text(encoding="utf-8").split()[:2])
    lines = [
        "*.example.com,!bad.example.com",
        "web?,[db1]:2222",
        "WEBX",
        "10.0.0.?",
        "[::1]:2200",
        "# a comment",
    ]
    path = tmp_path / "known_hosts"
    path.write_text(
        "\n".join(f"{line} {public}" if not line.startswith("#") else line for line in lines)
        + "\n",
        encoding="utf-8",
    )
    return path


def _ssh_finds(path: Path, name: str) -> bool:
    done = subprocess.run(
        [_tool("ssh-keygen"), "-F", name, "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode == 0 and bool(done.stdout.strip())


@pytest.mark.parametrize("hashed", [False, True], ids=["plain", "hashed"])
def test_a_name_has_a_key_where_ssh_finds_one(known_hosts: Path, hashed: bool) -> None:
    if hashed:  # names hashed; pattern lines stay as written (ssh-keygen cannot hash them)
        subprocess.run(
            [_tool("ssh-keygen"), "-H", "-f", str(known_hosts)],
            capture_output=True,
            check=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    known = KnownHosts(known_hosts)
    assert not known.problems
    found = {name: bool(known.keys_for(name)) for name in NAMES}
    assert found == {name: _ssh_finds(known_hosts, name) for name in NAMES}
    assert found["a.example.com"] and not found["bad.example.com"]  # both sides of the line
