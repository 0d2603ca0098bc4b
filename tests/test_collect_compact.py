"""What the probe sends a host, made smaller: compiled code without column positions."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from readiness import collect
from readiness.probe_source import probe_source, pruned_source

# The bundled example's two rounds (tests/test_followup_round.py holds what they ask).
EXAMPLE_ROUNDS = (
    frozenset({"file", "list", "crontab", "systemd_timers", "write_test"}),
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


# The follow-up round: only the functions the first round's code lacks.


def _namespace(*sources: bytes) -> dict[str, Any]:
    space: dict[str, Any] = {"__name__": "not-main", "READINESS_CHILD_GROUPS": set()}
    for source in sources:
        exec(compile(source, "readiness-probe", "exec"), space)  # noqa: S102 - our probe
    return space


def _functions(space: dict[str, Any]) -> dict[str, bytes]:
    return {k: v.__code__.co_code for k, v in space.items() if isinstance(v, types.FunctionType)}


def test_a_follow_up_ships_only_the_functions_the_first_rounds_code_lacks() -> None:
    first, follow = EXAMPLE_ROUNDS
    delta = pruned_source(follow, first)
    assert len(delta) < len(pruned_source(follow)) // 4
    assert b"def op_tcp(" in delta and b"def op_file(" not in delta
    assert not [line for line in delta.splitlines() if line.startswith(b"_")]  # no constants
    # Run after the first round's module, the delta leaves what the whole module would.
    reused = _namespace(pruned_source(first), delta)
    fresh = _namespace(pruned_source(follow))
    assert list(reused["OPS"]) == list(fresh["OPS"]) == sorted(follow)
    assert {k: f.__name__ for k, f in reused["OPS"].items()} == {
        k: f.__name__ for k, f in fresh["OPS"].items()
    }
    kept = _functions(reused)
    assert {k: kept[k] for k in _functions(fresh)} == _functions(fresh)
    # Every op at all, after every example round: nothing missing, nothing shipped twice.
    every = frozenset(_namespace(probe_source())["OPS"])
    whole = _functions(_namespace(pruned_source(every)))
    for loaded in EXAMPLE_ROUNDS:
        names = set(_functions(_namespace(pruned_source(loaded))))
        delta = pruned_source(every, loaded)
        shipped = {f.name for f in ast.parse(delta).body if isinstance(f, ast.FunctionDef)}
        assert not names & shipped
        assert names | shipped == set(whole)
        assert _functions(_namespace(pruned_source(loaded), delta)) == whole


def _example_rounds(root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bundled example's two requests, on a copy of its tree at ``root``."""
    from readiness import runner
    from readiness.api import host_profile
    from readiness.bench import write_example_app
    from readiness.registry import default_profile, resolve_names
    from readiness.transport import LocalTransport
    from tests.services.apps import LocalTestHost

    write_example_app(0, root)
    host = LocalTestHost(vars={"readiness": {"app_root": str(root)}})
    profile = host_profile(host, [], defaults=default_profile())
    specs = resolve_names(None)
    first = runner._gather(specs, profile)
    facts = collect.run_probe(LocalTransport(), first)["facts"]
    app = runner._app_config(facts, profile)
    follow: dict[str, Any] = {}
    for spec in specs:
        if spec.followup is not None:
            follow.update(spec.followup(profile, app, facts))
    return first, follow


def _facts(answer: dict[str, Any]) -> dict[str, Any]:
    """Facts but their timings (a directory's mtime moves with each write test in it)."""
    return {
        k: {f: v for f, v in fact.items() if f not in ("_elapsed_s", "mtime")}
        for k, fact in answer.items()
    }


def test_a_follow_up_on_the_waiting_process_answers_as_a_whole_module_would(
    tmp_path: Path,
) -> None:
    from readiness.transport import LocalTransport

    first, follow = _example_rounds(tmp_path / "app")
    assert collect.ops_in(first) == EXAMPLE_ROUNDS[0]
    assert collect.ops_in(follow) == EXAMPLE_ROUNDS[1]
    sent: list[tuple[int, bool]] = []
    real = collect.bootstrap_stdin

    def spying(source: bytes, payload: bytes, **kw: Any) -> bytes:
        sent.append((len(source), kw.get("reuse", False)))
        return real(source, payload, **kw)

    collect.bootstrap_stdin = spying  # type: ignore[assignment]
    try:
        with collect.ProbeSession(LocalTransport(), timeout_s=30) as probe:
            probe.ask(first, more=True)
            reused = probe.ask(follow, more=False)
        fresh = collect.run_probe(LocalTransport(), follow, timeout_s=30)
    finally:
        collect.bootstrap_stdin = real  # type: ignore[assignment]
    assert sent[1] == (len(pruned_source(EXAMPLE_ROUNDS[1], EXAMPLE_ROUNDS[0])), True)
    assert sent[2] == (len(pruned_source(EXAMPLE_ROUNDS[1])), False)
    assert _facts(reused["facts"]) == _facts(fresh["facts"])
    assert reused["facts"]["error_handling:dlq_path"]["write_ok"] is True


def test_a_follow_up_after_the_process_is_gone_ships_the_whole_module(tmp_path: Path) -> None:
    from readiness.transport import LocalSession, LocalTransport

    (tmp_path / "a").write_text("first")
    probe = collect.ProbeSession(LocalTransport(), timeout_s=30)
    probe.ask({"a": {"op": "file", "path": str(tmp_path / "a")}}, more=True)
    session = probe._session
    assert isinstance(session, LocalSession) and probe._loaded == {"file"}
    session.proc.kill()
    session.proc.wait(10)
    two = probe.ask({"b": {"op": "tcp", "host": "127.0.0.1", "port": 1}}, more=False)
    assert two["facts"]["b"]["ok"] is False and "refused" in two["facts"]["b"]["error"].lower()
    assert probe._session is None and probe._loaded is None


def _old_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """What was sent before: code with columns, every round a whole module, no reuse."""
    import importlib.util
    import marshal

    whole, stdin = collect.pruned_source, collect.bootstrap_stdin

    def with_columns(source: bytes) -> bytes:
        code = compile(source, "readiness-probe", "exec", dont_inherit=True)
        return importlib.util.MAGIC_NUMBER + marshal.dumps(code)

    def no_reuse(source: bytes, payload: bytes, **kw: Any) -> bytes:
        return stdin(source, payload, **{**kw, "reuse": False})

    monkeypatch.setattr(collect, "compiled_source", with_columns)
    monkeypatch.setattr(collect, "pruned_source", lambda ops, loaded=None: whole(ops))
    monkeypatch.setattr(collect, "bootstrap_stdin", no_reuse)
    collect._zlib.cache_clear()
    collect._packed.cache_clear()


def test_the_example_over_ssh_reads_as_with_what_was_sent_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`readiness validate` on a loopback sshd host with the bundled example: one command,
    and every check's verdict, message, details and advice as with the code sent before
    (columns, a whole module in the follow-up round)."""
    from readiness.api import validate
    from readiness.bench import write_example_app
    from readiness.inventory import load_inventory
    from readiness.loopback import start_fleet
    from readiness.report.jsonfmt import render_json
    from readiness.runner import RunOptions
    from readiness.ssh import SshConnector

    from .services.sshd import commands_started, validate_fleet_json

    with start_fleet(1, sshd_options=["LogLevel VERBOSE"]) as fleet:
        app = fleet.root / "example"
        write_example_app(0, app)
        app.chmod(0o755)
        fleet.write_inventory(host_vars=lambda _h: {"readiness": {"app_root": str(app)}})
        host = fleet.hosts[0]
        proc = validate_fleet_json(fleet)
        assert proc.returncode == 1, proc.stderr  # the example is deliberately not ready
        assert commands_started(host) == 1
        now = json.loads(proc.stdout)["hosts"][0]["checks"]

        _old_path(monkeypatch)
        options = RunOptions(known_hosts=str(fleet.known_hosts), ssh_config="", quiet=True)
        try:
            report = validate(
                load_inventory(fleet.inventory).select("fleet"),
                options=options,
                connector=SshConnector(options),
            )
        finally:
            monkeypatch.undo()
            # The caches now hold the old code's blocks: never let a later test send them
            # beside the new code's length.
            collect._zlib.cache_clear()
            collect._packed.cache_clear()
        assert commands_started(host) == 2
    before = json.loads(render_json(report))["hosts"][0]["checks"]
    assert len(now) == 8
    assert [_verdict(r) for r in now] == [_verdict(r) for r in before]


def _verdict(result: dict[str, Any]) -> str:
    return json.dumps(
        [result[k] for k in ("check_name", "status", "message", "details", "recommendations")],
        sort_keys=True,
    )
