"""The DRIFT section (``validate --drift``) shared by the text, table, Markdown and HTML
renderers, like the quality gates: ``report.extra["drift"]`` holds the results store's
across-host findings (``{"hosts": N, "findings": [{"text": ...}, ...]}``), so a saved
report and ``show RUN`` carry the section as well as the JSON key does. A report without
the key renders no section. Finding texts name items (variables, keys, rules, packages)
that come from the host, so they are escaped for each format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from ..model import FleetReport
from .style import escape_markdown, one_line

__all__ = ["drift_html", "drift_lines", "drift_markdown_lines"]


def _section(report: FleetReport) -> tuple[str, list[str]] | None:
    section = report.extra.get("drift")
    if not isinstance(section, Mapping):
        return None
    found: Sequence[Any] = section.get("findings") or ()
    texts = [str(f.get("text", "")) for f in found if isinstance(f, Mapping)]
    title = f"DRIFT across {section.get('hosts', 0)} host(s): {len(texts)} odd one(s) out"
    return title, texts


def drift_lines(report: FleetReport) -> list[str]:
    """Plain text: a blank line, the title, one indented line per finding."""
    section = _section(report)
    if section is None:
        return []
    title, texts = section
    return ["", title, *(f"  {one_line(t)}" for t in texts or ["no drift"])]


def drift_markdown_lines(report: FleetReport) -> list[str]:
    section = _section(report)
    if section is None:
        return []
    title, texts = section
    return ["", f"### {title}", "", *(f"- {escape_markdown(t)}" for t in texts or ["no drift"])]


def drift_html(report: FleetReport) -> list[str]:
    section = _section(report)
    if section is None:
        return []
    title, texts = section
    items = "".join(f"<li>{escape(one_line(t))}</li>" for t in texts)
    body = f"<ul>{items}</ul>" if texts else "<p>no drift</p>"
    return [f'<section id="drift"><h2>Drift</h2><p>{escape(title)}</p>{body}</section>']
