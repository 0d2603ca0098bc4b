"""readiness.collect: the bootstrap's output frame, taken apart on the controller."""

from __future__ import annotations

from readiness.collect import split_output
from readiness.transport import CommandResult


def _res(stdout: bytes, stderr: bytes = b"", code: int = 0) -> CommandResult:
    return CommandResult(exit_code=code, stdout=stdout, stderr=stderr, duration_s=0.1)


def test_the_answer_sits_between_rs_and_gs_and_everything_else_is_a_message() -> None:
    run = split_output(_res(b'motd line\n\x1e{"facts": {}}\x1dwarning: x\n', b"pipe err"))
    assert run.started
    assert run.answer == b'{"facts": {}}'
    assert run.messages == "motd line\npipe errwarning: x"


def test_without_rs_python_never_ran_the_code() -> None:
    run = split_output(_res(b"sh: python3: not found\n", code=127))
    assert not run.started
    assert run.answer == b""
    assert "not found" in run.messages


def test_a_run_cut_before_gs_keeps_what_it_wrote_as_the_answer() -> None:
    run = split_output(_res(b'\x1e{"fac', code=124))
    assert run.started and run.answer == b'{"fac'
