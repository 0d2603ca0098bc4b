"""Loading files and directories, group_vars and host_vars."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.errors import InventoryError
from readiness.hostdata import HostDataError, load_yaml
from readiness.inventory import load_inventory

from .helpers import write, write_files

# --------------------------------------------------------------------------- group_vars / host_vars


def test_group_vars_and_host_vars_beside_the_file_are_applied(tmp_path: Path) -> None:
    inventory_file = write(tmp_path, "hosts.ini", "[web]\nweb01\nweb02\n[db]\ndb1\n")
    write_files(
        tmp_path,
        {
            "group_vars/all.yml": "tier: base\n",
            "group_vars/web.yaml": "role: web\n",
            "group_vars/db/main.yml": "role: db\n",
            "group_vars/db/extra.yml": "replicas: 2\n",
            "host_vars/web02": "ansible_host: 10.0.0.12\n",
            "group_vars/nosuchgroup.yml": "ignored: true\n",
        },
    )
    inventory = load_inventory(inventory_file)
    assert inventory.hosts["web01"].vars == {"tier": "base", "role": "web"}
    assert inventory.hosts["web02"].address == "10.0.0.12"
    assert inventory.hosts["db1"].vars == {"tier": "base", "role": "db", "replicas": 2}
    assert inventory.groups["db"].vars == {"role": "db", "replicas": 2}


def test_host_vars_file_overrides_inline_host_vars(tmp_path: Path) -> None:
    inventory_file = write(tmp_path, "hosts.ini", "app ansible_user=inline color=red\n")
    write(tmp_path, "host_vars/app.yml", "ansible_user: fromfile\n")
    app = load_inventory(inventory_file).hosts["app"]
    assert (app.user, app.vars["color"]) == ("fromfile", "red")


def test_group_vars_file_overrides_inline_vars_of_the_same_group(tmp_path: Path) -> None:
    inventory_file = write(tmp_path, "hosts.ini", "[web]\nweb01\n[web:vars]\nrole=inline\n")
    write(tmp_path, "group_vars/web.yml", "role: file\n")
    assert load_inventory(inventory_file).hosts["web01"].vars["role"] == "file"


def test_group_vars_files_outrank_every_inline_group_var(tmp_path: Path) -> None:
    """As Ansible: every group_vars file outranks every inline group variable."""
    inventory_file = write(
        tmp_path, "hosts.ini", "[web]\nweb01\n[prod:children]\nweb\n[web:vars]\nrole=web\n"
    )
    write_files(
        tmp_path,
        {
            "group_vars/prod.yml": "role: prod\n",
            "group_vars/all.yml": "role: all\n",
        },
    )
    assert load_inventory(inventory_file).hosts["web01"].vars["role"] == "prod"


def test_empty_vars_file_is_fine(tmp_path: Path) -> None:
    inventory_file = write(tmp_path, "hosts.ini", "app\n")
    write(tmp_path, "host_vars/app.yml", "# nothing yet\n")
    assert load_inventory(inventory_file).hosts["app"].vars == {}


# --------------------------------------------------------------------------- directories


def test_directory_inventory_loads_every_file_and_skips_the_rest(tmp_path: Path) -> None:
    directory = tmp_path / "inventory"
    write(directory, "10-web.yml", "web:\n  hosts:\n    web01:\n")
    write(directory, "20-db.ini", "[db]\ndb1\n")
    write(directory, "30-more", "[db]\ndb2\n")
    write(directory, ".hidden.yml", "broken: [\n")
    write(directory, "README.md", "# not an inventory\n")
    write(directory, "site.retry", "nope\n")
    write(directory, "hosts.ini~", "[junk]\njunk1\n")
    write(directory, "group_vars/db.yml", "role: db\n")
    write(directory, "host_vars/web01.yml", "ansible_host: 10.0.0.11\n")
    inventory = load_inventory(directory)
    assert list(inventory.hosts) == ["web01", "db1", "db2"]
    assert "junk" not in inventory.groups
    assert inventory.hosts["db2"].vars["role"] == "db"
    assert inventory.hosts["web01"].address == "10.0.0.11"


def test_several_paths_are_merged_in_order(tmp_path: Path) -> None:
    first = write(tmp_path, "a/hosts.yml", "web:\n  hosts:\n    web01: {color: red}\n")
    second = write(tmp_path, "b/hosts.ini", "[web]\nweb01 color=blue\nweb02\n")
    inventory = load_inventory([first, str(second)])
    assert list(inventory.hosts) == ["web01", "web02"]
    assert inventory.hosts["web01"].vars["color"] == "blue"
    assert inventory.sources == (str(first), str(second))


def test_vars_lookup_stops_at_the_first_of_name_yml_yaml_json(tmp_path: Path) -> None:
    inventory_file = write(tmp_path, "hosts.ini", "[a]\na1\n[b]\nb1\n")
    write_files(
        tmp_path,
        {
            "group_vars/a.yml": "v: yml\n",
            "group_vars/a.yaml": "v: yaml\nw: yaml\n",
            "group_vars/b/x.yml": "v: dir\n",
            "group_vars/b.yml": "w: never\n",
        },
    )
    hosts = load_inventory(inventory_file).hosts
    assert dict(hosts["a1"].vars) == {"v": "yml"}
    assert dict(hosts["b1"].vars) == {"v": "dir"}


def test_vars_directories_are_read_whole_and_descend(tmp_path: Path) -> None:
    inventory_file = write(tmp_path, "hosts.ini", "[web]\nw1\n")
    write_files(
        tmp_path,
        {
            "group_vars/web/1.yml": "a: 1\nb: 1\n",
            "group_vars/web/2": "b: 2\n",
            "group_vars/web/sub/3.json": '{"c": 3}\n',
            "group_vars/web/skip.cfg": "d: 4\n",
            "group_vars/web/.hidden.yml": "e: 5\n",
        },
    )
    assert dict(load_inventory(inventory_file).hosts["w1"].vars) == {"a": 1, "b": 2, "c": 3}


def test_inventory_directories_descend_and_skip_ignored_extensions(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "inv/a.ini": "[web]\nw1\n",
            "inv/sub/b.yml": "db:\n  hosts:\n    d1:\n",
            "inv/ansible.cfg": "[defaults]\nforks=5\n",
            "inv/old.retry": "w9\n",
        },
    )
    assert list(load_inventory(tmp_path / "inv").hosts) == ["w1", "d1"]


def test_ansible_group_priority_ranks_only_from_inline_vars(tmp_path: Path) -> None:
    inventory_file = write(
        tmp_path,
        "hosts.ini",
        "[a]\nh\n[b]\nh\n[a:vars]\nansible_group_priority=5\nx=a\n[b:vars]\nx=b\n",
    )
    write(tmp_path, "group_vars/b.yml", "ansible_group_priority: 10\n")
    inventory = load_inventory(inventory_file)
    host = inventory.hosts["h"]
    assert (
        host.vars["x"] == "a"
    )  # a's inline priority 5 beats b (1); b's file priority ranks nothing
    assert host.vars["ansible_group_priority"] == 10  # an ordinary variable from the file
    assert inventory.groups["a"].priority == 5


# --------------------------------------------------------------------------- Ansible's YAML tags

VAULTED = (
    "db_password: !vault |\n"
    "  $ANSIBLE_VAULT;1.1;AES256\n"
    "  62313365396662343061393464336163383764373764613633653634306231386433626436623361\n"
    "note: !unsafe '{{ not a template }}'\n"
)


def test_vault_and_unsafe_values_load_as_ansible_inventory_shows_them(tmp_path: Path) -> None:
    """Vault-encrypted group_vars are ordinary Ansible practice; they made the whole
    inventory unloadable ("could not determine a constructor for the tag '!vault'")."""
    inventory_file = write(tmp_path, "hosts.ini", "[web]\nweb01\n")
    write_files(tmp_path, {"group_vars/web.yml": VAULTED})
    write(tmp_path, "more.yml", "all:\n  hosts:\n    web02:\n      token: !vault 'ciphertext'\n")
    inventory = load_inventory([inventory_file, tmp_path / "more.yml"])
    web01 = inventory.hosts["web01"].vars
    assert web01["db_password"] == {
        "__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n"
        "62313365396662343061393464336163383764373764613633653634306231386433626436623361\n"
    }
    assert web01["note"] == "{{ not a template }}"
    assert inventory.hosts["web02"].vars["token"] == {"__ansible_vault": "ciphertext"}


def test_a_vaulted_connection_setting_is_refused_by_name(tmp_path: Path) -> None:
    inventory_file = write(tmp_path, "hosts.yml", "all:\n  hosts:\n    web01:\n")
    write_files(tmp_path, {"host_vars/web01.yml": "ansible_user: !vault 'ciphertext'\n"})
    with pytest.raises(InventoryError) as caught:
        load_inventory(inventory_file)
    message = str(caught.value)
    assert "ansible_user is encrypted with Ansible Vault" in message
    assert "readiness_user" in message and "ciphertext" not in message


def test_yaml_read_from_an_audited_host_still_refuses_ansible_tags() -> None:
    """The tags are read in inventories only: host files keep the strict loader as it was."""
    with pytest.raises(HostDataError, match="!vault"):
        load_yaml("secret: !vault 'x'\n", "/srv/app/settings.yml")
