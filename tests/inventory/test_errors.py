"""Every inventory problem is an InventoryError naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.errors import InventoryError
from readiness.inventory import load_inventory

from .helpers import load_text, write

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
    inventory = load_text(
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
    inventory = load_text(
        tmp_path, "hosts.ini", "[a]\nh1 ansible_host=10.0.0.1\n[b]\nh1 ansible_host=10.0.0.1\n"
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


def test_non_utf8_inventory_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_bytes(b"all:\n  hosts:\n    caf\xe9:\n")
    error = error_of(path)
    assert (error.source, error.line) == (str(path), 3)
    assert "not valid UTF-8" in str(error)


def test_non_utf8_ini_comment_lines_are_ignored_as_ansible_does(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_bytes(b"# caf\xe9\n[web]\nw1\n")
    assert list(load_inventory(path).hosts) == ["w1"]


def test_broken_section_header_is_named_as_such(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "hosts.ini", "[web]\nw1\n[db\nd1\n"))
    assert error.line == 3
    assert "missing ']'" in str(error)


def test_stray_bracket_in_host_name_is_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "hosts.ini", "[web]\nweb]\n"))
    assert error.line == 2
    assert "']' without '['" in str(error)


def test_undeclared_child_group_names_file_and_line(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "hosts.ini", "[p:children]\nweb\n"))
    assert error.line == 2
    assert "undefined group 'web'" in str(error)


def test_unknown_profile_key_in_inventory_vars_names_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "inv.yml",
        """
        all:
          children:
            web:
              vars:
                tier: web
                readiness: {env: {required: [A]}}
              hosts: {w1: }
        """,
    )
    error = error_of(path)
    assert (error.source, error.line) == (str(path), 6)
    assert "unknown profile key 'env'" in str(error)


def test_unknown_profile_key_in_group_vars_file_names_the_file(tmp_path: Path) -> None:
    inventory_file = write(tmp_path, "hosts.ini", "[web]\nw1\n")
    write(tmp_path, "group_vars/web.yml", "tier: web\nreadiness:\n  http: {url: x}\n")
    error = error_of(inventory_file)
    assert error.source == str(tmp_path / "group_vars" / "web.yml")
    assert error.line == 2


def test_toml_and_plugin_configurations_are_refused(tmp_path: Path) -> None:
    assert "TOML" in str(error_of(write(tmp_path, "inv.toml", "[web]\n")))
    assert "plugin" in str(error_of(write(tmp_path, "aws.yml", "plugin: aws_ec2\n")))
