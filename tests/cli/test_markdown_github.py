"""The Markdown report pasted into a GitHub pull request or issue: host text stays inert.

GitHub renders comments with cmark-gfm (``cmarkgfm`` here is its Python binding) and then
links ``@user`` mentions, ``#123`` / ``owner/repo#1`` references and bare URLs in the text of
the rendered HTML, except inside ``<code>``, ``<pre>`` and ``<a>``. Backslash escapes do not
help (``\\@user`` renders as text ``@user``, which is then linked): host text must end up in
code spans. The report used to write it as escaped text: a repository named ``@octocat
#123`` pinged octocat and linked issue 123 of the repository the comment was posted in.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import cmarkgfm  # a dev dependency: never skipped (test_escaping imports from here too)
import pytest
import yaml
from cmarkgfm.cmark import Options

from readiness.model import CheckResult, FleetReport, HostReport, Status
from readiness.report import render
from tests.services.apps import write_app
from tests.services.cli import local_inventory, run_cli

# What GitHub links or fetches: mentions, issue references, bare and www autolinks, e-mail,
# Markdown links and images, raw HTML (img fetches, a links), plus what breaks a table cell
# or a code span (pipes, backticks) and a line (newline).
PAYLOAD = (
    "@octocat #123 octo/repo#1 GH-7 ![x](http://attacker.example/p.png) "
    "[click](http://evil.example) <img src=http://attacker.example/i.png> <a href=x>a</a> "
    "www.evil.example mail@evil.example https://evil.example/x *em* _u_ ~~s~~ "
    "a|b a\\|c `tick` ``double`` \\` end"
)
MARKERS = ("octocat", "#123", "repo#1", "GH-7", "attacker", "evil", "tick")
ALLOWED = {"h2", "h3", "h4", "p", "strong", "table", "thead", "tbody", "tr", "th", "td"}
ALLOWED |= {"code", "ul", "li"}
TS = datetime(2025, 2, 5, 10, 30, tzinfo=timezone.utc)


class _Page(HTMLParser):
    """Tags, the text outside <code>, the text of each <code>, cells per table row."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.outside: list[str] = []
        self.codes: list[str] = []
        self.rows: list[int] = []
        self._in_code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "code":
            self._in_code += 1
            self.codes.append("")
        elif tag == "tr":
            self.rows.append(0)
        elif tag in ("td", "th"):
            self.rows[-1] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "code":
            self._in_code -= 1

    def handle_data(self, data: str) -> None:
        if self._in_code:
            self.codes[-1] += data
        else:
            self.outside.append(data)


def _on_github(markdown: str) -> _Page:
    page = _Page()
    page.feed(cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE))
    return page


def _assert_inert(markdown: str, shown: str) -> None:
    page = _on_github(markdown)
    assert page.tags <= ALLOWED, (page.tags - ALLOWED, markdown)  # no a, img, raw HTML
    outside = "".join(page.outside)
    leaked = [m for m in MARKERS if m in outside]
    assert not leaked, f"host text outside a code span (linked by GitHub): {leaked}\n{markdown}"
    assert any(shown in code for code in page.codes), (shown, page.codes)  # shown as written
    assert len(set(page.rows)) <= 1, f"a table row has a different cell count: {page.rows}"


def test_a_hostile_repository_name_is_inert_in_a_github_comment(tmp_path: Path) -> None:
    """Through a real `readiness validate --format markdown`: the repository name is quoted in
    the message and the recommendation of repository_access."""
    manifest = {"repos": [{"name": f"{PAYLOAD}\nsecond line", "path": str(tmp_path / "gone")}]}
    write_app(tmp_path / "app", files={"repos.yaml": yaml.safe_dump(manifest)})
    inv = local_inventory(tmp_path / "inv.yml", tmp_path / "app")
    res = run_cli("validate", "-i", str(inv), "-c", "repository_access", "--format", "markdown")
    assert res.returncode == 1, res.stderr
    _assert_inert(res.stdout, PAYLOAD + "\\nsecond line")
    assert not any(line.startswith("second") for line in res.stdout.splitlines())


@pytest.mark.parametrize("group_by", [None, "group"])
def test_every_host_field_is_inert_in_a_github_comment(group_by: str | None) -> None:
    """Host, group and check names (a stored report read back by `show` may hold any), the
    message and recommendations: in the matrix, the group headings and "What to fix"."""
    result = CheckResult(f"configuration {PAYLOAD}", Status.NOT_READY, PAYLOAD, {}, (PAYLOAD,), TS)
    host = HostReport(f"web {PAYLOAD}", (result,), groups=(f"grp {PAYLOAD}",))
    report = FleetReport((host, HostReport("db1", (), reason=PAYLOAD)), generated_at=TS)
    out = render(report, "markdown", group_by=group_by)
    _assert_inert(out, PAYLOAD)
    page = _on_github(out)
    assert f"web {PAYLOAD}" in page.codes and f"configuration {PAYLOAD}" in page.codes


def test_only_names_github_cannot_link_stay_plain() -> None:
    """Names of letters, digits, inner '_' and '-' are written as they are: a matrix of code
    spans would be noise. GH-7 (an issue reference) and 7+ hex digits (a commit) are linked
    by GitHub all the same, so they are code spans."""
    result = CheckResult("database_migration", Status.READY, "ok", {}, (), TS)
    hosts = tuple(HostReport(n, (result,)) for n in ("web-1", "db_2", "GH-7", "deadbeef", "x_"))
    out = render(FleetReport(hosts, generated_at=TS), "markdown")
    assert "| database_migration |" in out
    assert re.search(r"^\| web-1 \| ", out, re.M) and re.search(r"^\| db_2 \| ", out, re.M)
    for name in ("GH-7", "deadbeef", "x_"):
        assert re.search(rf"^\| `{name}` \| ", out, re.M), (name, out)


def test_readiness_diff_markdown_is_inert_in_a_github_comment(tmp_path: Path) -> None:
    """`readiness diff --format markdown` is made for PR comments too: its message cells were
    backslash-escaped, so a repository named '@octocat #123' pinged and linked there, and a
    bidi override reached the comment raw. Two real runs recorded in a store, then the diff."""
    write_app(tmp_path / "app")
    inv = local_inventory(tmp_path / "inv.yml", tmp_path / "app")
    store = str(tmp_path / "h.db")
    run = ("validate", "-i", str(inv), "-c", "repository_access", "--store", store, "-q")
    assert run_cli(*run).returncode == 1
    manifest = {"repos": [{"name": f"{PAYLOAD} \u202etxt.exe", "path": str(tmp_path / "gone")}]}
    (tmp_path / "app" / "repos.yaml").write_text(yaml.safe_dump(manifest))
    assert run_cli(*run).returncode == 1
    res = run_cli("diff", "--store", store, "--format", "markdown")
    assert res.returncode == 0, res.stderr
    assert "\u202e" not in res.stdout and "\\u202etxt.exe" in res.stdout
    _assert_inert(res.stdout, PAYLOAD + " \\u202etxt.exe")
