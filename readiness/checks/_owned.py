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
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from ..findings import Findings

__all__ = ["Unfollowed", "code_paths", "owned_run", "refused_run", "shell_code_paths"]

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
        "exec",
        "command",
        "xargs",
    }
)

# Shells: ``sh -c TEXT`` runs the code TEXT names (shell_code_paths).
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
# make's options that take an argument (``-C dir``, ``-f file``, ``-I dir``, ``-o file``).
_MAKE_ARG = "CfIoW"
_MAX_SHELL_DEPTH = 4
# A wrapper's command may start at any later word: past this many, every word is judged.
MAX_WRAPPED_WORDS = 256
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)|`([^`]*)`")
# What a shell would expand in a path (a variable, a command, a glob, ~): not a path as given.
_EXPANDED = re.compile(r"[$`*?\[]|(^|/)~")


class Unfollowed(ValueError):
    """A shell line whose code cannot be told from its text (a command given by a variable,
    ``eval``, a ``cd`` to a computed directory, unbalanced quotes)."""


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


def _make_paths(args: Sequence[str], cwd: str) -> list[str]:
    """The directory make runs in (``-C dir``, cumulative, ``--directory=dir``) and the
    makefiles it reads there (``-f file``, else the default names)."""
    where, files = cwd, []
    i = 0
    while i < len(args) and args[i] != "--":
        word = args[i]
        i += 1
        flag, value = "", ""
        if word.startswith("--"):
            key, eq, value = word.partition("=")
            flag = {"--directory": "C", "--file": "f", "--makefile": "f"}.get(key, "")
            if flag and not eq:
                value, i = (args[i] if i < len(args) else ""), i + 1
        elif word[:1] == "-":
            at = next((n for n, c in enumerate(word) if n and c in _MAKE_ARG), 0)
            flag, value = (word[at], word[at + 1 :]) if at else ("", "")
            if flag and not value:
                value, i = (args[i] if i < len(args) else ""), i + 1
        if flag == "C":
            where = posixpath.normpath(posixpath.join(where, value))
        elif flag == "f":
            files.append(value)
    names = files or ["Makefile", "makefile", "GNUmakefile"]
    return [where, *(posixpath.normpath(posixpath.join(where, f)) for f in names)]


def _shell_text(args: Sequence[str]) -> str | None:
    """The TEXT of a shell's ``-c TEXT`` (``-c``, or a cluster such as ``-ec``): the first
    argument after its options; None when the shell runs a script or its input instead."""
    i, command = 0, False
    while i < len(args):
        word = args[i]
        i += 1
        if word == "--":
            return (args[i] if i < len(args) else "") if command else None
        if word[:1] not in ("-", "+") or word in ("-", "+"):
            return word if command else None
        if word in ("-o", "+o", "-O", "+O"):  # `bash -o pipefail -c TEXT`: takes a name
            i += 1
        elif word[:2] != "--" and "c" in word[1:]:
            command = True
    return "" if command else None


def shell_code_paths(line: str, cwd: str, depth: int = 0) -> list[str]:
    """The code a shell command line runs (``sh -c TEXT``; a cron line, which cron's shell
    runs in the user's home): each simple command's :func:`code_paths`, relative to where
    the ``cd`` before it moved, and those of the commands in ``$(...)`` and backquotes.
    Raises :class:`Unfollowed` when that cannot be told from the text."""
    if depth > _MAX_SHELL_DEPTH:
        raise Unfollowed("shell text nested too deep")
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:  # no closing quotation
        raise Unfollowed(str(exc)) from None
    paths: list[str] = []
    words: list[str] = []
    where = cwd

    def command(words: list[str]) -> None:
        nonlocal where
        for word in words:
            for found in _SUBSTITUTION.findall(word):
                paths.extend(shell_code_paths(found[0] or found[1], where, depth + 1))
        while words and _ASSIGNMENT.match(words[0]):
            words = words[1:]
        if not words:
            return
        name = words[0]
        if "$" in name or "`" in name or name == "eval":
            raise Unfollowed(f"the command {name!r} is only known when the shell runs it")
        if name == "cd":
            target = next((w for w in words[1:] if w[:1] != "-"), None)
            if target is None or _EXPANDED.search(target):
                raise Unfollowed(f"`cd {target or ''}` moves to a directory only the shell knows")
            where = posixpath.normpath(posixpath.join(where, target))
            return
        if name in (".", "source"):
            words = ["sh", *words[1:2]]  # the file it reads is code, as a shell's script is
        paths.extend(code_paths(words, where))

    redirect = False
    for token in tokens:
        if token and all(c in "();<>|&" for c in token):
            if "<" in token or ">" in token:
                if words and words[-1].isdigit():
                    words.pop()  # 2>&1: the descriptor, not a word of the command
                redirect = True
                continue
            command(words)
            words = []
            continue
        if redirect:
            redirect = False  # the file it redirects to or from is no code
            continue
        words.append(token)
    command(words)
    for path in paths:
        if _EXPANDED.search(path):
            raise Unfollowed(f"{path} is only known when the shell runs the line")
    return paths


def _env_paths(argv: Sequence[str], cwd: str, memo: _Memo) -> list[str]:
    inner = env_command(argv)
    if inner is not None:
        return _code_paths(inner, cwd, memo)
    # Options may name a directory (env -C) or the command (env -S, flock -c): any word,
    # and any word under any other, may be code.
    words = [str(a) for a in argv[1:] if "=" not in str(a)]
    words = [t for w in words for t in w.split()]
    words = [w for w in words if w[:1] != "-"]
    bases = [cwd, *(posixpath.join(cwd, w) for w in words)]
    return [posixpath.normpath(posixpath.join(b, w)) for b in bases for w in words] + [cwd]


def _text_paths(text: str, cwd: str) -> list[str]:
    """`sh -c TEXT`: the code is what TEXT runs; when that cannot be told, every word of it
    (under the working directory) may be code, as for `env -S`."""
    try:
        return shell_code_paths(text, cwd)
    except Unfollowed:
        words = [w for w in re.split(r"[\s;&|()<>]+", text) if w and w[:1] != "-"]
        return [cwd, *(posixpath.normpath(posixpath.join(cwd, w)) for w in words)]


def code_paths(argv: Sequence[str], cwd: str) -> list[str]:
    """The paths whose owner ``argv`` runs the code of, besides a working directory: an
    executable given as a path; for an interpreter (``python3 bin/start.py``, ``sh x.sh``)
    its script arguments, and for ``python -m``/``-c`` the working directory; through
    ``env`` (``/usr/bin/env A=1 python3 bin/start.py``), those of the command it runs (when
    its options cannot be followed: every word and the working directory)."""
    return _code_paths(argv, cwd, {})


# Each tail of a command answered once: a wrapper looks at every tail, and so does each
# wrapper in it (26 words of ``nice`` took minutes, and `validate` never ended). Every
# argv asked with one memo is a tail of the first one (a wrapper's, env's command), in the
# same directory: its length names it.
_Memo = dict[tuple[int, str], list[str]]


def _code_paths(argv: Sequence[str], cwd: str, memo: _Memo) -> list[str]:
    if not argv:
        return []
    key = (len(argv), cwd)
    if key not in memo:
        memo[key] = _code_paths_of(argv, cwd, memo)
    return list(memo[key])


def _code_paths_of(argv: Sequence[str], cwd: str, memo: _Memo) -> list[str]:
    exe = str(argv[0])
    paths = [posixpath.normpath(posixpath.join(cwd, exe))] if "/" in exe else []
    name = posixpath.basename(exe)
    if name in _WRAPPERS and name != "env":
        # Where its own options end is the wrapper's business: the command may start at
        # any word after it (`timeout 30 python3 bin/restart.py`).
        if len(argv) > MAX_WRAPPED_WORDS:
            # past any real command line: every word may be the code, as for `env -S`
            words = [str(w) for w in argv[1:] if str(w)[:1] != "-" and "=" not in str(w)]
            return paths + [cwd] + [posixpath.normpath(posixpath.join(cwd, w)) for w in words]
        # The last tail first: each one then finds the shorter ones answered (no deep
        # recursion); listed in the order the words come.
        found = [_code_paths(argv[i:], cwd, memo) for i in range(len(argv) - 1, 0, -1)]
        tails = [p for answer in reversed(found) for p in answer]
        return paths + [p for p in dict.fromkeys(tails) if p not in paths]
    if name == "env":
        return paths + _env_paths(argv, cwd, memo)
    if name in ("make", "gmake"):
        return paths + _make_paths([str(a) for a in argv[1:]], cwd)
    if name in _CWD_RUNNERS:
        paths += [cwd, *(posixpath.join(cwd, f) for f in _CWD_RUNNERS[name])]
    text = _shell_text([str(a) for a in argv[1:]]) if name in _SHELLS else None
    if text is not None:
        return paths + _text_paths(text, cwd)
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
