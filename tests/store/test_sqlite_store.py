"""The SQLite store: round trip, schema and migrations, concurrency, crash safety, retention."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from readiness.errors import UsageError
from readiness.model import Status
from readiness.report import render
from readiness.store import StoreError, open_store
from readiness.store.location import default_sqlite_path, parse_location, resolve_location
from readiness.store.schema import LATEST
from tests.store.helpers import T0, fleet, meta, newest_tables, sqlite_store

ROOT = Path(__file__).resolve().parents[2]
REPORT = fleet(
    {
        "web1": {
            "environment": Status.READY,
            "documentation": (Status.DEGRADED, "runbook missing"),
        },
        "web2": {
            "environment": (Status.NOT_READY, "MAHAVISHNU_AUTH__SECRET not set"),
            "documentation": Status.READY,
        },
    }
)


def test_a_recorded_run_renders_exactly_as_the_original(tmp_path: Path) -> None:
    with sqlite_store(tmp_path / "h.db") as store:
        run_id = store.record(REPORT, meta())
        stored = store.load(run_id)
    for fmt in ("text", "table", "markdown"):
        assert render(stored.report, fmt) == render(REPORT, fmt)
    assert stored.report.to_dict()["hosts"] == REPORT.to_dict()["hosts"]
    assert stored.summary.overall_status is Status.NOT_READY
    assert stored.summary.exit_code == 1
    assert stored.summary.command == "readiness validate --hosts web"
    assert stored.summary.user == "tester"
    assert stored.summary.controller == "ctl"


def test_the_store_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "h.db"
    with sqlite_store(path) as store:
        store.record(REPORT, meta())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_schema_is_created_by_readiness_at_the_latest_version(tmp_path: Path) -> None:
    with sqlite_store(tmp_path / "h.db") as store:
        assert store.schema_version() == LATEST
    with sqlite3.connect(tmp_path / "h.db") as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM readiness_schema ORDER BY 1")]
    assert versions == list(range(1, LATEST + 1))


def test_upgrade_from_the_previous_schema_keeps_recorded_runs(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with sqlite_store(path, migrate=False) as old:
        assert old.migrate(target=LATEST - 1) == LATEST - 1
        run_id = old.record(REPORT, meta())
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert not tables & newest_tables()  # really the previous version
    assert "runs" in tables
    with sqlite_store(path) as store:
        assert store.schema_version() == LATEST
        assert render(store.load(run_id).report, "json") == render(
            store.load(run_id).report, "json"
        )
        assert store.load(run_id).report.to_dict()["hosts"] == REPORT.to_dict()["hosts"]
        from readiness.store.baseline import entries_from_run

        assert store.set_baseline(entries_from_run(store.load(run_id))) == 4


def test_a_store_newer_than_readiness_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    sqlite_store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO readiness_schema VALUES (?, 'future', 'x')", (LATEST + 1,))
    with pytest.raises(StoreError, match="newer than this readiness"):
        sqlite_store(path)


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    path.write_text("not sqlite at all " * 100)
    with pytest.raises(StoreError, match="not a database"):
        sqlite_store(path)


def test_runs_are_resolved_by_id_prefix_latest_and_latest_n(tmp_path: Path) -> None:
    with sqlite_store(tmp_path / "h.db") as store:
        first = store.record(REPORT, meta(minutes=0))
        second = store.record(REPORT, meta(minutes=1))
        assert store.resolve("latest").run_id == second
        assert store.resolve("latest~1").run_id == first
        assert store.resolve(first[:20]).run_id == first
        assert store.resolve(first).run_id == first
        with pytest.raises(UsageError, match="ambiguous"):
            store.resolve("2026")
        with pytest.raises(UsageError, match="no run"):
            store.resolve("nope")
        with pytest.raises(UsageError, match="no run"):
            store.resolve("latest~5")
        with pytest.raises(UsageError, match="no run"):
            store.resolve("%")  # LIKE wildcards are not patterns here
        prev = store.previous(store.resolve(second))
        assert prev is not None and prev.run_id == first


def test_identical_findings_are_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with sqlite_store(path) as store:
        for i in range(5):
            store.record(REPORT, meta(minutes=i))
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM findings").fetchone()[0] == 4
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 20


def test_prune_removes_old_runs_and_their_unused_findings(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    old_only = fleet({"old": {"environment": (Status.ERROR, "old finding")}})
    with sqlite_store(path) as store:
        store.record(old_only, meta(minutes=0))
        kept = store.record(REPORT, meta(minutes=60 * 24 * 100))
        removed = store.prune(timedelta(days=90), now=T0 + timedelta(days=101))
        assert removed == 1
        assert [r.run_id for r in store.runs()] == [kept]
        assert store.prune(timedelta(days=90), now=T0 + timedelta(days=101)) == 0
    with sqlite3.connect(path) as conn:
        bodies = [r[0] for r in conn.execute("SELECT body FROM findings")]
    assert not any("old finding" in b for b in bodies)
    assert len(bodies) == 4


def test_two_controllers_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    sqlite_store(path).close()
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.store._writer", "record", str(path), "15"],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(3)
    ]
    assert [w.wait(timeout=90) for w in writers] == [0, 0, 0]
    with sqlite_store(path) as store:
        runs = store.runs()
        assert len(runs) == 45
        assert len({r.pattern for r in runs}) == 3
        assert all(len(store.load(r).report.results) == 100 for r in runs[:5])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 45 * 100


def test_a_crash_mid_write_loses_only_that_run(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with sqlite_store(path) as store:
        before = store.record(REPORT, meta())
    crash = subprocess.run(
        [sys.executable, "-m", "tests.store._writer", "crash", str(path), "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert crash.returncode == -9
    assert "in transaction" in crash.stdout
    with sqlite_store(path) as store:
        assert [r.run_id for r in store.runs()] == [before]
        after = store.record(REPORT, meta(minutes=1))
        assert store.resolve("latest").run_id == after
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_location_flag_beats_env_beats_config_beats_xdg(tmp_path: Path) -> None:
    env = {"READINESS_STORE": str(tmp_path / "env.db"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert (
        resolve_location(str(tmp_path / "flag.db"), {"store": "cfg.db"}, env).path
        == tmp_path / "flag.db"
    )
    assert resolve_location(None, {"store": "cfg.db"}, env).path == tmp_path / "env.db"
    assert (
        resolve_location(None, {"store": str(tmp_path / "cfg.db")}, {}).path == tmp_path / "cfg.db"
    )
    xdg = resolve_location(None, {}, {"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert xdg.path == tmp_path / "xdg" / "readiness" / "history.sqlite3"
    assert default_sqlite_path({}).parts[-4:] == (".local", "share", "readiness", "history.sqlite3")
    assert not parse_location("none").enabled
    pg = parse_location("postgresql://u:hunter2pw@127.0.0.1:5/db")
    assert pg.kind == "postgresql"
    assert "hunter2pw" not in pg.display
    with pytest.raises(UsageError):
        open_store(parse_location("off"))


def test_timeline_and_trend_narrow_to_the_hosts_given_and_an_empty_set_matches_nothing(
    tmp_path: Path,
) -> None:
    two = fleet({"web1": {"environment": Status.READY}, "web2": {"environment": Status.NOT_READY}})
    with sqlite_store(tmp_path / "h.db") as store:
        store.record(two, meta())
        every = store.timeline(hosts=None, check=None, since=None)
        one = store.timeline(check=None, since=None, hosts=["web2", "web2"])
        none = store.timeline(check=None, since=None, hosts=[])
        trend_all = store.trend(check="environment", since=None)
        trend_one = store.trend(check="environment", since=None, hosts=["web1"])
        trend_none = store.trend(check="environment", since=None, hosts=())
    assert sorted(row[2] for row in every) == ["web1", "web2"]
    assert [(row[2], row[4]) for row in one] == [("web2", Status.NOT_READY)]
    assert none == [] and trend_none == []
    assert sorted((row[3], row[4]) for row in trend_all) == [
        (Status.READY, 1),
        (Status.NOT_READY, 1),
    ]
    assert [(row[3], row[4]) for row in trend_one] == [(Status.READY, 1)]


def test_reading_a_store_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    """A read (`create=False`) of a missing SQLite file is an empty store in memory: no
    file, no directory; a writer (the default) still creates both."""
    location = parse_location(str(tmp_path / "new" / "history.sqlite3"))
    with open_store(location, create=False) as store:
        assert store.missing and store.runs() == [] and store.baseline("default") == {}
        with pytest.raises(UsageError, match=r"history\.sqlite3 \(it does not exist\)$"):
            store.resolve("latest")
    assert list(tmp_path.iterdir()) == []
    with open_store(location) as store:
        assert not store.missing
        store.record(REPORT, meta())
    with open_store(location, create=False) as store:
        assert not store.missing and len(store.runs()) == 1


def test_reading_commands_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    """Opening the store took the write lock to check the schema version, so `history`
    (or show, diff...) during a long recording or prune waited 30 s for it and failed
    with "database is locked", though WAL lets readers read meanwhile."""
    import time

    from tests.store.test_store_cli import readiness

    path = tmp_path / "h.db"
    with sqlite_store(path) as store:
        run = store.record(REPORT, meta())
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another controller's write in progress
        writer.execute("DELETE FROM results")
        began = time.monotonic()
        for argv in (("history",), ("show", "latest"), ("history", "--hosts", "web1")):
            res = readiness(*argv, store=path)
            assert (res.returncode, res.stderr) == (0, ""), (argv, res.stderr)
            assert run in res.stdout or "web1" in res.stdout, res.stdout
        assert time.monotonic() - began < 25
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE findings SET body = 'garbage'",
        "UPDATE findings SET body = '[\"message\", [1, 2], []]'",
        "UPDATE results SET status = 'bogus'",
        "UPDATE runs SET summary = '[1'",
    ],
)
def test_a_damaged_record_is_one_line_exit_2_not_a_traceback(tmp_path: Path, damage: str) -> None:
    """A row readiness cannot decode (a damaged file, a hand edit, another program's write
    into a shared database) made `show`, `diff` and the timelines a JSONDecodeError or
    ValueError traceback."""
    from tests.store.test_store_cli import readiness

    path = tmp_path / "h.db"
    with sqlite_store(path) as store:
        store.record(REPORT, meta(minutes=0))
        store.record(REPORT, meta(minutes=5))
    with sqlite3.connect(path) as conn:
        conn.execute(damage)
    conn.close()
    for argv in (("show", "latest"), ("diff",), ("history", "--hosts", "web1"), ("history",)):
        res = readiness(*argv, store=path)
        if res.returncode == 0:  # what it did not need to decode is still shown
            continue
        assert res.returncode == 2 and "Traceback" not in res.stderr, (argv, res.stderr)
        assert res.stderr.startswith(f"readiness: store {path}: a damaged record ("), res.stderr
        assert len(res.stderr.splitlines()) == 1
    assert readiness("show", "latest", store=path).returncode == 2


@pytest.mark.parametrize("key", ["not-hex", "", "00ff"])
def test_a_damaged_fingerprint_key_is_a_warning_not_a_traceback(tmp_path: Path, key: str) -> None:
    """The store's HMAC key damaged (a hand edit, another program's write): `validate` ended
    in a ValueError traceback after auditing nothing; an empty or short key keyed every
    fingerprint of a secret weakly. The audit runs, its exit code stays, the run is not
    recorded (one line); `--drift`, which needs the key, is exit 2."""
    from tests.services.apps import write_app
    from tests.store.test_store_cli import readiness

    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    local:\n      ansible_connection: local\n"
        f"      readiness:\n        app_root: {app}\n"
    )
    path = tmp_path / "h.db"
    with sqlite_store(path) as store:
        store.hmac_key()
        store.record(REPORT, meta(minutes=0))
    with sqlite3.connect(path) as conn:
        changed = conn.execute(
            "UPDATE readiness_meta SET value = ? WHERE key = 'hmac_key'", (key,)
        ).rowcount
    conn.close()
    assert changed == 1
    argv = ("validate", "-i", str(inv), "-c", "environment", "--format", "json")
    res = readiness(*argv, store=path)
    assert res.returncode == json.loads(res.stdout)["exit_code"], res.stderr
    assert res.stderr.startswith(
        f"readiness: warning: run not recorded: store {path}: a damaged record (ValueError: "
    ), res.stderr
    assert len(res.stderr.splitlines()) == 1, res.stderr
    drift = readiness(*argv, "--drift", store=path)
    assert (drift.returncode, drift.stdout) == (2, ""), drift
    assert drift.stderr.startswith(f"readiness: store {path}: a damaged record ("), drift.stderr
    with sqlite_store(path) as store:
        assert len(store.runs()) == 1
