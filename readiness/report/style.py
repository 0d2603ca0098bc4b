"""What every human-readable renderer shares: escaping host text, colour, terminal width.

Everything a report shows from a host (messages, details, reasons, host names) is
controlled by whoever controls that host. It must not move the cursor, set the
terminal title, hide text (ESC / OSC sequences, C0 and C1 controls) or add links
and HTML to a Markdown report. docs/reports.md lists what is escaped and how.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import TextIO

from ..model import HostReport, Status
from ._clean import INVISIBLE, visible_char

__all__ = [
    "escape_markdown",
    "escape_text",
    "group_hosts",
    "one_line",
    "paint",
    "terminal_width",
    "use_color",
    "visible_char",
]

# C0 controls except \n and \t (handled by one_line), DEL, and the C1 range (U+0080-U+009F,
# which terminals also read as CSI/OSC introducers; NEL U+0085 among them); and the invisible
# formatting characters (_clean.INVISIBLE: bidi overrides, isolates and marks reorder what is
# shown, zero-width and tag characters hide text, the line and paragraph separators U+2028/U+2029
# break a line in editors, Markdown viewers and str.splitlines).
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{INVISIBLE}]")
_MARKDOWN = re.compile(r"([\\`*\[\]|])")  # links, code, emphasis, table cells


def escape_text(text: object) -> str:
    """``text`` with every control character shown as ``\\xNN`` (ESC never reaches a terminal)."""
    return _CONTROL.sub(visible_char, str(text))


def one_line(text: object) -> str:
    """Escaped, and newlines/tabs shown as ``\\n``/``\\t``: a field stays on its line."""
    return escape_text(str(text).replace("\t", "\\t").replace("\r\n", "\n").replace("\n", "\\n"))


def escape_markdown(text: object) -> str:
    """One line, HTML inert (``&lt;``), and Markdown syntax (links, emphasis, tables) literal."""
    flat = one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", flat)


_COLORS = {
    Status.READY: "32",  # green
    Status.DEGRADED: "33",  # yellow
    Status.NOT_READY: "31",  # red
    Status.ERROR: "35",  # magenta
    Status.UNREACHABLE: "31;1",
    Status.SKIPPED: "2",  # dim
}


def use_color(mode: str | bool | None, stream: TextIO | None = None) -> bool:
    """``always``/``never``, or ``auto``: a terminal, unless NO_COLOR is set or TERM=dumb."""
    if isinstance(mode, bool):
        return mode
    if mode == "always":
        return True
    if mode in ("never", None):
        return False
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


def paint(text: str, status: Status, enabled: bool) -> str:
    if not enabled:
        return text
    code = _COLORS.get(status, "0")
    return f"\x1b[{code}m{text}\x1b[0m"


def terminal_width(default: int = 80) -> int:
    """Columns of the terminal (``$COLUMNS`` wins), never below 40."""
    return max(40, shutil.get_terminal_size((default, 24)).columns)


def group_hosts(
    hosts: list[HostReport], group_by: str | None
) -> list[tuple[str, list[HostReport]]]:
    """``[("", hosts)]``, or with ``group_by="group"`` one block per inventory group, in first-seen
    order; a host in two groups is listed under both."""
    if group_by != "group":
        return [("", hosts)]
    blocks: dict[str, list[HostReport]] = {}
    for h in hosts:
        for group in h.groups or ("ungrouped",):
            blocks.setdefault(group, []).append(h)
    return list(blocks.items())
