"""Variable precedence and the deep-merged readiness profile dict."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.inventory import Inventory, load_inventory

from .helpers import load_text, write

# --------------------------------------------------------------------------- precedence

PRECEDENCE_YAML = """
all:
  vars: {level: all, from_all: 1}
  children:
    parent:
      vars: {level: parent, from_parent: 1}
      children:
        child:
          vars: {level: child}
          hosts:
            h1:
            h2: {level: host}
    alpha:
      vars: {sibling: alpha}
      hosts: {h1: , h3: }
    zulu:
      vars: {sibling: zulu}
      hosts: {h1: , h3: }
"""


@pytest.fixture
def layered(tmp_path: Path) -> Inventory:
    return load_text(tmp_path, "inv.yml", PRECEDENCE_YAML)


def test_child_group_vars_override_parent_group_vars(layered: Inventory) -> None:
    h1 = layered.hosts["h1"]
    assert h1.vars["level"] == "child"
    assert (h1.vars["from_all"], h1.vars["from_parent"]) == (1, 1)


def test_host_vars_override_group_vars(layered: Inventory) -> None:
    assert layered.hosts["h2"].vars["level"] == "host"


def test_all_vars_have_the_lowest_precedence(layered: Inventory) -> None:
    assert layered.hosts["h3"].vars["level"] == "all"


def test_sibling_groups_at_the_same_depth_later_alphabetically_win(layered: Inventory) -> None:
    assert layered.hosts["h1"].vars["sibling"] == "zulu"


def test_ansible_group_priority_outranks_alphabetical_order(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "hosts.ini",
        """
            [alpha]
            h1
            [zulu]
            h1
            [alpha:vars]
            ansible_group_priority=10
            sibling=alpha
            [zulu:vars]
            sibling=zulu
            """,
    )
    assert inventory.hosts["h1"].vars["sibling"] == "alpha"


def test_host_defined_twice_accumulates_vars_later_wins(tmp_path: Path) -> None:
    inventory = load_text(tmp_path, "hosts.ini", "[a]\nh1 x=1 y=1\n[b]\nh1 y=2\n")
    assert inventory.hosts["h1"].vars == {"x": 1, "y": 2}


# --------------------------------------------------------------------------- readiness profile


def test_readiness_profile_is_deep_merged_across_levels(tmp_path: Path) -> None:
    inventory_file = write(
        tmp_path,
        "inv.yml",
        """
        all:
          vars:
            readiness:
              required_env: [DATABASE_URL]
              thresholds: {secret_min_length: 40, backup_max_age_hours: 12}
          children:
            web:
              vars:
                readiness:
                  required_env: [SECRET_KEY]
                  quality_gates: {security: {min_pass_rate: 90}}
              hosts:
                web01:
                  readiness:
                    thresholds: {secret_min_length: 48, tls_min_days_left: 7}
        """,
    )
    write(
        tmp_path,
        "host_vars/web01.yml",
        "readiness:\n  quality_gates: {security: {critical: false}}\n",
    )
    profile = load_inventory(inventory_file).hosts["web01"].profile_vars
    assert profile == {
        "required_env": ["SECRET_KEY"],
        "thresholds": {"secret_min_length": 48, "backup_max_age_hours": 12, "tls_min_days_left": 7},
        "quality_gates": {"security": {"min_pass_rate": 90, "critical": False}},
    }


def test_other_dict_vars_are_replaced_not_merged(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "inv.yml",
        """
            all:
              vars: {settings: {a: 1, b: 2}}
              hosts:
                h1: {settings: {a: 9}}
            """,
    )
    assert inventory.hosts["h1"].vars["settings"] == {"a": 9}


def test_profile_vars_are_empty_without_readiness(fleet: Inventory) -> None:
    assert fleet.hosts["web01"].profile_vars == {}


def test_merged_profiles_are_not_shared_between_hosts(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "inv.yml",
        "all:\n  vars: {readiness: {required_env: [a]}}\n  hosts: {h1: , h2: }\n",
    )
    inventory.hosts["h1"].profile_vars["required_env"].append("b")
    assert inventory.hosts["h2"].profile_vars == {"required_env": ["a"]}


def test_empty_readiness_key_means_no_profile(tmp_path: Path) -> None:
    inventory = load_text(tmp_path, "inv.yml", "all:\n  hosts:\n    h1: {readiness: }\n")
    assert inventory.hosts["h1"].profile_vars == {}


# ------------------------------------------------------------------ connection spellings


def test_the_ansible_ssh_spelling_wins_over_the_short_one_as_in_ansible(tmp_path: Path) -> None:
    """Ansible's ssh connection lists ansible_host then ansible_ssh_host (and so on) and uses
    the last one defined: with both set, it connects to ansible_ssh_host. readiness read the
    short spelling first and audited another address (found by the generated differential
    test, tests/inventory/test_generated_against_ansible.py)."""
    inventory = load_text(
        tmp_path,
        "hosts",
        """
        [web]
        w1 ansible_host=127.0.0.5 ansible_ssh_host=127.0.0.6 ansible_port=2200 ansible_ssh_port=2201 ansible_user=u1 ansible_ssh_user=u2
        w2 ansible_private_key_file=/keys/plain
        w3 ansible_private_key_file=/keys/plain ansible_ssh_private_key_file=/keys/ssh
        w4 ansible_ssh_host=127.0.0.8 readiness_host=127.0.0.9 ansible_ssh_port=2201 readiness_port=2202
        """,
    )
    w1, w2, w3, w4 = (inventory.hosts[name] for name in ("w1", "w2", "w3", "w4"))
    assert (w1.address, w1.port, w1.user) == ("127.0.0.6", 2201, "u2")
    assert w2.key_file == "/keys/plain"  # ansible_private_key_file is Ansible's name too
    assert w3.key_file == "/keys/ssh"
    assert (w4.address, w4.port) == ("127.0.0.9", 2202)  # readiness_* still wins over both
