"""ssh_config evaluated as OpenSSH's client evaluates it (``readconf.c``, ``ssh.c`` of 9.x),
for the options readiness reads: ``HostName``, ``Port``, ``User``, ``IdentityFile``,
``ProxyJump``, ``ProxyCommand`` and the ``Canonicalize*`` options.

paramiko's ``SSHConfig`` disagreed with ``ssh -G`` in ways that logged in to another host
than the user's ssh: a ``Match`` criterion spelled ``Host`` (any case but lower) or one it
does not know (``Match tagged``) applied its block to every host; ``Match host`` compared
case-sensitively and against the unexpanded ``HostName``; a second pass it always ran let
a ``Match host`` block written before the ``HostName`` apply; a trailing ``# comment`` was
part of the value; ``ProxyCommand none`` did not stop a later ``ProxyJump`` (nor the
reverse); ``[`` was a wildcard in ``Host``; ``%%`` stayed ``%%`` in ``HostName``.

Lines are read as ssh reads them: keyword and arguments split on whitespace or one ``=``,
double or single quotes and backslash escapes, a word starting with ``#`` ends the line.
A line ssh refuses (a bad port, unbalanced quotes, a missing argument, extra arguments,
an unsupported ``Match`` criterion) makes the whole file refused, as ssh refuses it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import socket
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "INCLUDE_END",
    "INCLUDE_START",
    "SshConfig",
    "SshConfigError",
    "argv_split",
    "client_tokens",
    "expand_dollars",
    "expand_tokens",
    "match_pattern",
    "match_words",
    "run_in_shell",
]

_WS = " \t"
_MAX_IDENTITY_FILES = 100  # SSH_MAX_IDENTITY_FILES
_EXEC_TIMEOUT_S = 30.0
# Keywords whose one argument is kept (first value wins; "extra arguments" refused).
_ONE_ARG = frozenset(("hostname", "user", "port", "identityfile", "hostkeyalias"))
_CANON = frozenset(
    ("canonicalizehostname", "canonicaldomains", "canonicalizemaxdots", "canonicalizefallbacklocal")
)
_CRITERIA = frozenset(("host", "originalhost", "user", "localuser", "exec"))
# The lines readiness.ssh puts around an included file's text (no ssh keyword: ssh would
# refuse a file holding one). As ssh's Include: the included lines start in the including
# block's state (an inactive block's included blocks never apply), and the lines after
# the Include get that state back.
INCLUDE_START = "readiness-include-start -"
INCLUDE_END = "readiness-include-end -"
_MARKERS = frozenset(("readiness-include-start", "readiness-include-end"))
_CANONICALIZE = {"yes": "yes", "true": "yes", "no": "no", "false": "no", "always": "always"}
_FLAG = {"yes": True, "true": True, "no": False, "false": False}


class SshConfigError(ValueError):
    """A line ssh itself refuses (the whole file is then refused)."""


def match_pattern(name: str, pattern: str) -> bool:
    """OpenSSH's ``match_pattern``: ``*`` and ``?`` only, case-sensitive."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, name, re.S) is not None


def _match_list(name: str, patterns: str, *, fold: bool) -> bool:
    """OpenSSH's ``match_pattern_list(...) == 1``: comma-separated patterns, any matches and
    no ``!negated`` one does; ``fold`` lower-cases both sides (``match_hostname``)."""
    if fold:
        name = name.lower()
    hit = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        if match_pattern(name, body.lower() if fold else body):
            if negated:
                return False
            hit = True
    return hit


def argv_split(text: str) -> list[str]:
    """OpenSSH's ``argv_split(text, terminate_on_comment=1)``."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in _WS:
            i += 1
            continue
        if text[i] == "#":
            break
        word: list[str] = []
        quote = ""
        while i < n:
            c = text[i]
            if (
                c == "\\"
                and i + 1 < n
                and (text[i + 1] in "'\"\\" or (not quote and text[i + 1] == " "))
            ):
                word.append(text[i + 1])
                i += 2
                continue
            if not quote and c in _WS:
                break
            if not quote and c in "\"'":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                word.append(c)
            i += 1
        if quote:
            raise SshConfigError("invalid quotes")
        out.append("".join(word))
    return out


def _strdelim(text: str) -> tuple[str, str]:
    """OpenSSH's ``strdelim`` without ``=``: the next word (``"quoted"`` or bare) and the
    rest, leading whitespace removed."""
    cut = min((text.find(c) for c in ' \t"' if c in text), default=-1)
    if cut < 0:
        return text, ""
    if text[cut] == '"':
        text = text[:cut] + text[cut + 1 :]
        end = text.find('"', cut)
        if end < 0:
            raise SshConfigError("invalid quotes")
        return text[:end], text[end + 1 :].lstrip(_WS)
    return text[:cut], text[cut + 1 :].lstrip(_WS)


def match_words(text: str) -> list[str]:
    """A ``Match`` line's words as ssh reads them (up to a ``#`` comment)."""
    words: list[str] = []
    while text:
        word, text = _strdelim(text)
        if not word or word.startswith("#"):
            break
        words.append(word)
    return words


def _keyword(line: str) -> tuple[str, str] | None:
    """(lower-case keyword, the rest) of a config line, or None for a blank or comment
    line: the keyword ends at whitespace or one ``=`` (``Port=22``, ``Port = 22``)."""
    text = line.rstrip(" \t\r\n\f").lstrip(_WS)
    if not text or text.startswith("#"):
        return None
    found = re.match(r"([^ \t=\"]+)[ \t]*=?[ \t]*", text)
    if found is None:
        raise SshConfigError(f"cannot be read: {line.strip()}")
    return found.group(1).lower(), text[found.end() :]


@dataclass(frozen=True)
class _Line:
    kind: str  # "host", "match" or the option's keyword
    args: tuple[str, ...]
    raw: str  # the text after the keyword (ProxyCommand, ProxyJump and Match read it)
    text: str  # the line as written, for messages


def _parse(text: str) -> list[_Line]:
    lines: list[_Line] = []
    for line in text.splitlines():
        try:
            parsed = _parse_line(line)
        except SshConfigError as exc:
            raise SshConfigError(f"{line.strip()!r}: {exc}") from None
        if parsed is not None:
            lines.append(parsed)
    return lines


_LISTS = frozenset(("canonicaldomains", "userknownhostsfile"))  # several values, first line wins
_READ = frozenset(
    ("host", "match", "proxycommand", "proxyjump", *_ONE_ARG, *_CANON, *_LISTS, *_MARKERS)
)


def _parse_line(line: str) -> _Line | None:
    split = _keyword(line)
    if split is None:
        return None
    keyword, rest = split
    if not rest:
        raise SshConfigError(f'no argument after keyword "{keyword}"')
    args = tuple(argv_split(rest))  # ssh splits every line (unbalanced quotes: refused)
    raw = rest
    if keyword == "match":
        _match(rest, dry_run=True)
        args = ()
    elif keyword == "proxycommand":  # the rest of the line, as written
        raw = rest.lstrip(_WS + "=")
    elif keyword == "proxyjump":  # up to a '#', anywhere (ssh's parse_jump)
        raw = rest.lstrip(_WS + "=").split("#", 1)[0].rstrip()
    else:
        _check_args(keyword, args)
    return _Line(keyword, args, raw, line) if keyword in _READ else None


def _check_args(keyword: str, args: tuple[str, ...]) -> None:
    if keyword == "host" and (not args or "" in args):
        raise SshConfigError("Host with an empty argument")
    if keyword not in _ONE_ARG:
        return
    if not args or not args[0]:
        raise SshConfigError("missing argument")
    if len(args) > 1:
        raise SshConfigError(f"keyword {keyword} extra arguments at end of line")
    if keyword == "port" and not (args[0].isdigit() and 0 < int(args[0]) < 65536):
        raise SshConfigError(f"Bad port '{args[0]}'")


@dataclass
class _Pass:
    """What one evaluation knows: the names and the options obtained so far."""

    original: str  # the name given (``Match originalhost``, ``%n``)
    name: str  # what ``Host`` lines compare: the name given, the final HostName in the final pass
    options: dict[str, Any]
    final: bool
    local_user: str
    home: str
    run: Callable[[str], bool] | None
    want_final: bool = False


def _match(rest: str, *, dry_run: bool, state: _Pass | None = None) -> bool:
    """OpenSSH's ``match_cfg_line``: whether a ``Match`` line applies (``dry_run``: only
    its syntax is checked, as ssh checks it whenever it reads the line)."""
    result = True
    attributes = 0
    words = match_words(rest)
    i = 0
    while i < len(words):
        attrib = words[i]
        i += 1
        negate = attrib.startswith("!")
        name = (attrib[1:] if negate else attrib).lower()
        if name == "all":
            if attributes > 1 or i < len(words):
                raise SshConfigError(f"'{attrib}' cannot be combined with other Match attributes")
            return result and not negate
        attributes += 1
        if name in ("canonical", "final"):
            passed = _stage(name, state)
        else:
            if i >= len(words):
                raise SshConfigError(f"Missing Match criteria for {attrib}")
            if name not in _CRITERIA:
                raise SshConfigError(f"Unsupported Match attribute {attrib}")
            arg = words[i]
            i += 1
            skip = dry_run or state is None
            passed = None if skip or state is None else _criterion(name, arg, state, result)
        if passed is not None and passed == negate:
            result = False
    if attributes == 0:
        raise SshConfigError("One or more attributes required for Match")
    return result


def _stage(name: str, state: _Pass | None) -> bool | None:
    """``Match canonical`` / ``final``: whether this is the final pass (a ``final``
    criterion asks for one)."""
    if state is None:
        return None
    if name == "final":
        state.want_final = True
    return state.final


def _criterion(name: str, arg: str, state: _Pass, so_far: bool) -> bool:
    if name == "exec":
        return _exec(arg, state, so_far=so_far)
    subjects = {
        "host": (_match_host(state), True),
        "originalhost": (state.original, True),
        "user": (str(state.options.get("user", state.local_user)), False),
        "localuser": (state.local_user, False),
    }
    subject, fold = subjects[name]
    return _match_list(subject, arg, fold=fold)


def _exec(command: str, state: _Pass, *, so_far: bool) -> bool:
    """``Match exec``: not run once an earlier criterion failed, as ssh skips it."""
    if not so_far or state.run is None:
        return False
    options = state.options
    tokens = client_tokens(
        host=_match_host(state),
        original=state.original,
        port=str(options.get("port", 22)),
        user=str(options.get("user", state.local_user)),
        local=state.local_user,
        home=state.home,
    )
    return state.run(expand_tokens(command, tokens))


def _match_host(state: _Pass) -> str:
    """The name ``Match host`` sees: the ``HostName`` obtained so far with ``%h`` expanded
    (the final one in the final pass), else the name given."""
    hostname = state.options.get("hostname")
    if hostname is None:
        return state.original
    if state.final:
        return str(hostname)
    return expand_tokens(str(hostname), {"h": state.original})


def client_tokens(
    *, host: str, original: str, port: str, user: str, local: str, home: str
) -> dict[str, str]:
    """ssh's client tokens (``DEFAULT_CLIENT_PERCENT_EXPAND_ARGS``)."""
    this = socket.gethostname()
    return {
        "C": hashlib.sha1(f"{this}{host}{port}{user}".encode(), usedforsecurity=False).hexdigest(),
        "L": this.split(".")[0],
        "i": str(os.getuid()),
        "k": original,
        "l": this,
        "n": original,
        "p": port,
        "d": home,
        "h": host,
        "r": user,
        "u": local,
    }


def expand_tokens(text: str, tokens: Mapping[str, str]) -> str:
    """OpenSSH's ``percent_expand``: ``%%`` and the given tokens; any other ``%x`` (or a
    lone ``%`` at the end) is refused, as ssh refuses it."""

    def one(found: re.Match[str]) -> str:
        key = found.group(1)
        if key == "%":
            return "%"
        if key in tokens:
            return tokens[key]
        shown = f"%{key}" if key else "a '%' at the end"
        raise SshConfigError(f"{text}: unknown token {shown}")

    return re.sub(r"%(.?)", one, text, flags=re.S)


def expand_dollars(text: str) -> str:
    """OpenSSH's ``dollar_expand``: ``${NAME}`` from the environment (an unset one refused)."""

    def one(found: re.Match[str]) -> str:
        value = os.environ.get(found.group(1))
        if value is None:
            raise SshConfigError(f"{text}: environment variable {found.group(1)} is not set")
        return value

    return re.sub(r"\$\{([^}]*)\}", one, text)


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True


class SshConfig:
    """An ssh_config parsed once; :meth:`lookup` evaluates it for one name."""

    def __init__(self, lines: list[_Line]) -> None:
        self.lines = lines

    @classmethod
    def from_text(cls, text: str) -> SshConfig:
        """Raises :class:`SshConfigError` for a line ssh refuses."""
        return cls(_parse(text))

    def lookup(
        self,
        name: str,
        *,
        local_user: str,
        home: str,
        run: Callable[[str], bool] | None = None,
        lines_for: Callable[[str], list[_Line]] | None = None,
    ) -> dict[str, Any]:
        """The options ssh obtains for ``name`` (``hostname`` always set, lower-cased as
        ssh does unless it is an address); ``identityfile`` a list, tokens unexpanded.
        ``run`` runs a ``Match exec`` command (None: such a criterion does not match).
        ``lines_for(name)``: only the lines that can apply when ``Host`` lines compare
        ``name`` (the index's choice; the same answer)."""
        state = _Pass(name, name, {}, False, local_user, home, run)
        self._pass(self.lines if lines_for is None else lines_for(name), state)
        host = name
        if "hostname" in state.options:
            host = expand_tokens(str(state.options["hostname"]), {"h": name})
        if not _is_address(host):
            host = host.lower()
        canonicalize = _CANONICALIZE.get(str(state.options.get("canonicalizehostname", "no")))
        if canonicalize != "no":
            host = _canonical(host, state.options, canonicalize or "no")
            state.want_final = True
        if state.want_final:
            state.options["hostname"] = host
            state.final, state.name = True, host  # ssh's global "host" is now the HostName
            self._pass(self.lines if lines_for is None else lines_for(host), state)
        state.options["hostname"] = host
        return state.options

    @staticmethod
    def _pass(lines: list[_Line], state: _Pass) -> None:
        active = True
        outer: list[bool] = []  # the state each enclosing Include was read in
        options = state.options
        for line in lines:
            if line.kind == "readiness-include-start":
                outer.append(active)
            elif line.kind == "readiness-include-end":
                active = outer.pop() if outer else active
            elif line.kind == "host":
                active = all(outer) and _host_line(line.args, state.name)
            elif line.kind == "match":
                matched = _match(line.raw, dry_run=False, state=state)
                active = all(outer) and matched
            elif active:
                _apply(line, options)


def _host_line(patterns: tuple[str, ...], name: str) -> bool:
    hit = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if match_pattern(name, pattern[1:]):
                return False
        elif match_pattern(name, pattern):
            hit = True
    return hit


def _apply(line: _Line, options: dict[str, Any]) -> None:
    kind = line.kind
    if kind == "identityfile":
        found = options.setdefault("identityfile", [])
        if line.args[0] not in found and len(found) < _MAX_IDENTITY_FILES:
            found.append(line.args[0])
    elif kind == "proxycommand":
        # a jump host given first wins (OpenSSH 9.2: "ProxyJump none" does not stop it)
        if options.get("proxyjump", "none") == "none":
            options.setdefault("proxycommand", line.raw)
    elif kind == "proxyjump":
        if "proxyjump" in options or "proxycommand" in options:
            return  # the first of the two wins
        options["proxyjump"] = "none" if line.raw.lower() == "none" else line.raw
        if options["proxyjump"] != "none":
            options["proxycommand"] = "none"
    elif kind in _LISTS:
        options.setdefault(kind, list(line.args))
    elif line.args:
        options.setdefault(kind, line.args[0])


def _canonical(host: str, options: Mapping[str, Any], mode: str) -> str:
    """ssh's ``resolve_canonicalize``: ``host`` with the first ``CanonicalDomains`` suffix
    that resolves (names with more than ``CanonicalizeMaxDots`` dots are left alone)."""
    direct = str(options.get("proxycommand", "none")).lower() == "none" and (
        str(options.get("proxyjump", "none")).lower() == "none"
    )
    if _is_address(host) or (not direct and mode != "always"):
        return host
    try:
        max_dots = int(options.get("canonicalizemaxdots", 1))
    except ValueError:
        raise SshConfigError("CanonicalizeMaxDots is not a number") from None
    fallback = _FLAG.get(str(options.get("canonicalizefallbacklocal", "yes")).lower(), True)
    if host.endswith("."):
        candidates = [host]
    elif host.count(".") > max_dots:
        return host
    else:
        candidates = []
        for domain in options.get("canonicaldomains", []):
            if domain.lower() == "none":
                break
            candidates.append(f"{host}.{domain}.")
    for candidate in candidates:
        try:
            socket.getaddrinfo(candidate, None)
        except (OSError, UnicodeError):
            continue
        return candidate[:-1]
    if not fallback:
        raise SshConfigError(f'Could not resolve host "{host}" (CanonicalizeFallbackLocal no)')
    return host


def run_in_shell(command: str) -> bool:
    """A ``Match exec`` command, as ssh runs it: the user's shell, stdout discarded;
    bounded (ssh waits forever)."""
    shell = os.environ.get("SHELL") or "/bin/sh"
    try:
        done = subprocess.run(
            [shell, "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            timeout=_EXEC_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SshConfigError(
            f"Match exec {command!r} did not finish within {_EXEC_TIMEOUT_S:g}s"
        ) from None
    except OSError as exc:
        raise SshConfigError(f"Match exec {command!r}: {exc}") from None
    return done.returncode == 0
