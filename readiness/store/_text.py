"""Make host-controlled text safe to print: no terminal escapes, no Markdown/HTML breakage."""

from __future__ import annotations

import re

__all__ = ["md_cell", "plain"]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: str) -> str:
    """Control characters (ESC, OSC, CR, ...) shown as ``\\xNN``, never interpreted."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def md_cell(text: str) -> str:
    """One line of Markdown table cell: pipes, HTML and backticks neutralised."""
    text = plain(text).replace("\n", " ").replace("\\", "\\\\")
    for ch, rep in (("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("`", "\\`"), ("[", "\\[")):
        text = text.replace(ch, rep)
    return text
