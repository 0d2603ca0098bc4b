"""Ansible INI inventories: ``[group]``, ``[group:children]`` and ``[group:vars]`` sections.

Values follow Ansible's INI typing (quoted → str, true/false → bool, integers, list/dict
literals) and are parsed, never evaluated.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Any

from .builder import Builder
from .hostnames import expand_host, with_port
from .source import Origin, Where, plain

__all__ = ["parse_ini"]

_LITERAL_MAX = 65_536  # longest INI value handed to ast.literal_eval
_SECTION = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?")
_TOKEN = re.compile(r"""(?:[^\s"']+|"(?:[^"\\]|\\.)*"|'[^']*')+""")
_DOUBLE_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_SINGLE_QUOTED = re.compile(r"'([^']*)'")
_ANY_QUOTED = re.compile(r""""((?:[^"\\]|\\.)*)"|'([^']*)'""")
_INTEGER = re.compile(r"[-+]?(?:0|[1-9]\d*)")
_IniLineHandler = Callable[[Builder, str, str, Where, Origin], None]


def parse_ini(builder: Builder, text: str, where: Where, origin: Origin) -> None:
    group, kind = "ungrouped", "hosts"
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        at = where.at(number)
        if not line or line.startswith(("#", ";")):
            continue
        section = _SECTION.fullmatch(line)
        if section:
            group, kind = _enter_section(builder, section, at)
        elif line.startswith("[") and line.endswith("]"):
            raise at.error(f"invalid section header {line!r}")
        else:
            _INI_HANDLERS[kind](builder, group, line, at, origin)


def _enter_section(builder: Builder, section: re.Match[str], where: Where) -> tuple[str, str]:
    name, tag = section.group(1), section.group(2) or "hosts"
    if tag not in _INI_HANDLERS or (tag == "hosts" and section.group(2)):
        raise where.error(f"unknown section type [{name}:{tag}] (expected :children or :vars)")
    builder.group(name, where, defined=tag != "vars")
    return name, tag


def _ini_host_line(builder: Builder, group: str, line: str, where: Where, origin: Origin) -> None:
    tokens, _ = _ini_split(line, where)
    values: dict[str, Any] = plain(dict(_ini_pair(token, where) for token in tokens[1:]), origin)
    for name, port in expand_host(tokens[0], where):
        builder.add_host(group, name, with_port(values, port), where)


def _ini_child_line(builder: Builder, group: str, line: str, where: Where, _: Origin) -> None:
    tokens, _body = _ini_split(line, where)
    if len(tokens) != 1:
        raise where.error(f"expected one group name per line in [{group}:children], got {line!r}")
    builder.add_child(group, tokens[0], where)


def _ini_var_line(builder: Builder, group: str, line: str, where: Where, origin: Origin) -> None:
    key, sep, rest = line.partition("=")
    key = key.strip()
    if not sep or not key or any(char.isspace() for char in key):
        raise where.error(f"expected key=value in [{group}:vars], got {line!r}")
    tokens, body = _ini_split(rest, where)
    value = _ini_value(tokens[0]) if len(tokens) == 1 else _ini_value(body)
    builder.add_group_vars(group, plain({key: value}, origin), where)


_INI_HANDLERS: dict[str, _IniLineHandler] = {
    "hosts": _ini_host_line,
    "children": _ini_child_line,
    "vars": _ini_var_line,
}


def _ini_split(text: str, where: Where) -> tuple[list[str], str]:
    """Shell-like tokens of an INI line (quotes kept), and the line without its # comment."""
    tokens: list[str] = []
    end = len(text)
    for match in _TOKEN.finditer(text):
        if match.group().startswith("#"):
            end = match.start()
            break
        tokens.append(match.group())
    body = text[:end].strip()
    if re.sub(r"\s", "", body) != re.sub(r"\s", "", "".join(tokens)):
        raise where.error(f"unterminated quote in {body!r}")
    return tokens, body


def _ini_pair(token: str, where: Where) -> tuple[str, Any]:
    key, sep, raw = token.partition("=")
    if not sep or not key or "'" in key or '"' in key:
        raise where.error(f"expected key=value, got {token!r}")
    return key, _ini_value(raw)


def _ini_value(raw: str) -> Any:
    """Ansible-style INI value: quoted → str, true/false → bool, integer → int, [..]/{..} → data.

    Anything else (including floats such as version numbers) stays the string as written.
    """
    quoted = _DOUBLE_QUOTED.fullmatch(raw) or _SINGLE_QUOTED.fullmatch(raw)
    if quoted:
        return re.sub(r'\\([\\"])', r"\1", quoted.group(1)) if raw[0] == '"' else quoted.group(1)
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if _INTEGER.fullmatch(raw):
        return int(raw)
    if raw.startswith(("[", "{")):
        return _ini_literal(raw)
    return _ANY_QUOTED.sub(lambda m: m.group(1) or m.group(2) or "", raw)


def _ini_literal(raw: str) -> Any:
    """A list or dict written as a Python/JSON literal; parsed, never evaluated."""
    if len(raw) > _LITERAL_MAX:
        return raw
    try:
        value = ast.literal_eval(raw)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return raw
    return value if isinstance(value, list | dict) else raw
