"""``invoke inventory``: the selected hosts and their effective profile, secrets redacted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from tabulate import tabulate

from .api import host_profile
from .redact import Redactor

__all__ = ["render_inventory"]


def render_inventory(hosts: Sequence[Any]) -> str:
    rows = [
        [h.name, "local" if h.local else h.address, h.port or "", h.user or "", ",".join(h.groups)]
        for h in hosts
    ]
    out = [tabulate(rows, headers=["host", "address", "port", "user", "groups"], tablefmt="simple")]
    redactor = Redactor()
    for h in hosts:
        overrides = dict(getattr(h, "profile_vars", {}) or {})
        effective = host_profile(h, [])
        out.append(
            f"\n# {h.name}: effective profile (inventory overrides: {', '.join(overrides) or 'none'})"
        )
        shown = {
            k: effective.get(k)
            for k in ("app_root", "settings_file", "env_file", "pidfile", "backup_dir")
        }
        shown.update(overrides)
        out.append(yaml.safe_dump(redactor.obj(shown), sort_keys=False).rstrip())
    return "\n".join(out)
