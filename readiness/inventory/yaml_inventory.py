"""Ansible YAML inventories: groups with ``hosts``, ``children`` and ``vars``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .hostnames import expand_host
from .model import PROFILE_KEY
from .source import Origin, Where, plain
from .strict_yaml import key_where, line_of

if TYPE_CHECKING:
    from .builder import Builder

__all__ = ["parse_yaml_inventory"]

_GROUP_KEYS = ("hosts", "children", "vars")


def parse_yaml_inventory(builder: Builder, data: Any, where: Where, origin: Origin) -> None:
    if data is None:
        return
    if not isinstance(data, Mapping):
        raise where.at(1).error("a YAML inventory must be a mapping of group names")
    for name, body in data.items():
        _parse_yaml_group(builder, str(name), body, where.at(line_of(data, name)), origin)


def _parse_yaml_group(builder: Builder, name: str, body: Any, where: Where, origin: Origin) -> None:
    builder.group(name, where)
    if body is None:
        return
    if not isinstance(body, Mapping):
        raise where.error(f"group {name!r} must be a mapping with hosts, children or vars")
    for key, value in body.items():
        at = where.at(line_of(body, key))
        if key == "vars":
            values = _yaml_vars(value, at, f"vars of group {name!r}", origin)
            builder.add_group_vars(name, values, key_where(value, PROFILE_KEY, at))
        elif key == "hosts":
            _parse_yaml_hosts(builder, name, value, at, origin)
        elif key == "children":
            # `children: web` names one child, as in Ansible
            children = {value: None} if isinstance(value, str) else value
            for child, child_body in _yaml_mapping(children, at, f"children of {name!r}").items():
                child_at = at.at(line_of(children, child))
                _parse_yaml_group(builder, str(child), child_body, child_at, origin)
                builder.add_child(name, str(child), child_at)
        else:
            expected = ", ".join(_GROUP_KEYS)
            raise at.error(f"unknown key {key!r} in group {name!r} (expected {expected})")


def _parse_yaml_hosts(
    builder: Builder, group: str, value: Any, where: Where, origin: Origin
) -> None:
    if isinstance(value, str):  # `hosts: web1` is a one-host mapping, as in Ansible
        value = {value: None}
    hosts = _yaml_mapping(value, where, f"hosts of group {group!r}")
    for pattern, host_body in hosts.items():
        at = where.at(line_of(hosts, pattern))
        if not isinstance(pattern, str):
            raise at.error(f"host name {pattern!r} must be a string; quote it")
        values = _yaml_vars(host_body, at, f"host {pattern!r}", origin)
        names, port = expand_host(pattern, at)
        for name in names:
            profile_at = key_where(host_body, PROFILE_KEY, at)
            builder.add_host(group, name, dict(values), at, port, vars_where=profile_at)


def _yaml_mapping(value: Any, where: Where, what: str) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.error(f"{what} must be a mapping")
    return value


def _yaml_vars(value: Any, where: Where, what: str, origin: Origin) -> dict[str, Any]:
    values: dict[str, Any] = plain(_yaml_mapping(value, where, what), origin)
    return values
