"""readiness.interrupt: SIGINT, SIGTERM and SIGHUP become one exception, exit 130/143/129."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from readiness.interrupt import Interrupted, exit_code_for, handle_signals, signal_name
from tests.services.apps import write_app
from tests.services.cli import BIN, local_inventory


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


@pytest.mark.parametrize("ignored", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ignored_when_the_run_started_stays_ignored(
    tmp_path: Path, ignored: signal.Signals
) -> None:
    """A shell starts a background job (`readiness watch ... &` in a script) with SIGINT
    ignored, so that Ctrl-C, sent to the whole process group, stops the script and leaves
    the job running; readiness took SIGINT back and stopped. Through `readiness watch` (its
    first signal stops the loop after the current run): with the signal ignored at start,
    the watch does all its runs."""
    app = write_app(tmp_path / "app")
    inv = local_inventory(tmp_path / "inv.yml", app)
    argv = [str(BIN / "readiness"), "watch", "-i", str(inv), "-c", "environment"]
    argv += ["--every", "1s", "--jitter", "0", "--max-runs", "3", "--store", "none"]
    argv += ["--listen", "127.0.0.1:0"]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(ignored, signal.SIG_IGN),  # noqa: PLW1509
    )  # fmt: skip
    try:
        time.sleep(1.0)  # inside the loop: its handlers are installed
        proc.send_signal(ignored)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopping after the current run" not in err
    assert "readiness watch: stopped after 3 run(s)" in err


@pytest.mark.parametrize(
    ("first", "second"),
    [(signal.SIGHUP, signal.SIGTERM), (signal.SIGINT, signal.SIGINT)],
    ids=["SIGHUP-then-SIGTERM", "double-ctrl-c"],
)
def test_a_signal_arriving_while_the_first_is_handled_does_not_cancel_it(
    monkeypatch: pytest.MonkeyPatch, first: int, second: int
) -> None:
    """The second signal arrives while the first one's handler runs (systemd sends SIGHUP
    right after SIGTERM; a hang-up's handler makes system calls, which let 32 busy fleet
    threads take the GIL for milliseconds), so its handler runs nested inside the first's.
    Before: both then saw two signals, neither raised, and a 200-host `readiness validate`
    sent SIGHUP and SIGTERM ran on for 4 minutes to its end, exit 1 instead of 129."""
    from readiness import interrupt

    real = interrupt._off_the_terminal
    sent: list[int] = []

    def second_arrives(signum: int) -> None:
        real(signum)
        if not sent:
            sent.append(second)
            os.kill(os.getpid(), second)  # a real signal, handled before the first returns
            signal.sigtimedwait([], 0)

    monkeypatch.setattr(interrupt, "_off_the_terminal", second_arrives)
    with pytest.raises(Interrupted) as caught, handle_signals():
        os.kill(os.getpid(), first)
        signal.sigtimedwait([], 0)
    assert sent == [second]  # the second one was indeed handled inside the first
    assert caught.value.signum == first
    assert exit_code_for(signal_name(caught.value)) == 128 + first


def test_a_signal_while_the_write_check_probes_a_directory_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--save`, `--report` and `--audit-log` check before any work that a file can be made
    where they write (a probe file created and removed). Before: a Ctrl-C landing between
    the two left `.readiness-write-check.*` in the user's directory. Here the SIGINT is
    sent (for real) right after the file is created."""
    from readiness import errors

    real_close = os.close

    def close_then_interrupted(fd: int) -> None:
        real_close(fd)
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted), handle_signals():
        monkeypatch.setattr(errors.os, "close", close_then_interrupted)
        try:
            errors.refuse_unless_creatable(tmp_path, "--save")
        finally:
            monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
