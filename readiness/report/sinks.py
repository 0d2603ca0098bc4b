"""Several reports from one run: ``--report FORMAT[:PATH]`` (docs/reports.md).

A sink is a format and a destination (stdout, or a file written atomically). Sinks are
parsed and checked **before** the run, so an unwritable path is a usage error (exit 2)
instead of an audit thrown away at the end. Each format is rendered once per run and every
sink of that format gets the same text, so a file is byte-identical to the one a single
``--format F --save PATH`` run of the same report would write.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..model import FleetReport, Status

__all__ = [
    "ReportSink",
    "check_save_and_reports",
    "check_writable",
    "parse_report_spec",
    "plan_sinks",
    "write_reports",
]

# Where ``--save`` alone and ``--report FORMAT:`` put their default-named files.
DEFAULT_SAVE_DIR = "reports"

# Extension → format, for ``--report out.xml``; .txt is ambiguous (text, table, nagios): text.
FORMAT_OF_EXTENSION = {
    ".txt": "text",
    ".json": "json",
    ".md": "markdown",
    ".xml": "junit",
    ".prom": "prometheus",
    ".sarif": "sarif",
    ".tap": "tap",
    ".html": "html",
    ".htm": "html",
}


@dataclass(frozen=True)
class ReportSink:
    fmt: str
    path: Path | None = None  # None: stdout
    default_path: bool = False  # FORMAT: (empty path): reports/readiness-<time>.<ext>

    def describe(self) -> str:
        if self.default_path:
            return f"{self.fmt}:"
        return f"{self.fmt}:{self.path}" if self.path else self.fmt


def _formats() -> Sequence[str]:
    from . import FORMATS  # here: this package's __init__ imports this module

    return list(FORMATS)


def parse_report_spec(spec: str) -> ReportSink:
    """``FORMAT`` (stdout), ``FORMAT:PATH``, ``FORMAT:`` (default path) or ``PATH`` whose
    extension names the format."""
    formats = _formats()
    text = spec.strip()
    if not text:
        raise UsageError("--report needs FORMAT[:PATH] (e.g. junit:out.xml)")
    name, sep, rest = text.partition(":")
    if name in formats:
        if not sep:
            return ReportSink(name)
        return ReportSink(name, None, True) if not rest else ReportSink(name, Path(rest))
    suffix = Path(text).suffix.lower()
    if not sep and suffix in FORMAT_OF_EXTENSION:
        return ReportSink(FORMAT_OF_EXTENSION[suffix], Path(text))
    raise UsageError(
        f"--report {spec!r}: unknown format (valid: {', '.join(formats)}; or a path ending in "
        f"{', '.join(sorted(FORMAT_OF_EXTENSION))})"
    )


def check_writable(path: Path) -> None:
    """Refuse, before the run, a destination the report could not be written to."""
    if path.is_dir():
        raise UsageError(f"cannot write report to {path}: it is a directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"cannot write report to {path}: permission denied")
    parent = path.parent
    for _ in range(64):  # nearest existing ancestor; bounded against odd paths
        if parent.exists() or parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write report to {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write report to {path}: {parent} is not writable")
    if parent == path.parent:  # the real test (root passes access(), a read-only mount not)
        try:
            fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=parent)
        except OSError as exc:
            raise UsageError(f"cannot write report to {path}: {exc.strerror}") from None
        os.close(fd)
        Path(probe).unlink(missing_ok=True)


def plan_sinks(
    specs: Iterable[str], stdout_fmt: str, save: object = None
) -> tuple[ReportSink, ...]:
    """The run's sinks: the ``--report`` specs, ``--format``/``--json`` for stdout unless a
    ``--report`` without a path claims it, and ``--save [PATH]`` as a file of that format.
    Every file is checked for writability; two sinks on one file are refused."""
    if stdout_fmt not in _formats():
        raise UsageError(f"unknown format {stdout_fmt!r} (valid: {', '.join(_formats())})")
    reports = [parse_report_spec(s) for s in specs]
    to_stdout = [s for s in reports if s.path is None and not s.default_path]
    if len(to_stdout) > 1:
        named = ", ".join(s.fmt for s in to_stdout)
        raise UsageError(f"only one report can go to stdout, got {named}: give the others a PATH")
    sinks = list(reports) if to_stdout else [ReportSink(stdout_fmt), *reports]
    if save:
        printed = to_stdout[0].fmt if to_stdout else stdout_fmt
        sinks.append(
            ReportSink(printed, Path(save), False)
            if isinstance(save, str)
            else ReportSink(printed, None, True)
        )
    seen: dict[Path, ReportSink] = {}
    defaults: dict[str, ReportSink] = {}
    for sink in sinks:
        if sink.default_path:  # reports/readiness-<time>.<ext>: one per format
            if sink.fmt in defaults:
                raise UsageError(
                    f"two reports to one file: {defaults[sink.fmt].describe()} and "
                    f"{sink.describe()} (both the default name in reports/)"
                )
            defaults[sink.fmt] = sink
        if sink.path is None:
            continue
        key = sink.path.resolve()
        if key in seen:
            raise UsageError(
                f"two reports to one file: {seen[key].describe()} and {sink.describe()}"
            )
        seen[key] = sink
        check_writable(sink.path)
    return tuple(sinks)


def write_reports(
    report: FleetReport,
    sinks: Sequence[ReportSink],
    *,
    fail_on: Status = Status.NOT_READY,
    group_by: str | None = None,
    trend: Any = None,
) -> tuple[str | None, list[Path]]:
    """Render each format once; write every file sink atomically. Returns the stdout text
    (or None when no sink prints) and the files written, in sink order. ``trend`` (per
    check, from the results store) goes to the HTML report only."""
    from . import FILE_MODES, default_save_path, render, save

    rendered: dict[str, str] = {}
    stdout_text: str | None = None
    written: list[Path] = []
    for sink in sinks:
        if sink.fmt not in rendered:
            extra = {"trend": trend} if sink.fmt == "html" else {}
            rendered[sink.fmt] = render(
                report, sink.fmt, fail_on=fail_on, group_by=group_by, **extra
            )
        text = rendered[sink.fmt]
        if sink.path is None and not sink.default_path:
            stdout_text = text
            continue
        path = sink.path or default_save_path(report, sink.fmt)
        written.append(save(text, path, mode=FILE_MODES.get(sink.fmt)))
    return stdout_text, written


def check_save_and_reports(target: object, sinks: Sequence[ReportSink]) -> None:
    """``--save PATH`` and a ``--report`` on the same file: refused before the run."""
    path = getattr(target, "path", None)
    if path is None and target is not None:  # --save alone: the default name in its directory
        fmt, directory = getattr(target, "fmt", None), getattr(target, "directory", None)
        same_dir = (
            directory is not None and Path(directory).resolve() == Path(DEFAULT_SAVE_DIR).resolve()
        )
        for sink in sinks:
            if same_dir and sink.default_path and sink.fmt == fmt:
                raise UsageError(
                    f"two reports to one file: --save and {sink.describe()} (both the "
                    "default name in reports/)"
                )
    if not isinstance(path, Path):
        return
    for sink in sinks:
        if sink.path is not None and sink.path.resolve() == path.resolve():
            raise UsageError(f"two reports to one file: --save {path} and {sink.describe()}")
