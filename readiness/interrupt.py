"""Ctrl-C, SIGTERM and a terminal's hang-up as one exception, so every task stops the same way.

Python turns SIGINT into KeyboardInterrupt but lets SIGTERM kill the process outright,
which would leave no partial report. :func:`handle_signals` makes both raise
:class:`Interrupted` in the main thread; the fleet loop catches it (it is a
KeyboardInterrupt), hangs up every host and returns what it has. SIGHUP (the
controller's terminal closed: an SSH session to the jump host dropped) stops a run the
same way, unless it is ignored (``nohup``). Exit codes follow the shell convention: 128 +
the signal number (129 for SIGHUP, 130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import os
import signal
import stat
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, NoReturn

__all__ = [
    "TRANSACTION_GRACE_S",
    "HostGate",
    "Interrupted",
    "exit_code_for",
    "finishing",
    "graceful_stop",
    "handle_signals",
    "interruption",
    "interruption_ends_the_task",
    "reraise_if_the_task_ends",
    "signal_name",
    "signals_held",
    "stop_reason",
    "stop_requested",
    "transaction",
    "working_on",
]

_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}
_CODES = {"SIGHUP": 129, "SIGINT": 130, "SIGTERM": 143}


# The signals this process was started with ignored (read when this module is imported,
# before readiness changes any: Python keeps an inherited SIG_IGN). A shell starts a
# background job (`readiness watch ... &` in a script) with SIGINT ignored so that the
# terminal's Ctrl-C, sent to the whole process group, stops the script and not the job;
# `nohup` ignores SIGHUP; a supervisor may ignore SIGTERM on purpose.
_IGNORED_AT_START = frozenset(sig for sig in _NAMES if signal.getsignal(sig) == signal.SIG_IGN)


def _install(handler: Callable[[int, FrameType | None], None]) -> dict[int, Any]:
    """Point SIGINT, SIGTERM and SIGHUP at ``handler``; the previous handlers, to restore.

    A signal the process was started with ignored stays ignored (see above), and so does a
    SIGHUP ignored now (``nohup``): the user asked for the run to outlive the terminal."""
    previous: dict[int, Any] = {}
    for sig in _NAMES:
        old = signal.getsignal(sig)
        if sig in _IGNORED_AT_START or (sig == signal.SIGHUP and old == signal.SIG_IGN):
            continue
        previous[sig] = old
        signal.signal(sig, handler)
    return previous


def _off_the_terminal(signum: int) -> None:
    """After a hang-up, stdout and stderr that were the terminal go to /dev/null.

    The terminal is gone: a write to it fails with EIO, which would turn the partial
    report's "saved to" line, or the report itself, into a crash before the run is
    recorded. Output redirected to a file or a pipe is left alone (it is still read)."""
    if signum != signal.SIGHUP:
        return
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            devnull = os.fstat(null)
            for fd in (1, 2):
                with contextlib.suppress(OSError):
                    st = os.fstat(fd)
                    # a hung-up tty no longer answers isatty(): any character device
                    # but /dev/null itself is taken for the terminal
                    if stat.S_ISCHR(st.st_mode) and st.st_rdev != devnull.st_rdev:
                        os.dup2(null, fd)
        finally:
            os.close(null)


class Interrupted(KeyboardInterrupt):
    """A SIGINT, SIGTERM or SIGHUP arrived; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(_NAMES.get(signal.Signals(signum), f"signal {signum}"))
        self.signum = signum


def signal_name(exc: BaseException) -> str:
    """``SIGTERM``/``SIGHUP`` for an Interrupted of that signal, else ``SIGINT``."""
    if isinstance(exc, Interrupted):
        return _NAMES.get(signal.Signals(exc.signum), "SIGINT")
    return "SIGINT"


def exit_code_for(name: str) -> int:
    """129 for SIGHUP, 130 for SIGINT, 143 for SIGTERM (128 + the signal number)."""
    return _CODES.get(name, 130)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait (blocked, not lost) until the block ends: for a few
    system calls that must not be cut apart, such as creating a probe file and removing it
    (a Ctrl-C between the two left the file behind). The block must not wait on anything."""
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


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
    """Raise :class:`Interrupted` for ``interrupted_by`` ("SIGINT", "SIGTERM"; "" when the
    run was not interrupted) inside :func:`interruption_ends_the_task`."""
    if interrupted_by and _ENDS_THE_TASK.get():
        raise interruption(interrupted_by)


def interruption(name: str) -> Interrupted:
    """The :class:`Interrupted` for a signal's name ("SIGTERM", "SIGHUP"; else SIGINT)."""
    by_name = {sig_name: sig for sig, sig_name in _NAMES.items()}
    return Interrupted(by_name.get(name, signal.SIGINT))


# The handlers installed now, outermost first. A signal any of them receives marks them
# all: each context then leaves the signals ignored instead of restoring what it found (an
# outer one would otherwise bring back Python's default, and a late Ctrl-C while the
# process exits would turn exit 130 into death by SIGINT).
_ACTIVE: list[_Handler] = []


class _Handler:
    """First signal: raise Interrupted. Second: ignored, the partial report is being
    written (a save is atomic, so no half file either way). Third: leave at once."""

    def __init__(self) -> None:
        self.received: dict[int, int] = {}  # place (1: the first signal) -> signal number
        self._places = itertools.count(1)
        self.signalled = False  # this handler or one nested inside it received a signal
        self.finishing = False  # inside finishing(): a first signal waits for the block
        self.deferred = 0  # that signal, raised when the block ends

    def _mark(self, signum: int) -> int:
        """Count ``signum`` in; its place among the signals received (1 for the first).

        The place is taken first, in one step: a signal that arrives while this one is
        being handled (its handler then runs nested inside this one, e.g. while the
        hang-up's handler waits for the GIL after a system call) comes after it, and this
        one still acts as the first. Before, both saw two signals: neither stopped the run,
        which went on to its end and exited as if never signalled (SIGHUP and SIGTERM
        together, as systemd sends them, or a quick double Ctrl-C)."""
        place = next(self._places)
        self.received[place] = signum
        for handler in _ACTIVE:
            handler.signalled = True
        self.signalled = True
        _off_the_terminal(signum)
        return place

    def _exit_as(self, place: int, signum: int) -> NoReturn:
        """Leave at once, with the code of the signal at ``place``."""
        first = self.received.get(place, signum)
        os._exit(exit_code_for(_NAMES.get(signal.Signals(first), "SIGINT")))

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        place = self._mark(signum)
        if place == 1:
            if self.finishing:
                self.deferred = signum
                return
            raise Interrupted(signum)
        if place >= 3:
            self._exit_as(1, signum)


@contextlib.contextmanager
def _handled_by(handler: _Handler) -> Iterator[None]:
    """``handler`` takes SIGINT/SIGTERM/SIGHUP while inside (main thread only; elsewhere
    signals cannot be handled); after an interruption they stay ignored on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = _install(handler)
    _ACTIVE.append(handler)
    try:
        yield
    finally:
        _ACTIVE.remove(handler)
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_IGN if handler.signalled else old)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """While inside, SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` (main thread only).

    After an interruption all three are ignored from then on: the partial report is
    written by then, and a late Ctrl-C while the process exits must neither print a
    traceback nor turn exit code 130 into death by signal.
    """
    with _handled_by(_Handler()):
        yield


@contextlib.contextmanager
def finishing() -> Iterator[None]:
    """Inside :func:`handle_signals`, for the end of a task whose hosts are all done (its
    report rendered, saved and printed, its run recorded): a first signal no longer cuts
    that short but waits for the block, then raises :class:`Interrupted` (a second is
    ignored and a third leaves at once, as while a partial report is written). Before, a
    signal landing there (0.3-0.6 s for 200 hosts) left the output cut off and the
    completed run unrecorded. Inside :func:`graceful_stop` the same holds for the signal
    that would cut the run short (the second)."""
    handler = _ACTIVE[-1] if _ACTIVE else None
    if handler is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    handler.finishing = True
    try:
        yield
    finally:
        handler.finishing = False
    if handler.deferred:
        raise Interrupted(handler.deferred)


class _GracefulHandler(_Handler):
    """First signal: set ``stop`` and say so (the current work finishes). Second: raise
    Interrupted (cut it short, as Ctrl-C does elsewhere). Third: leave at once."""

    def __init__(self, stop: threading.Event, notice: str) -> None:
        super().__init__()
        self.stop, self.notice = stop, notice

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        place = self._mark(signum)
        if place == 1:
            self.stop.set()
            # os.write, not print: the main thread may be inside a print to stderr itself
            with contextlib.suppress(OSError):
                os.write(2, self.notice.encode())
            return
        if place == 2:
            if self.finishing:  # a completed run being recorded: it waits for that
                self.deferred = signum
                return
            raise Interrupted(signum)
        self._exit_as(2, signum)


@contextlib.contextmanager
def graceful_stop(stop: threading.Event, notice: str) -> Iterator[None]:
    """While inside, the first SIGINT/SIGTERM sets ``stop`` and writes ``notice`` to stderr
    (a service's loop finishes its current run); a second one raises :class:`Interrupted`
    (the run in progress is cut short like a Ctrl-C in ``validate``: hosts hung up, the
    partial report kept); a third leaves at once. A long-running task must stay
    interruptible from the terminal: one signal that waits for the host deadlines is
    right for systemd, not for a person at a keyboard.
    """
    with _handled_by(_GracefulHandler(stop, notice)):
        yield


# --- transactions: work on a host that an interruption lets finish (bounded) -------------

# How long an interruption waits for a host's transaction (a remediation fix being
# applied, verified and, if need be, rolled back; a check dropping the scratch database it
# made) to end before that host is hung up anyway: inside the 2 s promised for Ctrl-C.
TRANSACTION_GRACE_S = 1.5


class HostGate:
    """What a fleet loop shares with the work on its hosts: whether it is stopping, by
    which signal, and which hosts are inside a :func:`transaction` right now. ``lock`` is
    the loop's own, so stopping and looking at the open transactions is one step."""

    def __init__(self, lock: threading.Lock) -> None:
        self.cond = threading.Condition(lock)  # notified when a transaction ends
        self.stopping = threading.Event()
        self.stopped_by = ""
        self.held: dict[int, int] = {}  # host index -> open transactions on it
        self.host_stops: dict[int, str] = {}  # host index -> why only it stops (its deadline)


_turn = threading.local()  # the gate and host index of the work this thread is doing


@contextlib.contextmanager
def working_on(gate: HostGate, index: int) -> Iterator[None]:
    """The fleet loop's worker thread works on host ``index`` while inside."""
    _turn.gate, _turn.index = gate, index
    try:
        yield
    finally:
        _turn.gate = None


def stop_requested() -> str:
    """In a host's work: the signal stopping the run ("SIGINT", ...), "" while none is."""
    gate: HostGate | None = getattr(_turn, "gate", None)
    return (gate.stopped_by or "SIGINT") if gate is not None and gate.stopping.is_set() else ""


def stop_reason() -> str:
    """In a host's work: why it must stop now, in words ("run interrupted (SIGINT)", "host
    deadline of 120s exceeded"), "" while it may go on. A transaction undoes what it
    started and ends when this is set (see :func:`transaction`)."""
    gate: HostGate | None = getattr(_turn, "gate", None)
    if gate is None:
        return ""
    if gate.stopping.is_set():
        return f"run interrupted ({gate.stopped_by or 'SIGINT'})"
    return gate.host_stops.get(int(_turn.index), "")


@contextlib.contextmanager
def transaction() -> Iterator[bool]:
    """A piece of one host's work that must not be cut in the middle (a fix: apply, verify,
    roll back, log; a scratch database: create, use, drop). An interruption, or the host's
    deadline, then does not hang that host up at once: the fleet loop waits up to
    :data:`TRANSACTION_GRACE_S` for the block to end (the work sees :func:`stop_reason`
    and finishes or undoes what it started), then hangs up what is still open.

    Yields False when the run is already stopping: start nothing then. Outside a fleet
    loop's worker it yields True and changes nothing."""
    gate: HostGate | None = getattr(_turn, "gate", None)
    if gate is None:
        yield True
        return
    i = int(_turn.index)
    with gate.cond:  # the loop's lock: held before the loop looks, or refused after
        proceed = not gate.stopping.is_set() and i not in gate.host_stops
        if proceed:
            gate.held[i] = gate.held.get(i, 0) + 1
    try:
        yield proceed
    finally:
        if proceed:
            with gate.cond:
                gate.held[i] -= 1
                if not gate.held[i]:
                    del gate.held[i]
                gate.cond.notify_all()
