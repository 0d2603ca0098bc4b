"""Ansible-compatible inventories: YAML/INI parsing, variable precedence and host patterns.

Everything here is pure data. Nothing opens a connection or runs a command, and no value is
ever evaluated: ``{{ inventory_dir }}`` and ``{{ inventory_file }}`` are the only substitutions,
and every other ``{{ ... }}`` is kept as written. See ``docs/inventories.md``.

The public API is what this package exports; its modules split the work:

- ``model``: ``Host``, ``Group``, ``Inventory`` and the implicit ``local`` host
- ``patterns``: host patterns (unions, ``&``, ``!``, globs, ``~regex``, limits)
- ``loader``: ``load_inventory``: files, directories, ``group_vars``/``host_vars``
- ``strict_yaml``: YAML that refuses duplicate keys and alias bombs, with file:line errors
- ``yaml_inventory`` / ``ini``: the two inventory formats
- ``hostnames``: ``web[01:03]:2222`` ranges and ports
- ``builder`` / ``precedence``: group graph, then Ansible's variable precedence per host
- ``source``: file:line positions and the ``inventory_dir``/``inventory_file`` substitutions
"""

from __future__ import annotations

from .loader import load_inventory
from .model import LOCAL, Group, Host, Inventory, local_host

__all__ = ["LOCAL", "Group", "Host", "Inventory", "load_inventory", "local_host"]
