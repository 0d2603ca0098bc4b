"""``readiness inventory``: --vars (text and JSON) against ansible-inventory --host, secrets masked,
and $READINESS_INVENTORY naming several sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from readiness.inventory import load_inventory
from readiness.inventory_view import host_variables

from .helpers import write

BIN = Path(sys.executable).parent
SECRETS = ("hunter2-very-secret", "s3cr3t-become-pass", "vault-value-xyz", "tok-abcdef123456")

INVENTORY = f"""
all:
  vars:
    ansible_user: deploy
    vault_db_password: {SECRETS[2]}
  children:
    web:
      vars:
        api: {{url: "https://user:{SECRETS[0]}@api.example/", token: {SECRETS[3]}}}
      hosts:
        web1:
          ansible_host: 10.0.0.1
          ansible_password: {SECRETS[0]}
          ansible_become_pass: {SECRETS[1]}
          ansible_ssh_private_key_file: ~/.ssh/deploy
          retries: 3
          tags: [a, b]
"""


def _readiness(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(BIN / "readiness"), "inventory", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _ansible_host(inventory: Path, host: str, home: Path) -> dict[str, object]:
    home.mkdir()
    done = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(inventory), "--host", host],
        cwd=home,
        env={
            "PATH": f"{BIN}:/usr/bin:/bin",
            "HOME": str(home),
            "ANSIBLE_HOME": str(home / ".ansible"),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


def test_vars_json_matches_ansible_inventory_host_with_secrets_masked(tmp_path: Path) -> None:
    path = write(tmp_path, "inv.yml", INVENTORY)
    out = _readiness("-i", str(path), "--hosts", "web1", "--vars", "--format", "json", cwd=tmp_path)
    assert not any(secret in out for secret in SECRETS)
    shown = json.loads(out)["hosts"][0]["vars"]
    ansible = _ansible_host(path, "web1", tmp_path / "home")
    masked = {"ansible_password", "ansible_become_pass", "vault_db_password"}
    assert {name: shown[name] for name in masked} == dict.fromkeys(masked, "***")
    assert shown["api"] == {"url": "https://user:***@api.example/", "token": "***"}
    same = set(ansible) - masked - {"api"}
    assert {name: shown[name] for name in same} == {name: ansible[name] for name in same}
    assert set(shown) == set(ansible)


def test_vars_text_lists_every_variable_under_the_host(tmp_path: Path) -> None:
    path = write(tmp_path, "inv.yml", INVENTORY)
    out = _readiness("-i", str(path), "--hosts", "web", "--vars", cwd=tmp_path)
    assert not any(secret in out for secret in SECRETS)
    block = out.split("# variables (compare: ansible-inventory --host web1):\n", 1)[1]
    variables = yaml.safe_load(block)
    assert variables["retries"] == 3
    assert variables["tags"] == ["a", "b"]
    assert variables["ansible_ssh_private_key_file"] == "~/.ssh/deploy"  # a path, not a secret
    assert variables["ansible_password"] == "***"


def test_without_vars_no_variables_are_shown(tmp_path: Path) -> None:
    path = write(tmp_path, "inv.yml", INVENTORY)
    out = _readiness("-i", str(path), "--format", "json", cwd=tmp_path)
    assert "vars" not in json.loads(out)["hosts"][0]


def test_host_variables_masks_non_string_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, "inv.yml", "all:\n  hosts:\n    h: {ansible_password: 12345678}\n")
    assert host_variables(load_inventory(path).hosts["h"]) == {"ansible_password": "***"}


def test_readiness_inventory_env_names_several_sources(tmp_path: Path) -> None:
    first = write(tmp_path, "a.ini", "[web]\nw1\n")
    second = write(tmp_path, "b.yml", "db:\n  hosts:\n    d1:\n")
    for separator in (":", ","):
        env = {"READINESS_INVENTORY": f"{first}{separator}{second}"}
        out = _readiness("--format", "json", cwd=tmp_path, env=env)
        assert [host["host"] for host in json.loads(out)["hosts"]] == ["w1", "d1"]


def test_the_ssh_login_column_is_where_validate_logs_in(tmp_path: Path) -> None:
    """The inventory's address/port/user are only where a login starts: ssh_config and the
    host's ansible_ssh_*_args change it. `readiness inventory` now shows the result (no
    connection is made), so a user can see where `validate` will go before it goes."""
    (tmp_path / "ssh_config").write_text("Host 10.0.0.7\n  HostName 10.9.9.9\n  User cfguser\n")
    config = tmp_path / "readiness.yaml"
    config.write_text(
        yaml.safe_dump({"readiness": {"ssh_config": str(tmp_path / "ssh_config"),
                                      "known_hosts": str(tmp_path / "known_hosts")}})
    )  # fmt: skip
    inventory = tmp_path / "inv.ini"
    inventory.write_text(
        "web1 ansible_host=10.0.0.5 ansible_ssh_common_args='-p 2222 -l deploy'\n"
        "web2 ansible_host=10.0.0.6 ansible_user=app ansible_ssh_common_args='-J admin@bastion'\n"
        "web3 ansible_host=10.0.0.7\n"
        "box ansible_connection=docker\n"
        "local ansible_connection=local\n"
    )
    done = subprocess.run(
        [str(BIN / "readiness"), "-f", str(config), "inventory", "-i", str(inventory),
         "--hosts", "all", "--format", "json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    logins = {h["host"]: h["ssh"] for h in json.loads(done.stdout)["hosts"]}
    picked = {
        name: login if login is None or "error" in login
        else (login["user"], login["address"], login["port"], login["proxy_jump"])
        for name, login in logins.items()
    }  # fmt: skip
    assert picked["web1"] == ("deploy", "10.0.0.5", 2222, None)
    assert picked["web2"] == ("app", "10.0.0.6", 22, "admin@bastion")
    assert picked["web3"] == ("cfguser", "10.9.9.9", 22, None)
    assert "ansible_connection=docker" in logins["box"]["error"]
    assert picked["local"] is None
    text = _readiness("-i", str(inventory), "--hosts", "web1", cwd=tmp_path)
    assert "deploy@10.0.0.5:2222" in text
