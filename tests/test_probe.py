"""The host-side probe, run for real through the local transport (the same bytes go over SSH)."""

from __future__ import annotations

import ast
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from readiness.collect import ProbeError, bootstrap_argv, probe_source, run_probe
from readiness.transport import LocalTransport
from tests.services.ports import closed_port


def probe(facts: dict[str, dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return run_probe(LocalTransport(), facts, **kw)["facts"]


def test_the_probe_stays_python_38_compatible() -> None:
    ast.parse(probe_source(), feature_version=(3, 8))


def test_the_remote_command_line_is_constant_and_parameters_travel_on_stdin() -> None:
    argv = bootstrap_argv(sudo=True)
    assert argv[:3] == ["sudo", "-n", "--"]
    assert argv == bootstrap_argv(python="python3", sudo=True)  # the same for every host and run
    assert all("{" not in a and "$" not in a for a in argv)


def test_file_stat_and_list_facts(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("x" * 10)
    (tmp_path / "b.txt").write_text("y")
    (tmp_path / "a.sql").chmod(0o640)
    f = probe(
        {
            "f": {"op": "file", "path": str(tmp_path / "a.sql"), "max_bytes": 4},
            "s": {"op": "stat", "path": str(tmp_path / "missing")},
            "l": {"op": "list", "path": str(tmp_path), "patterns": ["*.sql"]},
        }
    )
    assert f["f"]["text"] == "xxxx" and f["f"]["truncated"] is True and f["f"]["mode"] == 0o640
    assert f["s"]["exists"] is False
    assert [e["name"] for e in f["l"]["entries"]] == ["a.sql"]


def test_write_test_creates_and_removes_a_temp_file(tmp_path: Path) -> None:
    f = probe(
        {
            "w": {"op": "write_test", "path": str(tmp_path)},
            "n": {"op": "write_test", "path": str(tmp_path / "no")},
        }
    )
    assert f["w"]["write_ok"] is True
    assert f["n"]["write_ok"] is False
    assert list(tmp_path.iterdir()) == []


def test_tcp_fact_reports_open_and_closed_ports() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    refused = closed_port()
    try:
        f = probe(
            {
                "up": {
                    "op": "tcp",
                    "host": "127.0.0.1",
                    "port": srv.getsockname()[1],
                    "timeout": 2,
                },
                "down": {"op": "tcp", "host": "127.0.0.1", "port": refused, "timeout": 2},
            }
        )
    finally:
        srv.close()
    assert f["up"]["ok"] is True
    assert f["down"]["ok"] is False and "Refused" in f["down"]["error"]


def test_run_takes_an_argv_never_a_shell_and_honours_its_timeout(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    started = time.monotonic()
    f = probe(
        {
            "echo": {"op": "run", "argv": ["echo", f"; touch {marker}"]},
            "slow": {"op": "run", "argv": ["sleep", "30"], "timeout": 0.5},
        }
    )
    assert f["echo"]["stdout"].strip() == f"; touch {marker}"
    assert not marker.exists()
    assert f["slow"]["timed_out"] is True
    assert time.monotonic() - started < 10


def test_one_failing_fact_does_not_lose_the_others(tmp_path: Path) -> None:
    f = probe(
        {"bad": {"op": "nope"}, "boom": {"op": "file"}, "ok": {"op": "stat", "path": str(tmp_path)}}
    )
    assert "unknown op" in f["bad"]["error"]
    assert "KeyError" in f["boom"]["error"]
    assert f["ok"]["exists"] is True


def test_crontab_fact_reads_extra_cron_files(tmp_path: Path) -> None:
    cron = tmp_path / "app.cron"
    cron.write_text("# comment\n0 2 * * * app /opt/app/bin/backup\n")
    f = probe({"c": {"op": "crontab", "extra_files": [str(cron)]}})
    assert {"source": str(cron), "line": "0 2 * * * app /opt/app/bin/backup"} in f["c"]["entries"]


def test_a_probe_killed_by_its_deadline_is_a_probe_error() -> None:
    with pytest.raises(ProbeError, match=r"timed out|failed"):
        run_probe(
            LocalTransport(),
            {"s": {"op": "run", "argv": ["sleep", "20"], "timeout": 20}},
            timeout_s=1,
        )


def test_the_probe_json_encoder_round_trips_awkward_strings() -> None:
    from readiness.probe import dumps

    sample = {
        "quote": 'a"b\\c',
        "controls": "".join(chr(i) for i in range(32)),
        "unicode": "héllo ✓ 日本",
        "numbers": [0, -3, 2.5, 10**20],
        "flags": [True, False, None],
        "nested": {"k": ({"x": []},)},
    }
    assert json.loads(dumps(sample)) == {**sample, "nested": {"k": [{"x": []}]}}
    assert json.loads(dumps({"nan": float("nan"), "inf": float("inf")})) == {
        "nan": None,
        "inf": None,
    }


_AWKWARD = [
    "",
    "plain text, printable",
    'a"b\\c',
    'line one\nline two\r\n\ttabbed \\ "quoted"',
    "".join(chr(i) for i in range(32)) + "\x7f",
    "text\nwith a bell\x07 after a newline",
    "héllo ✓ 日本\n",
    "no-break\xa0space, line\u2028separator, bom\ufeff, soft\xadhyphen",
    "lone \udcff surrogate\n",
    '\\n is not a newline, \\" is not a quote',
]


@pytest.mark.parametrize("text", _AWKWARD)
def test_the_probe_json_writer_escapes_exactly_as_translate_alone_did(text: str) -> None:
    """The usual escapes go by str.replace (docs/performance.md); the bytes must be those of
    escaping every string with translate, as the writer did before, and read back as JSON."""
    from readiness.probe import _ESCAPES, dumps

    before = ('"' + text.translate(_ESCAPES) + '"').encode("utf-8", "backslashreplace")
    assert dumps(text) == before
    assert dumps({text: [text]}) == b"{" + before + b":[" + before + b"]}"
    if "\udcff" not in text:
        assert json.loads(dumps(text)) == text


def test_undecodable_file_names_survive_the_round_trip(tmp_path: Path) -> None:
    odd = os.fsencode(str(tmp_path)) + b"/back\xffup.sql"
    fd = os.open(odd, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"x")
    os.close(fd)
    f = probe({"l": {"op": "list", "path": str(tmp_path), "patterns": ["*.sql"]}})
    assert len(f["l"]["entries"]) == 1
    assert f["l"]["entries"][0]["name"].startswith("back")


@pytest.mark.parametrize(
    ("name", "pattern", "expected"),
    [
        ("a.sql", "*.sql", True),
        ("a.sql.gz", "*.sql", False),
        ("backup-1", "backup-*", True),
        ("x", "*", True),
        ("db.dump", "db.dump", True),
        ("b1.tar", "b?.tar", True),
        ("c.sq", "*.s[qx]", True),
    ],
)
def test_list_patterns_match_like_fnmatch(name: str, pattern: str, expected: bool) -> None:
    import fnmatch

    from readiness.probe import _match

    assert _match(name, pattern) is expected
    assert fnmatch.fnmatchcase(name, pattern) is expected


def test_a_pruned_probe_keeps_only_the_ops_asked_for_and_stays_python_38() -> None:
    from readiness.probe import OPS
    from readiness.probe_source import ops_in, pruned_source

    full = pruned_source(frozenset(OPS))
    ast.parse(full, feature_version=(3, 8))
    small = pruned_source(ops_in({"a": {"op": "stat", "path": "/"}}))
    ast.parse(small, feature_version=(3, 8))
    assert b"def op_stat" in small
    assert b"def op_http" not in small and b"def op_run" not in small
    assert len(small) < len(full) / 3
    assert ops_in({"r": {"op": "repeat", "spec": {"op": "run", "argv": ["true"]}}}) == {
        "repeat",
        "run",
    }


def test_the_pruned_text_is_what_unparse_gives_with_every_position_filled_in() -> None:
    """Pruning skips ast.fix_missing_locations (start-up): positions never change the text."""
    import random

    from readiness.probe import OPS
    from readiness.probe_source import _pruned_tree, pruned_source

    rng = random.Random(17)
    op_sets = [frozenset(OPS), frozenset(), *(frozenset({op}) for op in OPS)]
    op_sets += [frozenset(rng.sample(sorted(OPS), rng.randint(2, len(OPS)))) for _ in range(12)]
    for ops in op_sets:
        reference = ast.unparse(ast.fix_missing_locations(_pruned_tree(ops))) + "\n"
        assert pruned_source(ops) == reference.encode(), sorted(ops)


@pytest.mark.parametrize(
    "op", ["crontab", "repeat", "http", "terminate", "file_wait", "file_refs", "list"]
)
def test_every_op_brings_the_helpers_it_calls(op: str) -> None:
    """Each op alone compiles and its module-level names all resolve."""
    import builtins

    from readiness.probe_source import pruned_source

    tree = ast.parse(pruned_source(frozenset({op})))
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    defined |= {
        t.id
        for n in tree.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    defined |= {
        a.asname or a.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names
    }
    local = {a.arg for n in ast.walk(tree) if isinstance(n, ast.arg) for a in [n]}
    local |= {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    local |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    unresolved = used - defined - local - set(dir(builtins)) - {"__name__"}
    assert unresolved == set()


def test_pruning_is_safe_when_many_hosts_ask_at_once() -> None:
    """Concurrent first use is serialised: CPython's ast once raised SystemError in a bench."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from readiness.probe import OPS
    from readiness.probe_source import _pruned, pruned_source

    op_sets = [frozenset(list(OPS)[: 1 + i % len(OPS)]) for i in range(64)]
    _pruned.cache_clear()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            sources = list(pool.map(pruned_source, op_sets))
    finally:
        sys.setswitchinterval(interval)
    assert all(src.startswith(b"import") or b"def collect" in src for src in sources)


def test_the_process_fact_says_when_the_process_started(tmp_path: Path) -> None:
    """/proc/<pid>/stat field 22 + boot time, on the host's clock, to about a clock tick."""
    import subprocess
    import sys

    pidfile = tmp_path / "svc.pid"
    before = time.time()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    after = time.time()
    try:
        pidfile.write_text(f"{proc.pid}\n")
        fact = probe({"p": {"op": "process", "pidfile": str(pidfile)}})["p"]
    finally:
        proc.kill()
        proc.wait(5)
    assert fact["found"] is True
    assert before - 0.05 <= fact["started_at"] <= after + 0.05, (before, fact, after)


def test_process_start_falls_back_to_proc_stat_btime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without CLOCK_BOOTTIME the whole-second btime of /proc/stat is used (within 1 s)."""
    from readiness import probe as host_probe

    precise = host_probe._process_started("/proc/self")["started_at"]
    monkeypatch.delattr(time, "CLOCK_BOOTTIME")
    coarse = host_probe._process_started("/proc/self")["started_at"]
    assert abs(precise - coarse) <= 1.0
    assert host_probe._process_started("/proc/0")["started_error"].startswith("FileNotFoundError")


def test_tcp_errors_read_as_socket_create_connection_says_them() -> None:
    """op_tcp uses the C module _socket (no enum, selectors, idna imports): same messages."""
    port = closed_port()
    cases = {"refused": ("127.0.0.1", port), "unresolvable": ("no-such-host.invalid", 80)}
    facts = probe(
        {k: {"op": "tcp", "host": h, "port": p, "timeout": 2} for k, (h, p) in cases.items()}
    )
    for key, (host, port_) in cases.items():
        try:
            socket.create_connection((host, port_), 2).close()
            expected = ""
        except OSError as exc:
            expected = f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"
        assert facts[key]["ok"] is False and facts[key]["error"] == expected, key


def test_cron_directories_are_listed_as_glob_would(tmp_path: Path) -> None:
    import glob

    (tmp_path / "b").write_text("")
    (tmp_path / "a").mkdir()
    (tmp_path / ".hidden").write_text("")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    ns: dict[str, Any] = {}
    exec(compile(probe_source(), "probe", "exec"), ns)  # noqa: S102 - our own probe source
    for where in (tmp_path, tmp_path / "missing", tmp_path / "b"):
        assert ns["_star"](str(where)) == sorted(glob.glob(str(where) + "/*"))  # noqa: PTH207


def test_a_two_round_audit_probe_imports_only_cheap_modules(tmp_path: Path) -> None:
    """Every host pays for the probe's imports: a validate run of the bundled example
    (both rounds) must not import enum (via signal, re, glob or socket), socket or re."""
    import shutil
    import subprocess

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
    rounds: list[tuple[dict[str, Any], bool]] = []
    ask = collect.ProbeSession.ask

    def recording(self: collect.ProbeSession, facts: Any, *, more: bool) -> Any:
        rounds.append((dict(facts), more))
        return ask(self, facts, more=more)

    collect.ProbeSession.ask = recording  # type: ignore[method-assign]
    try:
        validate(load_inventory(inventory).select("local"), None, options=None)
    finally:
        collect.ProbeSession.ask = ask  # type: ignore[method-assign]
    assert [more for _, more in rounds] == [True, False]  # two rounds, one process
    stdin = b"".join(
        collect.bootstrap_stdin(
            collect.pruned_source(collect.ops_in(facts)),
            __import__("marshal").dumps({"facts": collect._plain(facts)}, 4),
            deadline_s=30,
            more=True,
        )
        for facts, _ in rounds
    )
    stdin += collect.bootstrap_stdin(
        b"import sys\nprint(' '.join(sorted(sys.modules)))", b"", deadline_s=30
    )
    out = subprocess.run(
        collect.bootstrap_argv(python="/usr/bin/python3"),
        input=stdin,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    modules = set(out.rsplit(b"\x1e", 1)[1].split(b"\x1d")[0].decode().split())
    assert not modules & {"enum", "signal", "re", "glob", "socket", "json", "encodings.idna"}
