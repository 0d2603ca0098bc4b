"""Make host-controlled text safe to print: no terminal escapes, no Markdown/HTML breakage."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..report._clean import INVISIBLE, visible_char
from ..report.style import escape_markdown

__all__ = ["field", "md_cell", "md_text", "plain", "url_password_masked", "webhook_shown"]

# Controls, and the invisible formatting characters the reports show too (bidi overrides,
# zero-width and tag characters, U+2028/U+2029: docs/reports.md).
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{INVISIBLE}]")


def plain(text: str) -> str:
    """Control characters (ESC, OSC, CR, ...) shown as ``\\xNN`` and invisible formatting
    characters as ``\\u202e``: never interpreted, never reordering a line."""
    return _CONTROL.sub(visible_char, text)


def field(text: object) -> str:
    """One host-provided field on one line: ``plain``, with newline and tab shown as ``\\n``
    and ``\\t``. ``plain`` of a whole output keeps its newlines, so a message, a
    recommendation or a settings key holding one started a line of its own there (a forged
    ``resolved`` row in a diff, a forged finding in a drift)."""
    return plain(str(text).replace("\t", "\\t").replace("\r\n", "\n").replace("\n", "\\n"))


def md_cell(text: str) -> str:
    """A Markdown table cell: one line, host text in a code span (no mention, issue
    reference, link, HTML: the report's own rule, :func:`readiness.report.style.escape_markdown`),
    pipes escaped. Backslash escapes let GitHub link ``@user`` and ``#123`` all the same."""
    return escape_markdown(text, table=True)


def md_text(text: str) -> str:
    """The same outside a table (a heading, a list item): pipes as they are."""
    return escape_markdown(text)


def webhook_shown(url: str) -> str:
    """A webhook URL without what makes it a credential: Slack, Teams and Discord put the
    secret in the path (``/services/T…/B…/<token>``), others in the query or user part.
    ``https://hooks.example:8443/***`` keeps the host, enough to tell targets apart."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6 bracket
        return "***"
    if not parts.scheme or not parts.hostname:
        return "***"
    host = parts.netloc.rpartition("@")[2]  # as written ([::1]:8080), the user part dropped
    secret_part = parts.path not in ("", "/") or parts.query or parts.fragment
    return f"{parts.scheme}://{host}{'/***' if secret_part else '/'}"


def url_password_masked(text: str, url: str) -> str:
    """``text`` with the password of ``url`` masked as typed, when ``url`` has one in its
    authority: ``http://u:pa ss@am`` (a space) is not a password to the pattern redactor,
    and was stored in the recorded command line and shown in watch's delivery warnings."""
    authority = url.partition("://")[2].split("/", 1)[0]
    password = authority.rpartition("@")[0].partition(":")[2]
    return text.replace(password, "***") if password else text
