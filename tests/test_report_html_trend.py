"""The HTML report's per check trend charts: runs recorded by real `readiness validate
--store … --report html:…` subprocesses, the page read back from headless Chromium's DOM."""

from __future__ import annotations

from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

from readiness.model import Status
from readiness.report import render
from readiness.store.history import render_trend, trend_series
from tests.services.cli import local_inventory, run_cli

from .report_fixtures import every_status_fleet
from .services.apps import write_app
from .test_report_html import chromium

CHECKS = ("environment", "documentation")


class _Trends(HTMLParser):
    """Per trend figure: its check and its points' (ready, degraded, not ready) counts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.figures: list[tuple[str, list[tuple[int, int, int]]]] = []
        self.svg_labels: list[str] = []
        self.titles: list[str] = []
        self.no_history = False
        self._title: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "figure" and a.get("class") == "trend":
            self.figures.append((a["data-check"], []))
        elif tag == "g" and a.get("class") == "pt" and self.figures:
            counts = (int(a["data-ready"]), int(a["data-degraded"]), int(a["data-not-ready"]))
            self.figures[-1][1].append(counts)
        elif tag == "svg" and self.figures:
            self.svg_labels.append(a.get("aria-labelledby", ""))
        elif tag == "title" and self.figures:
            self._title = ""
        if a.get("id") == "no-history":
            self.no_history = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._title is not None:
            self.titles.append(self._title)
            self._title = None

    def handle_data(self, data: str) -> None:
        if self._title is not None:
            self._title += data


def _trends_in_chromium(tmp_path: Path, page: Path) -> _Trends:
    res = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    parsed = _Trends()
    parsed.feed(res.stdout)
    return parsed


def _trends_in_file(page: Path) -> _Trends:
    parsed = _Trends()
    parsed.feed(page.read_text())
    return parsed


def _validate(inv: Path, store: Path, page: Path, *extra: str) -> None:
    checks = [a for c in CHECKS for a in ("-c", c)]
    res = run_cli(
        *("validate", "-i", str(inv), "--quiet", "--store", str(store), *checks),
        *("--report", f"html:{page}", *extra),
    )
    assert res.returncode in (0, 1), res.stderr  # 1: documentation is not ready
    assert page.is_file(), res.stderr


def test_recorded_runs_give_one_trend_per_check_in_chromium(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    local_inventory(inv, app)
    store = tmp_path / "history.sqlite3"
    _validate(inv, store, tmp_path / "first.html")
    # Another host pattern in the same store: not part of this fleet's trend.
    _validate(inv, store, tmp_path / "other.html", "--limit", "local")
    _validate(inv, store, tmp_path / "second.html")
    write_app(app, env={"MAHAVISHNU_REPOS_PATH": None})  # environment breaks in run 3
    _validate(inv, store, tmp_path / "third.html")

    first = _trends_in_chromium(tmp_path, tmp_path / "first.html")
    assert first.no_history and first.figures == []
    other = _trends_in_file(tmp_path / "other.html")
    assert other.no_history and other.figures == []

    third = _trends_in_chromium(tmp_path, tmp_path / "third.html")
    assert not third.no_history
    assert [check for check, _ in third.figures] == list(CHECKS)
    points = dict(third.figures)
    assert points["documentation"] == [(0, 0, 1)] * 3  # no README in the test app
    assert points["environment"] == [(1, 0, 0), (1, 0, 0), (0, 0, 1)]
    # Accessible: each chart is labelled by its own title, each bar has a title.
    assert third.svg_labels == ["trend-0", "trend-1"]
    assert any(t.startswith("environment: 3 run(s), latest 0 ready") for t in third.titles)
    assert sum(t.startswith("this run · ") for t in third.titles) == 2

    second = _trends_in_file(tmp_path / "second.html")
    assert {check: len(p) for check, p in second.figures} == dict.fromkeys(CHECKS, 2)


def test_no_trend_argument_says_there_is_no_history(tmp_path: Path) -> None:
    page = tmp_path / "plain.html"
    page.write_text(render(every_status_fleet(), "html"))
    parsed = _trends_in_chromium(tmp_path, page)
    assert parsed.no_history and parsed.figures == []


def test_trend_series_is_what_history_trend_counts() -> None:
    """One aggregation for `history --trend` and the HTML charts; hostile run ids escaped."""
    t0 = datetime(2026, 11, 1, tzinfo=None)
    rows = [
        (f"<i>{i}</i>", t0 + timedelta(hours=i), check, status, n)
        for i in range(30)
        for check, status, n in (
            ("x", Status.READY, i),
            ("x", Status.SKIPPED, 1),
            ("x", Status.DEGRADED, 2),
            ("x", Status.UNREACHABLE, 3),
        )
    ]
    series = trend_series(rows)
    assert [p.ready for p in series["x"]] == [i + 1 for i in range(30)]
    assert {(p.degraded, p.not_ready) for p in series["x"]} == {(2, 3)}
    assert '"ready": 30' in render_trend(rows, "json")
    report = every_status_fleet()
    page = render(report, "html", trend={report.check_names[0]: series["x"]})
    assert page.count('<g class="pt"') == 30
    assert "<i>" not in page and "&lt;i&gt;29&lt;/i&gt; · 2026-11-02 05:00 UTC" in page
