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
# What GitHub neither links nor styles: letters and digits joined by single inner '_' or '-'
# (no '@', '#', '/', '.', ':', no edge '_'), except GH-7 (an issue reference) and 7+ hex
# digits (a commit).
_PLAIN_MARKDOWN = re.compile("[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)*")
_LINKED_ANYWAY = re.compile("(?i)gh-[0-9]+|[0-9a-f]{7,}")


def escape_text(text: object) -> str:
    """``text`` with every control character shown as ``\\xNN`` (ESC never reaches a terminal)."""
    return _CONTROL.sub(visible_char, str(text))


def one_line(text: object) -> str:
    """Escaped, and newlines/tabs shown as ``\\n``/``\\t``: a field stays on its line."""
    return escape_text(str(text).replace("\t", "\\t").replace("\r\n", "\n").replace("\n", "\\n"))


def escape_markdown(text: object, *, table: bool = False) -> str:
    """Host text for a Markdown report: one line, in an inline code span.

    GitHub links ``@user``, ``#123``, ``owner/repo#1`` and bare URLs in the text of the
    rendered page, but never inside ``<code>``; backslash escapes do not stop it (``\\@user``
    renders as the text ``@user``, which is then linked). In a code span Markdown is not read
    either: no link, image, autolink, emphasis or HTML. The fence is one backtick longer than
    any run inside. ``table``: ``|`` written ``\\|`` (GFM splits cells
    before it reads code spans, and takes ``\\|`` as a pipe inside them). Names GitHub cannot
    link or style (``web-1``, ``database_migration``) stay plain.
    """
    flat = one_line(text)
    if _PLAIN_MARKDOWN.fullmatch(flat) and not _LINKED_ANYWAY.search(flat):
        return flat
    if not flat:
        return ""
    fence = "`" * (max(map(len, re.findall("`+", flat)), default=0) + 1)
    # CommonMark strips one space from each end of a span that has both: padded only when
    # needed, a backtick at an end (it would join the fence) or a space at both ends
    pad = " " if "`" in (flat[0], flat[-1]) or (flat[0] == flat[-1] == " ") else ""
    span = f"{fence}{pad}{flat}{pad}{fence}"
    return span.replace("|", "\\|") if table else span


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
