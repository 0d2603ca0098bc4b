"""``resource_limits``: add missing limits to the settings file with the profile's
recommended value (``resource_ranges.<name>.recommended``, else the middle of the range)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..plan import Fix
from . import FixInput, fixer
from ._settings import add_settings, settings_reads


def recommended_value(rule: Mapping[str, Any]) -> Any:
    if rule.get("recommended") is not None:
        return rule["recommended"]
    lo, hi = rule.get("min"), rule.get("max")
    if not isinstance(lo, (int, float)) or not isinstance(hi, (int, float)):
        return None
    mid = (lo + hi) / 2
    return round(mid) if isinstance(lo, int) and isinstance(hi, int) else mid


@fixer(
    "resource_limits",
    summary="add missing concurrency/retry/timeout limits with recommended values",
    reads=settings_reads,
)
def fix(inp: FixInput) -> Fix | None:
    ranges: Mapping[str, Any] = inp.profile.get("resource_ranges") or {}
    limits = inp.result.details.get("limits") or {}
    inserts: list[tuple[str, Any]] = []
    addresses: list[str] = []
    for name, info in limits.items():
        rule = ranges.get(name)
        if info.get("verdict") != "missing" or not isinstance(rule, Mapping):
            continue
        value = recommended_value(rule)
        setting = str(info.get("setting"))
        if value is not None:
            inserts.append((setting, value))
            addresses += inp.matching(f"{setting} is not set")
    edit, notes = add_settings(inp, inserts, "add resource limits")
    if edit is None and not notes and addresses:
        # Every missing key is already in the planned text: an earlier fix of this plan
        # (error_handling's resilience section) adds it. Nothing to change, nothing left.
        return Fix("resource_limits", "already added by an earlier fix", (), tuple(addresses))
    if edit is None:
        return Fix("resource_limits", "", (), (), tuple(notes)) if notes else None
    return Fix("resource_limits", "set resource limits", (edit,), tuple(addresses), tuple(notes))
