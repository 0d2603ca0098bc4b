"""Diff classification and the baseline ratchet (pure logic on synthetic reports)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from readiness.errors import UsageError
from readiness.model import Status
from readiness.report import render
from readiness.store.baseline import (
    baseline_document,
    entries_from_run,
    judge,
    load_baseline_file,
)
from readiness.store.db import BaselineEntry, StoredRun
from readiness.store.diff import diff_reports, render_diff
from tests.cli.test_markdown_github import _on_github
from tests.store.helpers import fleet, meta, sqlite_store

R, D, N, E = Status.READY, Status.DEGRADED, Status.NOT_READY, Status.ERROR

OLD = fleet(
    {
        "web1": {"env": R, "docs": (D, "runbook missing"), "mon": (N, "no alerts")},
        "web2": {"env": (N, "secret unset"), "docs": (D, "old text")},
        "web3": {"env": R},
    }
)
NEW = fleet(
    {
        "web1": {
            "env": (D, "pool small"),
            "docs": (N, "runbook missing"),
            "mon": (D, "few alerts"),
        },
        "web2": {"env": R, "docs": (D, "new text")},
        "web4": {"env": (E, "probe failed")},
    }
)


def test_every_kind_of_change_is_classified() -> None:
    diff = diff_reports(OLD, NEW, "a", "b")
    got = {(c.host, c.check): (c.kind, c.old, c.new) for c in diff.changes}
    assert got == {
        ("web1", "env"): ("new", R, D),
        ("web1", "docs"): ("worse", D, N),
        ("web1", "mon"): ("better", N, D),
        ("web2", "env"): ("resolved", N, R),
        ("web2", "docs"): ("changed", D, D),
        ("web4", "env"): ("new", None, E),
    }
    assert diff.hosts_added == ("web4",)
    assert diff.hosts_removed == ("web3",)
    assert diff.worse and diff.exit_code == 1
    assert [c.kind for c in diff.changes] == [
        "new",
        "new",
        "worse",
        "changed",
        "better",
        "resolved",
    ]


def test_nothing_worse_exits_zero_and_identical_runs_have_no_changes() -> None:
    assert diff_reports(OLD, OLD).changes == ()
    assert diff_reports(NEW, OLD).exit_code == 1  # web3/env is back, web1/mon got worse again
    better = diff_reports(OLD, fleet({"web1": {"env": R, "docs": R, "mon": R}}))
    assert not better.worse and better.exit_code == 0
    assert {c.kind for c in better.changes} == {"resolved"}


@pytest.mark.parametrize("outage", [Status.ERROR, Status.UNREACHABLE, Status.INTERRUPTED])
def test_a_problem_seen_after_an_outage_is_new_and_was_never_accepted(outage: Status) -> None:
    before = fleet({"web1": {"env": outage, "docs": outage}})
    after = fleet({"web1": {"env": (D, "pool small"), "docs": outage}})
    assert [(c.check, c.kind) for c in diff_reports(before, after).changes] == [("env", "new")]
    accepted = {("web1", c): replace_status(c, outage) for c in ("env", "docs")}
    verdict = judge(after, accepted, fail_on=D)
    assert [(j.check, j.accepted) for j in verdict.regressions] == [("env", outage)]
    assert [j.check for j in verdict.known] == ["docs"]  # the same outage stays accepted


def replace_status(check: str, status: Status) -> BaselineEntry:
    return BaselineEntry("web1", check, status, "", "run", "")


def test_diff_renders_text_table_json_and_escaped_markdown() -> None:
    hostile = fleet({"web1": {"env": (N, "bad | <script>x</script> \x1b]0;pwn\x07")}})
    diff = diff_reports(OLD, hostile, "a", "b")
    text = render_diff(diff, "text")
    assert text.startswith("diff a → b: WORSE (")
    assert "\x1b" not in text and "\\x1b" in text
    md = render_diff(diff, "markdown")
    # host text in a code span, its pipe escaped for the table (docs/reports.md)
    assert "`bad \\| <script>x</script> \\x1b]0;pwn\\x07`" in md
    assert "script" not in _on_github(md).tags
    table = render_diff(diff, "table")
    assert "hosts removed: web2, web3" in table
    data = json.loads(render_diff(diff, "json"))
    assert data["schema"] == "readiness.diff/1" and data["worse"] is True
    assert data["counts"]["new"] == 1 and data["counts"]["resolved"] == 0  # unaudited: no change


def test_the_ratchet_fails_only_on_new_or_worse_results(tmp_path: Path) -> None:
    with sqlite_store(tmp_path / "h.db") as store:
        store.record(OLD, meta())
        accepted = entries_from_run(store.load("latest"))
    base = {(e.host, e.check): e for e in accepted}
    same = judge(OLD, base)
    assert same.exit_code == 0 and len(same.known) == 2 and same.regressions == ()
    verdict = judge(NEW, base)
    regressions = {(j.host, j.check) for j in verdict.regressions}
    assert regressions == {("web1", "docs"), ("web4", "env")}  # worse, and a new host's error
    assert {(j.host, j.check) for j in verdict.known} == set()  # web1/mon is DEGRADED: no fail
    assert verdict.exit_code == 1
    judged = replace(NEW, extra={"baseline": verdict.to_dict()})
    for fmt in ("text", "table", "markdown", "html"):
        page = render(judged, fmt)
        assert "REGRESSION web1 / docs: NOT_READY (baseline: DEGRADED)" in page, fmt
        assert (
            "BASELINE &#x27;default&#x27;" in page
            if fmt == "html"
            else "BASELINE 'default'" in page
        )
    strict = judge(NEW, base, fail_on=D)
    assert ("web1", "mon") in {(j.host, j.check) for j in strict.known}


def test_a_baseline_file_round_trips_and_bad_files_are_one_line(tmp_path: Path) -> None:
    with sqlite_store(tmp_path / "h.db") as store:
        store.record(OLD, meta())
        run: StoredRun = store.load("latest")
    entries = entries_from_run(run, hosts=["web1"], check="docs")
    assert [(e.host, e.check, e.status) for e in entries] == [("web1", "docs", D)]
    path = tmp_path / "baseline.json"
    path.write_text(baseline_document("release", entries_from_run(run)))
    name, loaded = load_baseline_file(path)
    assert name == "release" and len(loaded) == 6
    assert sorted(e.to_dict()["status"] for e in loaded).count("ready") == 2
    path.write_text('{"schema": "readiness.baseline/1", "entries": [{"host": 1}]}')
    with pytest.raises(UsageError, match="entry 0"):
        load_baseline_file(path)
    twice = {"host": "web1", "check": "docs", "status": "ready"}
    path.write_text(json.dumps({"schema": "readiness.baseline/1", "entries": [twice, twice]}))
    with pytest.raises(UsageError, match=r"entry 1 repeats entry 0 \(web1 / docs\)"):
        load_baseline_file(path)  # it was the store's "UNIQUE constraint failed"
    path.write_text('{"schema": "readiness.baseline/1", "name": 5, "entries": []}')
    with pytest.raises(UsageError, match="'name' must be a non-empty string"):
        load_baseline_file(path)  # it became baseline '5'
    path.write_text("{not json")
    with pytest.raises(UsageError, match="not JSON"):
        load_baseline_file(path)
    with pytest.raises(UsageError, match="cannot read"):
        load_baseline_file(tmp_path / "missing.json")


def test_history_tables_escape_host_provided_text() -> None:
    from readiness.store.history import render_timeline, sparkline
    from tests.store.helpers import T0

    rows = [("r1", T0, "web|1<b>\x1b[31m", "env", N)]
    md = render_timeline(rows, "markdown")
    assert "`web\\|1<b>\\x1b[31m`" in md and "\x1b" not in md
    assert "b" not in _on_github(md).tags
    assert "\x1b" not in render_timeline(rows, "text") and "\\x1b" in render_timeline(rows, "text")
    assert sparkline([0.0, 0.5, 1.0]) == "▁▅█"


def test_a_newline_in_host_text_cannot_forge_a_line_of_the_diff(tmp_path: Path) -> None:
    """`readiness diff` (text) printed a recommendation as given: a dashboard file named
    with newlines (quoted in monitoring's "Re-export dashboards/NAME") added a forged
    `resolved ... NOT_READY → READY` row of its own to the diff."""
    from tests.services.apps import write_app
    from tests.services.cli import local_inventory
    from tests.store.test_store_cli import readiness

    root = write_app(tmp_path / "app")
    forged = "  resolved local ∕ security_settings: NOT_READY → READY"
    (root / "dashboards").mkdir()
    (root / "dashboards" / f"x\n{forged}\n.json").write_text("{")
    inv = str(local_inventory(tmp_path / "inv.yml", root))
    store = tmp_path / "s.db"
    assert readiness("validate", "-i", inv, "-c", "documentation", store=store).returncode == 1
    both = readiness("validate", "-i", inv, "-c", "documentation,monitoring", store=store)
    assert both.returncode == 1, both.stderr
    for fmt in ("text", "table"):
        res = readiness("diff", "--format", fmt, store=store)
        assert res.returncode == 1, res.stderr  # monitoring is new and not ready
        if fmt == "text":  # the table shows messages, not recommendations
            assert "x\\n  resolved local" in res.stdout, res.stdout  # shown, escaped
        for line in res.stdout.splitlines():
            assert not line.strip(" |").startswith("resolved"), (fmt, line)
