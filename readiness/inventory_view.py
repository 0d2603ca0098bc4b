"""``invoke inventory``: the selected hosts and their effective profile, secrets redacted."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from .api import host_profile
from .inventory.secrets import PATH_VAR, SECRET_VAR, hosts_secrets
from .netaddr import endpoint
from .profile import Profile
from .redact import MASK, Redactor
from .registry import default_profile
from .tables import tabulate
from .transport import ConnectionSettings

__all__ = ["host_variables", "profile_changes", "render_inventory"]

_PATH_KEYS = ("settings_file", "env_file", "pidfile", "backup_dir", "docs_dir")


def host_variables(host: Any, redactor: Redactor | None = None) -> dict[str, Any]:
    """A host's merged variables, sorted by name, secrets masked (compare with
    ``ansible-inventory --host NAME``)."""
    redactor = redactor or Redactor()
    shown: dict[str, Any] = {}
    for name in sorted(getattr(host, "vars", {}) or {}):
        value = host.vars[name]
        if PATH_VAR.search(name):  # a path to a key or secret file, not the secret itself
            shown[name] = redactor.obj(_plain(value))
        elif SECRET_VAR.search(name) and value not in (None, ""):
            shown[name] = MASK
        else:
            shown[name] = redactor.obj(_plain(value), name)
    return shown


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def profile_changes(effective: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of ``effective`` that differ from ``defaults`` (nested mappings compared deeply)."""
    out: dict[str, Any] = {}
    for key, value in effective.items():
        base = defaults.get(key)
        if isinstance(value, Mapping) and isinstance(base, Mapping):
            inner = profile_changes(value, base)
            if inner:
                out[key] = inner
        elif value != base:
            out[key] = value
    return out


def render_inventory(
    hosts: Sequence[Any],
    layers: Sequence[tuple[str, Mapping[str, Any]]] = (),
    fmt: str = "text",
    *,
    show_vars: bool = False,
    connection: ConnectionSettings | None = None,
) -> str:
    """A host table, then for each host what its profile changes and where its files are;
    with ``show_vars`` also every merged inventory variable (secrets masked)."""
    redactor = Redactor(hosts_secrets(hosts))
    defaults = default_profile()
    profiles = [host_profile(h, layers) for h in hosts]
    logins = [redactor.obj(login) for login in _logins(hosts, connection)]
    if fmt == "json":
        return json.dumps(
            {
                "hosts": [
                    {**_host_data(h, p, redactor, show_vars=show_vars), "ssh": login}
                    for h, p, login in zip(hosts, profiles, logins, strict=True)
                ]
            },
            indent=2,
        )
    rows = [
        [
            h.name,
            "local" if h.local else h.address,
            "" if h.local else h.port or "",
            h.user or "",
            ",".join(h.groups),
            _login_text(login),
        ]
        for h, login in zip(hosts, logins, strict=True)
    ]
    headers = ["host", "address", "port", "user", "groups", "ssh login (ssh_config, ssh args)"]
    out = [tabulate(rows, headers=headers, tablefmt="simple")]
    for h, profile in zip(hosts, profiles, strict=True):
        changes = profile_changes(profile.to_dict(), defaults)
        source = getattr(h, "source", "")
        out.append(
            f"\n# {h.name}{f' ({source})' if source else ''}: profile values that differ from the defaults"
        )
        out.append(
            yaml.safe_dump(redactor.obj(changes), sort_keys=False).rstrip() if changes else "{}"
        )
        out.append("# resolved on the host:")
        out.append(yaml.safe_dump(_paths(profile), sort_keys=False).rstrip())
        if show_vars:
            out.append(f"# variables (compare: ansible-inventory --host {h.name}):")
            variables = host_variables(h, redactor)
            out.append(yaml.safe_dump(variables, sort_keys=False).rstrip() if variables else "{}")
    return "\n".join(out)


def _logins(
    hosts: Sequence[Any], connection: ConnectionSettings | None
) -> list[dict[str, Any] | None]:
    """Where readiness logs in to each ssh host, after ssh_config and the host's ssh
    arguments, as ``validate`` would (no network): the inventory's address, port and user
    are only where that starts. None for a local host; ``{"error": ...}`` for a host that
    would be UNREACHABLE before connecting."""
    if all(h.local for h in hosts):
        return [None] * len(hosts)
    from .errors import TransportError
    from .ssh import SshConnector

    connector = SshConnector(connection or ConnectionSettings())
    logins: list[dict[str, Any] | None] = []
    for h in hosts:
        if h.local:
            logins.append(None)
            continue
        try:
            t = connector.resolve(h)
        except TransportError as exc:
            logins.append({"error": str(exc)})
            continue
        logins.append(
            {
                "address": t.address,
                "port": t.port,
                "user": t.user,
                "key_file": t.key_files[0] if t.key_files else None,
                "proxy_jump": t.proxy_jump or None,
            }
        )
    return logins


def _login_text(login: Mapping[str, Any] | None) -> str:
    if login is None:
        return ""
    if "error" in login:
        return f"not connected: {login['error']}"
    text = f"{login['user']}@{endpoint(login['address'], login['port'])}"
    return f"{text} via {login['proxy_jump']}" if login["proxy_jump"] else text


def _paths(profile: Profile) -> dict[str, Any]:
    paths: dict[str, Any] = {"app_root": profile.app_root}
    paths.update({k: profile.path_of(k) for k in _PATH_KEYS})
    return paths


def _host_data(
    host: Any, profile: Profile, redactor: Redactor, *, show_vars: bool = False
) -> dict[str, Any]:
    data = {
        "host": host.name,
        "address": "local" if host.local else host.address,
        "port": None if host.local else host.port,
        "user": host.user,
        "groups": list(host.groups),
        "local": bool(host.local),
        "source": getattr(host, "source", ""),
        "paths": _paths(profile),
        "profile": redactor.obj(profile.to_dict()),
    }
    if show_vars:
        data["vars"] = host_variables(host, redactor)
    return data
