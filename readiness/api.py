"""The library API: everything ``tasks.py`` does is available from Python.

>>> from readiness import validate
>>> report = validate(hosts="local", checks=["environment"])   # doctest: +SKIP
>>> report.exit_code()                                          # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InventoryError, ProfileError
from .model import FleetReport
from .profile import Profile, load_profile_file, merge_layers
from .redact import Redactor
from .registry import CheckSpec, default_profile, resolve_names
from .runner import Connector, HostLike, RunOptions, run_fleet

__all__ = [
    "Plan",
    "default_inventory_paths",
    "host_profile",
    "load_selected_hosts",
    "plan",
    "profile_layers",
    "run_plan",
    "validate",
]

INVENTORY_ENV = "READINESS_INVENTORY"


def default_inventory_paths(configured: str | Sequence[str] | None = None) -> list[Path]:
    """``-i`` if given, else ``$READINESS_INVENTORY``, else ``./inventories`` when it exists.

    A string may name several sources separated by ``:`` or ``,`` (as ``$ANSIBLE_INVENTORY``
    does with ``,``), unless the whole string is an existing path.
    """
    if configured:
        if isinstance(configured, (str, Path)):
            return _split_sources(str(configured))
        return [Path(p).expanduser() for p in configured]
    env = os.environ.get(INVENTORY_ENV)
    if env:  # checked as -i is (a 100,000-character value was an ENAMETOOLONG traceback)
        from .options import option

        return _split_sources(option("inventory").coerce(env, INVENTORY_ENV))
    default = Path("inventories")
    return [default] if default.is_dir() else []


def _split_sources(text: str) -> list[Path]:
    """``~`` expanded as Ansible does (``inventory: ~/inv.yml`` in readiness.yaml, a quoted
    ``-i '~/inv.yml'``), the shell having had no chance to."""
    from .inventory.loader import is_host_list

    whole = Path(text).expanduser()
    if whole.exists():
        return [whole]
    if is_host_list(text):  # Ansible's -i 'web1,web2:2222,': one source, read as hosts
        return [Path(text)]
    return [Path(p).expanduser() for p in re.split(r"[:,]", text) if p.strip()]


def load_selected_hosts(
    hosts: str = "local",
    *,
    inventory: str | Sequence[str] | None = None,
    limit: str | None = None,
    refuse_implicit_local: str | None = None,
) -> list[Any]:
    """Resolve a host pattern against the inventory (``local`` works with no inventory).

    ``refuse_implicit_local`` (why, e.g. "remediate acts only on hosts an inventory names")
    makes the implicit controller host ``local`` -- the one no inventory defines, audited
    with the built-in ``/opt/mahavishnu`` defaults -- a usage error instead of a selection.
    """
    from .inventory import load_inventory, local_host
    from .inventory.model import IMPLICIT

    paths = default_inventory_paths(inventory)
    from .inventory.loader import is_host_list

    for p in paths:
        if not p.exists() and not is_host_list(str(p)):
            raise InventoryError(f"inventory not found: {p}")
    if not paths:
        if hosts.strip() == "local" and refuse_implicit_local is None:
            return [local_host()]
        raise InventoryError(
            f"no inventory: pass -i/--inventory or set {INVENTORY_ENV} to select {hosts!r}"
        )
    loaded = load_inventory(paths)
    selected = list(loaded.select(hosts, limit=limit))
    if refuse_implicit_local is not None and any(h.source == IMPLICIT for h in selected):
        names = ", ".join(str(p) for p in paths)
        raise InventoryError(
            f"{refuse_implicit_local}, and 'local' is not a host of {names}: pass --hosts "
            f"PATTERN (known groups: {', '.join(loaded.groups)}), or name a 'local' host "
            "(ansible_connection: local, with its readiness: app_root) in the inventory"
        )
    return selected


def profile_layers(
    profile: str | Path | Mapping[str, Any] | None,
) -> list[tuple[str, Mapping[str, Any]]]:
    if profile is None:
        return []
    if isinstance(profile, Mapping):
        return [("profile", profile)]
    return [(f"profile file {profile}", load_profile_file(profile))]


def host_profile(
    host: Any,
    layers: Sequence[tuple[str, Mapping[str, Any]]],
    overrides: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
) -> Profile:
    """defaults ← profile file ← inventory ``readiness`` vars ← overrides, for one host.

    Pass ``defaults`` (``default_profile()``) when building many hosts: computing it
    costs milliseconds, which a fleet would otherwise pay once per host.
    """
    host_layer = getattr(host, "profile_vars", None) or {}
    if not isinstance(host_layer, Mapping):
        raise ProfileError(f"host {host.name}: inventory variable 'readiness' must be a mapping")
    all_layers = [*layers, (f"inventory vars of host {host.name}", host_layer)]
    if overrides:
        all_layers.append(("overrides", overrides))
    return merge_layers(default_profile() if defaults is None else defaults, all_layers)


@dataclass(frozen=True)
class Plan:
    """What a run will do, decided before any host is contacted: the selected hosts (in
    inventory order), the checks, and each host's merged profile."""

    hosts: tuple[Any, ...]
    specs: tuple[CheckSpec, ...]
    profiles: Mapping[str, Profile]


def plan(
    hosts: str | Sequence[HostLike] = "local",
    checks: Iterable[str] | str | None = None,
    *,
    inventory: str | Sequence[str] | None = None,
    limit: str | None = None,
    profile: str | Path | Mapping[str, Any] | None = None,
    profile_overrides: Mapping[str, Any] | None = None,
    suite: str | None = "validate",
    specs: Sequence[CheckSpec] | None = None,
    refuse_implicit_local: str | None = None,
) -> Plan:
    """The one plan step of every task (validate, the suites, remediate): inventory,
    pattern and limit → hosts; ``checks`` or ``suite`` (or ``specs``) → checks; profile
    file, inventory vars and overrides → one profile per host. ``refuse_implicit_local``:
    see :func:`load_selected_hosts`."""
    selected = (
        load_selected_hosts(
            hosts, inventory=inventory, limit=limit, refuse_implicit_local=refuse_implicit_local
        )
        if isinstance(hosts, str)
        else list(hosts)
    )
    chosen = list(specs) if specs is not None else resolve_names(checks, suite=suite)
    layers = profile_layers(profile)
    defaults = default_profile()
    profiles = {
        h.name: host_profile(h, layers, profile_overrides, defaults=defaults) for h in selected
    }
    return Plan(tuple(selected), tuple(chosen), profiles)


def run_plan(
    planned: Plan,
    *,
    options: RunOptions | None = None,
    connector: Connector | None = None,
    app_object: Any = None,
) -> FleetReport:
    """Audit a :class:`Plan` on the one fleet loop; one merged, redacted report.

    With ``options.engine == "celery"`` the plan's hosts are audited in shards by Celery
    workers (each on this same loop) and merged here: :mod:`readiness.engine`."""
    if options is not None and options.engine == "celery":
        from .engine.controller import run_distributed

        return run_distributed(planned, options)
    return run_fleet(
        planned.hosts,
        planned.specs,
        planned.profiles,
        options=options,
        connector=connector,
        redactor=Redactor(),
        app_object=app_object,
    )


def validate(
    hosts: str | Sequence[HostLike] = "local",
    checks: Iterable[str] | str | None = None,
    *,
    inventory: str | Sequence[str] | None = None,
    limit: str | None = None,
    profile: str | Path | Mapping[str, Any] | None = None,
    profile_overrides: Mapping[str, Any] | None = None,
    suite: str | None = "validate",
    options: RunOptions | None = None,
    connector: Connector | None = None,
    app_object: Any = None,
    specs: Sequence[CheckSpec] | None = None,
) -> FleetReport:
    """Audit the selected hosts and return one merged, already-redacted :class:`FleetReport`.

    ``hosts`` is a host pattern (``prod``, ``web*:&eu``, ``local``) or a list of
    inventory hosts. ``checks`` defaults to every check of ``suite``.
    """
    planned = plan(
        hosts,
        checks,
        inventory=inventory,
        limit=limit,
        profile=profile,
        profile_overrides=profile_overrides,
        suite=suite,
        specs=specs,
    )
    return run_plan(planned, options=options, connector=connector, app_object=app_object)
