"""Where readiness deliberately reads an inventory or pattern differently from Ansible.

The one list of documented differences (docs/inventories.md, "Unlike Ansible", has the same
rows). The differential test asserts each use in the corpus really is a difference of the kind
named here, so a difference cannot silently become a mismatch, or silently disappear.
"""

from __future__ import annotations

# kind "refused": readiness raises InventoryError (exit 2) where Ansible selects or loads
# something (possibly nothing) without failing.
# kind "value": both load, and the named variable differs.
DIFFERENCES: dict[str, tuple[str, str]] = {
    "unmatched-term": (
        "refused",
        "a pattern term that matches no host or group, or a pattern that selects no hosts, is "
        "an error (exit 2); Ansible warns and carries on",
    ),
    "localhost": (
        "refused",
        "Ansible's implicit localhost is 'local' in readiness; 'localhost' that is not in the "
        "inventory is an error that says so",
    ),
    "subscript": (
        "refused",
        "an index out of range, an empty or reversed slice ([3:1], [2:0]) and [:j] (a glob in "
        "Ansible, not a slice) are errors; Ansible selects nothing or other hosts",
    ),
    "empty-limit-file": (
        "refused",
        "a --limit @file with no pattern in it (an empty retry file) is an error; Ansible "
        "reads it as no limit at all and selects every host of the pattern",
    ),
    "bad-pattern": (
        "refused",
        "an invalid regular expression or an unbalanced '[' is an error; Ansible drops the "
        "bracket, so '~[' selects every host",
    ),
    "duplicate-key": (
        "refused",
        "a duplicate key in a YAML mapping is an error naming both lines; Ansible keeps the "
        "last value",
    ),
    "script": (
        "refused",
        "an executable inventory script is refused, never run",
    ),
    "strict-names": (
        "refused",
        "a host entry Ansible cannot parse as a host or range (web], web[3:1]), or a :port "
        "after a name Ansible does not read as a host (web_:2222), is an error; Ansible keeps "
        "it as an odd host name or expands it to nothing",
    ),
    "empty-address": (
        "refused",
        "an address variable that is set but empty (ansible_host: '') is an error; Ansible "
        "connects to '' and fails, readiness used to connect to the host's name instead",
    ),
    "unknown-group-key": (
        "refused",
        "an unknown key in a YAML group body is an error; Ansible skips it with a warning",
    ),
    "conflicting-address": (
        "refused",
        "two different inline addresses for one host are an error naming both; Ansible keeps "
        "the last",
    ),
    "yaml-only": (
        "refused",
        "a .yml/.yaml/.json file that is not valid YAML is an error; Ansible tries it as INI",
    ),
    "inventory-dir": (
        "value",
        "{{ inventory_dir }} and {{ inventory_file }} are filled in at load; ansible-inventory "
        "shows them as unrendered templates",
    ),
    "collision-vars": (
        "value",
        "variables written for a host whose name is also a group stay with the host; Ansible "
        "gives them to the group when the group already exists",
    ),
    "readiness-merge": (
        "value",
        "the readiness: dict is deep-merged across levels; Ansible replaces it whole",
    ),
}
