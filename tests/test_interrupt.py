"""readiness.interrupt: SIGINT and SIGTERM become one exception, exit 130/143."""

from __future__ import annotations

import os
import signal

import pytest

from readiness.interrupt import Interrupted, exit_code_for, handle_signals, signal_name


def test_sigterm_raises_interrupted_inside_and_is_restored_outside() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as caught, handle_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)  # let the handler run
    assert signal_name(caught.value) == "SIGTERM"
    assert exit_code_for(signal_name(caught.value)) == 143
    # after an interruption a late signal is ignored (no traceback, no death by signal)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    signal.signal(signal.SIGTERM, before)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def test_without_a_signal_the_previous_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    with handle_signals():
        assert signal.getsignal(signal.SIGINT) != before
    assert signal.getsignal(signal.SIGINT) == before


def test_a_plain_keyboard_interrupt_counts_as_sigint() -> None:
    assert signal_name(KeyboardInterrupt()) == "SIGINT"
    assert exit_code_for("SIGINT") == 130
    assert isinstance(Interrupted(signal.SIGTERM), KeyboardInterrupt)
