"""What the console scripts do first, before their imports: signals at start-up.

``readiness`` (readiness.cli) and ``invoke`` (the repository's tasks.py) call
:func:`signals_at_start_up` before anything heavy is imported: from then until a task takes
them (readiness.interrupt.handle_signals), a Ctrl-C, SIGTERM or SIGHUP is one line and exit
128 + n (docs/fleet.md, "Ctrl-C and SIGTERM"). Only the light readiness.interrupt is
imported here.
"""

from __future__ import annotations

import sys

from .interrupt import starting_up

__all__ = ["signals_at_start_up"]

# The core options that take a value (``-f FILE nagios``: FILE is not the task), invoke's
# own too (``invoke -r DIR nagios``).
_CORE_VALUED = frozenset(
    (
        *("-f", "--config", "-D", "--list-depth", "-F", "--list-format"),
        *("--print-completion-script", "-c", "--collection", "-r", "--search-root"),
        *("-T", "--command-timeout"),
    )
)


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


def _nagios_unknown(name: str) -> tuple[int, str, int]:
    """An interrupted plugin is UNKNOWN on stdout, exit 3 (readiness.report.nagios's line,
    written out here: that module is not imported yet when the signal comes)."""
    return 1, f"READINESS UNKNOWN - run interrupted ({name})", 3


def signals_at_start_up() -> None:
    """Until a task handles them, a Ctrl-C (or SIGTERM, SIGHUP) is one line and exit
    130/143/129 (the nagios task: its UNKNOWN line, exit 3), not a traceback or invoke's
    exit 1 ("not ready"). For the console scripts only: installs signal handlers."""
    starting_up(_nagios_unknown if _task_word(sys.argv) == "nagios" else None)
