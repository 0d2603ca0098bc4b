"""Running real ansible-core programs as subprocesses (never imported: ansible-core is GPL).

Every call runs from an empty directory with no ansible.cfg, with a private HOME, so nothing
of the developer's Ansible set-up changes what Ansible reads.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
CALL_TIMEOUT_S = 60


def require_ansible() -> None:
    """A missing ansible-core fails the test (CI installs it with the dev extra)."""
    for tool in ("ansible", "ansible-inventory", "ansible-console"):
        if not (BIN / tool).exists():
            pytest.fail(f"{tool} is not installed: pip install -e '.[dev]' (ansible-core)")


def ansible_env(home: Path) -> dict[str, str]:
    return {
        "PATH": f"{BIN}{os.pathsep}/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANSIBLE_HOME": str(home / ".ansible"),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
    }


def run_ansible(
    args: Sequence[str],
    home: Path,
    *,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    cwd = home / "cwd"  # empty: no ansible.cfg, no playbook-adjacent group_vars
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        list(args),
        cwd=cwd,
        env={**ansible_env(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT_S,
        check=False,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
    )


# ansible-console prints its prompt "USER@PATTERN (COUNT)[f:FORKS]$ " before reading each
# command; the user is set to this name so that a prompt cannot be mistaken for a host.
_CONSOLE_USER = "rdnsprobe"
_PROMPT = re.compile(rf"{_CONSOLE_USER}@(?P<cwd>.*?) \((?P<count>\d+)\)\[f:\d+\][$#] ")
_NO_MATCH = "no host matched"
_EMPTY_LIMIT = "leaves us with no hosts to target"


def console_hosts(
    inventory: Sequence[str], patterns: Sequence[str], home: Path, limit: str | None = None
) -> dict[str, list[str] | str]:
    """What ``ansible PATTERN --list-hosts [--limit LIMIT]`` selects for each pattern, in
    Ansible's order: one ``ansible-console`` per batch (``cd PATTERN`` then ``list``), since
    Ansible's start-up costs far more than a pattern. A pattern Ansible fails on (an index out
    of range) maps to its error text; the batch goes on after it in a new console."""
    answers: dict[str, list[str] | str] = {}
    pending = list(dict.fromkeys(patterns))
    for _ in range(len(pending) + 1):  # each round settles at least one pattern
        if not pending:
            break
        args = [str(BIN / "ansible-console"), *inventory, "-u", _CONSOLE_USER, "all"]
        if limit is not None:
            args += ["--limit", limit]
        script = "".join(f"cd {pattern}\nlist\n" for pattern in pending)
        done = run_ansible(args, home, stdin=script)
        if _EMPTY_LIMIT in done.stderr:  # the limit leaves no host of 'all': none anywhere
            answers.update({pattern: [] for pattern in pending})
            break
        settled = _parse_console(done.stdout, pending)
        answers.update(settled)
        pending = pending[len(settled) :]
        if pending:
            if done.returncode == 0:
                raise AssertionError(f"ansible-console stopped early: {done.stdout[-400:]}")
            answers[pending.pop(0)] = f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
    return answers


def _parse_console(stdout: str, patterns: Sequence[str]) -> dict[str, list[str] | str]:
    """The answers of the patterns the console got through: command k's output is the text
    between prompt k and prompt k+1 (commands alternate ``cd P``, ``list``)."""
    prompts = list(_PROMPT.finditer(stdout))
    outputs = [
        stdout[prompt.end() : prompts[k + 1].start()] for k, prompt in enumerate(prompts[:-1])
    ]
    answers: dict[str, list[str] | str] = {}
    for index, pattern in enumerate(patterns):
        if len(outputs) < 2 * index + 2:
            break
        moved, listed = outputs[2 * index], outputs[2 * index + 1]
        if _NO_MATCH in moved:
            answers[pattern] = []
            continue
        after_cd = prompts[2 * index + 1]
        hosts = [line.strip() for line in listed.splitlines() if line.strip()]
        moved_to = "all" if pattern == "*" else pattern  # the console's own spelling of '*'
        assert after_cd["cwd"] == moved_to, f"console did not move to {pattern!r}: {moved!r}"
        assert int(after_cd["count"]) == len(hosts), f"console count for {pattern!r}"
        answers[pattern] = hosts
    return answers


_SSH_EXEC = re.compile(r"^<[^>]*> SSH: EXEC (?P<command>.*)$", re.MULTILINE)
_MARK = "RDNS_HOST="


def connection_settings(inventory: Sequence[str], home: Path) -> dict[str, dict[str, str]]:
    """The address, port, user and key file Ansible's ssh connection uses for every host:
    ``ansible all -m raw -vvv`` with ``/bin/false`` as the ssh program (nothing reaches the
    network), read from the ssh command line it logs. Each command carries the inventory
    name in an extra ``-o SetEnv`` option, so hosts sharing an address stay apart."""
    done = run_ansible(
        [
            str(BIN / "ansible"),
            "all",
            *inventory,
            "-m",
            "raw",  # one ssh command per host (ping would try a temp directory first)
            "-a",
            "true",
            "-vvv",
            "-f",
            "4",
            "-e",
            f"ansible_ssh_extra_args='-o SetEnv={_MARK}{{{{ inventory_hostname }}}}'",
        ],
        home,
        env={"ANSIBLE_SSH_EXECUTABLE": "/bin/false", "ANSIBLE_HOST_KEY_CHECKING": "False"},
    )
    settings: dict[str, dict[str, str]] = {}
    for match in _SSH_EXEC.finditer(done.stdout):
        words = shlex.split(match["command"])
        options = {
            key: value.strip('"')
            for flag, option in itertools.pairwise(words)
            if flag == "-o"
            for key, _, value in [option.partition("=")]
        }
        name = options.get("SetEnv", "").partition(_MARK)[2]
        if not name or name in settings:
            continue
        settings[name] = {
            "address": _address(words),
            **{key: options[key] for key in ("Port", "User", "IdentityFile") if key in options},
        }
    if not settings:
        raise AssertionError(f"no ssh command logged: {done.stdout[-400:]} {done.stderr[-400:]}")
    return settings


def _address(words: list[str]) -> str:
    """The destination: the first word after the options (the remote command follows it)."""
    index = 1
    while index < len(words) and words[index].startswith("-"):
        index += 2 if words[index] in ("-o", "-i", "-p", "-l", "-F") else 1
    return words[index]
