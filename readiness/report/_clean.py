"""Text hygiene shared by the machine formats: host text is hostile, formats are strict.

Messages, details and even host names come from audited hosts. XML 1.0 forbids most
control characters outright (a parser rejects the whole file), and line-based formats
(Nagios, TAP, Prometheus labels) break on a newline. These helpers make any string safe to
embed; escaping the format's own metacharacters stays with each renderer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["detail_lines", "one_line", "xml_text"]

# Everything XML 1.0 does not allow in a document (§2.2 Char), surrogates included.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# C0/C1 controls (ESC, BEL, CR, NEL U+0085, …) and the Unicode line/paragraph separators
# (the same set as report/style.py's escapes, which show them instead of a space).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def xml_text(text: object) -> str:
    """``text`` without the characters XML 1.0 forbids (the rest is escaped by the writer)."""
    return _XML_ILLEGAL.sub("", str(text))


def one_line(text: object, limit: int = 0) -> str:
    """``text`` on one line: every control character (newline included) becomes a space."""
    flat = " ".join(_CONTROL.sub(" ", str(text)).split())
    if limit and len(flat) > limit:
        return flat[: limit - 1] + "…"
    return flat


def detail_lines(details: Mapping[str, Any], indent: int = 0, depth: int = 0) -> list[str]:
    """``key: value`` lines of a result's details, nested mappings indented (bounded depth)."""
    pad = "  " * indent
    out: list[str] = []
    for key, value in details.items():
        if isinstance(value, Mapping) and value and depth < 4:
            out.append(f"{pad}{key}:")
            out += detail_lines(value, indent + 1, depth + 1)
        else:
            out.append(f"{pad}{key}: {value if isinstance(value, str) else repr(value)}")
    return out
