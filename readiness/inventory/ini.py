"""Ansible INI inventories: ``[group]``, ``[group:children]`` and ``[group:vars]`` sections.

Read as Ansible reads them: host lines are split like a shell line (``#`` outside quotes starts
a comment), ``[g:vars]`` lines are ``key = rest of the line``, and every value goes through
``ast.literal_eval`` (which parses Python literals and never runs code), falling back to the
string as written. A group named in ``[g:children]`` or ``[g:vars]`` must be declared in the
same file (or an earlier source), and a child attaches to its parents where it is declared.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .builder import Builder
from .hostnames import expand_host
from .secrets import is_secret_var, quotable
from .source import Origin, Where, plain

__all__ = ["ini_value", "parse_ini"]

_LITERAL_MAX = 65_536  # longest INI value handed to ast.literal_eval; longer ones stay strings
_SECTION = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?")
_CHILD = re.compile(r"([^:\]\s]+)\s*(?:#.*)?")
_IniLineHandler = Callable[["_IniFile", str, Where], None]


@dataclass
class _IniFile:
    """One INI file being read: the current section and the groups it still waits for."""

    builder: Builder
    origin: Origin
    group: str = "ungrouped"
    kind: str = "hosts"
    pending_children: dict[str, tuple[Where, list[str]]] = field(default_factory=dict)
    pending_vars: dict[str, Where] = field(default_factory=dict)


def parse_ini(builder: Builder, text: str, where: Where, origin: Origin) -> None:
    state = _IniFile(builder, origin)
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        at = where.at(number)
        if not line or line[0] in "#;":
            continue
        section = _SECTION.fullmatch(line)
        if section:
            _enter_section(state, section, at)
        elif line.startswith("["):
            if "]" not in line:
                raise at.error(f"invalid section header {line!r}: missing ']'")
            if line.endswith("]"):
                raise at.error(f"invalid section header {line!r} (no spaces; [name:children])")
            _INI_HANDLERS[state.kind](state, line, at)
        else:
            _INI_HANDLERS[state.kind](state, line, at)
    for child, (at, parents) in state.pending_children.items():
        raise at.error(f"[{parents[-1]}:children] names undefined group {child!r}")
    for group, at in state.pending_vars.items():
        raise at.error(f"[{group}:vars] for undefined group {group!r}")


def _enter_section(state: _IniFile, section: re.Match[str], where: Where) -> None:
    name = section.group(1)
    kind = section.group(2) or "hosts"
    if kind not in _INI_HANDLERS or (kind == "hosts" and section.group(2)):
        raise where.error(
            f"unknown section type [{section.group(1)}:{kind}] (expected :children or :vars)"
        )
    builder = state.builder
    if name not in builder.groups and kind == "vars" and name not in state.pending_children:
        state.pending_vars[name] = where
    if kind != "vars":
        state.pending_vars.pop(name, None)
        if name not in builder.groups:
            builder.group(name, where)
        _attach_pending(state, name)
    elif name not in builder.groups:
        builder.group(name, where)
    state.group, state.kind = name, kind


def _attach_pending(state: _IniFile, name: str) -> None:
    """A group named earlier under [parent:children] joins its parents once it is declared."""
    pending = state.pending_children.pop(name, None)
    if pending is None:
        return
    at, parents = pending
    for parent in parents:
        state.builder.add_child(parent, name, at)


def _ini_host_line(state: _IniFile, line: str, where: Where) -> None:
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError as exc:
        raise where.error(f"unterminated quote in host line {quotable(line)!r} ({exc})") from None
    if not tokens:
        return
    variables: dict[str, Any] = {}
    previous = ""
    for token in tokens[1:]:
        key, sep, raw = token.partition("=")
        if not sep or not key:
            if previous.endswith("=") and is_secret_var(previous[:-1]):
                # `ansible_password= hunter2`: the stray word is the secret itself
                raise where.error(
                    f"expected key=value after the host name, got a word after {previous!r} "
                    "(a space after '='?)"
                )
            raise where.error(f"expected key=value after the host name, got {token!r}")
        variables[key] = ini_value(raw, where, key)
        previous = token
    values: dict[str, Any] = plain(variables, state.origin)
    names, port = expand_host(tokens[0], where)
    for name in names:
        state.builder.add_host(state.group, name, dict(values), where, port)


def _ini_child_line(state: _IniFile, line: str, where: Where) -> None:
    match = _CHILD.fullmatch(line)
    if match is None:
        raise where.error(f"expected one group name per line in [{state.group}:children]")
    child = match.group(1)
    if child in state.builder.groups:
        state.builder.add_child(state.group, child, where)
    else:
        state.pending_children.setdefault(child, (where, []))[1].append(state.group)


def _ini_var_line(state: _IniFile, line: str, where: Where) -> None:
    key, sep, rest = line.partition("=")
    key = key.strip()
    if not sep or not key:
        raise where.error(f"expected key=value in [{state.group}:vars], got {quotable(line)!r}")
    values = plain({key: ini_value(rest.strip(), where, key)}, state.origin)
    state.builder.add_group_vars(state.group, values, where)


_INI_HANDLERS: dict[str, _IniLineHandler] = {
    "hosts": _ini_host_line,
    "children": _ini_child_line,
    "vars": _ini_var_line,
}


def ini_value(raw: str, where: Where, key: str) -> Any:
    """An INI value as Ansible types it: a Python literal (``42``, ``1.5``, ``True``, ``None``,
    ``'quoted'``, ``[1, 2]``, ``{"a": 1}``, ``0x1F``) parsed by ``ast.literal_eval``, never
    evaluated; anything else (``true``, ``yes``, ``0644``, ``hello``) stays the string as written.
    Ansible keeps the string only when literal_eval raises ValueError or SyntaxError; on any
    other error (``{[]: 1}``: unhashable; a too deep expression) it fails to load, and so
    does readiness.
    """
    if len(raw) > _LITERAL_MAX:
        return raw
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw
    except (TypeError, MemoryError, RecursionError) as exc:
        reason = str(exc) or type(exc).__name__
        raise where.error(
            f"the value of {key!r} is a Python literal that cannot be built ({reason}); "
            "Ansible cannot load it either"
        ) from None
    return _as_data(value)


def _as_data(value: Any) -> Any:
    """Plain data as Ansible keeps it: tuples and sets become lists; ``...``, complex numbers
    and bytes become strings."""
    if isinstance(value, list | tuple | set | frozenset):
        return [_as_data(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_data(item) for key, item in value.items()}
    if value is Ellipsis:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value
