"""One registry, one decorator: every check registers its name, categories, facts and defaults.

A check is a pure function from a :class:`CheckContext` (facts gathered on the
host + the profile + the app's effective configuration) to an
:class:`~readiness.model.Outcome`. It never opens a connection to the audited
host and never prints; checks that need controller libraries (psycopg,
requests) may make network calls with explicit timeouts.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .appconfig import AppConfig
from .errors import UsageError
from .model import Outcome
from .profile import CORE_DEFAULTS, Profile, deep_merge

__all__ = [
    "CATEGORIES",
    "CheckContext",
    "CheckSpec",
    "FactSpecs",
    "all_checks",
    "default_profile",
    "get",
    "register",
    "resolve_names",
]

CATEGORIES = ("configuration", "security", "integration", "performance", "operations")

FactSpecs = dict[str, dict[str, Any]]


def _direct(host: str, port: int) -> tuple[str, int]:
    return host, port


@dataclass
class CheckContext:
    """Everything a check may look at. ``facts`` holds only what checks asked for.

    ``reach(host, port)`` turns a service address as the audited host sees it into one the
    controller can connect to: an SSH tunnel through the host's open connection for a
    remote host, the address itself otherwise. It may raise
    :class:`~readiness.errors.TransportError` (a :class:`~readiness.errors.TunnelError`
    when the destination cannot be reached from the host).
    """

    host: str
    profile: Profile
    facts: Mapping[str, Any]
    app: AppConfig
    meta: Mapping[str, Any] = field(default_factory=dict)
    is_local: bool = True
    app_object: Any = None
    secrets: set[str] = field(default_factory=set)
    reach: Callable[[str, int], tuple[str, int]] = _direct
    # Fact keys the check looked at: a fact the probe refused to read (a symlink the app
    # user could not follow itself) makes the check's verdict "cannot determine".
    consulted: set[str] = field(default_factory=set)

    def fact(self, key: str) -> dict[str, Any]:
        self.consulted.add(key)
        value = self.facts.get(key)
        return dict(value) if type(value) is dict or isinstance(value, Mapping) else {}

    def refusals(self) -> list[str]:
        """Why facts this check depends on were not read: the app's settings and env file
        (every check judges through ``app``) and each fact it consulted."""
        keys = ["app:settings", "app:env_file", *sorted(self.consulted)]
        out: list[str] = []
        for key in keys:
            value = self.facts.get(key)
            why = (
                value.get("read_refused")
                if type(value) is dict or isinstance(value, Mapping)
                else None
            )
            if isinstance(why, str) and why not in out:
                out.append(why)
        return out

    def secret(self, value: str | None) -> None:
        """Declare a value as secret: it will be redacted from every output."""
        if value:
            self.secrets.add(str(value))

    @property
    def can_tunnel(self) -> bool:
        """Whether ``reach`` can tunnel through a remote host (the runner's SSH transports)."""
        return not self.is_local and self.reach is not _direct

    @property
    def host_now(self) -> float | None:
        """The host's clock (ages of backups etc. are judged on the host's time)."""
        now = self.meta.get("now")
        return float(now) if isinstance(now, (int, float)) else None


@dataclass(frozen=True)
class CheckSpec:
    name: str
    evaluate: Callable[[CheckContext], Outcome]
    title: str
    description: str
    categories: tuple[str, ...]
    suites: tuple[str, ...] = ()
    facts: Callable[[Profile], FactSpecs] | None = None
    followup: Callable[[Profile, AppConfig, Mapping[str, Any]], FactSpecs] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    profile_keys: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    order: int = 100
    opt_in: bool = False
    # The (host, port) destinations, as the host sees them, that ``evaluate`` will reach
    # through the host's SSH connection; the runner opens them all at once before the
    # checks run, during the follow-up round (one round trip shared with it, not one per
    # destination). Judged from the profile and the app's configuration (the first round's
    # facts); must name only what ``evaluate`` itself would reach.
    destinations: Callable[[CheckContext], list[tuple[str, int]]] | None = None


_REGISTRY: dict[str, CheckSpec] = {}
_DISCOVERED = False


def register(
    name: str,
    *,
    title: str,
    description: str,
    categories: Iterable[str],
    suites: Iterable[str] = (),
    facts: Callable[[Profile], FactSpecs] | None = None,
    followup: Callable[[Profile, AppConfig, Mapping[str, Any]], FactSpecs] | None = None,
    defaults: Mapping[str, Any] | None = None,
    profile_keys: Iterable[str] = (),
    aliases: Iterable[str] = (),
    order: int = 100,
    opt_in: bool = False,
    destinations: Callable[[CheckContext], list[tuple[str, int]]] | None = None,
) -> Callable[[Callable[[CheckContext], Outcome]], Callable[[CheckContext], Outcome]]:
    """Register ``fn`` as the check ``name``. Duplicate names are refused outright."""
    cats = tuple(categories)
    unknown = [c for c in cats if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"check {name!r}: unknown categories {unknown} (valid: {CATEGORIES})")

    def decorator(fn: Callable[[CheckContext], Outcome]) -> Callable[[CheckContext], Outcome]:
        if name in _REGISTRY:
            raise ValueError(f"check {name!r} is already registered")
        _REGISTRY[name] = CheckSpec(
            name=name,
            evaluate=fn,
            title=title,
            description=description,
            categories=cats,
            suites=tuple(suites),
            facts=facts,
            followup=followup,
            defaults=dict(defaults or {}),
            profile_keys=tuple(profile_keys),
            aliases=tuple(aliases),
            order=order,
            opt_in=opt_in,
            destinations=destinations,
        )
        return fn

    return decorator


def _discover() -> None:
    """Import every module of ``readiness.checks`` so its checks register themselves."""
    global _DISCOVERED  # noqa: PLW0603 - a one-shot import guard
    if _DISCOVERED:
        return
    from . import checks

    for mod in sorted(pkgutil.iter_modules(checks.__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{checks.__name__}.{mod.name}")
    _DISCOVERED = True


def all_checks() -> list[CheckSpec]:
    """Every registered check, in report order (a copy: callers cannot mutate the registry)."""
    _discover()
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name))


def get(name: str) -> CheckSpec:
    _discover()
    for spec in _REGISTRY.values():
        if name == spec.name or name in spec.aliases:
            return spec
    from .options import did_you_mean

    names = [s.name for s in all_checks()]
    hint = did_you_mean(name, [*names, *(a for s in all_checks() for a in s.aliases)])
    raise UsageError(f"unknown check {name!r}{hint} (valid checks: {', '.join(names)})")


def resolve_names(
    names: Iterable[str] | str | None, *, suite: str | None = "validate"
) -> list[CheckSpec]:
    """Turn ``-c a,b -c c`` into specs; no names means every check of ``suite``."""
    if isinstance(names, str):
        names = [names]
    flat = [n.strip() for item in (names or ()) for n in str(item).split(",") if n.strip()]
    if not flat:
        return [s for s in all_checks() if suite is None or suite in s.suites]
    seen: dict[str, CheckSpec] = {}
    for n in flat:
        spec = get(n)
        seen.setdefault(spec.name, spec)
    return sorted(seen.values(), key=lambda s: (s.order, s.name))


def default_profile() -> dict[str, Any]:
    """Core defaults merged with every check's declared defaults."""
    merged: dict[str, Any] = dict(CORE_DEFAULTS)
    for spec in all_checks():
        _refuse_conflicts(spec, merged)
        merged = deep_merge(merged, spec.defaults)
    return merged


def _refuse_conflicts(spec: CheckSpec, merged: Mapping[str, Any], where: str = "") -> None:
    def walk(new: Mapping[str, Any], old: Mapping[str, Any], path: str) -> None:
        for key, value in new.items():
            here = f"{path}.{key}" if path else key
            if key not in old:
                continue
            if isinstance(value, Mapping) and isinstance(old[key], Mapping):
                walk(value, old[key], here)
            elif old[key] != value:
                raise ValueError(f"check {spec.name!r} redefines profile default {here!r}")

    walk(spec.defaults, merged, where)
