"""``-o`` options of an inventory's ssh arguments, refused where OpenSSH refuses them.

Differential: every keyword the tables know (and a few it does not) with a generated set
of values goes to the real ``ssh -G -o KEY=VALUE`` and to :func:`option_error`; they must
agree, except that readiness does not check the inside of values it never uses (algorithm
lists, forwarding specs: ``UNCHECKED``) and may accept some of those that ssh refuses.
Then through the command a user types: ``-o 'User=c d'`` stopped nothing and readiness
logged in as the user ``c d``; now it is one line on stderr and exit 2, nothing contacted.
"""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from readiness.ssh_options import (
    _INTEGERS,
    _TIMES,
    _WORDS,
    KEYWORDS,
    host_refused,
    option_error,
    port_error,
    user_refused,
)
from tests.services.cli import run_cli

VALUES = (
    *("", "x", "a b", '"a b"', "yes", "no", "YES", "ask", "1", "0", "-1", "1.5", "5m"),
    *("abc", "x'y", '"x', "65535", "65536", "+22", "0x10", "-x", "a;b", "1 2", "yes no"),
    *("a@b", "a\\b", "é", "u@h:22", "ssh://u@h:2", "[::1]:22", "a,b", "-x,a", "none", "1h30m"),
)
CHECKED = {*_WORDS, *_TIMES, *_INTEGERS, "port", "user", "hostname", "identityfile"}
CHECKED |= {"hostkeyalias", "proxyjump", "proxycommand"}


def _ssh_refuses(text: str) -> bool:
    done = subprocess.run(
        ["ssh", "-F", "/dev/null", "-G", "-o", text, "x"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=10,
        check=False,
    )
    marks = ("command-line", "percent_expand", "invalid characters", "Bad port", "parse_jump")
    return done.returncode != 0 and any(m in done.stderr for m in marks)


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
def test_every_keyword_and_value_is_refused_exactly_where_ssh_refuses_it() -> None:
    disagreements, compared = [], 0
    for keyword in sorted(KEYWORDS | {"bogus", "host", "match", "include", "usr"}):
        for value in VALUES:
            for text in (f"{keyword}={value}", f"{keyword.upper()} {value}"):
                ssh, ours = _ssh_refuses(text), option_error(text)
                compared += 1
                if ssh == (ours is not None):
                    continue
                if keyword not in CHECKED and ssh and ours is None:
                    continue  # the inside of a value readiness never uses
                disagreements.append((text, ssh, ours))
    assert compared > 5000
    assert not disagreements, disagreements[:20]


@pytest.mark.parametrize(
    "args",
    [
        "-o 'User=c d'",
        "-o User=",
        "-o 'HostName=a b'",
        "-o Bogus=1",
        "-o Port=70000",
        "-p http",
        "-o StrictHostKeyChecking=maybe",
        "-o ConnectTimeout=1.5",
        "-o 'User=\"x'",
        "-o User=-oProxyCommand=x",
        "-o ProxyJump=-x",
        "-J -oProxyCommand=x",
        "-J 'a;b'",
        "-l 'a;b'",
        "-l -x",
    ],
)
def test_an_ssh_option_ssh_refuses_stops_the_inventory_with_one_line(
    tmp_path: Path, args: str
) -> None:
    inventory = tmp_path / "inv.ini"
    with socket.socket() as listener:  # where the host's login would go: never reached
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        inventory.write_text(
            f"web1 ansible_host=127.0.0.1 ansible_port={port} "
            f"ansible_ssh_common_args={shlex.quote(args)}\n"
        )
        done = run_cli("validate", "-i", str(inventory), "--hosts", "all", "-c", "environment")
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            pass
        else:
            conn.close()
            pytest.fail(f"{args}: the host was contacted")
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "web1" in lines[0] and "ansible_ssh_common_args" in lines[0], lines
    assert "Traceback" not in done.stderr and done.stdout == ""


def _ssh_port(value: str) -> int | None:
    """The port ``ssh -G -p VALUE`` settles on, or None when it refuses the value."""
    done = subprocess.run(
        ["ssh", "-F", "/dev/null", "-G", "-p", value, "x"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=10,
        check=False,
    )
    if done.returncode != 0:
        assert "Bad port" in done.stderr, done.stderr
        return None
    return int(next(line for line in done.stdout.splitlines() if line.startswith("port "))[5:])


PORTS = ["22", "+22", "-22", "022", "00022", "0x16", "0", "+0", "-0", "00", "1", "65535"]
PORTS += ["65536", "099999", "0065535", "9" * 30, "+", "-", "", "2 2", "+ 22", "++22", "22a"]
PORTS += [f"{c}22" for c in map(chr, range(1, 128)) if not c.isdigit()]
PORTS += [f"22{c}" for c in map(chr, range(1, 128)) if not c.isdigit()]
PORTS += [" \t+022", "\u00a022", "\u0662\u0662"]


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
def test_a_port_is_refused_exactly_where_ssh_refuses_it() -> None:
    """``-p +22`` (and `` 22``, ``022``) were refused although ``ssh -G -p +22`` takes it
    as 22: every sign, white space and character around a port, against the real ssh."""
    disagreements = []
    for value in PORTS:
        ssh, ours = _ssh_port(value), port_error(value)
        if (ssh is None) != ours:
            disagreements.append((value, ssh, ours))
    assert not disagreements, disagreements


@pytest.mark.parametrize("port", ["+22", " 22", "\t022"])
def test_a_port_ssh_takes_loads_the_inventory(tmp_path: Path, port: str) -> None:
    """The user's side: the inventory loads and the run goes on to the host (exit 1,
    unreachable: nothing listens there), not one line and exit 2."""
    inventory = tmp_path / "inv.ini"
    args = shlex.quote(f"-p {shlex.quote(port)}")
    with socket.socket() as listener:  # a port of ours, closed: nothing answers there
        listener.bind(("127.0.0.1", 0))
        free = listener.getsockname()[1]
    inventory.write_text(
        f"web1 ansible_host=127.0.0.1 ansible_port={free} ansible_ssh_common_args={args}\n"
    )
    done = run_cli(
        "validate", "-i", str(inventory), "--hosts", "all", "-c", "environment",
        "--connect-timeout", "2",
    )  # fmt: skip
    assert "not a port number" not in done.stderr, done.stderr
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Unreachable: 1" in done.stdout, done.stdout


def _ssh_says_invalid(argv: list[str]) -> bool:
    done = subprocess.run(
        ["ssh", "-F", "/dev/null", "-G", *argv],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=10,
        check=False,
    )
    return "contains invalid characters" in done.stderr


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
def test_host_and_user_names_are_refused_exactly_where_ssh_refuses_them() -> None:
    """Every ASCII character (and one beyond) inside a name and at its start, against the
    real ``ssh -G -- HOST`` and ``ssh -G -l USER x``."""
    names = [f"a{chr(c)}b" for c in range(1, 128)] + ["é", "-x", "x-", "[::1]", "a.b-c"]
    names += [f"{chr(c)}a" for c in range(33, 127)]
    disagreements = []
    for name in names:
        if "@" in name:  # ssh reads user@host in a destination: not one name
            continue
        if host_refused(name) != _ssh_says_invalid(["--", name]):
            disagreements.append(("host", name))
        if user_refused(name) != _ssh_says_invalid(["-l", name, "x"]):
            disagreements.append(("user", name))
    assert not disagreements, disagreements


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ansible_host", "a\u001b[31mb"),
        ("ansible_host", "a b"),
        ("ansible_host", "-oProxyCommand=x"),
        ("ansible_host", "db;id"),
        ("ansible_user", "a\nb"),
        ("ansible_user", "-x"),
    ],
)
def test_an_address_or_user_ssh_refuses_stops_the_inventory(
    tmp_path: Path, variable: str, value: str
) -> None:
    """Before, ``readiness inventory`` printed the ESC raw (a terminal escape from the
    inventory) and validate connected to the text as written."""
    inventory = tmp_path / "inv.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"w1": {variable: value}}}}))
    done = run_cli("inventory", "-i", str(inventory), "--hosts", "all")
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"host 'w1': {variable} {value!r}" in lines[0], lines
    assert "\x1b" not in done.stdout + done.stderr and done.stdout == ""
