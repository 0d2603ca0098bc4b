"""readiness.interrupt: SIGINT, SIGTERM and SIGHUP become one exception, exit 130/143/129."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from readiness.interrupt import Interrupted, exit_code_for, handle_signals, signal_name


@pytest.fixture(autouse=True)
def _signals_restored() -> Iterator[None]:
    """Each test leaves this process's SIGINT, SIGTERM and SIGHUP as it found them: an
    ignored SIGHUP is inherited by every command a later test starts (as under nohup)."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_sigterm_raises_interrupted_inside_and_is_restored_outside() -> None:
    with pytest.raises(Interrupted) as caught, handle_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)  # let the handler run
    assert signal_name(caught.value) == "SIGTERM"
    assert exit_code_for(signal_name(caught.value)) == 143
    # after an interruption a late signal is ignored (no traceback, no death by signal)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN


def test_an_interruption_inside_nested_handlers_leaves_the_signals_ignored() -> None:
    with handle_signals(), pytest.raises(Interrupted), handle_signals():
        os.kill(os.getpid(), signal.SIGINT)
        signal.sigtimedwait([], 0)
    # the outer one must not bring back the default handler (a late Ctrl-C: death by SIGINT)
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_sighup_is_an_interruption_unless_it_was_ignored() -> None:
    with pytest.raises(Interrupted) as caught, handle_signals():
        os.kill(os.getpid(), signal.SIGHUP)
        signal.sigtimedwait([], 0)
    assert exit_code_for(signal_name(caught.value)) == 129
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    with handle_signals():
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN


def test_without_a_signal_the_previous_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    with handle_signals():
        assert signal.getsignal(signal.SIGINT) != before
    assert signal.getsignal(signal.SIGINT) == before


def test_a_plain_keyboard_interrupt_counts_as_sigint() -> None:
    assert signal_name(KeyboardInterrupt()) == "SIGINT"
    assert exit_code_for("SIGINT") == 130
    assert isinstance(Interrupted(signal.SIGTERM), KeyboardInterrupt)
