"""Commands that run in the app tree run as its owner, never as root (docs/security.md).

A command the profile names (a smoke workflow, a log marker, a workflow start) runs with
``cwd`` in the app tree, so its interpreter imports the app's code from there; a
``.venv/bin/python`` is the app's own. Such commands use the probe's ``run_as_owner``
op: as root it drops to the owner of the working directory (and of the executable when
it is a path); it refuses what it cannot run safely, with the reason as the ``error``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any

__all__ = ["owned_run"]


def owned_run(argv: Sequence[str], cwd: str, **spec: Any) -> dict[str, Any]:
    """A ``run_as_owner`` spec for ``argv`` in ``cwd`` (extra keys as for ``run``)."""
    paths = [cwd]
    exe = str(argv[0]) if argv else ""
    if "/" in exe:
        paths.append(exe if exe.startswith("/") else posixpath.normpath(posixpath.join(cwd, exe)))
    return {"op": "run_as_owner", "owned_by": paths, "argv": list(argv), "cwd": cwd, **spec}
