"""What the console scripts do first, before their imports: signals at start-up.

``readiness`` (readiness/__init__.py, as the first thing the console script runs) and
``invoke`` (the repository's tasks.py) call :func:`signals_at_start_up`: from then until a
task takes them (readiness.interrupt.handle_signals), a Ctrl-C, SIGTERM or SIGHUP is one
line and exit 128 + n (docs/fleet.md, "Ctrl-C and SIGTERM"). Before, a Ctrl-C in the first
~0.2 s (imports, option parsing) printed a Python traceback, invoke made one exit 1 (the
"not ready" code), and SIGTERM or SIGHUP killed the process with no word. Only builtin
modules are used here (``_signal``, ``posix``: ``signal`` and ``os`` import more), so the
window before the handler is as short as the interpreter allows.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module: no stubs
import posix
import sys

__all__ = ["signals_at_start_up"]

_NAMES: dict[int, str] = {
    _signal.SIGHUP: "SIGHUP",
    _signal.SIGINT: "SIGINT",
    _signal.SIGTERM: "SIGTERM",
}

# The core options that take a value (``-f FILE nagios``: FILE is not the task), invoke's
# own too (``invoke -r DIR nagios``).
_CORE_VALUED = frozenset(
    (
        *("-f", "--config", "-D", "--list-depth", "-F", "--list-format"),
        *("--print-completion-script", "-c", "--collection", "-r", "--search-root"),
        *("-T", "--command-timeout"),
    )
)

# (file descriptor, line, exit code) for a signal's name; set by signals_at_start_up.
_ANSWER: list[bool] = [False]  # True: the nagios task's answer


def _task_word(argv: list[str]) -> str:
    """The first word of ``argv`` invoke would take for the task, read before it is
    imported (the task collection is not known yet)."""
    args = iter(argv[1:])
    for word in args:
        if word in _CORE_VALUED:
            next(args, None)
        elif not word.startswith("-"):
            return word
    return ""


def _answer(name: str) -> tuple[int, str, int]:
    """``readiness: interrupted while starting`` and 128 + n; for the nagios task, the plugin's UNKNOWN
    line on stdout and exit 3 (readiness.report.nagios's line, written out here: nothing
    is imported yet when the signal comes)."""
    if _ANSWER[0]:
        return 1, f"READINESS UNKNOWN - run interrupted ({name})", 3
    return (
        2,
        "readiness: interrupted while starting",
        {"SIGHUP": 129, "SIGINT": 130, "SIGTERM": 143}[name],
    )


def _leave(signum: int, frame: object) -> None:
    """One line, then exit at once: nothing has started (no host, no file), so nothing is
    left to hang up or keep; what was printed (the report of a task that has just ended)
    is flushed first. Not KeyboardInterrupt (invoke's Program turns it into exit 1, and one
    raised in an import printed a traceback), and not SystemExit either: raised where the
    signal lands, inside a weakref callback of the import system at exit, it printed
    "Exception ignored ... SystemExit" and the exit code was lost."""
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - see below
            stream.flush()
        except Exception:  # noqa: S110 - a closed or busy stream: the exit goes on
            pass
    fd, line, code = _answer(_NAMES.get(signum, "SIGINT"))
    try:  # noqa: SIM105 - contextlib is one import more before the handler
        posix.write(fd, line.encode("utf-8", "replace") + b"\n")
    except OSError:  # a hung-up terminal
        pass
    posix._exit(code)


def signals_at_start_up() -> None:
    """Until a task handles them, SIGINT, SIGTERM and SIGHUP end the process with one line
    and exit 130/143/129 (the nagios task: its UNKNOWN line, exit 3). A signal ignored now
    (``nohup``, a shell's background job) stays ignored. For the console scripts only."""
    _ANSWER[0] = _task_word(sys.argv) == "nagios"
    for sig in _NAMES:
        if _signal.getsignal(sig) != _signal.SIG_IGN:
            _signal.signal(sig, _leave)
