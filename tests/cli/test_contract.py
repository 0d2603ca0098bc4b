"""The command-line contract, generated from invoke's own parser (docs/cli.md).

Every task and every option comes from ``readiness.tasks.ns.to_contexts()`` (what
invoke parses), never from a list in this file, so an option added later is covered
without editing this test:

- ``--help`` of every task shows typed placeholders: no ``--=``, no numeric ``STRING``;
- one short-flag map across tasks; ``-h`` is help everywhere; ``--apply`` has none;
- every invalid value (wrong type, out of range, empty, unknown choice) of every option
  of every task: exit 2, one line naming the option, no traceback, nothing written;

A new option needs a sample value in VALID_SAMPLES only when it is a free-form string.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from readiness.options import OptionSpec
from readiness.taskbase import TypedArgument
from readiness.tasks import ns

pytestmark = pytest.mark.ssh

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOCUMENTED_EXIT_CODES = {0, 1, 2, 3}
PARALLEL = 3  # subprocesses at once: the machine is small and shared
SLOW_SESSION_S = 0.6  # each SSH session sleeps this long while the forks scenario runs


# --- what invoke's parser says the command line is --------------------------------------------


def unique_tasks() -> dict[str, Any]:
    """Context name → ParserContext, one per distinct task (production.* are the same tasks)."""
    seen: dict[int, str] = {}
    out: dict[str, Any] = {}
    for ctx in ns.to_contexts():
        task = ns[ctx.name]
        if id(task) in seen:
            continue
        seen[id(task)] = ctx.name
        out[ctx.name] = ctx
    return out


def typed_args(ctx: Any) -> list[TypedArgument]:
    found: dict[int, Any] = {id(a): a for a in ctx.args.values()}
    args = list(found.values())
    untyped = [a.name for a in args if not isinstance(a, TypedArgument)]
    assert not untyped, f"{ctx.name}: options without an entry in readiness.options: {untyped}"
    return sorted(args, key=lambda a: a.name)


TASKS = unique_tasks()
OPTION_CASES = [(name, arg.name) for name, ctx in TASKS.items() for arg in typed_args(ctx)]


def spec_of(task: str, option: str) -> OptionSpec:
    for arg in typed_args(TASKS[task]):
        if arg.name == option:
            return arg.spec
    raise KeyError(option)


def invalid_values(spec: OptionSpec) -> list[str]:
    if spec.kind in ("int", "float"):
        too_big = str(int((spec.maximum or 10) * 10) + 1)
        return ["x", too_big]
    if spec.kind == "choice":
        return ["nope"]
    if spec.kind in ("str", "list"):
        return [""]
    return []


# --- running the tools -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    files: tuple[str, ...] = ()
    overlap: int = 0

    def seen(self) -> tuple[Any, ...]:
        return (self.code, _normal(self.out), _normal(self.err), self.files, self.overlap)


def _normal(text: str) -> str:
    """Drop what changes on every run (times, durations, temp names, ports)."""
    text = re.sub(r"\d+", "N", text)
    return re.sub(r"\.\w{8}\b", ".TMP", text)


def run_tool(
    args: list[str],
    cwd: Path,
    *,
    tool: str = "readiness",
    timeout: float = 120,
    stderr_tty: bool = False,
) -> Outcome:
    argv = [str(BIN / tool)]
    if tool == "invoke":
        argv += ["--search-root", str(ROOT)]
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": ""}
    env.pop("NO_COLOR")
    before = _listing(cwd)
    if not stderr_tty:
        res = subprocess.run(
            [*argv, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=env,
            check=False,
        )
        code, out, err = res.returncode, res.stdout, res.stderr
    else:
        code, out, err = _run_with_tty_stderr([*argv, *args], cwd, env, timeout)
    created = tuple(sorted(_listing(cwd) - before))
    return Outcome(code, out, err, created)


def _run_with_tty_stderr(
    argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float
) -> tuple[int, str, str]:
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        out = proc.stdout.read() if proc.stdout else ""
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        with contextlib.suppress(OSError):
            os.close(master)
    return code, out, b"".join(chunks).decode("utf-8", "replace")


def _listing(cwd: Path) -> set[str]:
    return {str(p.relative_to(cwd)) for p in cwd.rglob("*") if p.is_file()}


def assert_clean(outcome: Outcome, what: str) -> None:
    assert "Traceback" not in outcome.err + outcome.out, f"{what}: traceback\n{outcome.err}"
    assert outcome.code in DOCUMENTED_EXIT_CODES, f"{what}: exit {outcome.code}\n{outcome.err}"


# --- help and short flags (pure: the parser's own view) ----------------------------------------


def test_one_short_flag_map_across_every_task() -> None:
    owner: dict[str, str] = {}
    for name, ctx in TASKS.items():
        for arg in typed_args(ctx):
            shorts = [n for n in arg.names if len(n) == 1]
            assert "h" not in shorts, f"{name}: -h must stay help"
            for letter in shorts:
                assert owner.setdefault(letter, arg.name) == arg.name, (
                    f"-{letter} means --{owner[letter]} and --{arg.name}"
                )
            if arg.name == "apply":
                assert not shorts, "--apply must have no short flag"
    assert owner.get("H") == "hosts"


@pytest.mark.parametrize("task", list(TASKS))
def test_help_shows_typed_placeholders_and_h_is_help(task: str, tmp_path: Path) -> None:
    shown = run_tool([task, "--help"], tmp_path)
    short = run_tool([task, "-h"], tmp_path)
    assert shown.code == 0 and short.code == 0, shown.err + short.err
    assert shown.out == short.out
    assert "--=" not in shown.out
    for arg in typed_args(TASKS[task]):
        spec = arg.spec
        flag = spec.flag
        options = shown.out.split("Options:", 1)[-1].splitlines()
        heads = [ln.strip().split("  ")[0] for ln in options if ln.lstrip().startswith("-")]
        lines = [h for h in heads if re.search(rf"(^|, ){flag}\b", h)]
        assert lines, f"{task}: {flag} missing from --help"
        if spec.takes_value:
            assert (
                f"{flag} {arg.placeholder}" in lines[0] or f"{flag} [{arg.placeholder}]" in lines[0]
            )
        if spec.kind in ("int", "float"):
            assert "STRING" not in lines[0], lines[0]


def test_the_option_table_agrees_with_the_formats_and_suites() -> None:
    from readiness.options import _FORMATS, SUITE_NAMES
    from readiness.report import FORMATS
    from readiness.suites import SUITES

    assert set(_FORMATS) == set(FORMATS)
    assert set(SUITE_NAMES) == set(SUITES)


def test_docs_cli_md_lists_every_option_as_the_table_says() -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from cli_doc import tables  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    assert tables() in (ROOT / "docs" / "cli.md").read_text(), "run python tools/cli_doc.py"


def test_readiness_help_lists_only_its_own_core_options(tmp_path: Path) -> None:
    shown = run_tool(["--help"], tmp_path)
    assert shown.code == 0
    for invoke_only in ("--dry", "--command-timeout", "--echo", "--pty", "--warn-only", "-R"):
        assert invoke_only not in shown.out.split("Subcommands:")[0]


# --- invalid values: exit 2, one line, nothing written -----------------------------------------


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory where the bundled example (./inventories) is found."""
    cwd = tmp_path_factory.mktemp("example")
    (cwd / "inventories").symlink_to(ROOT / "inventories")
    (cwd / "examples").symlink_to(ROOT / "examples")
    return cwd


def _invalid_cases() -> list[tuple[str, str, str]]:
    return [
        (task, option, bad)
        for task, option in OPTION_CASES
        for bad in invalid_values(spec_of(task, option))
    ]


def test_the_parser_was_really_asked() -> None:
    assert len(TASKS) >= 10
    assert len(_invalid_cases()) > 50


@pytest.mark.parametrize("task", list(TASKS))
def test_every_invalid_value_of_every_option_is_one_line_and_exit_2(
    task: str, example_dir: Path
) -> None:
    cases = [case for case in _invalid_cases() if case[0] == task]

    def one(case: tuple[str, str, str]) -> tuple[tuple[str, str, str], Outcome]:
        task, option, bad = case
        flag = spec_of(task, option).flag
        # required positionals (``show RUN``) get a well-typed value, so only ``flag`` is wrong
        required = [
            f"{a.spec.flag}=x" for a in typed_args(TASKS[task]) if a.positional and a.name != option
        ]
        return case, run_tool([task, *required, f"{flag}={bad}"], example_dir, timeout=60)

    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(one, cases))
    problems = []
    for (name, option, bad), res in results:
        flag = spec_of(name, option).flag
        # nagios answers as a monitoring plugin: UNKNOWN (3) on stdout (docs/exit-codes.md)
        code, said, other = (3, res.out, res.err) if name == "nagios" else (2, res.err, res.out)
        lines = said.strip().splitlines()
        if res.code != code or len(lines) != 1 or flag not in lines[0] or other or res.files:
            problems.append(f"{name} {flag}={bad!r}: exit {res.code}, stderr {res.err!r}")
        if "Traceback" in res.err:
            problems.append(f"{name} {flag}={bad!r}: traceback")
    assert not problems, "\n".join(problems)
    assert not [p for p in example_dir.rglob("*") if p.is_file() and "examples" not in p.parts]


@pytest.mark.parametrize("task", ["validate", "check-config", "remediate", "bench"])
def test_invoke_entry_point_refuses_the_same_values(task: str, example_dir: Path) -> None:
    for arg in typed_args(TASKS[task])[:6]:
        for bad in invalid_values(arg.spec)[:1]:
            res = run_tool([task, f"{arg.spec.flag}={bad}"], example_dir, tool="invoke")
            assert res.code == 2, (arg.name, res.err)
            assert arg.spec.flag in res.err and "Traceback" not in res.err
