"""`readiness show RUN --format html` draws the trend charts as of that run, as the live
report did: runs of the same kind and host pattern up to and including RUN."""

from __future__ import annotations

import json
from pathlib import Path

from tests.services.apps import write_app
from tests.store.test_store_cli import readiness
from tests.test_report_html_trend import (
    CHECKS,
    _Trends,
    _trends_in_chromium,
    _trends_in_file,
    _validate,
)


def _show(store: Path, run: str, page: Path) -> _Trends:
    res = readiness("show", run, "--format", "html", store=store)
    assert res.returncode == 0, res.stderr
    page.write_text(res.stdout)
    return _trends_in_file(page)


def test_show_html_has_the_trend_as_of_that_run(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    local:\n      ansible_connection: local\n"
        f"      readiness:\n        app_root: {app}\n"
    )
    store = tmp_path / "history.sqlite3"
    _validate(inv, store, tmp_path / "first.html")
    _validate(inv, store, tmp_path / "other.html", "--limit", "local")  # another pattern
    _validate(inv, store, tmp_path / "second.html")
    write_app(app, env={"MAHAVISHNU_REPOS_PATH": None})  # environment breaks in run 4
    _validate(inv, store, tmp_path / "third.html")
    write_app(app)  # and is repaired in a later run, after the one shown
    _validate(inv, store, tmp_path / "fourth.html")
    runs = json.loads(readiness("history", "--format", "json", store=store).stdout)["runs"]
    first, _other, second, third, _fourth = [r["run_id"] for r in reversed(runs)]

    shown = _show(store, third, tmp_path / "shown-third.html")
    live = _trends_in_file(tmp_path / "third.html")
    assert dict(shown.figures)["environment"] == [(1, 0, 0), (1, 0, 0), (0, 0, 1)]
    # Exactly what validate drew for that run: the later run is not in it, the run
    # itself is "this run".
    assert (shown.figures, shown.titles) == (live.figures, live.titles)
    in_browser = _trends_in_chromium(tmp_path, tmp_path / "shown-third.html")
    assert [c for c, _ in in_browser.figures] == list(CHECKS) and not in_browser.no_history

    assert {c: len(p) for c, p in _show(store, second, tmp_path / "s2.html").figures} == (
        dict.fromkeys(CHECKS, 2)
    )
    assert _show(store, first, tmp_path / "s1.html").no_history  # nothing before it
    latest = _show(store, "latest", tmp_path / "s4.html")
    assert dict(latest.figures)["environment"][-2:] == [(0, 0, 1), (1, 0, 0)]
    assert readiness("show", "latest", "--format", "text", store=store).returncode == 0
