"""Commands that run in the app tree run as its owner, never as root (docs/security.md).

A command the profile names (a smoke workflow, a log marker, a workflow start) runs with
``cwd`` in the app tree, so its interpreter imports the app's code from there; a
``.venv/bin/python`` is the app's own. Such commands use the probe's ``run_as_owner``
op: as root it drops to the owner of the working directory (and of the executable when
it is a path); it refuses what it cannot run safely, with the reason as the ``error``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..findings import Findings

__all__ = ["code_paths", "owned_run", "refused_run"]

# Interpreters: the code they run is their script (or, for python -m/-c, the working
# directory, first on sys.path), not the interpreter binary.
_INTERPRETER = re.compile(r"(python|pypy)[0-9.]*|sh|bash|dash|zsh|ksh|node|nodejs|ruby|perl|php")


# Programs that run a command given in their arguments (`nice -n 10 bin/backup.sh`,
# `timeout 30 python3 bin/restart.py`): the command's code is judged, not the wrapper.
# `env` is followed (env_command); for the others every word may be code.
_WRAPPERS = frozenset(
    {
        "env",
        "nice",
        "ionice",
        "nohup",
        "setsid",
        "timeout",
        "stdbuf",
        "chrt",
        "taskset",
        "flock",
        "time",
    }
)


# Programs whose code is a file of their working directory (`make restart`: the Makefile;
# `npm run restart`: package.json's scripts): that directory and those files are judged.
_CWD_RUNNERS = {
    "make": ("Makefile", "makefile", "GNUmakefile"),
    "gmake": ("Makefile", "makefile", "GNUmakefile"),
    "npm": ("package.json",),
    "yarn": ("package.json",),
    "pnpm": ("package.json",),
    "just": ("justfile", "Justfile", ".justfile"),
    "rake": ("Rakefile", "rakefile"),
    "invoke": ("tasks.py",),
    "inv": ("tasks.py",),
}


def env_command(argv: Sequence[str]) -> list[str] | None:
    """The command ``env [OPTION]... [NAME=VALUE]... COMMAND [ARG]...`` runs (its argv), or
    None when its options change what runs in ways not followed here (``-C``/``--chdir``,
    ``-S``/``--split-string``). ``argv[0]`` is ``env``."""
    rest = [str(a) for a in argv[1:]]
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "--":
            return rest[i + 1 :]
        if word.startswith("--"):
            if word.startswith(("--chdir", "--split-string")):
                return None
            i += 2 if word == "--unset" else 1
        elif word.startswith("-") and word != "-":
            if "C" in word or "S" in word:
                return None
            i += 2 if word.endswith("u") else 1
        elif "=" in word or word == "-":
            i += 1
        else:
            break
    return rest[i:]


def code_paths(argv: Sequence[str], cwd: str) -> list[str]:
    """The paths whose owner ``argv`` runs the code of, besides a working directory: an
    executable given as a path; for an interpreter (``python3 bin/start.py``, ``sh x.sh``)
    its script arguments, and for ``python -m``/``-c`` the working directory; through
    ``env`` (``/usr/bin/env A=1 python3 bin/start.py``), those of the command it runs (when
    its options cannot be followed: every word and the working directory)."""
    if not argv:
        return []
    exe = str(argv[0])
    paths = [posixpath.normpath(posixpath.join(cwd, exe))] if "/" in exe else []
    name = posixpath.basename(exe)
    if name in _WRAPPERS and name != "env":
        # Where its own options end is the wrapper's business: the command may start at
        # any word after it (`timeout 30 python3 bin/restart.py`).
        tails = [p for i in range(1, len(argv)) for p in code_paths(argv[i:], cwd)]
        return paths + [p for p in dict.fromkeys(tails) if p not in paths]
    if name == "env":
        inner = env_command(argv)
        if inner is None:
            # Options may name a directory (env -C) or the command (env -S, flock -c): any
            # word, and any word under any other, may be code.
            words = [str(a) for a in argv[1:] if "=" not in str(a)]
            words = [t for w in words for t in w.split()]
            words = [w for w in words if w[:1] != "-"]
            bases = [cwd, *(posixpath.join(cwd, w) for w in words)]
            return (
                paths
                + [posixpath.normpath(posixpath.join(b, w)) for b in bases for w in words]
                + [cwd]
            )
        return paths + code_paths(inner, cwd)
    if name in _CWD_RUNNERS:
        paths += [cwd, *(posixpath.join(cwd, f) for f in _CWD_RUNNERS[name])]
    if _INTERPRETER.fullmatch(posixpath.basename(exe)):
        args = [str(a) for a in argv[1:]]
        # A script is a path argument (an inline `sh -c "..."` text is the profile's own).
        scripts = [a for a in args if a and a[:1] != "-" and not any(c.isspace() for c in a)]
        paths += [posixpath.normpath(posixpath.join(cwd, a)) for a in scripts]
        if posixpath.basename(exe).startswith(("python", "pypy")) and {"-m", "-c"} & set(args):
            paths.append(cwd)
    return paths


def owned_run(argv: Sequence[str], cwd: str, **spec: Any) -> dict[str, Any]:
    """A ``run_as_owner`` spec for ``argv`` in ``cwd`` (extra keys as for ``run``): run as the
    owner of ``cwd`` and of the code ``argv`` names (:func:`code_paths`)."""
    paths = list(dict.fromkeys([cwd, *code_paths(argv, cwd)]))
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
