"""#18 item 10: text from hostile hosts never reaches a terminal or a Markdown file raw."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from readiness.model import CheckResult, FleetReport, HostReport, Status
from readiness.report import render
from readiness.report._clean import one_line as clean_one_line
from readiness.report.style import escape_markdown, escape_text, one_line
from tests.cli.test_markdown_github import _on_github
from tests.services.apps import write_app
from tests.services.cli import local_inventory, run_cli
from tests.services.gitrepos import make_repo

TS = datetime(2025, 2, 5, 10, 30, tzinfo=timezone.utc)
# OSC title + hyperlink, screen clear, a C1 CSI, a bidi override, HTML and a Markdown link.
EVIL = (
    "\x1b]0;pwned\x07\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\\x1b[2J"
    "\x9b31m\u202eenil<img src=x onerror=alert(1)>[click](http://evil.example)\r\nsecond\tline"
)
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Unicode line breaks other than \n: a host's text after one started a line of its own.
SEPARATORS = "first\u2028LS-line\u2029PS-line\x85NEL-line\x0bVT-line\x0cFF-line\x1cFS-line"


def _hostile_report() -> FleetReport:
    result = CheckResult(
        "configuration",
        Status.NOT_READY,
        EVIL,
        {"server_name": EVIL, EVIL: {"nested": EVIL}},
        (EVIL,),
        TS,
        "web1",
    )
    host = HostReport("web1", (result,), address="10.0.0.5", groups=("web",))
    gone = HostReport("db1", address="10.0.0.9", reason=EVIL)
    return FleetReport((host, gone), generated_at=TS)


@pytest.mark.parametrize("fmt", ["text", "table", "markdown"])
def test_renderers_show_controls_as_escapes(fmt: str) -> None:
    out = render(_hostile_report(), fmt, group_by="group" if fmt != "json" else None)
    assert not RAW.search(out.replace("\n", "").replace("\t", "")), repr(out)
    joined = out.replace("\n  ", "")  # the table wraps long reasons
    assert "pwned" in joined and "x9b31m" in joined and "x1b" in joined
    for line in out.splitlines():
        assert not line.startswith("second"), "a host message must not start a new line"


def test_markdown_has_no_html_and_no_links() -> None:
    """Rendered as GitHub does: the host's HTML and link stay text (inside code spans)."""
    out = render(_hostile_report(), "markdown")
    assert not {"img", "a"} & _on_github(out).tags, out
    assert "<img src=x onerror=alert(1)>[click](http://evil.example)" in out


def test_escape_functions() -> None:
    assert escape_text("a\x1bb\x9bc\u202ed") == "a\\x1bb\\x9bc\\u202ed"
    assert escape_text("a\u2028b\u2029c\x85d") == "a\\u2028b\\u2029c\\x85d"
    assert one_line("a\u2028b") == "a\\u2028b" and escape_markdown("a\u2029b") == "`a\\u2029b`"
    assert clean_one_line("a\u2028b\u2029c\x85d") == "a b c d"
    assert one_line("a\nb\tc") == "a\\nb\\tc"
    assert escape_markdown("<b>[x](y)|z") == "`<b>[x](y)|z`"
    assert escape_markdown(" a ") == "`  a  `" and escape_markdown(" a") == "` a`"
    assert escape_markdown("a|`b``", table=True) == "``` a\\|`b`` ```"
    assert escape_markdown("web-1") == "web-1" and escape_markdown("") == ""


def test_a_hostile_settings_file_cannot_reach_the_terminal(tmp_path: Path) -> None:
    write_app(
        tmp_path / "app",
        settings={"pools": {"routing_strategy": EVIL}, "auth": {"algorithm": EVIL}},
    )
    inv = local_inventory(tmp_path / "inv.yml", tmp_path / "app")
    for fmt in ("text", "table", "markdown"):
        res = run_cli("validate", "-i", str(inv), "-c", "configuration", "-o", fmt)
        assert res.returncode == 1, res.stderr
        assert not RAW.search(res.stdout.replace("\n", "")), (fmt, res.stdout)
        if fmt == "markdown":
            assert not {"img", "a"} & _on_github(res.stdout).tags, res.stdout


def test_unicode_line_separators_in_host_text_never_start_a_line(tmp_path: Path) -> None:
    """U+2028/U+2029 reached text, table and Markdown output raw (NEL and the C0 breaks were
    already escaped): an editor, a Markdown viewer or splitlines() broke the line there."""
    write_app(tmp_path / "app", settings={"pools": {"routing_strategy": SEPARATORS}})
    inv = local_inventory(tmp_path / "inv.yml", tmp_path / "app")
    for fmt in ("text", "table", "markdown"):
        res = run_cli("validate", "-i", str(inv), "-c", "configuration", "-o", fmt)
        assert res.returncode in (0, 1), res.stderr
        if fmt != "table":  # the table shows verdicts only here
            assert "LS-line" in res.stdout, (fmt, res.stdout)  # the value is shown...
        assert not RAW.search(res.stdout.replace("\n", "")), (fmt, res.stdout)
        for line in res.stdout.splitlines():  # ...and every break in it escaped
            assert not line.lstrip(" |").startswith(
                ("LS-line", "PS-line", "NEL-line", "VT-line", "FF-line", "FS-line")
            ), (fmt, line)


def test_a_hostile_repository_name_in_the_benchmark_table_cannot_reach_the_terminal(
    tmp_path: Path,
) -> None:
    """The benchmark tables of text and table output printed each row's name as given: a
    repository name in the host's manifest set the terminal title, cleared the screen and
    started a line of its own there (messages and details were already escaped)."""
    repo = make_repo(tmp_path / "repo", 1)
    manifest = {"repos": [{"name": f"{EVIL}\nforged: READY", "path": str(repo)}]}
    write_app(tmp_path / "app", files={"repos.yaml": yaml.safe_dump(manifest)})
    bench = {"repetitions": 1, "operations": ["status"]}
    inv = local_inventory(
        tmp_path / "inv.yml",
        tmp_path / "app",
        repository_benchmark=bench,
        benchmark_baseline_dir=str(tmp_path / "baselines"),
    )
    for fmt in ("text", "table"):
        res = run_cli("validate", "-i", str(inv), "-c", "repository_benchmark", "-o", fmt)
        assert res.returncode in (0, 1), res.stderr
        assert "BENCHMARKS" in res.stdout and "pwned" in res.stdout, (fmt, res.stdout)
        assert not RAW.search(res.stdout.replace("\n", "")), (fmt, res.stdout)
        for line in res.stdout.splitlines():
            assert not line.lstrip().startswith(("forged", "second")), (fmt, line)
