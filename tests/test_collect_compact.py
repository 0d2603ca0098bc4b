"""What the probe sends a host, made smaller: compiled code without column positions."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from readiness import collect
from readiness.probe_source import probe_source, pruned_source

# The bundled example's two rounds (tests/test_followup_round.py holds what they ask).
EXAMPLE_ROUNDS = (
    frozenset({"stat", "file", "list", "crontab", "systemd_timers", "write_test"}),
    frozenset({"file", "tcp", "write_test"}),
)


def _code_objects(code: types.CodeType) -> list[types.CodeType]:
    found = [code]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found += _code_objects(const)
    return found


@pytest.mark.skipif(sys.version_info < (3, 11), reason="columns arrived in Python 3.11")
@pytest.mark.parametrize("source", [probe_source(), *map(pruned_source, EXAMPLE_ROUNDS)])
def test_code_without_columns_keeps_the_line_of_every_instruction(source: bytes) -> None:
    import marshal

    full = compile(source, "readiness-probe", "exec", dont_inherit=True)
    stripped = collect.without_columns(full)
    assert stripped is not full
    pairs = list(zip(_code_objects(full), _code_objects(stripped), strict=True))
    for before, after in pairs:
        assert after.co_code == before.co_code and after.co_name == before.co_name
        assert [p[0] for p in after.co_positions()] == [p[0] for p in before.co_positions()]
        assert all(p[1] == p[0] and p[2:] == (None, None) for p in after.co_positions())
    assert len(marshal.dumps(stripped)) < len(marshal.dumps(full))
    shipped = marshal.loads(collect.compiled_source(source)[4:])  # noqa: S302 - our own
    assert [list(c.co_positions()) for c in _code_objects(shipped)] == [
        list(c.co_positions()) for c in _code_objects(stripped)
    ]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="columns arrived in Python 3.11")
def test_the_same_lines_as_python_compiling_without_debug_ranges() -> None:
    """What ``python -X no_debug_ranges`` compiles has the same line for each instruction."""
    import marshal

    source = probe_source()
    out = subprocess.run(
        [sys.executable, "-X", "no_debug_ranges", "-c", _COMPILE],
        input=source,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    reference = marshal.loads(out)  # noqa: S302 - this test's own child wrote it
    ours = collect.without_columns(compile(source, "readiness-probe", "exec", dont_inherit=True))
    for theirs, mine in zip(_code_objects(reference), _code_objects(ours), strict=True):
        assert list(mine.co_positions()) == list(theirs.co_positions())


_COMPILE = (
    "import sys,marshal;sys.stdout.buffer.write(marshal.dumps("
    "compile(sys.stdin.buffer.read(),'readiness-probe','exec',dont_inherit=True)))"
)

_FAILING = b"""\
import sys


def inner(value):
    return {"a": 1}[value] + len(
        value
    )


def outer():
    return [inner(x) for x in ("a", "b")]


print("started")
outer()
"""


def test_a_failure_in_compiled_code_reads_as_the_failure_of_the_source(tmp_path: Path) -> None:
    """A probe that raises: its traceback (what the report quotes) is the same whether the
    host runs the code compiled here, columns stripped, or compiles the source itself."""
    outputs = []
    for compiled in (True, False):
        stdin = collect.bootstrap_stdin(_FAILING, b"", deadline_s=10, compiled=compiled)
        run = subprocess.run(
            collect.bootstrap_argv(python=sys.executable),
            input=stdin,
            capture_output=True,
            timeout=30,
            check=False,
            cwd=tmp_path,
        )
        outputs.append(collect.split_output(_result(run)))
    with_code, with_source = outputs
    assert with_code.exit_code == with_source.exit_code == 1
    assert with_code.answer == with_source.answer == b"started\n"
    assert "KeyError: 'b'" in with_code.messages
    assert 'File "readiness-probe", line 5, in inner' in with_code.messages
    assert with_code.messages == with_source.messages


def _result(run: subprocess.CompletedProcess[bytes]) -> collect.CommandResult:
    return collect.CommandResult(
        exit_code=run.returncode, stdout=run.stdout, stderr=run.stderr, duration_s=0.1
    )


def test_a_location_table_of_another_format_leaves_the_code_as_it_is() -> None:
    with pytest.raises(ValueError):
        collect._linetable_without_columns(b"\x01\x02")
    with pytest.raises((ValueError, IndexError)):
        collect._linetable_without_columns(b"\xf0")  # a long form cut short
