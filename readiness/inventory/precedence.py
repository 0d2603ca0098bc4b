"""Ansible's variable precedence: each host's effective variables and connection settings.

Group layers apply from shallow to deep (ties broken by ``ansible_group_priority``, then name),
then the host's own layers; later values replace earlier ones, except the ``readiness`` dict,
which is merged recursively.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..ssh_options import host_refused, options_error, user_refused
from .model import LOCAL, PROFILE_KEY, Group, Host
from .strict_yaml import VAULT_KEY

if TYPE_CHECKING:  # builder imports this module to resolve what it accumulated
    from .builder import RawGroup, RawHost
    from .source import Where

__all__ = ["ADDRESS_KEYS", "Resolver", "final_group", "first_set"]

# The first key set wins. Between Ansible's two spellings, the ansible_ssh_* one wins, as in
# Ansible's ssh connection (its option lists both and the last one defined is used).
ADDRESS_KEYS = ("readiness_host", "ansible_ssh_host", "ansible_host")
_PORT_KEYS = ("readiness_port", "ansible_ssh_port", "ansible_port")
_USER_KEYS = ("readiness_user", "ansible_ssh_user", "ansible_user")
_KEY_FILE_KEYS = (
    "readiness_ssh_private_key_file",
    "ansible_ssh_private_key_file",
    "ansible_private_key_file",
)
_CONNECTION_KEYS = ("readiness_connection", "ansible_connection")
# Ansible's local connection plugin, by its short and fully qualified names
_LOCAL_CONNECTIONS = ("local", "ansible.builtin.local", "ansible.legacy.local")


class Resolver:
    """Applies Ansible's precedence to produce each host's effective variables.

    Lowest to highest: inline vars of the host's groups (``all`` first, then by depth,
    ``ansible_group_priority`` and name), then group_vars files in the same order (``all``'s
    from every source first, then the other groups' source by source), then the host's inline
    vars, then its host_vars files.
    """

    def __init__(
        self,
        raw_groups: Mapping[str, RawGroup],
        parents: Mapping[str, list[str]],
        sources: int,
    ) -> None:
        self._raw = raw_groups
        self._parents = parents
        self._sources = range(max(sources, 1))
        self._order = {name: index for index, name in enumerate(raw_groups)}
        self._depth: dict[str, int] = {}

    def host(self, raw: RawHost) -> Host:
        member_of = self._ancestry(raw.groups)
        ranked = sorted(member_of - {"all"}, key=self._precedence)
        values: dict[str, Any] = {}
        for group in ["all", *ranked]:
            for layer in self._raw[group].layers:
                _merge_into(values, layer)
        for group_names in (["all"], ranked):
            for source in self._sources:
                for group in group_names:
                    for from_source, layer in self._raw[group].file_layers:
                        if from_source == source:
                            _merge_into(values, layer)
        for layer in raw.layers:
            _merge_into(values, layer)
        for source in self._sources:
            for from_source, layer in raw.file_layers:
                if from_source == source:
                    _merge_into(values, layer)
        groups = tuple(sorted(member_of - {"all"}, key=self._order.__getitem__))
        return _make_host(raw, copy.deepcopy(values), groups)

    def _precedence(self, group: str) -> tuple[int, int, str]:
        """Ansible sorts groups by (depth, ansible_group_priority, name); later ones win."""
        return (self._depth_of(group), self._raw[group].priority, group)

    def _depth_of(self, group: str) -> int:
        if group not in self._depth:
            parents = self._parents[group]
            self._depth[group] = 1 + max(map(self._depth_of, parents)) if parents else 0
        return self._depth[group]

    def _ancestry(self, direct: list[str]) -> set[str]:
        found: set[str] = set()
        pending = list(direct)
        while pending:
            group = pending.pop()
            if group not in found:
                found.add(group)
                pending.extend(self._parents[group])
        return found | {"all"}


def final_group(raw: RawGroup) -> Group:
    values: dict[str, Any] = {}
    for layer in [*raw.layers, *(layer for _, layer in raw.file_layers)]:
        _merge_into(values, layer)
    return Group(
        name=raw.name,
        hosts=tuple(raw.hosts),
        children=tuple(raw.children),
        vars=MappingProxyType(values),
        source=raw.where.text,
        priority=raw.priority,
    )


def _merge_into(values: dict[str, Any], layer: Mapping[str, Any]) -> None:
    """Later layers replace variables, except ``readiness``, which is merged recursively."""
    for key, value in layer.items():
        if key == PROFILE_KEY and isinstance(values.get(key), Mapping):
            values[key] = _deep_merge(values[key], value)
        else:
            values[key] = value


def _deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(old, value)
        else:
            merged[key] = value
    return merged


def _make_host(raw: RawHost, values: dict[str, Any], groups: tuple[str, ...]) -> Host:
    for keys in (_CONNECTION_KEYS, _USER_KEYS, _KEY_FILE_KEYS, ADDRESS_KEYS, _PORT_KEYS):
        _not_vaulted(values, keys, raw)
    connection = first_set(values, _CONNECTION_KEYS)
    user = first_set(values, _USER_KEYS)
    key_file = first_set(values, _KEY_FILE_KEYS)
    # a host named 'local' is the controller unless its ansible_connection says otherwise
    local = connection in _LOCAL_CONNECTIONS or (raw.name == LOCAL and connection is None)
    address = _address(values, raw, local=local)
    if not local:
        _ssh_args(values, raw)
        _ssh_names(values, raw, address, user)
    return Host(
        name=raw.name,
        address=address,
        port=_port(values, raw.where),
        user=None if user is None else str(user),
        key_file=None if key_file is None else str(Path(str(key_file)).expanduser()),
        vars=MappingProxyType(values),
        groups=groups,
        local=local,
        source=raw.where.text,
    )


# ssh's own arguments, as Ansible passes them (ssh.py reads the login settings from them)
_SSH_ARGS_KEYS = ("ansible_ssh_args", "ansible_ssh_common_args", "ansible_ssh_extra_args")


def _ssh_args(values: Mapping[str, Any], raw: RawHost) -> None:
    """An ``-o`` (or ``-p``) in the host's ssh arguments that OpenSSH refuses stops the
    inventory, as it stops ssh: ``-o 'User=c d'`` logged in as the user ``c d``."""
    for key in _SSH_ARGS_KEYS:
        value = values.get(key)
        if not isinstance(value, str) or not value:
            continue  # vault / non-text values are ssh.py's to refuse by name
        try:
            words = shlex.split(value)
        except ValueError:
            continue  # ssh.py says "cannot be read as ssh options" for the host
        error = options_error(words)
        if error:
            raise raw.where.error(f"host {raw.name!r}: {key}: {error} (ssh refuses it)")


def _ssh_names(values: Mapping[str, Any], raw: RawHost, address: str, user: Any) -> None:
    """An address or user ssh refuses ("hostname contains invalid characters": a space, a
    newline, ESC, ``;``, a leading ``-``) stops the load, as it stops ssh. Before, it was
    connected to as written, and printed raw: ``ansible_host: "a\\u001b[31mb"`` wrote a
    terminal escape into ``readiness inventory`` and every report."""
    if host_refused(address) and not _templated(address):
        key = next((k for k in ADDRESS_KEYS if values.get(k) is not None), "the host's name")
        raise raw.where.error(
            f"host {raw.name!r}: {key} {address!r} has characters ssh refuses in a host name "
            "(a space, a control character, one of \"$&'(),;<>\\`{|}, or a leading '-')"
        )
    if isinstance(user, str) and user_refused(user) and not _templated(user):
        key = next(k for k in _USER_KEYS if values.get(k) is not None)
        raise raw.where.error(
            f"host {raw.name!r}: {key} {user!r} has characters ssh refuses in a user "
            "name (a control character, one of \"&'();<>`{|}, or a leading '-')"
        )


def _templated(text: str) -> bool:
    """A Jinja template: ssh.py refuses the host by name ("is a Jinja template")."""
    return "{{" in text or "{%" in text


def _not_vaulted(values: Mapping[str, Any], keys: Sequence[str], raw: RawHost) -> None:
    """A connection setting readiness would use must be readable: an Ansible Vault value
    (``!vault``) is refused by name, never used as an address, port or user."""
    key = next((key for key in keys if values.get(key) is not None), None)
    value = values.get(key) if key else None
    if isinstance(value, Mapping) and VAULT_KEY in value:
        raise raw.where.error(
            f"host {raw.name!r}: {key} is encrypted with Ansible Vault, which readiness "
            f"cannot decrypt; write it in plain text for readiness ({keys[0]})"
        )


def _address(values: Mapping[str, Any], raw: RawHost, *, local: bool) -> str:
    """The address to log in to. One that is set but empty is refused: Ansible's ssh would
    connect to '' (and fail); readiness used to log in to the inventory name instead."""
    key = next((key for key in ADDRESS_KEYS if values.get(key) is not None), None)
    if key is None:
        return raw.name
    address = str(values[key])
    if address.strip():
        return address
    if local:  # audited on the controller: no address is used
        return raw.name
    raise raw.where.error(
        f"host {raw.name!r}: {key} is empty (Ansible would connect to {address!r}); "
        "set the address, or remove the variable to connect to the host's name"
    )


def first_set(values: Mapping[str, Any], keys: Sequence[str]) -> Any:
    """The first of ``keys`` that is set: readiness_* spellings win over ansible_* ones."""
    return next((values[key] for key in keys if values.get(key) is not None), None)


def _port(values: Mapping[str, Any], where: Where) -> int:
    value = first_set(values, _PORT_KEYS)
    if value is None:
        return 22
    text = str(value) if isinstance(value, int | str) else ""
    port = int(text) if text.isdecimal() and len(text.lstrip("0")) <= 5 else -1
    if not 0 < port < 65536:
        if "{{" in text or "{%" in text:  # as the other login settings say it (ssh.py)
            raise where.error(
                f"invalid port {value!r}: a Jinja template, which readiness does not render; "
                "write the number (or set readiness_port, which readiness reads first)"
            )
        raise where.error(f"invalid port {value!r}")
    return port
