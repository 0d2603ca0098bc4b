"""The probe runs on ``posix`` and ``_stat`` (the C modules), not os.py and stat.py.

Under ``python3 -I -S`` nothing has imported os.py when the probe starts, and importing it
costs every host ~1.1 ms of CPU (``_collections_abc``, ``posixpath``): docs/performance.md.
These tests hold the three things that rests on: every ``os.<name>`` the probe uses
without importing os.py itself is posix's own; its path helpers and its directory walk
answer exactly as ``os.path`` and ``os.fwalk`` do; and the bundled example's rounds run
without os.py.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import posix
import posixpath
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from readiness import collect, probe
from readiness.probe_source import probe_source, pruned_source

# Names os.py defines itself (or wraps): a function using one must import os.py first.
_OS_PY_ONLY = {"path", "environ", "fwalk", "walk", "execvp", "SEEK_SET", "fsencode", "fsdecode"}


def _functions() -> list[ast.FunctionDef]:
    tree = ast.parse(probe_source())
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]


def _imports_os(fn: ast.FunctionDef) -> bool:
    return any(
        isinstance(n, ast.Import) and any(a.name == "os" and a.asname is None for a in n.names)
        for n in ast.walk(fn)
    )


def test_every_os_name_the_probe_uses_without_importing_os_py_is_posixs_own() -> None:
    missing = []
    for fn in _functions():
        if _imports_os(fn):
            continue
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
                and (not hasattr(posix, node.attr) or node.attr in _OS_PY_ONLY)
            ):
                missing.append(f"{fn.name}: os.{node.attr}")
    assert missing == []
    # and each of them is the very object os.py exports under that name
    assert all(getattr(os, n) is getattr(posix, n) for n in ("stat", "open", "scandir", "access"))


def _paths() -> list[str]:
    parts = ["", "/", "//", "///", ".", "..", "a", "b.c", "...", "a/", "/a", "x//y", "./z"]
    found = set()
    for n in range(1, 4):
        for combo in itertools.product(parts, repeat=n):
            found.add("".join(combo))
            found.add("/".join(combo))
    return sorted(found)


def test_the_path_helpers_answer_as_os_path_does(tmp_path: Path) -> None:
    paths = _paths()
    assert len(paths) > 1000
    for path in paths:
        assert probe._normpath(path) == posixpath.normpath(path), path
        assert probe._abspath(path) == posixpath.abspath(path), path
    for a, b in itertools.product(paths[:120], repeat=2):
        assert probe._join(a, b) == posixpath.join(a, b), (a, b)
    assert probe._join("/r", "a", "/b", "c") == posixpath.join("/r", "a", "/b", "c")
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    (tmp_path / "to-d").symlink_to(tmp_path / "d")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("d", "f", "to-d", "dangling", "nowhere", "f/below", "bad\0name"):
        path = str(tmp_path / name)
        assert probe._isdir(path) == posixpath.isdir(path), name


def _tree(root: Path) -> None:
    (root / "b" / "deep" / "deeper").mkdir(parents=True)
    (root / "a").mkdir()
    (root / "a" / "one.txt").write_text("1")
    (root / "b" / "deep" / "two.sql").write_text("2")
    (root / "b" / "deep" / "deeper" / "three").write_text("3")
    (root / "top.md").write_text("t")
    (root / "link-to-dir").symlink_to(root / "b")
    (root / "link-to-file").symlink_to(root / "top.md")
    (root / "dangling").symlink_to(root / "nowhere")
    (root / "loop").symlink_to(root)
    (root / "outside").symlink_to("/etc")
    os.mkfifo(root / "fifo")


def _walk(walk: Any) -> list[tuple[str, list[str], list[str]]]:
    """What op_list reads of a walk: names per directory, dirnames sorted in place."""
    seen = []
    try:
        for dirpath, dirnames, filenames, dir_fd in walk:
            dirnames.sort()
            os.stat(".", dir_fd=dir_fd)  # the fd is the directory's while it is walked
            seen.append((dirpath, sorted(dirnames), sorted(filenames)))
    finally:
        walk.close()
    return seen


def test_the_directory_walk_yields_what_os_fwalk_yields(tmp_path: Path) -> None:
    _tree(tmp_path)
    open_fds = len(list(Path("/proc/self/fd").iterdir()))
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        mine = _walk(probe._fwalk(fd))
        theirs = _walk(os.fwalk(".", dir_fd=fd))
        assert mine == theirs
        assert ("./b/deep", ["deeper"], ["two.sql"]) in mine  # descended, links not
        assert all(not path.startswith("./link-to-dir") for path, _d, _f in mine)
        first = probe._fwalk(fd)
        assert next(first)[0] == "."
        first.close()  # closed early (non-recursive list): every fd it opened is closed
        assert _walk(probe._fwalk(fd)) == mine
    finally:
        os.close(fd)
    assert len(list(Path("/proc/self/fd").iterdir())) == open_fds


def test_a_listing_reads_as_it_did_through_os_fwalk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path)
    specs = [
        {"op": "list", "path": str(tmp_path), "recursive": True},
        {"op": "list", "path": str(tmp_path)},
        {"op": "list", "path": str(tmp_path), "recursive": True, "patterns": ["*.sql", "t*"]},
        {"op": "list", "path": str(tmp_path / "link-to-dir"), "recursive": True},
        {"op": "list", "path": str(tmp_path), "recursive": True, "max_entries": 3},
    ]
    mine = [probe.op_list(spec) for spec in specs]
    monkeypatch.setattr(probe, "_fwalk", lambda fd: os.fwalk(".", dir_fd=fd))
    theirs = [probe.op_list(spec) for spec in specs]
    assert json.dumps(mine, sort_keys=True) == json.dumps(theirs, sort_keys=True)
    assert any(e["name"] == "b/deep/two.sql" for e in mine[0]["entries"])


_REPORT = (
    "import sys,io\n"
    "sys.stdin=io.TextIOWrapper(io.BytesIO(REQUEST))\n"
    "G={'__name__':'__main__','READINESS_CHILD_GROUPS':set()}\n"
    "exec(compile(SOURCE,'readiness-probe','exec'),G)\n"
    "sys.stdout.flush()\n"
    "heavy=('os','posixpath','stat','_collections_abc','subprocess','re','json','enum')\n"
    "sys.stderr.write(repr(sorted(m for m in heavy if m in sys.modules)))\n"
)


def test_the_examples_rounds_run_without_os_py(tmp_path: Path) -> None:
    from tests.test_collect_compact import _example_rounds, _facts

    first, follow = _example_rounds(tmp_path / "app")
    for facts in (first, follow, {**first, **follow}):
        source = pruned_source(collect.ops_in(facts))
        request = __import__("marshal").dumps({"facts": collect._plain(facts)}, 4)
        program = _REPORT.replace("REQUEST", repr(request)).replace("SOURCE", repr(source))
        answers = []
        # the same probe with os.py and stat.py loaded first, as every run had them before
        for prelude in ("", "import os,stat\n"):
            run = subprocess.run(
                [sys.executable, "-I", "-S", "-c", prelude + program],
                capture_output=True,
                timeout=60,
                check=False,
            )
            assert run.returncode == 0, run.stderr
            answers.append((_facts(json.loads(run.stdout)["facts"]), run.stderr.decode()))
        (mine, heavy), (before, _) = answers
        assert set(mine) == set(facts)
        assert mine == before
        assert heavy == "[]"
    assert "import os" not in collect._BOOTSTRAP.replace("import posix as os", "")
