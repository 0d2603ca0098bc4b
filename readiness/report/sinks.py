"""Several reports from one run: ``--report FORMAT[:PATH]`` (docs/reports.md).

A sink is a format and a destination (stdout, or a file written atomically). Sinks are
parsed and checked **before** the run, so an unwritable path is a usage error (exit 2)
instead of an audit thrown away at the end. Each format is rendered once per run and every
sink of that format gets the same text, so a file is byte-identical to the one a single
``--format F --save PATH`` run of the same report would write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError, refuse_unless_creatable, refuse_unless_writable
from ..model import FleetReport, Status
from .formats import (
    DEFAULT_SAVE_DIR,
    EXTENSIONS,
    FILE_MODES,
    FORMAT_OF_EXTENSION,
    FORMATS,
    SaveTarget,
    default_save_path,
    render,
    save,
)

__all__ = [
    "ReportSink",
    "check_save_and_reports",
    "parse_report_spec",
    "plan_sinks",
    "write_reports",
]


@dataclass(frozen=True)
class ReportSink:
    fmt: str
    path: Path | None = None  # None: stdout
    # FORMAT: (empty path) or FORMAT:DIR/: readiness-<time>.<ext> in ``directory``
    default_path: bool = False
    directory: Path = Path(DEFAULT_SAVE_DIR)

    def describe(self) -> str:
        if self.default_path:
            shown = "" if self.directory == Path(DEFAULT_SAVE_DIR) else f"{self.directory}/"
            return f"{self.fmt}:{shown}"
        return f"{self.fmt}:{self.path}" if self.path else self.fmt


def parse_report_spec(spec: str) -> ReportSink:
    """``FORMAT`` (stdout), ``FORMAT:PATH``, ``FORMAT:`` (default path), ``FORMAT:DIR/`` (the
    default name in DIR, as is an existing directory) or ``PATH`` whose extension names the
    format."""
    formats = list(FORMATS)
    text = spec.strip()
    if not text:
        raise UsageError("--report needs FORMAT[:PATH] (e.g. junit:out.xml)")
    name, sep, rest = text.partition(":")
    if name in formats:
        if not sep:
            return ReportSink(name)
        if not rest:
            return ReportSink(name, None, True)
        target = Path(rest).expanduser()
        if rest.endswith("/") or target.is_dir():  # a directory: the default name in it,
            return ReportSink(name, None, True, target)  # as for --save DIR (not a file "DIR")
        return ReportSink(name, target)
    suffix = Path(text).suffix.lower()
    if not sep and suffix in FORMAT_OF_EXTENSION:
        return ReportSink(FORMAT_OF_EXTENSION[suffix], Path(text))
    raise UsageError(
        f"--report {spec!r}: unknown format (valid: {', '.join(formats)}; or a path ending in "
        f"{', '.join(sorted(FORMAT_OF_EXTENSION))})"
    )


def plan_sinks(
    specs: Iterable[str], stdout_fmt: str, save: object = None
) -> tuple[ReportSink, ...]:
    """The run's sinks: the ``--report`` specs, ``--format``/``--json`` for stdout unless a
    ``--report`` without a path claims it, and ``--save [PATH]`` as a file of that format.
    Every file is checked for writability; two sinks on one file are refused."""
    if stdout_fmt not in FORMATS:
        raise UsageError(f"unknown format {stdout_fmt!r} (valid: {', '.join(FORMATS)})")
    reports = [parse_report_spec(s) for s in specs]
    to_stdout = [s for s in reports if s.path is None and not s.default_path]
    if len(to_stdout) > 1:
        named = ", ".join(s.fmt for s in to_stdout)
        raise UsageError(f"only one report can go to stdout, got {named}: give the others a PATH")
    sinks = list(reports) if to_stdout else [ReportSink(stdout_fmt), *reports]
    saved: ReportSink | None = None
    if save:
        printed = to_stdout[0].fmt if to_stdout else stdout_fmt
        saved = (
            ReportSink(printed, Path(save), False)
            if isinstance(save, str)
            else ReportSink(printed, None, True)
        )
        sinks.append(saved)
    seen: dict[Path, ReportSink] = {}
    defaults: dict[tuple[str, Path], ReportSink] = {}
    for sink in sinks:
        flag = f"--save {save}" if sink is saved else f"--report {sink.describe()}"
        # DIR/readiness-<time>.<ext>: one per extension and directory (text, table and
        # nagios are all .txt: the second one overwrote the first)
        if sink.default_path:
            key_default = (EXTENSIONS.get(sink.fmt, "txt"), sink.directory.resolve())
            if key_default in defaults:
                raise UsageError(
                    f"two reports to one file: {defaults[key_default].describe()} and "
                    f"{sink.describe()} (both the default name in {sink.directory}/)"
                )
            defaults[key_default] = sink
            refuse_unless_creatable(sink.directory, flag)
        if sink.path is None:
            continue
        key = sink.path.resolve()
        if key in seen:
            raise UsageError(
                f"two reports to one file: {seen[key].describe()} and {sink.describe()}"
            )
        seen[key] = sink
        refuse_unless_writable(sink.path, flag)
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
        path = sink.path or default_save_path(report, sink.fmt, sink.directory)
        written.append(save(text, path, mode=FILE_MODES.get(sink.fmt)))
    return stdout_text, written


def check_save_and_reports(target: SaveTarget | None, sinks: Sequence[ReportSink]) -> None:
    """``--save [PATH]`` and a ``--report`` on the same file: refused before the run."""
    if target is None:
        return
    if target.path is None:  # --save alone (or a directory): the default name in it
        where = target.directory.resolve()
        ext = EXTENSIONS.get(target.fmt, "txt")
        for sink in sinks:
            same_name = sink.default_path and EXTENSIONS.get(sink.fmt, "txt") == ext
            if same_name and sink.directory.resolve() == where:
                raise UsageError(
                    f"two reports to one file: --save and {sink.describe()} (both the "
                    f"default name in {target.directory}/)"
                )
        return
    for sink in sinks:
        if sink.path is not None and sink.path.resolve() == target.path.resolve():
            raise UsageError(f"two reports to one file: --save {target.path} and {sink.describe()}")
