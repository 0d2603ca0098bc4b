"""Helpers shared by the opt-in integration checks (docs/integration.md).

Every integration check acts on the system, so each owns one top-level profile
key named after the check (``backup_roundtrip: {enabled: false, ...}``) and is
SKIPPED, saying which key enables it, until ``enabled`` is true.
"""

from __future__ import annotations

import difflib
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..model import Outcome, Status
from ..profile import Profile
from ..registry import CheckContext

__all__ = [
    "SCRATCH_PREFIX",
    "argv_of",
    "as_list",
    "enabled_section",
    "gate",
    "scratch_name",
    "substitute",
]

SCRATCH_PREFIX = "readiness_scratch_"


def scratch_name(prefix: str = SCRATCH_PREFIX) -> str:
    """A unique name for a scratch object (``readiness_scratch_<16 hex>``)."""
    return prefix + secrets.token_hex(8)


def _section(profile: Profile, name: str) -> Mapping[str, Any]:
    value = profile.get(name)
    return value if isinstance(value, Mapping) else {}


def enabled_section(profile: Profile, name: str) -> Mapping[str, Any] | None:
    """The check's profile section when ``<name>.enabled`` is true, else None."""
    section = _section(profile, name)
    return section if section.get("enabled") is True else None


def gate(ctx: CheckContext, name: str, allowed: Iterable[str], how: str) -> Outcome | None:
    """SKIPPED unless ``<name>.enabled: true``; NOT_READY on unknown sub-keys (typos).

    A typo in an opt-in test's settings would silently weaken it, as in the
    profile's top level, so unknown keys are refused with a "did you mean" hint.
    """
    section = _section(ctx.profile, name)
    known = set(allowed) | {"enabled"}
    unknown = sorted(str(k) for k in section if k not in known)
    if section.get("enabled") is not True:
        return Outcome(
            Status.SKIPPED,
            f"Opt-in integration test: it acts on the system; set {name}.enabled: true "
            "in the profile to run it",
            {"profile_key": f"{name}.enabled", "unknown_keys": unknown} if unknown else {},
            (how,),
        )
    if unknown:
        hints = [
            f"{k} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, known, 1)) else k
            for k in unknown
        ]
        return Outcome(
            Status.NOT_READY,
            f"profile key {name} has unknown setting(s): {', '.join(hints)}",
            {"unknown_keys": unknown, "valid_keys": sorted(known)},
            (f"Fix the spelling under {name} in the profile (valid: {', '.join(sorted(known))})",),
        )
    return None


def as_list(value: Any) -> list[Any]:
    """A mapping or a list of mappings → a list (profile values may be either)."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def argv_of(value: Any) -> list[str]:
    """An argv list from the profile; a bare string is one program, never a shell line."""
    if isinstance(value, (list, tuple)):
        return [str(a) for a in value]
    return [str(value)] if value else []


def substitute(value: Any, fill: Callable[[str], str]) -> Any:
    """Apply ``fill`` to every string inside a JSON-like value (lists, dicts)."""
    if isinstance(value, str):
        return fill(value)
    if isinstance(value, Mapping):
        return {str(k): substitute(v, fill) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [substitute(v, fill) for v in value]
    return value
