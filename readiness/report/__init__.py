"""Renderers: one pure function per format, from a redacted FleetReport to text.

A new format is one module here plus one line in ``FORMATS`` (in :mod:`.formats`, the
package's lowest module: the registry, the file names and ``--save``; :mod:`.sinks` builds
``--report`` on it).
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from .formats import (
    DEFAULT_SAVE_DIR,
    EXTENSIONS,
    FILE_MODES,
    FORMAT_OF_EXTENSION,
    FORMATS,
    SaveTarget,
    default_save_path,
    plan_save,
    render,
    save,
)
from .sinks import ReportSink, check_save_and_reports, plan_sinks, write_reports

__all__ = [
    "DEFAULT_SAVE_DIR",
    "EXTENSIONS",
    "FILE_MODES",
    "FORMATS",
    "FORMAT_OF_EXTENSION",
    "ReportSink",
    "SaveTarget",
    "check_save_and_reports",
    "default_save_path",
    "emit",
    "plan_save",
    "plan_sinks",
    "render",
    "save",
    "silence_stdout",
    "write_reports",
]


def emit(text: str, stream: TextIO | None = None) -> bool:
    """Print ``text``; a reader that went away (``| head -1``) ends output quietly.

    Returns False when the pipe was closed. stdout is then pointed at /dev/null so the
    interpreter's final flush cannot raise BrokenPipeError either.
    """
    out = stream or sys.stdout
    text = text if text.endswith("\n") else text + "\n"
    try:
        raw = getattr(out, "buffer", None)
        if raw is None:
            out.write(text)
        else:
            out.flush()
            # A signal that does not stop the process (the second Ctrl-C, ignored while the
            # report is written) makes a write blocked on a full pipe return short, and
            # the text layer drops the rest without a word: the bytes are written to the
            # end here instead.
            encoding = getattr(out, "encoding", None) or "utf-8"
            view = memoryview(text.encode(encoding, getattr(out, "errors", None) or "strict"))
            while view:
                view = view[raw.write(view) :]
            raw.flush()
        out.flush()
    except BrokenPipeError:
        silence_stdout()
        return False
    return True


def silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
