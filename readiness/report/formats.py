"""The format registry and the files reports are written to: the lowest module of this
package, so :mod:`.sinks` and the package itself import from it (no import cycle).

A new format is one renderer module plus one line in ``FORMATS`` (and ``EXTENSIONS``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import (
    UsageError,
    refuse_foreign_link,
    refuse_unless_creatable,
    refuse_unless_writable,
)
from ..model import FleetReport, Status

Renderer = Callable[..., str]


class _Lazy:
    """A renderer imported on first use: a run prints one format, and importing them all
    (prometheus_client, tabulate, the HTML page...) costs the CLI ~0.1 s of start-up."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name
        self._fn: Renderer | None = None

    def __call__(self, *args: Any, **kw: Any) -> str:
        if self._fn is None:
            from importlib import import_module

            self._fn = getattr(import_module(self.module, __package__), self.name)
        return self._fn(*args, **kw)


FORMATS: dict[str, Renderer] = {
    "text": _Lazy(".text", "render_text"),
    "table": _Lazy(".table", "render_table"),
    "json": _Lazy(".jsonfmt", "render_json"),
    "markdown": _Lazy(".markdown", "render_markdown"),
    "junit": _Lazy(".junit", "render_junit"),
    "nagios": _Lazy(".nagios", "render_nagios"),
    "prometheus": _Lazy(".prometheus", "render_prometheus"),
    "sarif": _Lazy(".sarif", "render_sarif"),
    "tap": _Lazy(".tap", "render_tap"),
    "html": _Lazy(".html", "render_html"),
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

# Extension → format, for ``--report out.xml`` and ``--save out.xml`` alike. .txt is ambiguous
# (text, table, nagios): ``--report x.txt`` is text, ``--save x.txt`` keeps text or table.
FORMAT_OF_EXTENSION = {
    ".txt": "text",
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".xml": "junit",
    ".prom": "prometheus",
    ".sarif": "sarif",
    ".tap": "tap",
    ".html": "html",
    ".htm": "html",
}

# Where ``--save`` alone and ``--report FORMAT:`` put their default-named files.
DEFAULT_SAVE_DIR = "reports"

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


def default_save_path(
    report: FleetReport, fmt: str, directory: str | Path = DEFAULT_SAVE_DIR
) -> Path:
    stamp = report.generated_at.strftime("%Y%m%dT%H%M%SZ")
    return Path(directory) / f"readiness-{stamp}.{EXTENSIONS.get(fmt, 'txt')}"


def save(text: str, path: str | Path, *, mode: int | None = None) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a report.

    The file is private (0600) unless ``mode`` says otherwise (a Prometheus textfile
    must be readable by node-exporter's user). The temp name starts with a dot and does
    not end in the target's extension, so a collector globbing ``*.prom`` never reads it.
    """
    given = Path(path)
    # Through a symlink, the file it names is replaced and the link kept (a rename over the
    # link turned it into a file of its own); never another user's link in /tmp (checked
    # before the run too: one planted since is refused here, the file not written).
    refuse_foreign_link(given, str(given))
    target = Path(os.path.realpath(given)) if given.is_symlink() else given
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
    return given


@dataclass(frozen=True)
class SaveTarget:
    """Where ``--save`` writes and in which format, decided (and checked) before the audit."""

    fmt: str
    path: Path | None = None  # None: the default name inside ``directory``
    directory: Path = Path(DEFAULT_SAVE_DIR)

    def final_path(self, report: FleetReport) -> Path:
        return self.path or default_save_path(report, self.fmt, self.directory)


def plan_save(save: Any, fmt: str) -> SaveTarget | None:
    """The ``--save`` target for a report printed as ``fmt``; UsageError before anything runs.

    ``--save`` alone: ``reports/readiness-<time>.<ext>``; an existing directory: that
    name inside it; an extension ``--report`` knows (``.json``, ``.md``, ``.xml``...) picks
    that format for the file whatever ``--format`` prints. The target must be writable
    (probed with a temporary file in its directory).
    """
    if save is None or save is False:
        return None
    if save is True:
        target = SaveTarget(fmt, None, Path(DEFAULT_SAVE_DIR))
        refuse_unless_creatable(target.directory, f"--save {DEFAULT_SAVE_DIR}")
        return target
    text = str(save)
    if not text.strip():
        raise UsageError("--save: expected a path (or --save alone for the default name)")
    path = Path(text).expanduser()
    if path.is_dir() or text.endswith(os.sep):
        refuse_unless_creatable(path, f"--save {text}")
        return SaveTarget(fmt, None, path)
    suffix = path.suffix.lower()
    if suffix == ".txt" and EXTENSIONS.get(fmt) == "txt":  # text, table, nagios: kept
        saved = fmt
    else:
        saved = FORMAT_OF_EXTENSION.get(suffix, fmt)
    refuse_unless_writable(path, f"--save {text}")
    return SaveTarget(saved, path, path.parent)
