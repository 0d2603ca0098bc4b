"""Invoke entry point: the tasks live in ``readiness.tasks`` (the same collection the
``readiness`` console script runs), so this file stays thin."""

import os
import select
import sys
from pathlib import Path
from types import TracebackType

# invoke turns bytecode caching off for the whole process (its --write-pyc, off by default,
# is meant for tasks files like this one, which is already loaded by now). readiness is a
# package: cache its compiled modules as Python and the `readiness` console script do, so
# `invoke validate` does not compile ~0.8 MB of source on every run. PYTHONDONTWRITEBYTECODE
# and -B are still honoured.
sys.dont_write_bytecode = sys.dont_write_bytecode and bool(sys.flags.dont_write_bytecode)

if Path(sys.argv[0]).name in ("invoke", "inv"):
    # invoke has parsed its own options and is loading this file: from here until a task
    # takes them, a signal is one line and exit 128 + n, not invoke's exit 1 ("not ready")
    # or a traceback from an import below. (invoke's own start-up before this is its own.)
    from readiness.console import signals_at_start_up

    signals_at_start_up()

from readiness.tasks import ns  # noqa: E402

__all__ = ["ns"]


def _stdout_reader_gone() -> bool:
    """stdout is a pipe whose reading end is closed (``| head -1`` has exited)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _closed_pipe_ends_quietly(
    kind: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """``invoke --list | head -1``: invoke's own listing and help end quietly (exit 0), as the
    ``readiness`` command's do, instead of a BrokenPipeError traceback. readiness's reports
    handle a closed pipe themselves; any other error keeps Python's traceback."""
    if issubclass(kind, BrokenPipeError) and _stdout_reader_gone():
        try:
            sys.stderr.flush()
        finally:
            os._exit(0)  # nothing left to flush: stdout is gone
    _default_hook(kind, exc, tb)


_default_hook = sys.excepthook
sys.excepthook = _closed_pipe_ends_quietly
