"""``security_settings``: tighten secret-bearing files (env file, settings with secrets,
private keys) to mode 0600. Nothing else is changed: auth and RBAC are decisions."""

from __future__ import annotations

import re

from ..plan import Change, Chmod, Fix
from . import FixInput, fixer

# The check's finding is the contract (its details changed shape while it was written).
_LOOSE = re.compile(
    r"^(?P<path>/.+) holds secrets but is accessible to group/others \(mode (?P<mode>[0-7]+)\)$"
)


@fixer("security_settings", summary="chmod 600 secret-bearing files (only removes permissions)")
def fix(inp: FixInput) -> Fix | None:
    changes: list[Change] = []
    addresses: list[str] = []
    for problem in inp.findings:
        m = _LOOSE.match(problem)
        if m:
            changes.append(Chmod(m.group("path"), 0o600, int(m.group("mode"), 8)))
            addresses.append(problem)
    if not changes:
        return None
    return Fix(
        "security_settings", "make secret-bearing files private", tuple(changes), tuple(addresses)
    )
