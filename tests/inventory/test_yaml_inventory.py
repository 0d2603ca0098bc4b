"""YAML inventories: hosts, groups, ranges and connection variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.inventory import Group, Inventory

from .helpers import load_text

# --------------------------------------------------------------------------- YAML format


def test_yaml_inventory_reads_hosts_groups_and_connection_vars(fleet: Inventory) -> None:
    assert list(fleet.hosts) == ["bastion", "web01", "web02", "db1", "db2"]
    db1 = fleet.hosts["db1"]
    assert (db1.address, db1.port, db1.user, db1.key_file) == ("10.0.1.1", 2200, "pg", None)
    assert db1.groups == ("db",)
    assert db1.vars["env"] == "prod"
    assert not db1.local


def test_host_without_address_uses_its_name_and_port_22(fleet: Inventory) -> None:
    bastion = fleet.hosts["bastion"]
    assert (bastion.address, bastion.port, bastion.user) == ("bastion", 22, None)


def test_host_groups_include_ancestors_in_inventory_order(fleet: Inventory) -> None:
    assert fleet.hosts["web01"].groups == ("web", "canary")
    assert fleet.hosts["web02"].groups == ("web", "staging")


def test_hosts_in_no_group_but_all_are_ungrouped(fleet: Inventory) -> None:
    assert fleet.hosts["bastion"].groups == ("ungrouped",)
    assert fleet.groups["ungrouped"].hosts == ("bastion",)


def test_groups_record_direct_hosts_children_and_source(fleet: Inventory) -> None:
    web = fleet.groups["web"]
    assert isinstance(web, Group)
    assert web.hosts == ("web01", "web02")
    assert web.children == ("canary",)
    assert web.source.endswith("fleet.yml:7")
    assert set(fleet.groups["all"].children) == {"web", "db", "staging", "ungrouped"}


def test_host_source_points_at_first_definition(fleet: Inventory) -> None:
    assert fleet.hosts["web01"].source.endswith("fleet.yml:9")
    assert fleet.hosts["db2"].source.endswith("fleet.yml:18")


def test_yaml_host_ranges_and_ports_expand(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "inv.yaml",
        """
            web:
              hosts:
                "web[01:03]:2222":
                node-[a:c]:
            """,
    )
    assert list(inventory.hosts) == ["web01", "web02", "web03", "node-a", "node-b", "node-c"]
    assert inventory.hosts["web02"].port == 2222
    assert inventory.hosts["node-b"].port == 22


def test_readiness_spellings_win_over_ansible_spellings(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "inv.yml",
        """
            all:
              hosts:
                app:
                  ansible_host: 10.0.0.1
                  readiness_host: 10.9.9.9
                  ansible_port: 22
                  readiness_port: "2022"
                  ansible_user: root
                  readiness_user: audit
                  readiness_ssh_private_key_file: ~/.ssh/audit_ed25519
            """,
    )
    app = inventory.hosts["app"]
    assert (app.address, app.port, app.user) == ("10.9.9.9", 2022, "audit")
    assert app.key_file == str(Path("~/.ssh/audit_ed25519").expanduser())
    assert not app.key_file.startswith("~")


def test_ansible_private_key_file_is_expanded(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path, "hosts.ini", "app ansible_ssh_private_key_file=~/.ssh/id_ed25519\n"
    )
    assert inventory.hosts["app"].key_file == str(Path.home() / ".ssh" / "id_ed25519")


def test_host_vars_are_read_only(fleet: Inventory) -> None:
    with pytest.raises(TypeError):
        fleet.hosts["db1"].vars["env"] = "dev"  # type: ignore[index]


def test_hosts_are_hashable(fleet: Inventory) -> None:
    assert len(set(fleet.hosts.values())) == 5
