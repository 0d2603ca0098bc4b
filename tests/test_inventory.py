"""Inventory parsing, variable precedence and host patterns (pure logic, no SSH)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from readiness.errors import InventoryError
from readiness.inventory import Group, Host, Inventory, load_inventory, local_host


def write(base: Path, name: str, text: str) -> Path:
    path = base / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def names(hosts: list[Host]) -> list[str]:
    return [host.name for host in hosts]


FLEET_YAML = """
all:
  vars:
    env: prod
  hosts:
    bastion:
  children:
    web:
      hosts:
        web01: {ansible_host: 10.0.0.11}
        web02: {ansible_host: 10.0.0.12}
      children:
        canary:
          hosts:
            web01:
    db:
      hosts:
        db1: {ansible_host: 10.0.1.1, ansible_port: 2200, ansible_user: pg}
        db2: {ansible_host: 10.0.1.2}
    staging:
      hosts:
        web02:
        db2:
"""


@pytest.fixture
def fleet(tmp_path: Path) -> Inventory:
    return load_inventory(write(tmp_path, "fleet.yml", FLEET_YAML))


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
    inventory = load_inventory(
        write(
            tmp_path,
            "inv.yaml",
            """
            web:
              hosts:
                "web[01:03]:2222":
                node-[a:c]:
            """,
        )
    )
    assert list(inventory.hosts) == ["web01", "web02", "web03", "node-a", "node-b", "node-c"]
    assert inventory.hosts["web02"].port == 2222
    assert inventory.hosts["node-b"].port == 22


def test_readiness_spellings_win_over_ansible_spellings(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(
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
    )
    app = inventory.hosts["app"]
    assert (app.address, app.port, app.user) == ("10.9.9.9", 2022, "audit")
    assert app.key_file == str(Path("~/.ssh/audit_ed25519").expanduser())
    assert not app.key_file.startswith("~")


def test_ansible_private_key_file_is_expanded(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(tmp_path, "hosts.ini", "app ansible_ssh_private_key_file=~/.ssh/id_ed25519\n")
    )
    assert inventory.hosts["app"].key_file == str(Path.home() / ".ssh" / "id_ed25519")


def test_host_vars_are_read_only(fleet: Inventory) -> None:
    with pytest.raises(TypeError):
        fleet.hosts["db1"].vars["env"] = "dev"  # type: ignore[index]


def test_hosts_are_hashable(fleet: Inventory) -> None:
    assert len(set(fleet.hosts.values())) == 5


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
    inventory = load_inventory(write(tmp_path, "hosts.ini", FLEET_INI))
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
    inventory = load_inventory(
        write(
            tmp_path,
            "hosts.ini",
            """
            app count=3 neg=-2 quoted="42" single='x y' flag=true off=False yes_word=yes \
            version=1.10 mode=0644 items=[1,2] empty=
            """,
        )
    )
    values = inventory.hosts["app"].vars
    assert values["count"] == 3
    assert values["neg"] == -2
    assert values["quoted"] == "42"
    assert values["single"] == "x y"
    assert values["flag"] is True
    assert values["off"] is False
    assert values["yes_word"] == "yes"
    assert values["version"] == "1.10"
    assert values["mode"] == "0644"
    assert values["items"] == [1, 2]
    assert values["empty"] == ""


def test_ini_group_vars_accept_structured_values(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(
            tmp_path,
            "hosts.ini",
            """
            [web]
            web01

            [web:vars]
            readiness={"checks": ["env", "config"], "timeout": 5}
            ports=[80, 443]  # comment
            """,
        )
    )
    web01 = inventory.hosts["web01"]
    assert web01.profile_vars == {"checks": ["env", "config"], "timeout": 5}
    assert web01.vars["ports"] == [80, 443]


def test_ini_host_ranges_and_ports_expand(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(
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
    inventory = load_inventory(write(tmp_path, "hosts.ini", "app:2222 ansible_port=2300\n"))
    assert inventory.hosts["app"].port == 2300


def test_file_without_extension_is_read_as_ini_or_sniffed_yaml(tmp_path: Path) -> None:
    ini = load_inventory(write(tmp_path, "a/hosts", "[web]\nweb01\n"))
    yml = load_inventory(
        write(tmp_path, "b/hosts", "# fleet\nweb:  # group\n  hosts:\n    web01:\n")
    )
    assert ini.hosts["web01"].groups == yml.hosts["web01"].groups == ("web",)


def test_cfg_extension_is_ini(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, "hosts.cfg", "[db]\ndb1\n"))
    assert inventory.hosts["db1"].groups == ("db",)


# --------------------------------------------------------------------------- group_vars / host_vars


def test_group_vars_and_host_vars_beside_the_file_are_applied(tmp_path: Path) -> None:
    inventory_file = write(tmp_path, "hosts.ini", "[web]\nweb01\nweb02\n[db]\ndb1\n")
    write(tmp_path, "group_vars/all.yml", "tier: base\n")
    write(tmp_path, "group_vars/web.yaml", "role: web\n")
    write(tmp_path, "group_vars/db/main.yml", "role: db\n")
    write(tmp_path, "group_vars/db/extra.yml", "replicas: 2\n")
    write(tmp_path, "host_vars/web02", "ansible_host: 10.0.0.12\n")
    write(tmp_path, "group_vars/nosuchgroup.yml", "ignored: true\n")
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


def test_group_vars_file_does_not_beat_a_deeper_inline_group(tmp_path: Path) -> None:
    """group_vars files sit at their group's level, not above every inline group var."""
    inventory_file = write(
        tmp_path, "hosts.ini", "[web]\nweb01\n[prod:children]\nweb\n[web:vars]\nrole=web\n"
    )
    write(tmp_path, "group_vars/prod.yml", "role: prod\n")
    write(tmp_path, "group_vars/all.yml", "role: all\n")
    assert load_inventory(inventory_file).hosts["web01"].vars["role"] == "web"


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
    return load_inventory(write(tmp_path, "inv.yml", PRECEDENCE_YAML))


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
    inventory = load_inventory(
        write(
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
    )
    assert inventory.hosts["h1"].vars["sibling"] == "alpha"


def test_host_defined_twice_accumulates_vars_later_wins(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(tmp_path, "hosts.ini", "[a]\nh1 x=1 y=1\n[b]\nh1 y=2\n"),
    )
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
              env: {required: [DATABASE_URL], forbidden: [DEBUG]}
              thresholds: {disk_free_pct: 10}
          children:
            web:
              vars:
                readiness:
                  env: {required: [SECRET_KEY]}
                  http: {url: "http://localhost:8000/health"}
              hosts:
                web01:
                  readiness:
                    thresholds: {disk_free_pct: 20, load: 4}
        """,
    )
    write(tmp_path, "host_vars/web01.yml", "readiness:\n  http: {timeout: 3}\n")
    profile = load_inventory(inventory_file).hosts["web01"].profile_vars
    assert profile == {
        "env": {"required": ["SECRET_KEY"], "forbidden": ["DEBUG"]},
        "thresholds": {"disk_free_pct": 20, "load": 4},
        "http": {"url": "http://localhost:8000/health", "timeout": 3},
    }


def test_other_dict_vars_are_replaced_not_merged(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(
            tmp_path,
            "inv.yml",
            """
            all:
              vars: {settings: {a: 1, b: 2}}
              hosts:
                h1: {settings: {a: 9}}
            """,
        )
    )
    assert inventory.hosts["h1"].vars["settings"] == {"a": 9}


def test_profile_vars_are_empty_without_readiness(fleet: Inventory) -> None:
    assert fleet.hosts["web01"].profile_vars == {}


def test_merged_profiles_are_not_shared_between_hosts(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(
            tmp_path,
            "inv.yml",
            "all:\n  vars: {readiness: {paths: [a]}}\n  hosts: {h1: , h2: }\n",
        )
    )
    inventory.hosts["h1"].profile_vars["paths"].append("b")
    assert inventory.hosts["h2"].profile_vars == {"paths": ["a"]}


def test_empty_readiness_key_means_no_profile(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(tmp_path, "inv.yml", "all:\n  hosts:\n    h1: {readiness: }\n")
    )
    assert inventory.hosts["h1"].profile_vars == {}


# --------------------------------------------------------------------------- substitution


def test_inventory_dir_and_inventory_file_are_substituted(tmp_path: Path) -> None:
    inventory_file = write(
        tmp_path,
        "inventories/local.yml",
        """
        all:
          hosts:
            local:
              readiness:
                app_dir: "{{ inventory_dir }}/../examples/app"
                files: ["{{inventory_file}}"]
        """,
    )
    profile = load_inventory(inventory_file).hosts["local"].profile_vars
    assert profile["app_dir"] == f"{inventory_file.parent.resolve()}/../examples/app"
    assert profile["files"] == [str(inventory_file.resolve())]


def test_inventory_dir_in_ini_and_group_vars_files(tmp_path: Path) -> None:
    inventory_file = write(tmp_path, "hosts.ini", 'app conf="{{ inventory_dir }}/app.conf"\n')
    write(tmp_path, "group_vars/all.yml", "data: '{{ inventory_dir }}/data'\n")
    app = load_inventory(inventory_file).hosts["app"]
    assert app.vars["conf"] == f"{tmp_path.resolve()}/app.conf"
    assert app.vars["data"] == f"{tmp_path.resolve()}/data"


def test_other_templates_are_left_verbatim(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(
            tmp_path,
            "inv.yml",
            "all:\n  hosts:\n    h1: {home: '{{ ansible_env.HOME }}', x: '{{ lookup(\"pipe\", \"id\") }}'}\n",
        )
    )
    assert inventory.hosts["h1"].vars["home"] == "{{ ansible_env.HOME }}"
    assert inventory.hosts["h1"].vars["x"] == '{{ lookup("pipe", "id") }}'


def test_shell_metacharacters_are_kept_verbatim_as_data(tmp_path: Path) -> None:
    payload = "$(touch pwned); `id` | rm -rf / && echo $HOME > /tmp/x"
    yml = load_inventory(
        write(tmp_path, "inv.yml", f"all:\n  hosts:\n    h1:\n      cmd: '{payload}'\n")
    )
    ini = load_inventory(write(tmp_path, "hosts.ini", f'h1 cmd="{payload}" bare=$(id);ls glob=*\n'))
    assert yml.hosts["h1"].vars["cmd"] == payload
    assert ini.hosts["h1"].vars["cmd"] == payload
    assert ini.hosts["h1"].vars["bare"] == "$(id);ls"
    assert ini.hosts["h1"].vars["glob"] == "*"
    assert not (tmp_path / "pwned").exists()


# --------------------------------------------------------------------------- errors


def error_of(path: Path) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    return caught.value


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "bad.yml", "all:\n  hosts:\n    h1: [unclosed\n"))
    assert "bad.yml:" in str(error)
    assert error.source is not None and error.source.endswith("bad.yml")
    assert error.line is not None and error.line >= 3


def test_duplicate_yaml_keys_are_refused_with_both_lines(tmp_path: Path) -> None:
    error = error_of(
        write(
            tmp_path,
            "dup.yml",
            """
            all:
              hosts:
                h1: {ansible_host: 10.0.0.1}
                h1: {ansible_host: 10.0.0.2}
            """,
        )
    )
    assert "dup.yml:4:" in str(error)
    assert "duplicate key 'h1'" in str(error)
    assert "line 3" in str(error)


def test_duplicate_keys_in_vars_files_are_refused(tmp_path: Path) -> None:
    inventory_file = write(tmp_path, "hosts.ini", "app\n")
    write(tmp_path, "host_vars/app.yml", "user: a\nport: 1\nuser: b\n")
    error = error_of(inventory_file)
    assert "app.yml:3:" in str(error)


def test_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    text = "all:\n  vars:\n" + "".join(f"    {level}\n" for level in levels)
    error = error_of(write(tmp_path, "bomb.yml", text))
    assert "alias" in str(error)
    assert "bomb.yml:" in str(error)
    assert error.line is not None


def test_recursive_yaml_alias_is_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "loop.yml", "all:\n  vars:\n    x: &x [1, *x]\n"))
    assert "recursive alias" in str(error)
    assert "loop.yml:3:" in str(error)


def test_a_few_yaml_aliases_and_merge_keys_are_fine(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(
            tmp_path,
            "inv.yml",
            """
            all:
              hosts:
                h1: &base {ansible_user: deploy, ansible_port: 2222}
                h2:
                  <<: *base
                  ansible_port: 2200
            """,
        )
    )
    assert inventory.hosts["h2"].user == "deploy"
    assert inventory.hosts["h2"].port == 2200


def test_unsafe_yaml_tags_are_refused(tmp_path: Path) -> None:
    error = error_of(
        write(tmp_path, "evil.yml", "all:\n  vars:\n    x: !!python/object/apply:os.system [id]\n")
    )
    assert "evil.yml:3:" in str(error)


def test_unknown_key_in_yaml_group_is_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "inv.yml", "all:\n  children:\n    web:\n      host:\n"))
    assert "inv.yml:4:" in str(error)
    assert "unknown key 'host'" in str(error)


def test_yaml_hosts_must_be_a_mapping(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "inv.yml", "web:\n  hosts:\n    - web01\n"))
    assert "inv.yml:2:" in str(error)


def test_malformed_ini_section_names_file_and_line(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "hosts.ini", "[web]\nweb01\n[bad group]\n"))
    assert "hosts.ini:3:" in str(error)


def test_unknown_ini_section_type_is_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "hosts.ini", "[web:kids]\nweb01\n"))
    assert "hosts.ini:1:" in str(error)


def test_ini_unterminated_quote_names_file_and_line(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "hosts.ini", '[web]\nweb01 motd="hello\n'))
    assert "hosts.ini:2:" in str(error)
    assert "unterminated quote" in str(error)


def test_ini_host_option_without_equals_is_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "hosts.ini", "# hosts\n\nweb01 ansible_host\n"))
    assert "hosts.ini:3:" in str(error)


def test_ini_vars_for_undefined_group_are_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "hosts.ini", "[web]\nweb01\n[wbe:vars]\nx=1\n"))
    assert "hosts.ini:3:" in str(error)
    assert "undefined group 'wbe'" in str(error)


def test_ini_vars_line_without_equals_is_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "hosts.ini", "[web]\nweb01\n[web:vars]\njust words\n"))
    assert "hosts.ini:4:" in str(error)


def test_conflicting_addresses_name_both_locations(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yml", "web:\n  hosts:\n    web01: {ansible_host: 10.0.0.1}\n")
    second = write(tmp_path, "b.ini", "[db]\nweb01 ansible_host=10.0.0.2\n")
    with pytest.raises(InventoryError) as caught:
        load_inventory([first, second])
    message = str(caught.value)
    assert "a.yml:3" in message
    assert "b.ini:2" in message
    assert "10.0.0.1" in message and "10.0.0.2" in message


def test_same_address_defined_twice_is_not_a_conflict(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(
            tmp_path, "hosts.ini", "[a]\nh1 ansible_host=10.0.0.1\n[b]\nh1 ansible_host=10.0.0.1\n"
        )
    )
    assert inventory.hosts["h1"].groups == ("a", "b")


def test_group_cycles_are_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "hosts.ini", "[a:children]\nb\n[b:children]\na\n"))
    assert "group cycle" in str(error)
    assert "hosts.ini:" in str(error)


def test_invalid_port_is_refused_with_host_location(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "hosts.ini", "[web]\nweb01 ansible_port=ssh\n"))
    assert "hosts.ini:2:" in str(error)
    assert "invalid port" in str(error)


def test_readiness_must_be_a_mapping(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "inv.yml", "all:\n  hosts:\n    h1: {readiness: [env]}\n"))
    assert "inv.yml:3:" in str(error)


def test_invalid_host_range_is_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "hosts.ini", "web[03:01]\n"))
    assert "hosts.ini:1:" in str(error)


def test_oversized_host_range_is_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "hosts.ini", "web[0:999][0:999]\n"))
    assert "more than" in str(error)


def test_executable_inventory_scripts_are_never_run(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "ec2.py", "#!/usr/bin/env python3\nprint('{}')\n"))
    assert "ec2.py:1:" in str(error)
    assert "never runs" in str(error)


def test_missing_inventory_path_is_an_error(tmp_path: Path) -> None:
    error = error_of(tmp_path / "nope.yml")
    assert "nope.yml" in str(error)


def test_no_inventory_path_is_an_error() -> None:
    with pytest.raises(InventoryError):
        load_inventory([])


# --------------------------------------------------------------------------- patterns


def test_all_and_star_select_every_host_in_inventory_order(fleet: Inventory) -> None:
    everyone = ["bastion", "web01", "web02", "db1", "db2"]
    assert names(fleet.select("all")) == everyone
    assert names(fleet.select("*")) == everyone


def test_group_name_selects_its_hosts_and_descendants(fleet: Inventory) -> None:
    assert names(fleet.select("web")) == ["web01", "web02"]
    assert names(fleet.select("canary")) == ["web01"]
    assert names(fleet.select("ungrouped")) == ["bastion"]


def test_host_name_selects_that_host(fleet: Inventory) -> None:
    assert names(fleet.select("db2")) == ["db2"]


def test_comma_and_colon_lists_are_unions_without_duplicates(fleet: Inventory) -> None:
    assert names(fleet.select("db,web01,canary")) == ["web01", "db1", "db2"]
    assert names(fleet.select("db2:web:web01")) == ["web01", "web02", "db2"]


def test_intersection_keeps_hosts_in_both(fleet: Inventory) -> None:
    assert names(fleet.select("web:&staging")) == ["web02"]
    assert names(fleet.select("staging,&db")) == ["db2"]


def test_exclusion_removes_hosts(fleet: Inventory) -> None:
    assert names(fleet.select("web:!canary")) == ["web02"]
    assert names(fleet.select("!canary:web")) == ["web02"]


def test_exclusion_alone_starts_from_all(fleet: Inventory) -> None:
    assert names(fleet.select("!web")) == ["bastion", "db1", "db2"]


def test_globs_match_host_and_group_names(fleet: Inventory) -> None:
    assert names(fleet.select("web*")) == ["web01", "web02"]
    assert names(fleet.select("db?")) == ["db1", "db2"]
    assert names(fleet.select("stag*")) == ["web02", "db2"]
    assert names(fleet.select("can*:db1")) == ["web01", "db1"]


def test_regex_patterns_match_from_the_start(fleet: Inventory) -> None:
    assert names(fleet.select(r"~web0[2-9]")) == ["web02"]
    assert names(fleet.select(r"~(db|bast)\w*")) == ["bastion", "db1", "db2"]


def test_limit_intersects_like_ansible_limit(fleet: Inventory) -> None:
    assert names(fleet.select("all", limit="staging")) == ["web02", "db2"]
    assert names(fleet.select("web", limit="web02,db1")) == ["web02"]
    assert names(fleet.select("all", limit="!web")) == ["bastion", "db1", "db2"]


def test_unknown_name_lists_known_groups(fleet: Inventory) -> None:
    with pytest.raises(InventoryError) as caught:
        fleet.select("web:wbe")
    message = str(caught.value)
    assert "'wbe'" in message
    assert "known groups" in message and "staging" in message


def test_unknown_name_in_exclusion_or_limit_is_an_error(fleet: Inventory) -> None:
    with pytest.raises(InventoryError, match="'canry'"):
        fleet.select("web:!canry")
    with pytest.raises(InventoryError, match="'dbx'"):
        fleet.select("all", limit="dbx")


def test_glob_matching_nothing_is_unknown(fleet: Inventory) -> None:
    with pytest.raises(InventoryError, match="unknown host or group 'cache\\*'"):
        fleet.select("cache*")


def test_pattern_selecting_nothing_is_an_error(fleet: Inventory) -> None:
    with pytest.raises(InventoryError, match="selects no hosts"):
        fleet.select("canary:&db")
    with pytest.raises(InventoryError, match="limited by 'db'"):
        fleet.select("web", limit="db")


def test_invalid_regex_is_an_inventory_error(fleet: Inventory) -> None:
    with pytest.raises(InventoryError, match="regular expression"):
        fleet.select("~web(")


def test_empty_pattern_is_an_error(fleet: Inventory) -> None:
    with pytest.raises(InventoryError, match="empty host pattern"):
        fleet.select(" , ")


def test_local_resolves_to_the_implicit_controller_host(fleet: Inventory) -> None:
    assert fleet.select("local") == [local_host()]
    assert names(fleet.select("db1:local")) == ["db1", "local"]


def test_local_host_is_local_without_ssh_settings() -> None:
    host = local_host()
    assert (host.name, host.address, host.port, host.user, host.key_file) == (
        "local",
        "localhost",
        0,
        None,
        None,
    )
    assert host.local
    assert host.vars == {}
    assert host.profile_vars == {}


def test_local_prefers_the_inventory_host_named_local(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(tmp_path, "inv.yml", "all:\n  hosts:\n    local:\n      readiness: {x: 1}\n")
    )
    (host,) = inventory.select("local")
    assert host.local
    assert host.profile_vars == {"x": 1}
    assert host.source.endswith("inv.yml:3")


def test_ansible_connection_local_marks_a_host_local(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(
            tmp_path,
            "hosts.ini",
            "box ansible_connection=local\nother readiness_connection=local\nremote\n",
        )
    )
    assert [host.local for host in inventory.hosts.values()] == [True, True, False]


def test_ipv6_host_name_is_one_pattern_term(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, "hosts.ini", "fe80::1\nother\n"))
    assert names(inventory.select("fe80::1")) == ["fe80::1"]


def test_select_returns_hosts_with_mapping_vars(fleet: Inventory) -> None:
    (host,) = fleet.select("db1")
    assert isinstance(host.vars, Mapping)
