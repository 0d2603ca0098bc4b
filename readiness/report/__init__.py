"""Renderers: one pure function per format, from a redacted FleetReport to text.

A new format is one module here plus one line in ``FORMATS``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import UsageError
from ..model import FleetReport, Status
from .html import render_html
from .jsonfmt import render_json
from .junit import render_junit
from .markdown import render_markdown
from .nagios import render_nagios
from .prometheus import render_prometheus
from .sarif import render_sarif
from .sinks import ReportSink, plan_sinks, write_reports
from .table import render_table
from .tap import render_tap
from .text import render_text

__all__ = [
    "EXTENSIONS",
    "FILE_MODES",
    "FORMATS",
    "ReportSink",
    "default_save_path",
    "plan_sinks",
    "render",
    "save",
    "write_reports",
]

Renderer = Callable[..., str]

FORMATS: dict[str, Renderer] = {
    "text": render_text,
    "table": render_table,
    "json": render_json,
    "markdown": render_markdown,
    "junit": render_junit,
    "nagios": render_nagios,
    "prometheus": render_prometheus,
    "sarif": render_sarif,
    "tap": render_tap,
    "html": render_html,
}
EXTENSIONS = {
    "text": "txt",
    "table": "txt",
    "json": "json",
    "markdown": "md",
    "junit": "xml",
    "nagios": "txt",
    "prometheus": "prom",
    "sarif": "sarif",
    "tap": "tap",
    "html": "html",
}

# Saved files are private (0600) except where a reader runs as another user: node-exporter
# reads Prometheus textfiles, which hold only host, check and status names.
FILE_MODES: dict[str, int] = {"prometheus": 0o644}


def render(
    report: FleetReport, fmt: str = "text", *, fail_on: Status = Status.NOT_READY, **kw: object
) -> str:
    try:
        renderer = FORMATS[fmt]
    except KeyError:
        raise UsageError(f"unknown format {fmt!r} (valid: {', '.join(FORMATS)})") from None
    return renderer(report, fail_on=fail_on, **kw)


def default_save_path(report: FleetReport, fmt: str, directory: str | Path = "reports") -> Path:
    stamp = report.generated_at.strftime("%Y%m%dT%H%M%SZ")
    return Path(directory) / f"readiness-{stamp}.{EXTENSIONS.get(fmt, 'txt')}"


def save(text: str, path: str | Path, *, mode: int | None = None) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a report.

    The file is private (0600) unless ``mode`` says otherwise (a Prometheus textfile
    must be readable by node-exporter's user). The temp name starts with a dot and does
    not end in the target's extension, so a collector globbing ``*.prom`` never reads it.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
