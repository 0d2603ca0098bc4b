"""TAP version 13 (Test Anything Protocol), for shell pipelines and ``prove``.

One test point per host × check (``ok 3 - web1 environment``), in inventory order.
NOT_READY, ERROR, UNREACHABLE and INTERRUPTED are ``not ok``; DEGRADED is ``ok`` unless it
fails the run (``--fail-on degraded``); SKIPPED is ``ok … # SKIP message``. Everything but
a plain READY carries a YAML diagnostic block (status, message, details,
recommendations). Version 13, not 14: Perl's TAP::Harness (``prove``) reads 13 only, and its
YAMLish reader takes no multi-line or escaped scalars, so every string in the block is
flattened to printable text on one line. ``#`` and ``\\`` in descriptions are escaped
(``\\#``) so a host message cannot forge a ``# SKIP`` or ``# TODO`` directive.

The block is written here (:func:`yamlish`), not by PyYAML: YAMLish reads a subset of YAML,
and PyYAML's choices broke it (a key with a space, a single-quoted key, a list item whose
first word ends in ``:`` such as ``alerts.yml:4: invalid YAML``, a list in a list): prove
stopped at that block, reported a parse error and a bad plan, and failed a run whose every
point was ``ok``. Strings are double-quoted (``\\`` and ``"`` escaped), plain only when they
are identifier-like; a colon a YAMLish list item would read as a key is written ``\\x3a``;
a mapping or a list inside a list starts on the line after its ``-``. It is YAML too:
PyYAML reads the same data, typed.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ..model import CheckResult, FleetReport, Status
from ._clean import one_line

__all__ = ["render_tap", "yamlish"]


def _escape(text: object) -> str:
    return one_line(text, 300).replace("\\", "\\\\").replace("#", "\\#")


def _fails(status: Status, fail_on: Status) -> bool:
    return status.blocking or status >= fail_on


def _plain(value: Any, depth: int = 0) -> Any:
    """JSON-like data with every string on one printable line (YAMLish-readable)."""
    if isinstance(value, dict) and depth < 6:
        return {one_line(k, 100): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list) and depth < 6:
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return one_line(value if isinstance(value, str) else json.dumps(value), 1000)


def _diagnostics(result: CheckResult) -> list[str]:
    block: dict[str, Any] = {
        "status": result.status.value,
        "message": result.message,
        "host": result.host,
        "check": result.check_name,
        "duration_ms": round(result.duration_s * 1000, 1),
    }
    if result.details:
        block["details"] = json.loads(json.dumps(dict(result.details), default=str))
    if result.recommendations:
        block["recommendations"] = list(result.recommendations)
    return ["  ---", *(f"  {line}" for line in yamlish(_plain(block))), "  ..."]


# Plain (unquoted) only what YAML and YAMLish both read as that very string.
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_NOT_STRINGS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}
# What YAML allows unescaped in a document (one_line already removed every control).
_UNPRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# A list item YAMLish reads as a one-key mapping: its first word ends in ':' (TAP::Parser::
# YAMLish::Reader: /^ (- \s+) \S+ \s* : (?: \s+ | $ )/x).
_ITEM_AS_KEY = re.compile(r"- +\S+\s*:(?:\s|$)")
_COLON_SPACE = re.compile(r":(?=\s)")


def _unprintable(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"


def _float(value: float) -> str:
    """As PyYAML writes floats (``1e-05`` is ``1.0e-05``, NaN ``.nan``)."""
    if math.isnan(value) or math.isinf(value):
        return ".nan" if math.isnan(value) else ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "~", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _NOT_STRINGS:
        return text
    body = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _UNPRINTABLE.sub(_unprintable, body) + '"'


def yamlish(value: Any, indent: int = 0) -> list[str]:
    """``value`` (a mapping or a list of JSON-like data) as YAMLish block lines."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = _scalar(str(key))
            if isinstance(item, (dict, list)) and item:
                lines += [f"{pad}{name}:", *yamlish(item, indent + 2)]
            else:
                lines.append(f"{pad}{name}: {_leaf(item)}")
        return lines
    for item in value:
        if isinstance(item, (dict, list)) and item:
            lines += [f"{pad}-", *yamlish(item, indent + 2)]
            continue
        line = f"{pad}- {_leaf(item)}"
        if _ITEM_AS_KEY.match(line, indent):
            line = _COLON_SPACE.sub(r"\\x3a", line)
        lines.append(line)
    return lines


def _leaf(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def render_tap(report: FleetReport, *, fail_on: Status = Status.NOT_READY, **_: Any) -> str:
    points: list[CheckResult] = []
    for host in report.hosts:
        if not host.results and host.reason:  # never audited, no per-check rows
            points.append(CheckResult("connection", host.status, host.reason, host=host.host))
        points.extend(host.results)
    lines = ["TAP version 13", f"1..{len(points)}"]
    for number, result in enumerate(points, start=1):
        ok = "not ok" if _fails(result.status, fail_on) else "ok"
        line = f"{ok} {number} - {_escape(result.host)} {_escape(result.check_name)}"
        if result.status is Status.SKIPPED:
            line += f" # SKIP {_escape(result.message)}"
        lines.append(line)
        if result.status is not Status.READY:
            lines += _diagnostics(result)
    if report.interrupted:
        lines.append(f"# run interrupted ({report.interrupted_by or 'SIGINT'}): hosts not audited")
    return "\n".join(lines)
