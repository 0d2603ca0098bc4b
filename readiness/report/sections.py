"""The results store's sections of a report, shared by the text, table, Markdown and HTML
renderers like the quality gates: ``report.extra["baseline"]`` (``--baseline``: which
failing results are known, which are regressions) and ``report.extra["drift"]``
(``--drift``: the across-host findings). Being part of the report, they reach saved
files and ``show RUN`` as well as the JSON keys do. A report without the key renders no
section. Messages and item names come from hosts, so they are escaped for each format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from ..model import FleetReport, Status
from .style import escape_markdown, one_line

__all__ = ["store_html", "store_lines", "store_markdown_lines"]


def _drift(report: FleetReport) -> tuple[str, list[str]] | None:
    section = report.extra.get("drift")
    if not isinstance(section, Mapping):
        return None
    found: Sequence[Any] = section.get("findings") or ()
    texts = [str(f.get("text", "")) for f in found if isinstance(f, Mapping)]
    title = f"DRIFT across {section.get('hosts', 0)} host(s): {len(texts)} odd one(s) out"
    return title, texts or ["no drift"]


def _label(value: Any) -> str:
    try:
        return Status.parse(str(value)).label
    except ValueError:
        return str(value)


def _baseline(report: FleetReport) -> tuple[str, list[str]] | None:
    verdict = report.extra.get("baseline")
    if not isinstance(verdict, Mapping):
        return None
    regressions = [j for j in verdict.get("regressions") or () if isinstance(j, Mapping)]
    known = [j for j in verdict.get("known") or () if isinstance(j, Mapping)]
    title = (
        f"BASELINE '{verdict.get('name', 'default')}': {len(regressions)} regression(s), "
        f"{len(known)} known problem(s) accepted"
    )
    lines = []
    for j in regressions:
        was = _label(j["accepted"]) if j.get("accepted") else "no accepted result"
        lines.append(
            f"REGRESSION {j.get('host')} / {j.get('check')}: {_label(j.get('status'))} "
            f"(baseline: {was}) — {j.get('message', '')}"
        )
    lines += [
        f"known      {j.get('host')} / {j.get('check')}: {_label(j.get('status'))} — "
        f"{j.get('message', '')}"
        for j in known
    ]
    return title, lines


def _section_lines(section: tuple[str, list[str]] | None) -> list[str]:
    """Plain text: a blank line, the title, one indented line per entry."""
    if section is None:
        return []
    title, texts = section
    return ["", one_line(title), *(f"  {one_line(t)}" for t in texts)]


def _section_markdown_lines(section: tuple[str, list[str]] | None) -> list[str]:
    if section is None:
        return []
    title, texts = section
    return ["", f"### {escape_markdown(title)}", "", *(f"- {escape_markdown(t)}" for t in texts)]


def _section_html(section: tuple[str, list[str]] | None, anchor: str, heading: str) -> list[str]:
    if section is None:
        return []
    title, texts = section
    items = "".join(f"<li>{escape(one_line(t))}</li>" for t in texts)
    body = f"<ul>{items}</ul>" if texts else ""
    return [f'<section id="{anchor}"><h2>{heading}</h2><p>{escape(title)}</p>{body}</section>']


def store_lines(report: FleetReport) -> list[str]:
    """Text and table reports: the BASELINE then the DRIFT section, when present."""
    return [*_section_lines(_baseline(report)), *_section_lines(_drift(report))]


def store_markdown_lines(report: FleetReport) -> list[str]:
    return [*_section_markdown_lines(_baseline(report)), *_section_markdown_lines(_drift(report))]


def store_html(report: FleetReport) -> list[str]:
    return [
        *_section_html(_baseline(report), "baseline", "Baseline"),
        *_section_html(_drift(report), "drift", "Drift"),
    ]
