"""readiness.collect: the bootstrap's output frame, taken apart on the controller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from readiness.collect import FrameEnd, ProbeSession, split_output
from readiness.transport import CommandResult, LocalSession, LocalTransport


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


def test_a_trailer_after_gs_carries_the_exit_code_of_a_waiting_process() -> None:
    frame = b"\x1e{}\x1d3 5\nerr!\n"
    waiting = CommandResult(0, frame, b"", 0.1, running=True)
    run = split_output(waiting)
    assert run.answer == b"{}" and run.exit_code == 3 and run.messages == "err!"
    # An exited process's own exit code wins (the frame is the host's word).
    assert split_output(_res(frame, code=1)).exit_code == 1


def test_frame_end_sees_the_end_of_a_frame_across_any_chunking() -> None:
    frame = b"motd\x1e" + b'{"facts": {"a": 1}}' + b"\x1d0 11\nsome stderr"
    for size in (1, 2, 3, 7, len(frame)):
        end = FrameEnd()
        chunks = [frame[i : i + size] for i in range(0, len(frame), size)]
        seen = [end(chunk) for chunk in chunks]
        assert seen[-1] and not any(seen[:-1]), size


def test_frame_end_never_ends_on_a_forged_or_old_style_trailer() -> None:
    for tail in (b"warning: x\n", b"x" * 40, b"0 99\nshort"):
        end = FrameEnd()
        assert not end(b"\x1e{}\x1d" + tail)  # only the end of the output ends these


def test_a_local_probe_session_answers_two_rounds_from_one_process(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("first")
    (tmp_path / "b").write_text("second")
    transport = LocalTransport()
    started: list[object] = []
    real_start = transport.start

    def counting_start(argv: list[str], *, timeout: float, stdin: bytes = b"") -> object:
        started.append(argv)
        return real_start(argv, timeout=timeout, stdin=stdin)

    transport.start = counting_start  # type: ignore[method-assign,assignment]
    with ProbeSession(transport, timeout_s=10) as probe:
        one = probe.ask({"a": {"op": "file", "path": str(tmp_path / "a")}}, more=True)
        session = probe._session
        assert session is not None and session.alive  # waiting for the next request
        two = probe.ask({"b": {"op": "file", "path": str(tmp_path / "b")}}, more=False)
        assert probe._session is None
    assert one["facts"]["a"]["text"] == "first"
    assert two["facts"]["b"]["text"] == "second"
    assert len(started) == 1
    assert not transport._running  # the process ended; nothing left


def test_a_waiting_local_session_is_ended_by_close(tmp_path: Path) -> None:
    transport = LocalTransport()
    probe = ProbeSession(transport, timeout_s=30)
    probe.ask({"a": {"op": "stat", "path": str(tmp_path)}}, more=True)
    session = probe._session
    assert isinstance(session, LocalSession) and session.alive
    probe.close()
    assert session.proc.returncode is not None


def test_a_host_with_the_same_python_runs_the_compiled_code_any_other_the_source() -> None:
    import subprocess
    import sys

    from readiness.collect import bootstrap_argv, bootstrap_stdin, compiled_source

    source = b"import sys\nprint(sys._getframe().f_code.co_filename)"
    stdin = bootstrap_stdin(source, b"", deadline_s=10, compiled=True)
    blob = compiled_source(source)
    assert blob in stdin
    # Same magic: the marshalled code runs. A changed source with the old code proves it.
    changed = stdin.replace(source, b"print('compiled here')" + b" " * (len(source) - 22))
    assert len(changed) == len(stdin)
    run = subprocess.run(
        bootstrap_argv(python=sys.executable),
        input=changed,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert split_output(_res(run.stdout, code=run.returncode)).answer == b"readiness-probe\n"
    # Another magic (another Python): the source is compiled instead.
    other = changed.replace(blob[:4], b"\x00\x00\r\n", 1)
    run = subprocess.run(
        bootstrap_argv(python=sys.executable),
        input=other,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert split_output(_res(run.stdout, code=run.returncode)).answer.strip() == b"compiled here"


def test_the_bootstrap_reads_an_inline_first_request_then_the_next_from_stdin(
    tmp_path: Path,
) -> None:
    """The first request as command-line arguments (base64, the code zlib-compressed),
    the follow-up request on stdin: both rounds in one process, answers as on stdin."""
    import subprocess
    import sys

    from readiness.collect import bootstrap_argv, bootstrap_stdin, inline_request

    first = b"import sys\nprint('one', sys.stdin.read())"
    inline = inline_request(first, b"req-1", {}, deadline_s=10, more=True, compiled=True)
    assert inline is not None and len(inline) == 3
    second = bootstrap_stdin(b"import sys\nprint('two', sys.stdin.read())", b"req-2", deadline_s=10)
    run = subprocess.run(
        [*bootstrap_argv(python=sys.executable), *inline],
        input=second,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"\x1eone req-1\n\x1d0 0\n\x1etwo req-2\n\x1d0 0\n"


def test_a_request_that_may_carry_a_credential_or_is_too_big_is_never_inline() -> None:
    from readiness.collect import MAX_INLINE_BYTES, inline_request

    safe = {"a": {"op": "file", "path": "/etc/hostname"}, "b": {"op": "tcp", "port": 1}}
    assert inline_request(b"pass", b"x", safe, deadline_s=5) is not None
    for op in ("http", "run", "run_as_owner", "repeat", "file_wait", "terminate", "bogus"):
        facts = {**safe, "c": {"op": op, "headers": {"Authorization": "Bearer s3cret"}}}
        assert inline_request(b"pass", b"x", facts, deadline_s=5) is None, op
    big = bytes(range(256)) * (MAX_INLINE_BYTES // 256)  # incompressible enough
    assert inline_request(b"pass", big, safe, deadline_s=5) is None


def test_the_examples_first_request_still_travels_inline(tmp_path: Path) -> None:
    """The inline cap (48 KiB: the command line shares ARG_MAX with the host's environment)
    still takes the bundled example's first request."""
    import marshal
    import shutil

    from readiness import collect
    from readiness.api import validate
    from readiness.bench import EXAMPLE_DIR
    from readiness.inventory import load_inventory

    app = tmp_path / "app"
    shutil.copytree(EXAMPLE_DIR, app, ignore=shutil.ignore_patterns("run"))
    inventory = tmp_path / "inv.yml"
    inventory.write_text(
        f"all:\n  hosts:\n    local:\n      ansible_connection: local\n"
        f"      readiness:\n        app_root: {app}\n"
    )
    rounds: list[dict[str, Any]] = []
    ask = collect.ProbeSession.ask

    def recording(self: collect.ProbeSession, facts: Any, *, more: bool) -> Any:
        rounds.append(dict(facts))
        return ask(self, facts, more=more)

    collect.ProbeSession.ask = recording  # type: ignore[method-assign]
    try:
        validate(load_inventory(inventory).select("local"), None, options=None)
    finally:
        collect.ProbeSession.ask = ask  # type: ignore[method-assign]
    first = rounds[0]
    inline = collect.inline_request(
        collect.pruned_source(collect.ops_in(first)),
        marshal.dumps({"facts": collect._plain(first)}, 4),
        first,
        deadline_s=30,
        more=True,
        compiled=True,
    )
    assert inline is not None
    size = sum(map(len, inline))
    assert 10_000 < size <= collect.MAX_INLINE_BYTES == 48 * 1024, size


def test_inline_arguments_are_single_quoted_and_decode_as_the_request() -> None:
    """Each inline argument starts with a newline: shlex.join single-quotes it (bash parses
    a quoted word faster) after looking at one character, and base64 decoding ignores it."""
    import binascii
    import shlex
    import zlib

    from readiness.collect import bootstrap_stdin, inline_request

    source, payload = b"print('hi')\n" * 50, b"\x00\x01request" * 100
    inline = inline_request(source, payload, {}, deadline_s=10, more=True)
    assert inline is not None
    for arg in inline:
        assert arg.startswith("\n") and "\n" not in arg[1:]
        assert shlex.quote(arg) == f"'{arg}'"
    header, packed, request = (binascii.a2b_base64(a) for a in inline)
    expected = bootstrap_stdin(source, payload, deadline_s=10, more=True)
    assert header + zlib.decompress(packed) + request == expected


def _plain_reference(value: Any) -> Any:
    """The request's plain data as the general path makes it (isinstance on every value)."""
    from collections.abc import Mapping

    if isinstance(value, Mapping):
        return {str(k): _plain_reference(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_reference(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def test_a_request_is_sent_as_the_general_path_makes_it() -> None:
    """The exact-type fast paths of the request's plain copy and of its op list give the
    same bytes and ops as the general path, for plain data and for any other types."""
    import marshal
    import types
    from pathlib import PurePosixPath

    from readiness.collect import _plain
    from readiness.probe_source import ops_in

    class Name(str):
        pass

    facts: dict[str, Any] = {
        "app:settings": {"op": "file", "path": "/srv/app/settings.yml", "max_bytes": 262144},
        "glob": {"op": "glob", "patterns": ("*.yml", "*.yaml"), "limit": 500, "follow": False},
        "tcp": {"op": "tcp", "host": "127.0.0.1", "port": 5432, "timeout": 2.5, "x": None},
        "nested": {"op": "repeat", "spec": {"op": "stat", "path": PurePosixPath("/etc")}},
        "odd": types.MappingProxyType({1: [Name("n"), (True, 0.5)], "op": Name("list")}),
    }
    sendable = {k: v for k, v in facts.items() if k != "odd"}  # a str subclass: unmarshallable
    assert marshal.dumps({"facts": _plain(sendable)}, 4) == marshal.dumps(
        {"facts": _plain_reference(sendable)}, 4
    )
    assert _plain(facts) == _plain_reference(facts)
    assert [type(v) for v in _plain(facts)["odd"]["1"]] == [Name, list]
    assert ops_in(facts) == {"file", "glob", "tcp", "repeat", "stat", "list"}


def test_a_packed_request_on_stdin_answers_as_a_plain_one() -> None:
    """Source and code zlib-compressed on stdin (what the probe sends over SSH after the
    first round): the bootstrap runs exactly what it runs from the plain form."""
    import subprocess
    import sys

    from readiness.collect import bootstrap_argv, bootstrap_stdin

    rounds = [
        (b"import sys\nprint('one', sys.stdin.read())\n" * 3, b"req-1", True),
        (b"import sys\nprint('two', sys.stdin.read()); sys.exit(3)\n", b"req-2", False),
    ]
    outputs = []
    for packed in (False, True):
        stdin = b"".join(
            bootstrap_stdin(src, req, deadline_s=10, more=more, compiled=True, packed=packed)
            for src, req, more in rounds
        )
        run = subprocess.run(
            bootstrap_argv(python=sys.executable),
            input=stdin,
            capture_output=True,
            timeout=30,
            check=False,
        )
        outputs.append((run.returncode, run.stdout, run.stderr))
    assert outputs[0] == outputs[1]
    assert outputs[1][0] == 3
    assert outputs[1][1] == b"\x1eone req-1\none \none \n\x1d0 0\n\x1etwo req-2\n\x1d3 0\n"
    packed = bootstrap_stdin(rounds[0][0], b"req-1", deadline_s=10, compiled=True, packed=True)
    plain = bootstrap_stdin(rounds[0][0], b"req-1", deadline_s=10, compiled=True)
    assert len(packed) < len(plain) and packed.split(b"\n", 1)[0].count(b" ") == 5
