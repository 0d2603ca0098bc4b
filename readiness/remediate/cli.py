"""What the ``remediate`` task does between its flags and its exit code (testable without invoke)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

from ..errors import UsageError
from ..runner import RunOptions
from .audit_log import DEFAULT_AUDIT_LOG
from .render import FORMATS, render
from .run import RemediationReport, remediate

__all__ = ["ask_on_terminal", "run_remediate_task"]


def ask_on_terminal(stdin: IO[str] | None = None, stderr: IO[str] | None = None) -> Any:
    """A confirmation callback when stdin is a terminal; None (refuse, never hang) otherwise."""
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    if not stdin.isatty():
        return None

    def confirm(names: list[str]) -> bool:
        shown = ", ".join(names[:10]) + (f" (+{len(names) - 10} more)" if len(names) > 10 else "")
        stderr.write(f"Apply fixes to {len(names)} hosts: {shown}? [y/N] ")
        stderr.flush()
        return stdin.readline().strip().lower() in ("y", "yes")

    return confirm


def run_remediate_task(
    *,
    hosts: str,
    check: Sequence[str] | None,
    inventory: str | None,
    profile: str | None,
    limit: str | None,
    apply: bool,
    yes: bool,
    fmt: str,
    run_migrations: bool = False,
    audit_log: str | None,
    options: RunOptions,
    sink: Callable[[RemediationReport], None] | None = None,
) -> tuple[str, int]:
    """(text to print, exit code): 0 all fixes worked or dry run; 1 a fix failed/reverted, a
    host was unreachable or (--apply) a fixer refused a fix; 2 usage errors and refused
    confirmation (raised as ReadinessError)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r} (valid: {', '.join(FORMATS)})")
    report = remediate(
        hosts,
        check or None,
        inventory=inventory,
        limit=limit,
        profile=profile,
        apply=apply,
        yes=yes,
        confirm=ask_on_terminal() if apply and not yes else None,
        run_migrations=run_migrations,
        options=options,
        audit_log=audit_log or DEFAULT_AUDIT_LOG,
        # issue 10: the CLI never fixes the controller on the built-in /opt/mahavishnu defaults
        refuse_implicit_local="remediate acts only on hosts an inventory names",
    )
    if sink is not None:  # the results store records the run (tasks.py)
        sink(report)
    return render(report, fmt), report.exit_code
