"""A signal in the first fraction of a second of `readiness validate`: one line, 128 + n.

Before, a Ctrl-C in the first ~0.2 s (imports, option parsing) printed a Python traceback,
or exit 1 (invoke's answer to a KeyboardInterrupt: readiness' "not ready") with no word,
and SIGTERM/SIGHUP killed the process (docs/fleet.md, "Ctrl-C and SIGTERM")."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import readiness
from readiness.report.nagios import nagios_unknown

from ..services.cli import BIN, ROOT, local_inventory

PACKAGE = str(Path(readiness.__file__).parent)
OFFSETS_S = (0.0, 0.01, 0.05, 0.1, 0.2)
STARTING = "readiness: interrupted while starting"
CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


def _signalled(
    args: list[str], cwd: Path, sig: int, offset: float, tool: str = "readiness"
) -> tuple[int, str, str]:
    proc = subprocess.Popen(
        [str(BIN / tool), *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(offset)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def _finished(code: int, out: str, err: str, sig: int) -> bool:
    """The audit finished and printed its whole report before the signal counted: it came
    as the interpreter exited (ignored, fatal once Python gave its handlers up, or the one
    line and 128 + n), or not at all."""
    whole = out.rstrip().endswith("=" * 20) or '"hosts"' in out
    if not whole:
        return False
    return (code in (0, 1, -sig) and err.strip() == "") or (
        code == CODES[sig] and err.strip() == STARTING
    )


def _outcome(code: int, out: str, err: str, sig: int, tool: str = "readiness") -> str:
    """Which of the allowed outcomes this is; a test failure for anything else."""
    said = f"exit {code}, stdout {out[-500:]!r}, stderr {err[-3000:]!r}"
    if "Traceback" in err and (tool == "invoke" or code in (1, -sig)):
        # Before readiness' first statement ran (Python's own handler is in place until
        # then): invoke's imports before it loads tasks.py, `site` (an editable install's
        # path finder, ~7 ms; CPython's "Fatal Python error: init_import_site"), the
        # console script finding the package. Never a frame of readiness' own files.
        assert PACKAGE not in err and str(ROOT / "tasks.py") not in err, said
        return "interpreter start-up"
    if _finished(code, out, err, sig):
        return "finished"
    if code == -sig:  # before the interpreter (or readiness) had a handler: nothing ran
        assert out == "" and err == "", said
        return "before any handler"
    if tool == "invoke" and code == 1 and out == err == "":
        return "interpreter start-up"  # invoke's own answer, before it loads tasks.py
    assert code == CODES[sig], said
    lines = err.splitlines()
    assert len(lines) == 1, said
    if lines[0] == STARTING:
        return "start-up"  # the line only readiness' start-up handler writes
    assert lines[0] == "readiness: interrupted" or "interrupted by" in lines[0], said
    return "in the task"


def _until_the_start_up(
    fixed: tuple[float, ...], outcome: Callable[[float], str]
) -> dict[float, str]:
    """``outcome(offset)`` for each fixed offset, then every 25 ms from 0 until one lands in
    the start-up (at most 2 s in): a loaded machine moves and stretches the window (from
    the handler to the task) a signal must land in, and a fast one can put it all before
    the fixed offsets."""
    seen = {offset: outcome(offset) for offset in fixed}
    at = 0.0
    while "start-up" not in seen.values() and at <= 2.0:
        if at not in seen:
            seen[at] = outcome(at)
        at = round(at + 0.025, 3)
    return seen


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", list(CODES), ids=lambda s: signal.Signals(s).name)
def test_a_signal_in_the_first_fraction_of_a_second_is_one_line_and_its_exit_code(
    tmp_path: Path, sig: int
) -> None:
    inventory = local_inventory(tmp_path / "inv.yml", tmp_path)

    def outcome(offset: float) -> str:
        code, out, err = _signalled(["validate", "-i", str(inventory)], tmp_path, sig, offset)
        return _outcome(code, out, err, sig)

    seen = _until_the_start_up(OFFSETS_S, outcome)
    assert "start-up" in seen.values(), seen


@pytest.mark.timeout(300)
def test_an_interrupted_nagios_start_is_unknown_on_stdout(tmp_path: Path) -> None:
    inventory = local_inventory(tmp_path / "inv.yml", tmp_path)
    answered = []
    for offset in (0.1, 0.15, 0.2, *(n * 0.025 for n in range(81))):
        if answered:
            break
        code, out, err = _signalled(
            ["nagios", "-i", str(inventory)], tmp_path, signal.SIGINT, offset
        )
        if code in (-signal.SIGINT, 0, 1, 2) or "init_import_site" in err:
            continue  # before any handler, or the plugin answered before the signal
        assert (code, out.strip(), err) == (
            3,
            nagios_unknown("run interrupted (SIGINT)"),
            "",
        ), (code, out, err)
        answered.append(offset)
    assert answered


@pytest.mark.timeout(300)
def test_a_signal_once_invoke_loads_the_tasks_is_one_line_and_its_exit_code(
    tmp_path: Path,
) -> None:
    """`invoke validate`: from the moment invoke loads tasks.py (its own start-up before
    that, ~0.25 s of imports, is invoke's), a Ctrl-C is one line and 130. Before, it was
    invoke's exit 1, the "not ready" code, with nothing on stderr and no report."""
    inventory = local_inventory(tmp_path / "inv.yml", tmp_path)

    def outcome(offset: float) -> str:
        args = ["validate", "-i", str(inventory)]
        code, out, err = _signalled(args, ROOT, signal.SIGINT, offset, tool="invoke")
        return _outcome(code, out, err, signal.SIGINT, tool="invoke")

    seen = _until_the_start_up((0.2, 0.3, 0.4), outcome)
    assert "start-up" in seen.values(), seen
