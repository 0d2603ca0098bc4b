"""The command-line contract, generated from invoke's own parser (docs/cli.md).

Every task and every option comes from ``readiness.tasks.ns.to_contexts()`` (what
invoke parses), never from a list in this file, so an option added later is covered
without editing this test:

- ``--help`` of every task shows typed placeholders: no ``--=``, no numeric ``STRING``;
- one short-flag map across tasks; ``-h`` is help everywhere; ``--apply`` has none;
- every invalid value (wrong type, out of range, empty, unknown choice) of every option
  of every task: exit 2, one line naming the option, no traceback, nothing written.
  These pure-parsing cases run in-process through the console script's own Program
  (milliseconds each); per task one of them, and a few ``--help``, also run as a real
  ``readiness`` subprocess and must say exactly the same;

- every valid value of every option of every task, through a real ``readiness``
  subprocess: an exit code from docs/exit-codes.md, no traceback, and something
  observable changes against the same command without that option. VALUE_GROUPS says
  which test runs which task: validate on a loopback sshd fleet (forks: SSH sessions
  overlap or not; timeouts: sessions that sleep past them; quiet: stderr on a pty;
  --baseline/--drift: on a copy of a recorded store); inventory and checks; remediate
  (dry runs on the fleet; ``--apply``/``--yes``/``--audit-log`` only on a fresh two-host
  copy of the bundled example in the run's directory) and nagios; bench (its own one-host
  fleet); watch (one run each: what it recorded, what it posted to a loopback receiver,
  what it said); the store tasks (history, show, diff, drift, history-prune, baseline-*)
  on copies of stores recorded by real ``validate`` runs;
- a sample of valid values through a real ``invoke`` (from a directory whose tasks.py
  imports the tasks): the same exit code and output shape as ``readiness``.

A task is in VALUE_GROUPS or in SAME_AS (the suite tasks: validate's options and code);
an option left out of the valid-value check is in ELSEWHERE with where it is shown
instead. test_every_task_and_option_is_covered_or_excluded_for_a_checked_reason fails
for a new task until it is placed, and for an entry that is no longer true.

A new option needs a sample value in VALID_SAMPLES only when it is a free-form string,
and a scenario in SCENARIOS only when the default baseline cannot show its effect.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import pty
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.loopback import LoopbackFleet, start_fleet
from readiness.options import BYTES_FILE_NAMES, OptionSpec
from readiness.taskbase import TypedArgument
from readiness.tasks import ns
from tests.services.apps import write_app
from tests.services.sshd import APP_STATES, NOPW_USER, _ensure_user, _share

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


# Hostile text any text option refuses (the sweep of the input review): a newline, a
# terminal escape, NUL, a tab, and bytes that are not UTF-8 as Python sees them in argv
# (surrogate escapes; through a real command in test_hostile_bytes_...).
NOT_UTF8 = "a\udcff\udcfeb"
HOSTILE_TEXT = ["a\nb", "a\x1b[31mb", "a\x00b", "a\tb", NOT_UTF8]


def hostile_text(spec: OptionSpec) -> list[str]:
    """HOSTILE_TEXT, but a report file's name may be any bytes (BYTES_FILE_NAMES)."""
    if spec.name in BYTES_FILE_NAMES:
        return [t for t in HOSTILE_TEXT if t != NOT_UTF8]
    return HOSTILE_TEXT


HUGE = "x" * 100_000  # over any file name the kernel takes (ENAMETOOLONG was a traceback)
PATH_PLACEHOLDERS = ("FILE", "PATH", "STORE")


def invalid_values(spec: OptionSpec) -> list[str]:
    if spec.samples[1]:  # the option table's own bad samples (ages: 0d, 100000000000d, ...)
        return [*spec.samples[1], *hostile_text(spec)]
    if spec.kind in ("int", "float"):
        too_big = str(int((spec.maximum or 10) * 10) + 1)
        # an integer option (--command-timeout: whole seconds) refuses a fraction, never
        # rounds it into something else
        fraction = [str((spec.minimum or 0) + 1.5)] if spec.kind == "int" else []
        # below the range: zero for the options that start at 1 (or 0.1), negative for all
        below = ["0"] if spec.minimum and spec.minimum > 0 else []
        # what Python's float() took as numbers: '1_0' (10), Arabic-Indic digits, 'inf'
        pythonic = ["1_0", "\u0661\u0662", "inf", "0x10", "5\n", HUGE]
        return ["x", too_big, *fraction, *below, "-1", "", "1e999", "nan", *pythonic]
    if spec.kind == "choice":
        return ["nope", *hostile_text(spec)]
    if spec.kind in ("str", "list"):
        huge = [HUGE] if spec.placeholder in PATH_PLACEHOLDERS else []
        return ["", *hostile_text(spec), *huge]
    return []


# --- running the tools -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    files: tuple[str, ...] = ()
    overlap: int = 0
    extra: str = ""  # what else a run left: a watch's recorded run and the alerts it sent

    def seen(self) -> tuple[Any, ...]:
        out, err, extra = (_normal(t) for t in (self.out, self.err, self.extra))
        return (self.code, out, err, self.files, self.overlap, extra)


def _normal(text: str) -> str:
    """Drop what changes on every run (times, durations, temp paths, ports, key hashes)."""
    text = re.sub(r"\d{4}-\d\d-\d\d[T ][\d:.]+Z?", "TIME", text)
    text = re.sub(r"\b\d+\.\d+ ?(ms|s)\b", "DURATION", text)
    text = re.sub(r"SHA256:\S+", "SHA256", text)
    text = re.sub(r":\d{4,5}\b", ":PORT", text)
    return re.sub(r"/tmp/\S+", "PATH", text)


def run_tool(
    args: list[str],
    cwd: Path,
    *,
    tool: str = "readiness",
    timeout: float = 120,
    stderr_tty: bool = False,
    search_root: Path | None = ROOT,
) -> Outcome:
    argv = [str(BIN / tool)]
    if tool == "invoke" and search_root is not None:
        argv += ["--search-root", str(search_root)]
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
        out = ""
        if proc.stdout is not None:
            out = proc.stdout.read()
            proc.stdout.close()
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        with contextlib.suppress(OSError):
            os.close(master)
    return code, out, b"".join(chunks).decode("utf-8", "replace")


def _listing(cwd: Path) -> set[str]:
    return {str(p.relative_to(cwd)) for p in cwd.rglob("*") if p.is_file()}


def run_in_process(args: list[str], cwd: Path) -> Outcome:
    """``readiness ARGS`` in this interpreter, through the console script's own Program
    object: what a user sees (stdout, stderr, exit code) for the pure-parsing cases, in
    milliseconds instead of a Python start-up each. Serial only (it changes the cwd).
    ``test_in_process_runs_say_exactly_what_the_real_command_says`` keeps it honest."""
    from readiness.cli import program

    before = _listing(cwd)
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                program.run(["readiness", *args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (1 if exc.code else 0)
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
    finally:
        os.chdir(old)
    created = tuple(sorted(_listing(cwd) - before))
    return Outcome(code, out.getvalue(), err.getvalue(), created)


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


def test_help_shows_typed_placeholders_and_h_is_help(tmp_path: Path) -> None:
    problems = []
    for task in TASKS:
        shown = run_in_process([task, "--help"], tmp_path)
        short = run_in_process([task, "-h"], tmp_path)
        assert shown.code == 0 and short.code == 0, task + shown.err + short.err
        assert shown.out == short.out, task
        assert "--=" not in shown.out, task
        options = shown.out.split("Options:", 1)[-1].splitlines()
        heads = [ln.strip().split("  ")[0] for ln in options if ln.lstrip().startswith("-")]
        for arg in typed_args(TASKS[task]):
            spec = arg.spec
            flag = spec.flag
            lines = [h for h in heads if re.search(rf"(^|, ){flag}\b", h)]
            if not lines:
                problems.append(f"{task}: {flag} missing from --help")
                continue
            if spec.takes_value and not (
                f"{flag} {arg.placeholder}" in lines[0] or f"{flag} [{arg.placeholder}]" in lines[0]
            ):
                problems.append(f"{task}: {lines[0]!r} lacks the placeholder {arg.placeholder}")
            if spec.kind in ("int", "float") and "STRING" in lines[0]:
                problems.append(f"{task}: {lines[0]!r}")
            # the default is stated once (the table appends it; a help text naming it too
            # read "Baseline name (default: default) (default default)")
            if len(re.findall(r"(?:\(|; )default\b", spec.full_help())) > 1:
                problems.append(f"{task}: {flag} states its default twice: {spec.full_help()!r}")
        # nagios exits by the plugin convention (docs/reports.md): no option may promise exit 1
        if task == "nagios" and re.search(r"\bExit 1\b", shown.out.split("Options:", 1)[-1]):
            problems.append("nagios: an option's help promises 'Exit 1' (the plugin says CRITICAL)")
    assert not problems, "\n".join(problems)


def _broken_words(task: str, shown: str) -> list[str]:
    """Words of the task's option help that --help does not show whole on one line."""
    lines = shown.split("Options:", 1)[-1].splitlines()
    words = {w for arg in typed_args(TASKS[task]) for w in (arg.help or "").split()}
    return [f"{task}: {w!r}" for w in sorted(words) if not any(w in ln for ln in lines)]


def test_help_never_breaks_a_word_or_a_path(tmp_path: Path) -> None:
    """invoke's wrapper cut `~/.local/share/readiness/history.sqlite3` after `~/.local/sha`
    and `remediation-audit.jsonl` at its hyphen. Every word of every option's help is shown
    whole, in process for every task and through real `readiness` and `invoke` commands
    (80 columns: stdout is a pipe), where the store path is longer than the column."""
    problems = []
    for task in TASKS:
        shown = run_in_process([task, "--help"], tmp_path)
        assert shown.code == 0, task + shown.err
        problems += _broken_words(task, shown.out)
    for tool, task in (("readiness", "validate"), ("invoke", "remediate")):
        real = run_tool([task, "--help"], tmp_path, tool=tool)
        assert real.code == 0, real.err
        assert "~/.local/share/readiness/history.sqlite3)" in real.out, real.out
        problems += [f"{tool} {p}" for p in _broken_words(task, real.out)]
    assert not problems, "\n".join(problems)


def test_help_after_a_task_with_a_positional_argument_is_help_in_invoke_too(
    tmp_path: Path,
) -> None:
    """`invoke show --help` looked for a run named "--help" (`no run '--help' in store ...`,
    exit 2) and `invoke baseline-import --help` for a file of that name: invoke's parser
    gives the flag to the positional argument. Every task with one, through real `invoke`."""
    tasks = [name for name in TASKS if ns[name].positional]
    assert tasks, "no task takes a positional argument: this test checks nothing"
    for task in tasks:
        expected = run_tool(["--help", task], tmp_path, tool="invoke")
        assert expected.code == 0 and expected.out.startswith("Usage: inv[oke]"), expected
        for flag in ("--help", "-h"):
            got = run_tool([task, flag], tmp_path, tool="invoke")
            assert (got.code, got.out, got.err) == (0, expected.out, ""), (task, flag, got)


def test_help_columns_leave_room_for_the_help_text(tmp_path: Path) -> None:
    """`readiness` alone and `--list` squeezed every summary into a 22-column strip behind
    `production.validate (production.validate-production)`: a name longer than half the
    width now stands on its own line. Every help text starts by the middle of 80 columns,
    in the task list and in every task's --help, for both programs."""
    outputs = {
        "readiness --list": run_tool(["--list"], tmp_path),
        "invoke --list": run_tool(["--list"], tmp_path, tool="invoke"),
        "readiness": run_tool([], tmp_path),
    }
    outputs.update({f"{t} --help": run_in_process([t, "--help"], tmp_path) for t in TASKS})
    problems = []
    for what, res in outputs.items():
        assert res.code == 0, (what, res.err)
        starts = {len(ln) - len(ln.lstrip()) for ln in res.out.splitlines() if ln[:3] == "   "}
        if max(starts, default=0) > 42:
            problems.append(f"{what}: help text starts at column {max(starts)}")
        long_names = [ln for ln in res.out.splitlines() if "(production.validate-production)" in ln]
        if (
            long_names
            and long_names[0].strip() != "production.validate (production.validate-production)"
        ):
            problems.append(f"{what}: {long_names[0]!r}")
    assert not problems, "\n".join(problems)


def test_list_shows_each_task_whole_summary(tmp_path: Path) -> None:
    """`readiness --list` shows the first line of each docstring: it must be the whole first
    paragraph, never a sentence cut where the source wrapped ("secrets as keyed")."""
    import inspect

    listed = run_in_process(["--list", "--list-format", "json"], tmp_path)
    assert listed.code == 0, listed.err
    shown = {t["name"]: t["help"] for t in json.loads(listed.out)["tasks"]}
    assert set(shown) >= {name for name in TASKS if "." not in name}
    problems = []
    for name, summary in shown.items():
        first = inspect.cleandoc(ns[name].__doc__ or "").split("\n\n", 1)[0]
        if summary != " ".join(first.split()):
            problems.append(f"{name}: --list shows {summary!r} of {first!r}")
    assert not problems, "\n".join(problems)


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
    core = shown.out.split("Subcommands:")[0]
    for invoke_only in ("--dry", "--command-timeout", "--echo", "--pty", "--warn-only", "-R"):
        assert invoke_only not in core
    # typed placeholders, as the tasks' options have ("-f STRING, --config=STRING" before)
    assert "STRING" not in core and "=" not in core, core
    assert "-f FILE, --config FILE" in core and "-h [TASK], --help [TASK]" in core, core


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


def _invalid_argv(task: str, option: str, bad: str) -> list[str]:
    # required positionals (``show RUN``) get a well-typed value, so only ``option`` is wrong
    required = [
        f"{a.spec.flag}=x" for a in typed_args(TASKS[task]) if a.positional and a.name != option
    ]
    return [task, *required, f"{spec_of(task, option).flag}={bad}"]


def _invalid_problems(task: str, option: str, bad: str, res: Outcome) -> list[str]:
    flag = spec_of(task, option).flag
    # nagios answers as a monitoring plugin: UNKNOWN (3) on stdout (docs/exit-codes.md)
    code, said, other = (3, res.out, res.err) if task == "nagios" else (2, res.err, res.out)
    lines = said.strip().splitlines()
    problems = []
    if res.code != code or len(lines) != 1 or flag not in lines[0] or other or res.files:
        problems.append(f"{task} {flag}={bad!r}: exit {res.code}, stderr {res.err!r}")
    if "Traceback" in res.err:
        problems.append(f"{task} {flag}={bad!r}: traceback")
    return problems


def test_every_invalid_value_of_every_option_is_one_line_and_exit_2(example_dir: Path) -> None:
    """Every (task, option, bad value) in-process; the real command is compared below."""
    problems = []
    for task, option, bad in _invalid_cases():
        res = run_in_process(_invalid_argv(task, option, bad), example_dir)
        problems += _invalid_problems(task, option, bad, res)
    assert not problems, "\n".join(problems)
    assert not [p for p in example_dir.rglob("*") if p.is_file() and "examples" not in p.parts]


def _single_value_options() -> list[tuple[str, str]]:
    """Every (task, option) that takes exactly one value: not a flag, not repeatable. Tasks
    with a positional argument (``show RUN``) are left out: invoke fills the positional
    with the second value (``show --store a --store b`` asks for run 'b' in store 'a')."""
    return [
        (task, arg.name)
        for task, ctx in TASKS.items()
        if not any(a.positional for a in typed_args(ctx))
        for arg in typed_args(ctx)
        if arg.takes_value and arg.kind is not list
    ]


def test_every_single_value_option_given_twice_is_one_line_naming_it_and_exit_2(
    example_dir: Path,
) -> None:
    """``--hosts a --hosts b`` said "No idea what 'b' is!", as if 'b' were a task; now the
    option's own name, both values and exit 2 (nagios: UNKNOWN, exit 3), nothing run."""
    cases = _single_value_options()
    assert len(cases) > 30
    problems = []
    for task, option in cases:
        flag = spec_of(task, option).flag
        argv = [task, flag, "first-value", flag, "second-value"]
        res = run_in_process(argv, example_dir)
        said = res.out if task == "nagios" else res.err
        problems += _invalid_problems(task, option, "second-value", res)
        if "given twice ('first-value', then 'second-value')" not in said:
            problems.append(f"{argv}: {said!r}")
    assert not problems, "\n".join(problems)


def test_in_process_runs_say_exactly_what_the_real_command_says(example_dir: Path) -> None:
    """Per task, its first invalid value (and a few tasks' help) through a real ``readiness``
    subprocess: byte for byte what the in-process run said, so the cheap runs stand for it."""
    argvs = [_invalid_argv(*next(c for c in _invalid_cases() if c[0] == t)) for t in TASKS]
    argvs += [["validate", "--help"], ["show", "-h"], ["bench", "--help"], ["--help"]]
    argvs += [["nagios", "--help"], ["baseline-accept", "--help"], ["--list", "-F", "json"]]
    argvs += [["validate", "-H", "a", "--hosts=b"]]

    def real(argv: list[str]) -> Outcome:
        return run_tool(argv, example_dir, timeout=60)

    with ThreadPoolExecutor(PARALLEL) as pool:
        reals = list(pool.map(real, argvs))
    problems = []
    for argv, theirs in zip(argvs, reals, strict=True):
        ours = run_in_process(argv, example_dir)
        if (ours.code, ours.out, ours.err) != (theirs.code, theirs.out, theirs.err):
            problems.append(f"{argv}: in-process {ours} but readiness {theirs}")
        if argv[-1].startswith("--") and "=" in argv[-1]:
            task = argv[0]
            option = argv[-1][2:].split("=", 1)[0].replace("-", "_")
            problems += _invalid_problems(task, option, argv[-1].split("=", 1)[1], theirs)
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(300)
def test_hostile_bytes_through_the_real_command_are_one_line_and_exit_2(
    example_dir: Path, tmp_path: Path
) -> None:
    """What in-process runs cannot show: bytes that are not UTF-8 in argv (Python's
    surrogate escapes), printed or stored by a real ``readiness``. Before,
    ``baseline-accept --name $'a\\xff'`` was a UnicodeEncodeError traceback from the store,
    and ``--name $'a\\nb'`` recorded a baseline whose name split every line it is shown in.
    Per task, every text option with a non-UTF-8 value and with a newline; the store is
    a temporary one, so nothing of the user's is touched."""
    cases = []
    for task, ctx in TASKS.items():
        for arg in typed_args(ctx):
            if arg.spec.kind not in ("str", "list", "choice") or arg.positional:
                continue
            required = [f"{a.spec.flag}=x".encode() for a in typed_args(ctx) if a.positional]
            bytes_ok = arg.spec.name in BYTES_FILE_NAMES
            for bad in (b"a\nb",) if bytes_ok else (b"a\xff\xfeb", b"a\nb"):
                cases.append(
                    (
                        task,
                        arg.spec.flag,
                        [task.encode(), *required, bad.join((arg.spec.flag.encode() + b"=", b""))],
                    )
                )
    env = {**os.environ, "HOME": str(tmp_path), "READINESS_STORE": str(tmp_path / "s.sqlite3")}

    def run(case: tuple[str, str, list[bytes]]) -> tuple[str, str, int, str, str]:
        task, flag, argv = case
        done = subprocess.run(
            [str(BIN / "readiness").encode(), *argv],
            cwd=example_dir,
            env=env,
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        out = done.stdout.decode("utf-8", "replace")
        return task, flag, done.returncode, out, done.stderr.decode("utf-8", "replace")

    problems = []
    with ThreadPoolExecutor(PARALLEL) as pool:
        for task, flag, code, out, err in pool.map(run, cases):
            expected, said = (3, out) if task == "nagios" else (2, err)
            lines = said.strip().splitlines()
            if code != expected or len(lines) != 1 or flag not in lines[0] or "Traceback" in err:
                problems.append(f"{task} {flag}: exit {code}, {said[-300:]!r}")
    assert len(cases) > 60
    assert not problems, "\n".join(problems)
    assert not (tmp_path / "s.sqlite3").exists()  # nothing was recorded


@pytest.mark.parametrize("value", [HUGE, "inv\x1b[31m.yml", "a\nb"])
def test_a_hostile_readiness_inventory_variable_is_one_line_and_exit_2(
    example_dir: Path, value: str
) -> None:
    """``READINESS_INVENTORY`` is ``-i`` from the environment and is checked as ``-i`` is:
    100,000 characters were an ENAMETOOLONG traceback."""
    done = subprocess.run(
        [str(BIN / "readiness"), "validate"],
        cwd=example_dir,
        env={**os.environ, "READINESS_INVENTORY": value},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-500:]
    assert len(lines) == 1 and lines[0].startswith("readiness: READINESS_INVENTORY: "), lines
    assert "Traceback" not in done.stderr and "\x1b" not in done.stderr + done.stdout


@pytest.mark.parametrize("task", ["validate", "check-config", "remediate", "bench"])
def test_invoke_entry_point_refuses_the_same_values(task: str, example_dir: Path) -> None:
    for arg in typed_args(TASKS[task])[:6]:
        for bad in invalid_values(arg.spec)[:1]:
            res = run_tool([task, f"{arg.spec.flag}={bad}"], example_dir, tool="invoke")
            assert res.code == 2, (arg.name, res.err)
            assert arg.spec.flag in res.err and "Traceback" not in res.err


# Tasks that run on the bundled example alone (no fleet, no store) in about a second.
INVOKE_TASKS = ("validate", "inventory", "checks", "remediate", "nagios")


def _invoke_cases() -> list[list[str]]:
    """Per task: no option, then its first choice and first flag option with a valid sample
    (a sample: every option's value is checked through ``readiness`` further down)."""
    cases = []
    for task in INVOKE_TASKS:
        cases.append([task])
        for kind in ("choice", "bool"):
            for arg in typed_args(TASKS[task]):
                spec = arg.spec
                if (
                    spec.kind != kind
                    or scenario_of(task, arg.name)
                    or (task, arg.name) in ELSEWHERE
                ):
                    continue
                value = valid_sample(task, spec, {})
                cases.append([task, spec.flag if value is True else f"{spec.flag}={value}"])
                break
    return cases


def _shape(text: str) -> tuple[Any, ...]:
    """What must match across entry points: the JSON keys, or the lines' first words."""
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        return ("json", sorted(data) if isinstance(data, dict) else len(data))
    return ("text", [ln.split(" ", 1)[0] for ln in _normal(text).splitlines()])


@pytest.mark.timeout(300)
def test_invoke_with_valid_values_behaves_like_readiness(tmp_path: Path) -> None:
    """``invoke`` as a user runs it: from a directory whose tasks.py imports the tasks."""
    (tmp_path / "inventories").symlink_to(ROOT / "inventories")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "tasks.py").write_text("from readiness.tasks import ns\n\n__all__ = ['ns']\n")
    cases = _invoke_cases()
    assert len(cases) > 10

    def both(args: list[str]) -> tuple[list[str], Outcome, Outcome]:
        ours = run_tool(args, tmp_path, timeout=60)
        theirs = run_tool(args, tmp_path, tool="invoke", search_root=None, timeout=60)
        return args, ours, theirs

    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(both, cases))
    problems = []
    for args, ours, theirs in results:
        assert_clean(ours, " ".join(args))
        assert_clean(theirs, "invoke " + " ".join(args))
        if ours.code == 2 and ours.err:
            problems.append(f"{args}: a valid value was refused: {ours.err.strip()}")
        if (ours.code, _shape(ours.out)) != (theirs.code, _shape(theirs.out)):
            problems.append(
                f"{args}: readiness exit {ours.code}, invoke exit {theirs.code}\n"
                f"{ours.out[:300]}\n---\n{theirs.out[:300]}\n{theirs.err[-300:]}"
            )
    assert not problems, "\n".join(problems)


# --- valid values: each one changes something observable --------------------------------------

# Which test checks the valid values of which task. Every task is in exactly one group or in
# SAME_AS; test_every_task_and_option_is_covered_or_excluded_for_a_checked_reason says so.
VALUE_GROUPS: dict[str, tuple[str, ...]] = {
    "validate": ("validate",),
    "inventory": ("inventory", "checks"),
    "remediate": ("remediate", "nagios"),
    "bench": ("bench",),
    # every option of these needs a redis broker and live workers: tests/engine (ELSEWHERE)
    "engine": ("worker", "workers"),
    "watch": ("watch",),
    "store": (
        "history",
        "history-prune",
        "show",
        "diff",
        "drift",
        "baseline-accept",
        "baseline-export",
        "baseline-import",
    ),
}
# The suite tasks are validate's code for another suite: the same option specs and the same
# tasks._audit(c, suite, flags) (checked below), so validate's runs show their options'
# effects; what a suite changes is covered by nagios --suite and tests/test_suites.py.
SAME_AS = {
    "check-config": "validate",
    "run-integration-tests": "validate",
    "run-benchmarks": "validate",
    "run-all-tests": "validate",
}

# Free-form string options need a value; everything else is derived from the option table.
# ``task.option`` keys are that task's meaning of the option (drift --since names a run).
VALID_SAMPLES = {
    "hosts": "h0001",
    "limit": "h0000",
    "check": "environment",
    "inventory": "{inv_one}",
    "profile": "{profile}",
    "known_hosts": "{tmp}/empty_known_hosts",
    "store": "{tmp}/history.sqlite3",
    "save": "{tmp}/saved.json",
    "report": "junit:{tmp}/report.xml",
    "audit_log": "{tmp}/audit.jsonl",
    # watch
    "every": "1m",
    "listen": "127.0.0.2:0",
    "webhook": "{receiver}",
    "alertmanager_url": "{receiver}",
    # the store tasks, on a copy of the stores made by the `stores` fixture
    "since": "2099-01-01",
    "keep": "1s",
    "run": "latest~1",
    "old": "latest",
    "new": "latest~1",
    "name": "release",
    "output": "{tmp}/exported.json",
    "file": "{release_json}",
    "drift.since": "latest~1",
    "bench.check": "configuration",
    # a store with other runs, except for baseline-import: it says the same whichever store
    # it imports into, but a new store is a new file
    **{f"{task}.store": "{other_store}" for task in VALUE_GROUPS["store"]},
    "baseline-import.store": "{tmp}/history.sqlite3",
}
# Runs on a copy of the bundled example made in the run's own directory (see _local_copy).
LOCAL_COPY: dict[str, Any] = {
    "inventory": "{example}/local.yml",
    "hosts": "all",
    "known_hosts": None,
    "check": None,
}
# What the baseline needs for an option to be observable (still generated for new options);
# a ``task.option`` key replaces the plain one for that task.
SCENARIOS: dict[str, dict[str, Any]] = {
    "accept_new_host_keys": {"known_hosts": "{tmp}/empty_known_hosts"},
    "connect_timeout": {"inventory": "{inv_silent}", "connect_timeout": 3},
    # each SSH session sleeps 4 s before the probe: longer than command_timeout 1 plus the
    # controller's grace (collect._GRACE_S 1 s, transport 0.5 s)
    "command_timeout": {"slow_sessions": 4},
    "host_deadline": {"slow_sessions": 2},  # the sample deadline is its minimum, 0.1 s
    "sudo": {"inventory": "{inv_nopw}"},
    # --apply only ever on a fresh copy of the bundled example (two local hosts, so --yes
    # matters), never on the shared SSH fleet other runs are auditing at the same time
    "yes": {"apply": True, **LOCAL_COPY},
    "audit_log": {"apply": True, "yes": True, **LOCAL_COPY},
    "apply": {"yes": True, **LOCAL_COPY},
    "forks": {"slow_sessions": SLOW_SESSION_S},
    "suite": {"check": None},
    # required_env; -c would pick the same checks in every suite
    "profile": {"check": "environment,documentation,security_settings"},
    # the ratchet and the drift section need a store with an accepted baseline / fingerprints
    "baseline": {"store": "{store}"},
    "drift": {"store": "{store}"},
    # bench starts its own fleet: the hostile report prints the timeout it ran with
    "bench.command_timeout": {"hostile": True},
    "bench.forks": {},
    "bench.skip_ansible": {"skip_ansible": False},  # the one bench run with Ansible's rows
    # watch: an alert needs a receiver, and fires after one bad run only with --alert-after 1
    "watch.alert_after": {"webhook": "{receiver}"},
    "watch.webhook": {"alert_after": 1},
    "watch.alertmanager_url": {"alert_after": 1},
    "watch.alert_on": {"alert_after": 1, "webhook": "{receiver}"},
    "history-prune.store": {"keep": "1s"},
}
TTY_STDERR = {"quiet"}  # progress is only shown on a terminal
# Options whose effect this file does not show, each with where it is shown instead:
# ("test", FILE): that test file exercises the flag (checked: it names it);
# ("validate", why): the same spec goes through the same code as validate's, which this
# file covers (checked: same spec, covered for validate).
ELSEWHERE: dict[tuple[str, str], tuple[str, str]] = {
    ("remediate", "run_migrations"): ("test", "tests/remediate/fixers/test_database_migration.py"),
    # each SSH session sleeping 4 s shows these for validate; two more rounds for each task
    # would cost ~10 s for no new code path (tasks._run_options builds the same RunOptions)
    ("nagios", "command_timeout"): ("validate", "tasks._run_options, like validate"),
    ("watch", "command_timeout"): ("validate", "tasks._run_options, like validate"),
    ("watch", "host_deadline"): ("validate", "tasks._run_options, like validate"),
    ("watch", "forks"): ("validate", "tasks._run_options, like validate"),
    # a random offset of up to ±jitter x every between two runs: not observable in one or
    # two runs without waiting for many intervals
    ("watch", "jitter"): ("test", "tests/store/test_watch.py"),
    # need a redis broker and `readiness worker` processes (tests/engine starts them)
    ("validate", "engine"): ("test", "tests/engine/test_celery_engine.py"),
    ("validate", "broker"): ("test", "tests/engine/test_celery_engine.py"),
    ("bench", "engine"): ("test", "tests/engine/test_engine_bench.py"),
    # two phases through real workers; broker checks and --engine local on a real fleet
    ("remediate", "engine"): ("test", "tests/engine/test_celery_remediate.py"),
    ("remediate", "broker"): ("test", "tests/engine/test_celery_remediate.py"),
    ("bench", "workers"): ("test", "tests/engine/test_engine_bench.py"),
    **{
        (task, option): ("test", "tests/engine/test_celery_engine.py")
        for task, options in {
            "worker": ("broker", "concurrency", "queues", "visibility_timeout"),
            "workers": ("broker", "timeout", "format"),
        }.items()
        for option in options
    },
}
BASELINES: dict[str, dict[str, Any]] = {
    "audit": {
        "inventory": "{inv}",
        "hosts": "all",
        "check": "environment,configuration",
        "known_hosts": "{known_hosts}",
        "connect_timeout": 10,
        "command_timeout": 30,
        "store": "none",
    },
    "inventory": {"inventory": "{inv}", "hosts": "all"},
    "checks": {},
    "remediate": {
        "inventory": "{inv}",
        "hosts": "web",
        "check": "documentation,security_settings",
        "known_hosts": "{known_hosts}",
    },
    # the minimal app, no Ansible reference rows: about a second a run
    "bench": {
        "hosts": 1,
        "check": "environment",
        "rounds": 1,
        "app": "minimal",
        "skip_ansible": True,
    },
    "nagios": {
        "inventory": "{inv}",
        "hosts": "all",
        "check": "environment,configuration",
        "known_hosts": "{known_hosts}",
        "connect_timeout": 10,
        "command_timeout": 30,
    },
    "watch": {
        "inventory": "{inv}",
        "hosts": "all",
        "check": "environment,configuration",
        "known_hosts": "{known_hosts}",
        "connect_timeout": 10,
        "command_timeout": 30,
        "store": "{tmp}/watch.sqlite3",
        "max_runs": 1,
        "every": "1s",
        "listen": "127.0.0.1:0",
    },
    "store": {"store": "{store}"},
    "show": {"store": "{store}", "run": "latest"},
    "history-prune": {"store": "{store}", "keep": "3650d"},
    "baseline-import": {"store": "{store}", "file": "{base_json}"},
}


def baseline_of(task: str) -> dict[str, Any]:
    if task in BASELINES:
        return BASELINES[task]
    return BASELINES["store" if task in VALUE_GROUPS["store"] else "audit"]


def scenario_of(task: str, option: str) -> dict[str, Any]:
    return SCENARIOS.get(f"{task}.{option}", SCENARIOS.get(option, {}))


def valid_sample(task: str, spec: OptionSpec, baseline: Mapping[str, Any]) -> Any:
    if spec.kind == "bool":
        return True
    if spec.kind in ("int", "float"):
        lo = spec.minimum or 0
        for candidate in (lo, lo + 1, spec.maximum):
            if candidate not in (spec.default, baseline.get(spec.name)):
                return int(candidate) if spec.kind == "int" else candidate  # type: ignore[arg-type]
    if spec.kind == "choice":
        return next(c for c in spec.choices if c not in (spec.default, baseline.get(spec.name)))
    for key in (f"{task}.{spec.name}", spec.name):
        if key in VALID_SAMPLES:
            return VALID_SAMPLES[key]
    raise AssertionError(f"add a sample value for the new option --{spec.name} to VALID_SAMPLES")


@dataclass
class Fleet:
    fleet: LoopbackFleet
    places: dict[str, str]
    stores: dict[str, Path] | None = None  # name → file, copied into each run's directory
    receiver: Receiver | None = None


def _fleet_files(fleet: LoopbackFleet, tmp: Path) -> dict[str, str]:
    groups = {"web": ["h0000", "h0001"], "db": ["h0001", "h0002"]}
    entries = {
        h.name: {
            "ansible_host": h.address,
            "ansible_port": h.port,
            "ansible_user": fleet.user,
            "ansible_ssh_private_key_file": str(fleet.client_key),
            "readiness": {"app_root": str(h.app_root)},
        }
        for h in fleet.hosts
    }

    def inventory(path: Path, hosts: Mapping[str, Any], **extra: Any) -> str:
        children = {
            g: {"hosts": {n: {**dict(hosts[n]), **extra} for n in names if n in hosts}}
            for g, names in groups.items()
        }
        path.write_text(yaml.safe_dump({"all": {"children": children}}, sort_keys=False))
        return str(path)

    silent = socket.socket()  # accepts connections, never says a word: no SSH banner
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    SILENT.append(silent)
    quiet_host = {"ansible_host": "127.0.0.1", "ansible_port": silent.getsockname()[1]}
    (tmp / "profile.yml").write_text(
        "required_env: [MAHAVISHNU_REPOS_PATH, MAHAVISHNU_NOT_THERE]\n"
    )
    return {
        "inv": inventory(tmp / "inv.yml", entries),
        "inv_one": inventory(tmp / "inv_one.yml", {"h0000": entries["h0000"]}),
        "inv_nopw": inventory(tmp / "inv_nopw.yml", entries, ansible_user=NOPW_USER),
        "inv_silent": inventory(tmp / "inv_silent.yml", {**entries, "h0000": quiet_host}),
        "known_hosts": str(fleet.known_hosts),
        "profile": str(tmp / "profile.yml"),
    }


def _start(tmp: Path) -> Fleet:
    _ensure_user(NOPW_USER)
    states = ["healthy", "degraded", "healthy"]

    def write(index: int, root: Path) -> None:
        write_app(root, **dict(APP_STATES[states[index]]))
        _share(root)

    fleet = start_fleet(len(states), app_writer=write, extra_users=[NOPW_USER])
    bashrc = fleet.root / "home" / ".bashrc"
    marker = fleet.root / "home" / "slow"
    log = fleet.root / "home" / "sessions.log"
    # Before the non-interactive `return` of the stock .bashrc: every SSH session records
    # its start and sleeps while the marker exists, so forks is visible as overlap.
    bashrc.write_text(
        f'if [ -f {marker} ]; then date +%s.%N >> {log}; sleep "$(cat {marker})"; fi\n'
        + bashrc.read_text()
    )
    return Fleet(fleet, _fleet_files(fleet, tmp))


SILENT: list[socket.socket] = []


@pytest.fixture(scope="module")
def audit_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    made = _start(tmp_path_factory.mktemp("audit-fleet"))
    try:
        yield made
    finally:
        made.fleet.stop()
        for s in SILENT:
            s.close()


class Receiver:
    """A loopback HTTP endpoint that records every POST (webhook and Alertmanager API):
    each run posts under its own path prefix, so parallel runs never see each other's."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(size) or b"null")
                with receiver.lock:
                    receiver.posts.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{prefix}"

    def summary(self, prefix: str) -> str:
        """What reached ``prefix``: the endpoints and, per alert, host, check and state."""
        with self.lock:
            got = [(p, b) for p, b in self.posts if p.startswith(f"/{prefix}")]
        seen = []
        for path, body in got:
            for alert in body if isinstance(body, list) else [body]:
                labels = alert.get("labels", alert) if isinstance(alert, dict) else {}
                seen.append(f"{path[len(prefix) + 1 :]} {sorted(labels.items())}")
        return "\n".join(sorted(seen))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture(scope="module")
def stores(audit_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Stores with recorded runs, made by the real commands (copied into each run's cwd):

    store: three validate runs of the whole fleet (the third with the profile, so
    ``diff`` sees results get worse), the baselines ``default`` (latest) and ``release``
    (latest~1); other: two runs of one host, baseline ``default``; and both baselines
    exported as files.
    """
    tmp = tmp_path_factory.mktemp("stores")
    store, other = tmp / "store.sqlite3", tmp / "other.sqlite3"
    release = str(tmp / "release.json")
    places = audit_fleet.places
    audit = [
        "-i",
        places["inv"],
        "--known-hosts",
        places["known_hosts"],
        "-c",
        "environment,configuration",
        "-o",
        "json",
    ]
    steps = [
        ["validate", *audit, "-H", "all", "--store", str(store)],
        ["validate", *audit, "-H", "all", "--store", str(store)],
        ["validate", *audit, "-H", "all", "-p", places["profile"], "--store", str(store)],
        ["baseline-accept", "--store", str(store)],
        ["baseline-accept", "--run", "latest~1", "--name", "release", "--store", str(store)],
        ["baseline-export", "--output", str(tmp / "base.json"), "--store", str(store)],
        ["baseline-export", "--name", "release", "--output", release, "--store", str(store)],
    ]
    others = [
        ["validate", *audit, "-H", "h0000", "--store", str(other)],
        ["validate", *audit, "-H", "h0000", "--store", str(other)],
        ["baseline-accept", "--store", str(other)],
    ]

    def in_order(argvs: list[list[str]]) -> None:
        for argv in argvs:
            res = run_tool(argv, tmp, timeout=120)
            assert res.code in (0, 1), f"{argv}: exit {res.code}\n{res.err}"

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(in_order, steps), pool.submit(in_order, others)]:
            done.result()
    time.sleep(1.1)  # history-prune --keep 1s must find every recorded run older than that
    return {
        "store": store,
        "other_store": other,
        "base_json": tmp / "base.json",
        "release_json": tmp / "release.json",
    }


def _argv(task: str, values: Mapping[str, Any], places: Mapping[str, str]) -> list[str]:
    argv = [task]
    for name, value in values.items():
        if name == "slow_sessions" or value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        else:
            argv.append(f"{flag}={str(value).format(**places)}")
    return argv


def _observe(
    fleet: Fleet, task: str, values: Mapping[str, Any], cwd: Path, *, tty: bool = False
) -> Outcome:
    home = fleet.fleet.root / "home"
    slow = values.get("slow_sessions")
    places = {**fleet.places, "tmp": str(cwd), "example": str(cwd / "example")}
    if any("{example}" in str(v) for v in values.values()):
        _local_copy(cwd / "example")
    for name, source in (fleet.stores or {}).items():
        places[name] = str(cwd / source.name)
        if any(f"{{{name}}}" in str(v) for v in values.values()):
            shutil.copy(source, cwd / source.name)
    if fleet.receiver is not None:
        places["receiver"] = fleet.receiver.url(cwd.name)
    (cwd / "empty_known_hosts").write_text("")  # TOFU writes into it: one per run
    if slow:
        (home / "sessions.log").write_text("")
        (home / "slow").write_text(str(slow))
    try:
        res = run_tool(_argv(task, values, places), cwd, stderr_tty=tty, timeout=180)
    finally:
        (home / "slow").unlink(missing_ok=True)
    extra = ""
    if task == "bench":  # measured times and loads differ on every run; the rest must not
        res = Outcome(res.code, re.sub(r"\d+\.\d+", "N", res.out), res.err, res.files)
    if task == "watch":  # it prints no report: what it recorded and what it sent are the output
        extra = _recorded(str(values["store"]).format(**places), cwd)
        if fleet.receiver is not None:
            extra += "\n" + fleet.receiver.summary(cwd.name)
    overlap = 0
    if slow:
        starts = sorted(float(x) for x in (home / "sessions.log").read_text().split())
        overlap = max(
            (sum(1 for t in starts if s <= t < s + SLOW_SESSION_S * 0.8) for s in starts),
            default=0,
        )
    return Outcome(res.code, res.out, res.err, res.files, overlap, extra)


def _recorded(store: str, cwd: Path) -> str:
    """The latest run in ``store``, as ``readiness show latest --format json`` reports it."""
    shown = run_tool(["show", "latest", "--format", "json", "--store", store], cwd, timeout=60)
    if shown.code != 0:
        return f"show: exit {shown.code}: {shown.err.strip()}"
    report = json.loads(shown.out)
    rows = [
        f"{h['host']} {r['check_name']} {r['status']} {r['message']}"
        for h in report["hosts"]
        for r in h["checks"]
    ]
    return "\n".join(sorted(rows))


def _local_copy(where: Path) -> None:
    """Two ``local`` hosts, each on its own copy of the bundled example app."""
    hosts = {}
    for name in ("local-a", "local-b"):
        shutil.copytree(ROOT / "examples" / "mahavishnu", where / name)
        hosts[name] = {
            "ansible_connection": "local",
            "readiness": {"app_root": str(where / name), "pidfile": "run/mahavishnu.pid"},
        }
    (where / "local.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))


def _valid_cases(group: str) -> list[tuple[str, str]]:
    tasks = VALUE_GROUPS[group]
    return [(t, o) for t, o in OPTION_CASES if t in tasks and (t, o) not in ELSEWHERE]


def _check_changes(fleet: Fleet, cases: list[tuple[str, str]], tmp: Path) -> None:
    baselines: dict[tuple[Any, ...], Outcome] = {}
    baseline_locks: dict[tuple[Any, ...], threading.Lock] = {}
    guard = threading.Lock()

    def observe_baseline(task: str, base: Mapping[str, Any], cwd: Path, tty: bool) -> Outcome:
        """Many options share one baseline: run it once (never one that changes its copy)."""
        if any("{example}" in str(v) for v in base.values()):
            return _observe(fleet, task, base, cwd, tty=tty)
        key = (task, tty, *sorted((k, str(v)) for k, v in base.items()))
        with guard:
            lock = baseline_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in baselines:
                baselines[key] = _observe(fleet, task, base, cwd, tty=tty)
            return baselines[key]

    def one(case: tuple[str, str]) -> str | None:
        task, option = case
        spec = spec_of(task, option)
        known = {a.name for a in typed_args(TASKS[task])} | {"slow_sessions"}
        scenario = {k: v for k, v in scenario_of(task, option).items() if k in known}
        base = {**baseline_of(task), **scenario}
        tried = {**base, option: valid_sample(task, spec, base)}
        tty = option in TTY_STDERR
        cwd_a, cwd_b = tmp / f"{task}-{option}-a", tmp / f"{task}-{option}-b"
        cwd_a.mkdir()
        cwd_b.mkdir()
        before = observe_baseline(task, base, cwd_a, tty)
        after = _observe(fleet, task, tried, cwd_b, tty=tty)
        for label, res in (("without", before), ("with", after)):
            if "Traceback" in res.err + res.out or res.code not in DOCUMENTED_EXIT_CODES:
                return f"{task} {label} --{option}: exit {res.code}\n{res.err[-400:]}"
        # nagios answers a usage error as UNKNOWN (3) on stdout; its 2 is CRITICAL
        usage, said = (3, after.out) if task == "nagios" else (2, after.err)
        if after.code == usage and (task != "nagios" or spec.flag in said):
            return f"{task} --{option}={tried[option]!r} refused: {said.strip()}"
        if before.seen() == after.seen():
            return f"{task} --{option}={tried[option]!r}: nothing observable changed"
        return None

    serial = [c for c in cases if scenario_of(*c).get("slow_sessions")]
    rest = [c for c in cases if c not in serial]
    with ThreadPoolExecutor(PARALLEL) as pool:
        problems = [p for p in pool.map(one, rest) if p]
    problems += [p for p in map(one, serial) if p]
    assert not problems, "\n".join(problems)


@pytest.fixture
def fleet_with_stores(
    audit_fleet: Fleet, stores: dict[str, Path], receiver: Receiver
) -> Iterator[Fleet]:
    audit_fleet.stores, audit_fleet.receiver = stores, receiver
    try:
        yield audit_fleet
    finally:
        audit_fleet.stores = audit_fleet.receiver = None


# Options each group's cases must include: a guard against a group that silently lost them.
GROUP_MUST_COVER: dict[str, set[str]] = {
    "validate": {"forks", "command_timeout", "quiet", "baseline", "drift", "store"},
    "inventory": {"vars", "format"},
    "remediate": {"apply", "yes", "audit_log", "check", "suite"},
    "bench": {"hosts", "rounds", "hostile", "command_timeout"},
    "watch": {"alert_after", "webhook", "every", "listen", "check"},
    "store": {"run", "old", "new", "keep", "file", "trend", "since"},
}


@pytest.mark.timeout(600)
# a group whose every option is in ELSEWHERE has nothing to run here (the coverage test
# below still checks it)
@pytest.mark.parametrize("group", [g for g in VALUE_GROUPS if _valid_cases(g)])
def test_every_valid_option_changes_something(
    group: str, fleet_with_stores: Fleet, tmp_path: Path
) -> None:
    """One test per VALUE_GROUPS entry, all on the same fleet: bench starts its own one-host
    fleet each run; watch runs once (--max-runs 1) and what it recorded, posted to the
    receiver and said is compared; the store tasks run on copies of the recorded stores."""
    cases = _valid_cases(group)
    tasks = set(VALUE_GROUPS[group])
    assert {t for t, _ in cases} | ({t for t, _ in ELSEWHERE} & tasks) == tasks
    assert {o for _, o in cases} >= GROUP_MUST_COVER.get(group, set())
    _check_changes(fleet_with_stores, cases, tmp_path)


def test_every_task_and_option_is_covered_or_excluded_for_a_checked_reason() -> None:
    grouped = [t for tasks in VALUE_GROUPS.values() for t in tasks]
    assert len(grouped) == len(set(grouped)), "a task is in two VALUE_GROUPS"
    missing = set(TASKS) - set(grouped) - set(SAME_AS)
    assert not missing, f"tasks without a valid-value check: add them to VALUE_GROUPS: {missing}"
    stale = (set(grouped) | set(SAME_AS)) - set(TASKS)
    assert not stale, f"VALUE_GROUPS/SAME_AS name tasks that no longer exist: {stale}"
    assert not set(grouped) & set(SAME_AS)
    for task, twin in SAME_AS.items():
        for name in (task, twin):
            assert "_audit" in ns[name].body.__code__.co_names, f"{name} no longer runs _audit"
        assert [a.spec for a in typed_args(TASKS[task])] == [
            a.spec for a in typed_args(TASKS[twin])
        ], f"{task} and {twin} no longer take the same options"
    for (task, option), (kind, where) in ELSEWHERE.items():
        assert (task, option) in OPTION_CASES, f"ELSEWHERE names --{option} of {task}: gone"
        if kind == "test":
            text = (ROOT / where).read_text()
            assert spec_of(task, option).flag in text or option in text, (task, option, where)
        else:
            assert kind == "validate", kind
            assert spec_of(task, option) == spec_of("validate", option), (task, option)
            assert ("validate", option) not in ELSEWHERE
    for key in [*VALID_SAMPLES, *SCENARIOS]:
        task, _, option = key.rpartition(".")
        if task:
            assert (task, option) in OPTION_CASES, f"{key}: no such task option"
