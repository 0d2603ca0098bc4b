"""One registry, one decorator: a fixer per check turns a failing result into a :class:`Fix`.

A fixer is a pure function: it gets the check's result (its problems and details),
the host's profile and the current state of the files it declared it reads, and
returns the changes that repair what it can. It never touches the host itself.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ...model import CheckResult
from ...profile import Profile
from ..plan import FileState, Fix

__all__ = [
    "FixInput",
    "FixerSpec",
    "all_fixers",
    "creation_refusal",
    "fixer",
    "get_fixer",
    "link_refusal",
]


def hard_link_refusal(state: FileState) -> str:
    """The applier's ``_hard_link_refusal``: a rewrite is a new inode renamed over the name,
    so a file with several hard links would be split from its other names."""
    return (
        f"{state.path} has {state.nlink} hard links; readiness does not rewrite a file that "
        "also lives elsewhere (its other names would keep the old text): edit it by hand"
    )


def link_refusal(state: FileState, what: str, *, rewrite: bool = True) -> str | None:
    """Why a fix will not touch ``state`` (a symlink, a special file, with ``rewrite`` a
    file whose owner the applier could not keep), or None.

    The applier refuses these anyway (docs/security.md); saying so in the plan keeps the
    dry run honest."""
    if rewrite and state.cannot_rewrite:
        return f"refused: {state.cannot_rewrite}"
    if rewrite and state.kind == "file" and state.nlink > 1:
        return f"refused: {hard_link_refusal(state)}"
    if state.kind == "refused":  # the applier could not reach it safely: its reason
        why = state.error or f"{state.path} cannot be reached safely"
        return why if why.startswith("refused: ") else f"refused: {why}"
    if state.kind == "link":
        return (
            f"refused: {state.path} is a symlink; readiness does not {what} through links: "
            "point the setting at the file itself"
        )
    if state.exists and state.kind not in ("file", ""):
        return f"refused: {state.path} is not a regular file ({state.kind}); not changed"
    return None


def creation_refusal(state: FileState) -> str | None:
    """Why a file (or directory) the check reported missing will not be created at
    ``state``: something is there after all (a dangling symlink the app user planted, a
    file), or a planted link above it keeps the applier from reaching it. The applier never
    creates over an existing name nor through such a link; saying so in the plan keeps the
    dry run honest and the fix's other changes standing."""
    if state.kind == "link":
        return (
            f"refused: {state.path} is a symlink; readiness does not create anything through "
            "it: remove the link (or point the setting at the real path)"
        )
    if state.kind == "refused":  # the applier could not reach it safely
        return link_refusal(state, "create")
    if state.exists:
        return f"refused: {state.path} already exists ({state.kind or 'unknown'}); not replaced"
    return None


@dataclass(frozen=True)
class FixInput:
    host: str
    result: CheckResult
    profile: Profile
    files: Mapping[str, FileState] = field(default_factory=dict)
    run_migrations: bool = False

    @property
    def findings(self) -> list[str]:
        """Every problem and warning of the result, in report order."""
        d = self.result.details
        return [str(p) for p in (*(d.get("problems") or ()), *(d.get("warnings") or ()))]

    def matching(self, *needles: str) -> list[str]:
        return [p for p in self.findings if all(n in p for n in needles)]

    def file(self, path: str) -> FileState:
        return self.files.get(path) or FileState(path, exists=False)


Reads = Callable[[Profile], list[str]]
# The paths a check's result names (its findings, its details), read like ``reads``: the
# files a fix acts on that the profile alone does not name (security_settings' key files,
# the documents documentation creates).
Named = Callable[[Profile, CheckResult], list[str]]
FixFn = Callable[[FixInput], Fix | None]


@dataclass(frozen=True)
class FixerSpec:
    check: str
    fn: FixFn
    reads: Reads | None
    summary: str
    named: Named | None = None


_FIXERS: dict[str, FixerSpec] = {}
_DISCOVERED = False


def fixer(
    check: str, *, summary: str, reads: Reads | None = None, named: Named | None = None
) -> Callable[[FixFn], FixFn]:
    """Register ``fn`` as the fixer of ``check``; a second fixer for one check is refused."""

    def decorator(fn: FixFn) -> FixFn:
        if check in _FIXERS:
            raise ValueError(f"check {check!r} already has a fixer")
        _FIXERS[check] = FixerSpec(check, fn, reads, summary, named)
        return fn

    return decorator


def _discover() -> None:
    global _DISCOVERED  # noqa: PLW0603 - a one-shot import guard
    if _DISCOVERED:
        return
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    _DISCOVERED = True


def all_fixers() -> dict[str, FixerSpec]:
    _discover()
    return dict(_FIXERS)


def get_fixer(check: str) -> FixerSpec | None:
    return all_fixers().get(check)
