"""An inventory's secret values never leak through a host's reason (validate, remediate,
``readiness inventory``, nagios), whether or not their text has a recognisable shape.

A host's ssh arguments end up in its "not connected" reason, and Ansible users put jump-host
passwords there: ``-o ProxyCommand='sshpass -p … ssh -W %h:%p jump'``. readiness refuses
ProxyCommand and says why, quoting it. Before, ``readiness inventory`` and ``remediate`` printed
that reason unmasked, and every command printed a password whose text had no known shape
(here the value of ``ansible_ssh_pass`` inside the command) as it was.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from readiness.inventory.secrets import secret_values
from tests.cli.test_contract import TASKS
from tests.services.cli import run_cli

SHAPED = "Shaped-Canary-4711"  # after `sshpass -p`: a shape the patterns know
BARE = "Bare-Canary-0815"  # the value of ansible_ssh_pass, inside a command of no known shape
NUMERIC = 99188277  # a YAML number under a secret name is a secret too
NESTED = "Nested-Canary-3141"
CANARIES = (SHAPED, BARE, str(NUMERIC), NESTED)


def _commands() -> dict[str, list[str]]:
    """Every task that audits an inventory's hosts (invoke's parser says: it takes --hosts
    and --inventory), in text and, where it has --format, in JSON."""
    commands: dict[str, list[str]] = {}
    for name, ctx in TASKS.items():
        options = {a.name for a in ctx.args.values()}
        if not {"hosts", "inventory"} <= options:
            continue
        extra = ["--max-runs", "1", "--listen", "127.0.0.1:0"] if "max_runs" in options else []
        commands[f"{name} text"] = [name, *extra]
        if "format" in options:
            commands[f"{name} json"] = [name, *extra, "--format", "json"]
        if "vars" in options:
            commands[f"{name} vars"] = [name, "--vars"]
    return commands


COMMANDS = _commands()


def _inventory(tmp_path: Path) -> Path:
    hosts = {
        "shaped": {
            "ansible_host": "127.0.0.9",
            "ansible_ssh_common_args": f"-o ProxyCommand='sshpass -p {SHAPED} ssh -W %h:%p j'",
        },
        "bare": {
            "ansible_host": "127.0.0.10",
            "ansible_ssh_pass": BARE,
            "ansible_become_password": NUMERIC,
            "jump": {"login": "ops", "secret": NESTED},
            "ansible_ssh_common_args": f"-o ProxyCommand='nc-auth {BARE} {NUMERIC} {NESTED} %h'",
        },
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": hosts}}}}))
    return path


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_no_inventory_secret_reaches_any_output_or_saved_file(tmp_path: Path, name: str) -> None:
    inventory = _inventory(tmp_path)
    store = tmp_path / "history.sqlite3"
    report = tmp_path / "report.json"
    task = COMMANDS[name][0]
    options = {a.name for a in TASKS[task].args.values()}
    args = [*COMMANDS[name], "-i", str(inventory), "--hosts", "fleet"]
    if "store" in options:
        args += ["--store", str(store)]
    if "report" in options:
        args += ["--report", f"json:{report}"]
    if "known_hosts" in options:  # an empty one: no host is ever connected to
        known_hosts = tmp_path / "known_hosts"
        known_hosts.touch()
        args += ["--known-hosts", str(known_hosts)]
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode in (0, 1, 2, 3), (done.returncode, done.stdout, done.stderr)
    shown = done.stdout + done.stderr
    for canary in CANARIES:
        assert canary not in shown, (canary, shown)
    saved = {p: _saved_text(p) for p in tmp_path.rglob("*") if p.is_file() and p != inventory}
    for path, text in saved.items():
        for canary in CANARIES:
            assert canary not in text, (canary, path)
    # the reason was really shown or kept (watch keeps it in its store): not an early refusal
    assert "ProxyCommand" in shown + "".join(saved.values()), shown


def _saved_text(path: Path) -> str:
    if path.suffix == ".sqlite3":
        with sqlite3.connect(path) as db:
            return "\n".join(db.iterdump())
    return path.read_bytes().decode(errors="replace")


def test_secret_values_are_the_values_under_secret_names_at_any_depth() -> None:
    variables = {
        "ansible_password": "pw-one",
        "ansible_become_pass": 1234,
        "vault_db": {"user": "app", "x": ["pw-two"]},
        "app": {"db": {"password": "pw-three", "host": "db1"}},
        "ansible_ssh_private_key_file": "/keys/id",  # a path to a secret, not one
        "ansible_user": "deploy",
        "enabled_token": None,
    }
    assert sorted(secret_values(variables)) == ["1234", "app", "pw-one", "pw-three", "pw-two"]


@pytest.mark.parametrize(
    ("text", "line", "shown"),
    [
        # an unterminated quote: shlex's rest of the line is the password
        ('[web]\nw1 ansible_password="Ini-Canary-1\n', 2, "'w1 ansible_password…'"),
        # a YAML habit in an INI [vars] section
        ("[web]\nw1\n[web:vars]\nansible_become_pass: Ini-Canary-1\n", 4, "ansible_become_pass…"),
        # a space after '=': the stray word is the password itself
        ("[web]\nw1 ansible_ssh_pass= Ini-Canary-1\n", 2, "(a space after '='?)"),
    ],
)
@pytest.mark.parametrize("command", ["inventory", "validate"])
def test_an_ini_error_never_quotes_the_secret_on_its_line(
    tmp_path: Path, text: str, line: int, shown: str, command: str
) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(text)
    done = run_cli(command, "-i", str(inventory), "--hosts", "all", cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
    assert f"hosts.ini:{line}:" in done.stderr
    assert shown in done.stderr
    assert "Ini-Canary-1" not in done.stdout + done.stderr
