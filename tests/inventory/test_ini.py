"""INI inventories: sections, value typing, ranges and ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.errors import InventoryError
from readiness.inventory import load_inventory

from .helpers import load_text

# --------------------------------------------------------------------------- INI format

FLEET_INI = """
# a comment
; another comment
bastion ansible_host=192.0.2.1

[web]
web01 ansible_host=10.0.0.11 ansible_user=deploy
web02 ansible_host=10.0.0.12  # trailing comment

[db]
db1 ansible_host=10.0.1.1 ansible_port=2200

[prod:children]
web
db

[prod:vars]
env=prod
motd = "hello world"

[all:vars]
tier=base
"""


def test_ini_inventory_reads_groups_children_and_vars(tmp_path: Path) -> None:
    inventory = load_text(tmp_path, "hosts.ini", FLEET_INI)
    assert list(inventory.hosts) == ["bastion", "web01", "web02", "db1"]
    assert inventory.hosts["bastion"].groups == ("ungrouped",)
    assert inventory.hosts["web01"].groups == ("web", "prod")
    assert inventory.hosts["web01"].user == "deploy"
    assert inventory.hosts["db1"].port == 2200
    assert inventory.groups["prod"].children == ("web", "db")
    assert inventory.hosts["db1"].vars["env"] == "prod"
    assert inventory.hosts["db1"].vars["motd"] == "hello world"
    assert inventory.hosts["bastion"].vars["tier"] == "base"
    assert "env" not in inventory.hosts["bastion"].vars
    assert inventory.hosts["web02"].source.endswith("hosts.ini:7")


def test_ini_values_are_parsed_like_ansible(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "hosts.ini",
        """
            app count=3 neg=-2 quoted="42" single='x y' flag=true off=False yes_word=yes \
            version=1.10 mode=0644 items=[1,2] empty=
            """,
    )
    values = inventory.hosts["app"].vars
    # shlex removes the quotes, then ast.literal_eval types what is left (as Ansible)
    assert values["count"] == 3
    assert values["neg"] == -2
    assert values["quoted"] == 42
    assert values["single"] == "x y"
    assert values["flag"] == "true"
    assert values["off"] is False
    assert values["yes_word"] == "yes"
    assert values["version"] == 1.1
    assert values["mode"] == "0644"
    assert values["items"] == [1, 2]
    assert values["empty"] == ""


def test_ini_quotes_inside_the_value_keep_a_string(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path, "hosts.ini", """app q='"42"' n=None h=0x1F t=(1,2) c=a#comment d=2\n"""
    )
    assert dict(inventory.hosts["app"].vars) == {
        "q": "42",
        "n": None,
        "h": 31,
        "t": [1, 2],
        "c": "a",
    }


def test_hash_in_group_vars_is_not_a_comment_unless_python_says_so(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path, "hosts.ini", "[g]\nh\n[g:vars]\nmotd = hello # world\nn = 5 # five\n"
    )
    assert inventory.hosts["h"].vars["motd"] == "hello # world"
    assert inventory.hosts["h"].vars["n"] == 5


def test_ini_group_vars_accept_structured_values(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "hosts.ini",
        """
            [web]
            web01

            [web:vars]
            readiness={"required_env": ["A", "B"], "thresholds": {"secret_min_length": 40}}
            ports=[80, 443]  # comment
            """,
    )
    web01 = inventory.hosts["web01"]
    assert web01.profile_vars == {
        "required_env": ["A", "B"],
        "thresholds": {"secret_min_length": 40},
    }
    assert web01.vars["ports"] == [80, 443]


def test_ini_host_ranges_and_ports_expand(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "hosts",
        """
            [web]
            web[01:05:2].example.com:2222 role=front
            db-[a:b]
            [::1]:2200
            fe80::1
            """,
    )
    assert list(inventory.hosts) == [
        "web01.example.com",
        "web03.example.com",
        "web05.example.com",
        "db-a",
        "db-b",
        "::1",
        "fe80::1",
    ]
    assert inventory.hosts["web03.example.com"].port == 2222
    assert inventory.hosts["web03.example.com"].vars["role"] == "front"
    assert inventory.hosts["::1"].port == 2200
    assert inventory.hosts["fe80::1"].port == 22


def test_explicit_port_var_wins_over_host_colon_port(tmp_path: Path) -> None:
    inventory = load_text(tmp_path, "hosts.ini", "app:2222 ansible_port=2300\n")
    assert inventory.hosts["app"].port == 2300


def test_file_without_extension_is_read_as_ini_or_sniffed_yaml(tmp_path: Path) -> None:
    ini = load_text(tmp_path, "a/hosts", "[web]\nweb01\n")
    yml = load_text(tmp_path, "b/hosts", "# fleet\nweb:  # group\n  hosts:\n    web01:\n")
    assert ini.hosts["web01"].groups == yml.hosts["web01"].groups == ("web",)


def test_cfg_extension_is_ini(tmp_path: Path) -> None:
    inventory = load_text(tmp_path, "hosts.cfg", "[db]\ndb1\n")
    assert inventory.hosts["db1"].groups == ("db",)


# (a line that is only "[::1]" is a section header in INI, as in Ansible)
@pytest.mark.parametrize("entry", ["[::1] a=1", "[10.0.0.5] ansible_user=deploy"])
def test_brackets_without_a_port_are_refused_as_ansible_does(tmp_path: Path, entry: str) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text(f"[web]\nw1\n{entry}\n")
    with pytest.raises(InventoryError, match=r"hosts.ini:3: invalid host .*brackets need a port"):
        load_inventory([inv])
