"""TAP version 13 (Test Anything Protocol), for shell pipelines and ``prove``.

One test point per host × check (``ok 3 - web1 environment``), in inventory order.
NOT_READY, ERROR, UNREACHABLE and INTERRUPTED are ``not ok``; DEGRADED is ``ok`` unless it
fails the run (``--fail-on degraded``); SKIPPED is ``ok … # SKIP message``. Everything but
a plain READY carries a YAML diagnostic block (status, message, details,
recommendations). Version 13, not 14: Perl's TAP::Harness (``prove``) reads 13 only, and its
YAMLish reader takes no multi-line or escaped scalars, so every string in the block is
flattened to printable text on one line. ``#`` and ``\\`` in descriptions are escaped
(``\\#``) so a host message cannot forge a ``# SKIP`` or ``# TODO`` directive.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from ..model import CheckResult, FleetReport, Status
from ._clean import one_line

__all__ = ["render_tap"]


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
    plain = _plain(block)
    # libyaml's emitter writes the same YAML as PyYAML's for printable ASCII (~25x faster:
    # the TAP of a 1,000-host run took seconds); other text keeps PyYAML's own spelling
    # (libyaml escapes characters beyond the BMP that PyYAML writes as they are).
    ascii_only = "\\u" not in json.dumps(plain)
    dumper: Any = (
        yaml.CSafeDumper if ascii_only and hasattr(yaml, "CSafeDumper") else yaml.SafeDumper
    )
    text = yaml.dump(plain, Dumper=dumper, sort_keys=False, allow_unicode=True, width=10**6)
    return ["  ---", *(f"  {line}" for line in text.splitlines()), "  ..."]


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
