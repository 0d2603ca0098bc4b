"""``invoke inventory``: the selected hosts and their effective profile, secrets redacted."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from tabulate import tabulate

from .api import host_profile
from .profile import Profile
from .redact import Redactor
from .registry import default_profile

__all__ = ["profile_changes", "render_inventory"]

_PATH_KEYS = ("settings_file", "env_file", "pidfile", "backup_dir", "docs_dir")


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
) -> str:
    """A host table, then for each host what its profile changes and where its files are."""
    redactor = Redactor()
    defaults = default_profile()
    profiles = [host_profile(h, layers) for h in hosts]
    if fmt == "json":
        return json.dumps(
            {"hosts": [_host_data(h, p, redactor) for h, p in zip(hosts, profiles, strict=True)]},
            indent=2,
        )
    rows = [
        [
            h.name,
            "local" if h.local else h.address,
            "" if h.local else h.port or "",
            h.user or "",
            ",".join(h.groups),
        ]
        for h in hosts
    ]
    out = [tabulate(rows, headers=["host", "address", "port", "user", "groups"], tablefmt="simple")]
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
    return "\n".join(out)


def _paths(profile: Profile) -> dict[str, Any]:
    paths: dict[str, Any] = {"app_root": profile.app_root}
    paths.update({k: profile.path_of(k) for k in _PATH_KEYS})
    return paths


def _host_data(host: Any, profile: Profile, redactor: Redactor) -> dict[str, Any]:
    return {
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
