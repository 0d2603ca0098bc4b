"""``security_settings``: tighten secret-bearing files (env file, settings with secrets,
private keys) to mode 0600. Nothing else is changed: auth and RBAC are decisions."""

from __future__ import annotations

import re

from ...model import CheckResult
from ...profile import Profile
from ..plan import Change, Chmod, FileState, Fix
from . import FixInput, fixer, link_refusal

# The check's finding is the contract (its details changed shape while it was written).
_LOOSE = re.compile(
    r"^(?P<path>/.+) holds secrets but is accessible to group/others \(mode (?P<mode>[0-7]+)\)$"
)


def _loose(_profile: Profile, result: CheckResult) -> list[str]:
    """The files the check found too open: read before the plan, so that one the applier
    would refuse (a link, several hard links) is refused in the dry run too."""
    d = result.details
    findings = [str(p) for p in (*(d.get("problems") or ()), *(d.get("warnings") or ()))]
    return [m.group("path") for m in map(_LOOSE.match, findings) if m]


def _refusal(state: FileState) -> str | None:
    """Why the applier will not chmod ``state`` (applier.ch_chmod), or None."""
    refusal = link_refusal(state, "chmod", rewrite=False)
    if refusal is None and state.cannot_chmod:
        refusal = f"refused: {state.cannot_chmod}: re-run with --sudo or as its owner"
    if refusal is None and state.kind == "file" and state.nlink > 1:
        refusal = (
            f"refused: {state.path} has {state.nlink} hard links; readiness does not chmod a "
            "file that also lives elsewhere"
        )
    return refusal


@fixer(
    "security_settings",
    summary="chmod 600 secret-bearing files (only removes permissions)",
    named=_loose,
)
def fix(inp: FixInput) -> Fix | None:
    changes: list[Change] = []
    addresses: list[str] = []
    notes: list[str] = []
    for problem in inp.findings:
        m = _LOOSE.match(problem)
        if not m:
            continue
        refusal = _refusal(inp.file(m.group("path")))
        if refusal:
            notes.append(refusal)
            continue
        changes.append(Chmod(m.group("path"), 0o600, int(m.group("mode"), 8)))
        addresses.append(problem)
    if not changes and not notes:
        return None
    return Fix(
        "security_settings",
        "make secret-bearing files private",
        tuple(changes),
        tuple(addresses),
        tuple(notes),
    )
