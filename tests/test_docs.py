"""The docs stay true: the API examples run, and every profile key and check is documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from readiness.registry import all_checks, default_profile

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``argv`` from the checkout, as a user runs it: no stdin, its output kept."""
    return subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize("index", [0, 1])
def test_the_api_examples_run(index: int) -> None:
    code = _python_blocks(DOCS / "api.md")[index]
    res = _run([sys.executable, "-c", code])
    assert res.returncode in (0, 1), res.stderr
    assert "Traceback" not in res.stderr
    assert res.stdout.strip()


def test_every_top_level_profile_key_is_documented() -> None:
    text = (DOCS / "profiles.md").read_text()
    missing = [k for k in default_profile() if f"`{k}`" not in text]
    assert missing == []


def test_every_threshold_is_documented() -> None:
    text = (DOCS / "profiles.md").read_text()
    missing = [k for k in default_profile()["thresholds"] if f"`{k}`" not in text]
    assert missing == []


def test_every_check_has_a_section_in_checks_md() -> None:
    text = (DOCS / "checks.md").read_text()
    missing = [s.name for s in all_checks() if f"`{s.name}`" not in text]
    assert missing == []


@pytest.mark.parametrize("tool", ["build_checks_doc.py", "build_profiles_doc.py"])
def test_generated_reference_docs_are_up_to_date(tool: str) -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "tools" / tool), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr


def test_the_json_schema_sample_has_the_keys_of_a_real_report() -> None:
    """docs/reports.md's `readiness.report/1` sample names every key a real
    `readiness validate --json` writes (top level, summary, host, check) and no other."""
    import json

    section = (DOCS / "reports.md").read_text().split("## JSON schema `readiness.report/1`")[1]
    sample = json.loads(re.findall(r"```json\n(.*?)```", section, flags=re.S)[0])
    argv = ["validate", "--json", "-q", "-i", "inventories/local.yml", "-c", "environment"]
    res = _run([str(Path(sys.executable).parent / "readiness"), *argv, "--store", "none"])
    assert res.returncode in (0, 1), res.stderr
    real = json.loads(res.stdout)
    assert set(sample) == set(real)
    assert set(sample["summary"]) == set(real["summary"])
    host, real_host = sample["hosts"][0], real["hosts"][0]
    assert set(host) - {"reason"} == set(real_host)  # reason: only for unaudited hosts
    assert set(host["checks"][0]) == set(real_host["checks"][0])


# --- every command shown in the docs names a real task and that task's own flags -----------

# Shown on purpose as what a user must not type (each page says so beside it).
WRONG_ON_PURPOSE = {"readiness help", "readiness nagios --nope", "readiness validate --nope"}
_RUNTIME_CONFIG = {"-f", "--config", "-r", "--search-root"}  # before the task, with a value


def _doc_commands() -> list[tuple[str, str]]:
    """(page, command line) for each `readiness …`/`invoke …` a page shows: lines of its
    code blocks (``$ `` prompts and ``\\`` continuations joined) and inline code spans."""
    found: list[tuple[str, str]] = []
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md")), *sorted(DOCS.glob("*/*.md"))]:
        text = page.read_text()
        lines: list[str] = []
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                lines.append(line.strip().removeprefix("$ ").removeprefix("- "))
        lines += re.findall(r"`((?:readiness|invoke) [^`\n]+)`", text)
        name = str(page.relative_to(ROOT))
        for line in lines:
            m = re.match(r"(?:\S*/)?(readiness|invoke) (.*)", line)
            # "readiness watch: stopping …" is output (a message's prefix), not a command
            if m and not re.match(r"TASK|\[|[\w-]+:", m.group(2)):
                found.append((name, f"{m.group(1)} {m.group(2)}"))
    return found


def _task_flags() -> dict[str, set[str]]:
    from readiness.tasks import ns

    flags: dict[str, set[str]] = {}
    for ctx in ns.to_contexts():
        names = {("--" if len(n) > 1 else "-") + n for a in ctx.args.values() for n in a.names}
        for task in (ctx.name, *ctx.aliases):
            flags[task] = names | {"-h", "--help"}
    return flags


def test_every_command_in_the_docs_names_a_task_and_its_own_flags() -> None:
    """A command copied from README.md or docs/ runs: its task exists and every flag it
    passes is one of that task's (invoke's parser would say "No idea what ... is!")."""
    import shlex

    tasks = _task_flags()
    commands = _doc_commands()
    wrong = []
    for page, line in commands:
        words = shlex.split(re.split(r"\s(?:\||&&|;|\|\||#)\s", line + " ")[0])
        if " ".join(words) in WRONG_ON_PURPOSE:
            continue
        i = 1
        while i < len(words) and words[i].startswith("-"):
            i += 2 if words[i] in _RUNTIME_CONFIG else 1
        if i == len(words):
            continue  # readiness --list, --help, --version
        task, args = words[i], words[i + 1 :]
        if task not in tasks:
            wrong.append(f"{page}: {line!r}: no task {task!r}")
            continue
        for word in args:
            flag = word.split("=")[0] if word.startswith("--") else word[:2]
            if word.startswith("-") and word != "-" and flag not in tasks[task]:
                wrong.append(f"{page}: {line!r}: {task} has no {flag}")
    assert len(commands) > 50  # the pages were read
    assert wrong == []


def _environment_read() -> set[str]:
    """Every variable the code reads from os.environ (by literal or by a ``*_ENV`` constant)."""
    names: set[str] = set()
    for path in [ROOT / "tasks.py", *sorted((ROOT / "readiness").rglob("*.py"))]:
        text = path.read_text()
        names |= set(
            re.findall(r"(?:environ(?:\.get)?\(?\[?|getenv\()\s*\"([A-Z][A-Z0-9_]+)\"", text)
        )
        names |= set(re.findall(r"^[A-Z_]*ENV = \"([A-Z][A-Z0-9_]+)\"", text, flags=re.M))
        names |= set(re.findall(r"\benv\.get\(\"([A-Z][A-Z0-9_]+)\"", text))
    return names


def test_every_environment_variable_the_code_reads_is_in_cli_md() -> None:
    """docs/cli.md "Environment variables" lists every variable readiness reads, and names
    no READINESS_* variable the code does not read."""
    section = (DOCS / "cli.md").read_text().split("## Environment variables")[1].split("\n## ")[0]
    listed = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    read = _environment_read()
    assert {"READINESS_INVENTORY", "READINESS_STORE", "XDG_DATA_HOME"} <= read  # the scan works
    assert sorted(read - listed) == []
    assert sorted(n for n in listed - read if n.startswith("READINESS_")) == []


def test_every_task_is_in_the_task_table_of_cli_md() -> None:
    section = (DOCS / "cli.md").read_text().split("## Tasks")[1].split("\n## ")[0]
    named = set(re.findall(r"`([a-z][\w.-]*)", section))
    # the table says "(and `production.*`)": production.X is named by X
    missing = [t for t in _task_flags() if t.removeprefix("production.") not in named]
    assert missing == []


def test_every_file_and_test_the_docs_cite_exists() -> None:
    """The docs prove their promises by naming files and tests (`tests/x.py::test_y`,
    `test_y`, `readiness/x.py`); a rename must not leave a citation pointing at nothing."""
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), *sorted(DOCS.glob("*/*.md"))]
    text = "\n".join(p.read_text() for p in pages)
    sources = list((ROOT / "tests").rglob("*.py"))
    defined: set[str] = set()
    for path in sources:
        defined |= set(re.findall(r"^\s*(?:async )?def (test_\w+)", path.read_text(), flags=re.M))
    modules = {p.stem for p in sources}
    cited_paths = set(
        re.findall(r"`((?:readiness|tests|tools|examples)/[\w/.-]+\.(?:py|ya?ml|md|xsd))", text)
    )
    assert sorted(p for p in cited_paths if not (ROOT / p).exists()) == []
    cited = set(re.findall(r"\b(test_\w{8,})\b", text))
    # a test module is cited by its name, sometimes by a prefix (`test_integration_*`)
    missing = [t for t in cited if t not in defined and not any(m.startswith(t) for m in modules)]
    assert len(cited) > 50 and sorted(missing) == []


# --- generated from the source of truth: formats, exit codes, option help ----------------------


def test_every_report_format_is_in_the_format_table_of_reports_md() -> None:
    """docs/reports.md's format table has one row per renderer in FORMATS, and no other."""
    from readiness.report import FORMATS

    table = (DOCS / "reports.md").read_text().split("\n## ")[0]
    rows = set(re.findall(r"^\| `([a-z]+)`", table, flags=re.M))
    assert rows == set(FORMATS)


def test_every_exit_code_is_in_the_table_of_exit_codes_md() -> None:
    """docs/exit-codes.md's first table has a row for every EXIT_* constant and for the
    three signal codes readiness/interrupt.py gives (128 + SIGHUP/SIGINT/SIGTERM)."""
    from readiness import model
    from readiness.interrupt import exit_code_for

    table = (DOCS / "exit-codes.md").read_text().split("\n## ")[0]
    rows = {
        int(c) for row in re.findall(r"^\| ([\d /]+) \|", table, flags=re.M) for c in row.split("/")
    }
    codes = {v for k, v in vars(model).items() if k.startswith("EXIT_") and isinstance(v, int)}
    signals = {exit_code_for(s) for s in ("SIGHUP", "SIGINT", "SIGTERM")}
    assert codes == {0, 1, 2, 3} and signals == {129, 130, 143}  # the scan works
    assert rows == codes | signals


def test_every_option_of_every_task_has_help() -> None:
    """`readiness <task> --help` explains every option: each option's own text (before the
    range and default the table appends) says something."""
    from readiness.taskbase import TypedArgument
    from readiness.tasks import ns

    bare = [
        f"{ctx.name} --{max(arg.names, key=len)}"
        for ctx in ns.to_contexts()
        for arg in ctx.args.values()
        if not isinstance(arg, TypedArgument) or len(arg.spec.help.split()) < 2
    ]
    assert len(ns.to_contexts()) > 20 and bare == []


def test_readiness_help_describes_every_task() -> None:
    """`readiness --help` lists every task with a description (the task list a user reads
    first): a task without a docstring would be listed bare."""
    res = _run([str(Path(sys.executable).parent / "readiness"), "--help"])
    assert res.returncode == 0, res.stderr
    listed = dict(
        re.findall(
            r"^  ([a-z][\w.-]*)(?: \([^)]*\))?(?:[ \t]+|\n[ \t]{10,})(\S.*)?$",
            res.stdout.split("Subcommands:")[1],
            flags=re.M,
        )
    )
    from readiness.tasks import ns

    primary = {ctx.name for ctx in ns.to_contexts()}
    assert len(primary) > 20
    assert sorted(t for t in primary if not listed.get(t)) == []


def test_every_nested_profile_key_is_shown_in_the_docs() -> None:
    """Every key of a profile entry readiness.profile.SHAPES accepts (`http_benchmarks[]`'s
    `p95_ms`, `smoke_workflow`'s `poll_url`, ...) is named in docs/ as `key` or `key:` (a
    YAML example), so a key the parser takes is never one only the source knows."""
    from readiness.profile import SHAPES

    text = "\n".join(p.read_text() for p in sorted(DOCS.rglob("*.md")))
    missing = [
        f"{shape}.{key}"
        for shape, keys in SHAPES.items()
        for key in keys
        if not key.startswith("<") and not re.search(rf"(?:`|\b){re.escape(key)}(?:`|:)", text)
    ]
    assert len(SHAPES) > 10 and missing == []
