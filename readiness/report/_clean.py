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

__all__ = ["INVISIBLE", "detail_lines", "one_line", "visible", "visible_char", "xml_text"]

# Everything XML 1.0 does not allow in a document (§2.2 Char), surrogates included.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# C0/C1 controls (ESC, BEL, CR, NEL U+0085, …) and the Unicode line/paragraph separators
# (the same set as report/style.py's escapes, which show them instead of a space).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# What a viewer does not draw but what changes what it draws (Trojan Source): Unicode's format
# characters (category Cf: the bidi embeddings, overrides, isolates and marks, zero-width
# space/joiners, word joiner, BOM, soft hyphen, invisible operators, interlinear annotation,
# the tag characters of "ASCII smuggling") and the other default-ignorable code points
# (variation selectors, Hangul fillers, Mongolian selectors), plus the line and paragraph
# separators. A class, not unicodedata at run time: building it costs start-up;
# tests/cli/test_invisible_characters.py proves it holds every Cf/Zl/Zp of this Python.
INVISIBLE = (
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160"
    "\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f"
    "\ufeff\uffa0\ufff0-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
_INVISIBLE = re.compile(f"[{INVISIBLE}]")


def visible_char(match: re.Match[str]) -> str:
    """The matched character as ``\\xNN`` / ``\\uNNNN`` / ``\\UNNNNNNNN``."""
    code = ord(match.group(0))
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def visible(text: object) -> str:
    """``text`` with every invisible formatting character shown as ``\\u202e``."""
    return _INVISIBLE.sub(visible_char, str(text))


def xml_text(text: object) -> str:
    """``text`` without the characters XML 1.0 forbids (the rest is escaped by the writer),
    invisible formatting characters shown (:func:`visible`)."""
    return visible(_XML_ILLEGAL.sub("", str(text)))


def one_line(text: object, limit: int = 0) -> str:
    """``text`` on one line: every control character (newline included) becomes a space,
    every invisible formatting character is shown (:func:`visible`)."""
    flat = visible(" ".join(_CONTROL.sub(" ", str(text)).split()))
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
