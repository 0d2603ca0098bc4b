"""Ctrl-C and SIGTERM as one exception, so every task stops the same way.

Python turns SIGINT into KeyboardInterrupt but lets SIGTERM kill the process outright,
which would leave no partial report. :func:`handle_signals` makes both raise
:class:`Interrupted` in the main thread; the fleet loop catches it (it is a
KeyboardInterrupt), hangs up every host and returns what it has. Exit codes follow
the shell convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = [
    "Interrupted",
    "exit_code_for",
    "graceful_stop",
    "handle_signals",
    "interruption",
    "interruption_ends_the_task",
    "reraise_if_the_task_ends",
    "signal_name",
]

_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}
_CODES = {"SIGINT": 130, "SIGTERM": 143}


class Interrupted(KeyboardInterrupt):
    """A SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(_NAMES.get(signal.Signals(signum), f"signal {signum}"))
        self.signum = signum


def signal_name(exc: BaseException) -> str:
    """``SIGTERM`` for an Interrupted(SIGTERM), ``SIGINT`` for any other KeyboardInterrupt."""
    if isinstance(exc, Interrupted):
        return _NAMES.get(signal.Signals(exc.signum), "SIGINT")
    return "SIGINT"


def exit_code_for(name: str) -> int:
    """130 for SIGINT, 143 for SIGTERM (128 + the signal number)."""
    return _CODES.get(name, 130)


# Set inside :func:`interruption_ends_the_task`: a fleet run a signal stopped raises it
# again (after hanging up its hosts) instead of returning its partial result.
_ENDS_THE_TASK: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "readiness_interruption_ends_the_task", default=False
)


@contextlib.contextmanager
def interruption_ends_the_task() -> Iterator[None]:
    """Inside, an interrupted fleet run raises :class:`Interrupted` once it has hung up its
    hosts, instead of returning a partial result: for a task whose runs are measurements
    (``bench``), where half a run means nothing and the task must stop, not go on to its
    next run."""
    token = _ENDS_THE_TASK.set(True)
    try:
        yield
    finally:
        _ENDS_THE_TASK.reset(token)


def reraise_if_the_task_ends(interrupted_by: str) -> None:
    """Raise :class:`Interrupted` for ``interrupted_by`` ("SIGINT"/"SIGTERM", "" when the
    run was not interrupted) inside :func:`interruption_ends_the_task`."""
    if interrupted_by and _ENDS_THE_TASK.get():
        raise interruption(interrupted_by)


def interruption(name: str) -> Interrupted:
    """The :class:`Interrupted` for a signal's name ("SIGTERM"; anything else is SIGINT)."""
    by_name = {sig_name: sig for sig, sig_name in _NAMES.items()}
    return Interrupted(by_name.get(name, signal.SIGINT))


class _Handler:
    """First signal: raise Interrupted. Second: ignored, the partial report is being
    written (a save is atomic, so no half file either way). Third: leave at once."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if len(self.received) == 1:
            raise Interrupted(signum)
        if len(self.received) >= 3:
            os._exit(exit_code_for(_NAMES.get(signal.Signals(self.received[0]), "SIGINT")))


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM raise :class:`Interrupted` (main thread only).

    After an interruption both signals are ignored from then on: the partial report is
    written by then, and a late Ctrl-C while the process exits must neither print a
    traceback nor turn exit code 130 into death by signal.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in _NAMES}
    handler = _Handler()
    for sig in _NAMES:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_IGN if handler.received else old)


class _GracefulHandler(_Handler):
    """First signal: set ``stop`` and say so (the current work finishes). Second: raise
    Interrupted (cut it short, as Ctrl-C does elsewhere). Third: leave at once."""

    def __init__(self, stop: threading.Event, notice: str) -> None:
        super().__init__()
        self.stop, self.notice = stop, notice

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if len(self.received) == 1:
            self.stop.set()
            # os.write, not print: the main thread may be inside a print to stderr itself
            with contextlib.suppress(OSError):
                os.write(2, self.notice.encode())
            return
        if len(self.received) == 2:
            raise Interrupted(signum)
        os._exit(exit_code_for(_NAMES.get(signal.Signals(self.received[1]), "SIGINT")))


@contextlib.contextmanager
def graceful_stop(stop: threading.Event, notice: str) -> Iterator[None]:
    """While inside, the first SIGINT/SIGTERM sets ``stop`` and writes ``notice`` to stderr
    (a service's loop finishes its current run); a second one raises :class:`Interrupted`
    (the run in progress is cut short like a Ctrl-C in ``validate``: hosts hung up, the
    partial report kept); a third leaves at once. A long-running task must stay
    interruptible from the terminal: one signal that waits for the host deadlines is
    right for systemd, not for a person at a keyboard.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in _NAMES}
    handler = _GracefulHandler(stop, notice)
    for sig in _NAMES:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        interrupted = len(handler.received) >= 2
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_IGN if interrupted else old)
