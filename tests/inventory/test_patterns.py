"""Host patterns: unions, intersections, exclusions, globs, regexes, limits, local."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from readiness.errors import InventoryError
from readiness.inventory import Inventory, load_inventory, local_host

from .helpers import load_text, names, write

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
    # Ansible's order: term by term, each group's hosts in the group's order
    assert names(fleet.select("db,web01,canary")) == ["db1", "db2", "web01"]
    assert names(fleet.select("db2:web:web01")) == ["db2", "web01", "web02"]


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
    # matching groups' hosts first, then matching host names (as Ansible)
    assert names(fleet.select(r"~(db|bast)\w*")) == ["db1", "db2", "bastion"]


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
    inventory = load_text(
        tmp_path, "inv.yml", "all:\n  hosts:\n    local:\n      readiness: {app_root: /x}\n"
    )
    (host,) = inventory.select("local")
    assert host.local
    assert host.profile_vars == {"app_root": "/x"}
    assert host.source.endswith("inv.yml:3")


def test_ansible_connection_local_marks_a_host_local(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "hosts.ini",
        "box ansible_connection=local\nother readiness_connection=local\nremote\n",
    )
    assert [host.local for host in inventory.hosts.values()] == [True, True, False]


def test_ipv6_host_name_is_one_pattern_term(tmp_path: Path) -> None:
    inventory = load_text(tmp_path, "hosts.ini", "fe80::1\nother\n")
    assert names(inventory.select("fe80::1")) == ["fe80::1"]


def test_select_returns_hosts_with_mapping_vars(fleet: Inventory) -> None:
    (host,) = fleet.select("db1")
    assert isinstance(host.vars, Mapping)


SLICED = """
[app]
app1
app2
app3
app4
app5
[web]
w1
[web:children]
app
"""


@pytest.fixture
def sliced(tmp_path: Path) -> Inventory:
    return load_text(tmp_path, "hosts.ini", SLICED)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("app[0]", ["app1"]),
        ("app[-1]", ["app5"]),
        ("app[1:3]", ["app2", "app3", "app4"]),
        ("app[2:]", ["app3", "app4", "app5"]),
        ("app[1-2]", ["app2", "app3"]),  # Ansible's older inclusive form
        ("app[3:10]", ["app4", "app5"]),
        ("app:!app[0]", ["app2", "app3", "app4", "app5"]),
        ("web[0:1]", ["w1", "app1"]),  # a group's own hosts come before its children's
    ],
)
def test_subscripts_pick_from_what_the_term_selects(
    sliced: Inventory, pattern: str, expected: list[str]
) -> None:
    assert names(sliced.select(pattern)) == expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("app[12]", "out of range"),
        ("app[-6]", "out of range"),
        ("app[3:1]", "selects no hosts"),
        ("app[2:0]", "selects no hosts"),
        ("app[:3]", "write app[0:3]"),
        ("~[", "unbalanced"),
        ("app,~[", "invalid regular expression"),
        ("localhost", "'local'"),
    ],
)
def test_refused_patterns_say_why(sliced: Inventory, pattern: str, message: str) -> None:
    with pytest.raises(InventoryError, match=re.escape(message)):
        sliced.select(pattern)


def test_limit_subscript_and_limit_file(sliced: Inventory, tmp_path: Path) -> None:
    assert names(sliced.select("all", limit="app[0]")) == ["app1"]
    limit_file = write(tmp_path, "retry", "app2\n\n  w1\n")
    assert names(sliced.select("web", limit=f"@{limit_file}")) == ["w1", "app2"]
    with pytest.raises(InventoryError, match="cannot read limit file"):
        sliced.select("all", limit=f"@{tmp_path / 'missing'}")


def test_a_host_wins_over_a_group_of_the_same_name(tmp_path: Path) -> None:
    inventory = load_text(tmp_path, "hosts.ini", "[web]\nweb1\nweb2\n[db]\ndb1\nweb\n")
    assert names(inventory.select("web:db")) == ["web", "db1"]
    assert names(inventory.select("&web")) == ["web1", "web2"]
    assert names(inventory.select("db:!web")) == ["db1", "web"]
    assert any("both a group and a host" in warning for warning in inventory.warnings)


def test_empty_inventory_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts.ini", "# nothing yet\n")
    with pytest.raises(InventoryError, match=re.escape(f"the inventory {path} defines no hosts")):
        load_inventory(path).select("all")
