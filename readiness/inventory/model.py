"""Public records: ``Host``, ``Group``, ``Inventory`` and the implicit ``local`` host."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .patterns import LOCAL, select_hosts

__all__ = ["IMPLICIT", "LOCAL", "PROFILE_KEY", "Group", "Host", "Inventory", "local_host"]

IMPLICIT = "<implicit>"  # the source of things no file defined: 'all', 'ungrouped', local_host()
PROFILE_KEY = "readiness"  # the host variable holding profile settings


@dataclass(frozen=True)
class Host:
    """One host, with its connection settings and effective variables."""

    name: str
    address: str
    port: int
    user: str | None
    key_file: str | None
    vars: Mapping[str, Any] = field(hash=False)
    groups: tuple[str, ...]
    local: bool
    source: str

    @property
    def profile_vars(self) -> Mapping[str, Any]:
        """The merged ``readiness`` dict of this host, ``{}`` when it has none."""
        value = self.vars.get(PROFILE_KEY)
        return value if isinstance(value, Mapping) else MappingProxyType({})


@dataclass(frozen=True)
class Group:
    """One group: its direct hosts and child groups, and its own (unmerged) variables."""

    name: str
    hosts: tuple[str, ...]
    children: tuple[str, ...]
    vars: Mapping[str, Any] = field(hash=False)
    source: str
    priority: int = 1  # ansible_group_priority, from inline inventory vars only


@dataclass(frozen=True, eq=False)
class Inventory:
    """Hosts and groups in the order Ansible creates them; ``select`` resolves host patterns."""

    hosts: Mapping[str, Host]
    groups: Mapping[str, Group]
    sources: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # e.g. a name that is both a host and a group

    def select(self, pattern: str, limit: str | None = None) -> list[Host]:
        """Hosts matching ``pattern`` (and ``limit``, like ``--limit``), in Ansible's order.

        Raises InventoryError for an unknown name or when nothing is selected.
        """
        return select_hosts(
            self.hosts, self.groups, pattern, limit, local=local_host, sources=self.sources
        )


def local_host() -> Host:
    """The implicit controller host ``local``: audited in place, without SSH."""
    return Host(
        name=LOCAL,
        address="localhost",
        port=0,
        user=None,
        key_file=None,
        vars=MappingProxyType({}),
        groups=(),
        local=True,
        source=IMPLICIT,
    )
