"""Commands that run in the app tree run as its owner, never as root (docs/security.md).

A command the profile names (a smoke workflow, a log marker, a workflow start) runs with
``cwd`` in the app tree, so its interpreter imports the app's code from there; a
``.venv/bin/python`` is the app's own. Such commands use the probe's ``run_as_owner``
op: as root it drops to the owner of the working directory (and of the executable when
it is a path); it refuses what it cannot run safely, with the reason as the ``error``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from ..findings import Findings

__all__ = ["owned_run", "refused_run"]


def owned_run(argv: Sequence[str], cwd: str, **spec: Any) -> dict[str, Any]:
    """A ``run_as_owner`` spec for ``argv`` in ``cwd`` (extra keys as for ``run``)."""
    paths = [cwd]
    exe = str(argv[0]) if argv else ""
    if "/" in exe:
        paths.append(exe if exe.startswith("/") else posixpath.normpath(posixpath.join(cwd, exe)))
    return {"op": "run_as_owner", "owned_by": paths, "argv": list(argv), "cwd": cwd, **spec}


def refused_run(f: Findings, what: str, answer: Mapping[str, Any]) -> bool:
    """True when the probe refused to run ``what`` (a ``run_as_owner`` answer), with
    "cannot determine" in ``f`` (DEGRADED): nothing ran, so nothing is known about it, and
    the command is not at fault (a non-root audit account cannot become the app user)."""
    why = answer.get("refused")
    if not why or not isinstance(why, str):
        return False
    owner = answer.get("owner")
    f.unknown(
        f"cannot determine: {what} was not run: {why}",
        f"Rerun with --sudo so readiness can run it as {owner}"
        if owner
        else "Give the code it would run (the app tree, the repository, the command's "
        "executable) one owner (the app user) and no group/other write (chmod -R go-w)",
    )
    return True
