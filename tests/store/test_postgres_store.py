"""The shared PostgreSQL store against a real cluster: same schema, two writers, upgrade,
connect timeout, and no password anywhere in the store or its messages."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from readiness.model import Status
from readiness.report import render
from readiness.store import StoreError, open_store
from readiness.store.location import parse_location
from readiness.store.schema import LATEST
from tests.services.cli import BIN
from tests.services.postgres import PgCluster
from tests.store.helpers import fleet, meta, newest_tables

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]
REPORT = fleet(
    {
        "db1": {"environment": Status.READY, "documentation": (Status.DEGRADED, "runbook missing")},
        "db2": {"environment": (Status.NOT_READY, "secret unset")},
    }
)


@pytest.fixture
def pg_store_url(pg_cluster: PgCluster) -> Callable[[], str]:
    """A fresh database owned by a fresh role with a real password; returns its URL."""

    def make() -> str:
        role = pg_cluster.new_role("store")
        db = f"store_{uuid.uuid4().hex[:8]}"
        pg_cluster.create_database(db, owner=role.name)
        return pg_cluster.dsn(role.name, role.password, db)

    return make


def _all_text(pg: PgCluster, db: str) -> str:
    """Every value of every table of ``db`` as text (what a secret scan must search)."""
    tables = [
        r[0] for r in pg.admin("SELECT tablename FROM pg_tables WHERE schemaname='public'", db=db)
    ]
    out = []
    for t in tables:
        out.extend(str(r) for r in pg.admin(f'SELECT * FROM "{t}"', db=db))  # noqa: S608
    return "\n".join(out)


def test_a_run_round_trips_through_postgresql(pg_store_url: Callable[[], str]) -> None:
    url = pg_store_url()
    with open_store(parse_location(url)) as store:
        assert store.schema_version() == LATEST
        run_id = store.record(REPORT, meta())
        stored = store.load(run_id)
        assert store.resolve("latest").run_id == run_id
    assert render(stored.report, "table") == render(REPORT, "table")
    assert stored.report.to_dict()["hosts"] == REPORT.to_dict()["hosts"]


def test_two_controllers_write_to_one_postgresql_store_at_once(
    pg_store_url: Callable[[], str],
) -> None:
    url = pg_store_url()
    open_store(parse_location(url)).close()
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.store._writer", "record", url, "10"],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    assert [w.wait(timeout=90) for w in writers] == [0, 0]
    with open_store(parse_location(url)) as store:
        runs = store.runs()
        assert len(runs) == 20
        assert {len(store.load(r).report.results) for r in runs} == {100}


def test_two_controllers_creating_the_schema_at_once_both_succeed(
    pg_store_url: Callable[[], str],
) -> None:
    url = pg_store_url()
    errors: list[BaseException] = []

    def open_and_record() -> None:
        try:
            with open_store(parse_location(url)) as store:
                store.record(REPORT, meta())
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_record) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with open_store(parse_location(url)) as store:
        assert len(store.runs()) == 3
        assert store.schema_version() == LATEST


def test_upgrade_from_the_previous_schema_on_postgresql(
    pg_cluster: PgCluster, pg_store_url: Callable[[], str]
) -> None:
    url = pg_store_url()
    db = url.rsplit("/", 1)[1]
    with open_store(parse_location(url), migrate=False) as old:
        old.migrate(target=LATEST - 1)
        run_id = old.record(REPORT, meta())
    tables = {r[0] for r in pg_cluster.admin("SELECT tablename FROM pg_tables", db=db)}
    assert "runs" in tables and not tables & newest_tables()
    with open_store(parse_location(url)) as store:
        assert store.schema_version() == LATEST
        assert store.load(run_id).report.to_dict()["hosts"] == REPORT.to_dict()["hosts"]
    versions = pg_cluster.admin("SELECT version FROM readiness_schema ORDER BY 1", db=db)
    assert [v[0] for v in versions] == list(range(1, LATEST + 1))


def test_the_password_is_in_no_table_and_no_error(
    pg_cluster: PgCluster, pg_store_url: Callable[[], str]
) -> None:
    url = pg_store_url()
    password = url.split(":")[2].split("@")[0]
    db = url.rsplit("/", 1)[1]
    with open_store(parse_location(url)) as store:
        store.record(REPORT, meta())
    assert password not in _all_text(pg_cluster, db)
    bad = url.replace(password, password + "-wrong")
    with pytest.raises(StoreError) as err:
        open_store(parse_location(bad))
    assert "password authentication failed" in str(err.value)
    assert password not in str(err.value)


def test_an_unresponsive_server_times_out(silent_server: tuple[str, int]) -> None:
    host, port = silent_server
    began = time.monotonic()
    with pytest.raises(StoreError, match="cannot connect"):
        open_store(parse_location(f"postgresql://u:pw12345@{host}:{port}/db"), timeout=1)
    assert time.monotonic() - began < 10


def test_secret_canaries_reach_no_postgresql_table(
    pg_cluster: PgCluster, pg_store_url: Callable[[], str], tmp_path: Path
) -> None:
    """A real `readiness validate` of an app holding secrets, recorded in PostgreSQL."""
    from tests.services.apps import write_app
    from tests.store.test_store_cli import readiness

    jwt, dbpw = "SENTINEL-pg-jwt-1a2b3c4d5e6f", "SENTINEL-pg-dbpw-9f8e"
    app = write_app(
        tmp_path / "app",
        env={
            "MAHAVISHNU_AUTH__SECRET": jwt,
            "MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING": f"postgresql://app:{dbpw}@127.0.0.1:1/a",
        },
        settings={"otel_storage": {"enabled": True}},
    )
    inv = tmp_path / "inv.yml"
    inv.write_text(
        f"all:\n  hosts:\n    local:\n      ansible_connection: local\n      readiness:\n        app_root: {app}\n"
    )
    url = pg_store_url()
    store_pw = url.split(":")[2].split("@")[0]
    run = readiness("validate", "-i", str(inv), "--quiet", "--drift", store=url)
    assert "not recorded" not in run.stderr, run.stderr
    shown = readiness("show", "latest", "--format", "json", store=url)
    assert shown.returncode == 0 and "MAHAVISHNU_AUTH__SECRET" in shown.stdout
    text = _all_text(pg_cluster, url.rsplit("/", 1)[1])
    assert "MAHAVISHNU_AUTH__SECRET" in text  # recorded, with its drift fingerprint...
    for secret in (jwt, dbpw, store_pw):
        assert secret not in text  # ...never its value, nor the store's own password
        assert secret not in run.stdout + run.stderr + shown.stdout


def test_the_urls_own_options_and_timeouts_are_kept(
    pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DBA gives readiness its own schema: `?options=-csearch_path%3Dreadiness`. Our
    statement timeout replaced the URL's options (psycopg's keywords win over the URL), so
    the store went to `public`, where this role may not create: the run was not recorded."""
    from psycopg import sql

    from tests.services.apps import write_app
    from tests.store.test_store_cli import readiness

    role = pg_cluster.new_role("schema")
    db = f"store_{uuid.uuid4().hex[:8]}"
    pg_cluster.create_database(db)  # owned by the admin: no CREATE on public for the role
    pg_cluster.admin(
        sql.SQL("CREATE SCHEMA readiness AUTHORIZATION {}").format(sql.Identifier(role.name)),
        db=db,
    )
    url = pg_cluster.dsn(role.name, role.password, db) + "?options=-csearch_path%3Dreadiness"
    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    inv.write_text(
        f"all:\n  hosts:\n    local:\n      ansible_connection: local\n      readiness:\n        app_root: {app}\n"
    )
    run = readiness("validate", "-i", str(inv), "-c", "environment", "-q", store=url)
    assert run.returncode == 0 and "not recorded" not in run.stderr, run.stderr
    assert role.password not in run.stderr + run.stdout
    tables = pg_cluster.admin("SELECT schemaname FROM pg_tables WHERE tablename = 'runs'", db=db)
    assert tables == [("readiness",)]
    history = readiness("history", "--format", "json", store=url)
    assert history.returncode == 0 and '"pattern": "local"' in history.stdout

    # ours where the URL says nothing; the URL's own values otherwise (its options after ours)
    from readiness.store.backends import _connect_params

    for var in ("PGOPTIONS", "PGCONNECT_TIMEOUT", "PGAPPNAME"):
        monkeypatch.delenv(var, raising=False)
    assert _connect_params("postgresql://h/db", 10) == {
        "options": "-c statement_timeout=300000",
        "connect_timeout": "10",
        "application_name": "readiness",
    }
    given = "postgresql://h/db?connect_timeout=3&application_name=ci&options=-cwork_mem%3D8MB"
    assert _connect_params(given, 10) == {"options": "-c statement_timeout=300000 -cwork_mem=8MB"}


def test_a_prune_during_another_controllers_recording_loses_none_of_its_results(
    pg_store_url: Callable[[], str],
) -> None:
    """Controller A re-uses a finding only an old run had; controller B prunes that run
    between A's insert of the (existing) finding and A's commit. B could not see A's
    results, so it deleted the finding, and A's run came back without those results
    (`show` dropped them: an inner join). Now a prune waits for recordings in flight."""
    from dataclasses import replace as with_

    from readiness.model import utcnow

    url = pg_store_url()
    with open_store(parse_location(url)) as old:
        old.record(REPORT, meta())  # 2026-11-01: older than the prune's 1 day
    a, b = open_store(parse_location(url)), open_store(parse_location(url))
    paused, resume = threading.Event(), threading.Event()
    insert = a._db.executemany

    def slow_results(sql: str, rows: Any) -> None:
        if sql.startswith("INSERT INTO results"):
            paused.set()
            resume.wait(10)
        insert(sql, rows)

    a._db.executemany = slow_results  # type: ignore[method-assign]
    recorded: list[str] = []
    pruned: list[int] = []
    writer = threading.Thread(
        target=lambda: recorded.append(a.record(REPORT, with_(meta(), started_at=utcnow())))
    )
    writer.start()
    try:
        assert paused.wait(10), "A never reached its results"
        pruner = threading.Thread(target=lambda: pruned.append(b.prune(timedelta(days=1))))
        pruner.start()
        pruner.join(0.5)  # without the lock it deletes the finding now
        resume.set()
        writer.join(10)
        pruner.join(10)
    finally:
        resume.set()
        a.close()
        b.close()
    assert pruned == [1] and len(recorded) == 1
    with open_store(parse_location(url)) as store:
        loaded = store.load(recorded[0]).report

    def rows(report: Any) -> list[tuple[str, str, Status, str]]:
        return [(r.host, r.check_name, r.status, r.message) for r in report.results]

    assert rows(loaded) == rows(REPORT)


def test_a_prune_that_fails_says_the_run_was_recorded(
    pg_cluster: PgCluster, pg_store_url: Callable[[], str], tmp_path: Path
) -> None:
    """With `history_keep` set, a role that may insert but not delete (an append-only grant)
    got "run not recorded: ... permission denied" although the run was in the store."""
    from psycopg import sql

    from tests.services.apps import write_app
    from tests.store.test_store_cli import readiness

    owner_url = pg_store_url()
    db = owner_url.rsplit("/", 1)[1]
    with open_store(parse_location(owner_url)) as store:
        old = store.record(REPORT, meta())  # 2026-11-01: older than history_keep
    appender = pg_cluster.new_role("append")
    grants = (
        "GRANT CREATE, USAGE ON SCHEMA public TO {r}",
        "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {r}",
        "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {r}",
    )
    for grant in grants:
        pg_cluster.admin(sql.SQL(grant).format(r=sql.Identifier(appender.name)), db=db)
    url = pg_cluster.dsn(appender.name, appender.password, db)
    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    inv.write_text(
        f"all:\n  hosts:\n    local:\n      ansible_connection: local\n      readiness:\n        app_root: {app}\n"
    )
    cfg = tmp_path / "invoke.yaml"
    cfg.write_text("readiness:\n  history_keep: 7d\n")
    run = readiness(
        "-f", str(cfg), "validate", "-i", str(inv), "-c", "environment", "-q", store=url
    )
    assert run.returncode == 0, run.stderr
    assert "not recorded" not in run.stderr
    assert "recorded, but history_keep could not prune older runs: " in run.stderr
    assert "permission denied" in run.stderr and appender.password not in run.stderr
    with open_store(parse_location(owner_url)) as store:
        kept = [r.run_id for r in store.runs()]
    assert len(kept) == 2 and old in kept
    assert f"run {kept[0]} recorded" in run.stderr


class _FreezingProxy:
    """A TCP proxy to PostgreSQL that forwards until the client sends ``trigger``, then
    stops answering: it keeps reading both sides (the kernel ACKs everything, as for a
    server that hangs or a network that drops the replies) and forwards nothing."""

    def __init__(self, upstream: tuple[str, int], trigger: bytes) -> None:
        import socket

        self.upstream, self.trigger = upstream, trigger
        self.frozen = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[Any] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream, timeout=10)
            server.settimeout(None)
            self.sockets += [client, server]
            for a, b, watch in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(a, b, watch), daemon=True).start()

    def _pump(self, src: Any, dst: Any, watch: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                return
            if watch and self.trigger in data:
                self.frozen.set()
            if not self.frozen.is_set():
                try:
                    dst.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.close()


def test_a_store_that_stops_answering_mid_recording_costs_a_bounded_wait(
    pg_store_url: Callable[[], str], tmp_path: Path
) -> None:
    """The connect timeout and the server's statement timeout bound nothing once a
    statement is on its way and the server (or the network) goes silent: the server
    never starts the statement, and the client waited for its answer for ever —
    `readiness validate` hung after printing its report. The client now gives up after
    the statement timeout plus the connect timeout, and the run is "not recorded"."""
    from tests.services.apps import write_app
    from tests.store.test_store_cli import readiness

    url = pg_store_url()
    assert readiness("history", store=url).returncode == 0  # the schema is created
    proxy = _FreezingProxy(
        ("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])), b"INSERT INTO runs"
    )
    try:
        via = url.replace(url.rsplit("@", 1)[1].split("/")[0], f"127.0.0.1:{proxy.port}")
        via += "?connect_timeout=2&options=-c%20statement_timeout%3D3000"
        app = write_app(tmp_path / "app")
        inv = tmp_path / "inv.yml"
        inv.write_text(
            "all:\n  hosts:\n    local:\n      ansible_connection: local\n"
            f"      readiness:\n        app_root: {app}\n"
        )
        began = time.monotonic()
        try:
            res = readiness("validate", "-i", str(inv), "-c", "environment", "--format", "json",
                            store=via)  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail("readiness validate hung on a store that stopped answering")
        took = time.monotonic() - began
    finally:
        proxy.close()
    assert proxy.frozen.is_set()
    assert res.returncode in (0, 1) and '"exit_code"' in res.stdout, res.stderr
    warning = [line for line in res.stderr.splitlines() if "not recorded" in line]
    assert warning == [
        "readiness: warning: run not recorded: store: no answer from the server within 5 s "
        "(its statement timeout, 3 s, plus the connect timeout, 2 s)"
    ], res.stderr
    assert took < 60, took


_SKEWED = (
    "import datetime, sys\n"
    "import readiness.model as m\n"
    "real = m.utcnow\n"
    "skew = datetime.timedelta(days=int(sys.argv.pop(1)))\n"
    "m.utcnow = lambda: real() + skew\n"
    "sys.argv[0] = 'readiness'\n"
    "from readiness.cli import main\n"
    "main()\n"
)


def skewed_readiness(days: int, *args: str) -> subprocess.CompletedProcess[str]:
    """`readiness ARGS` on a controller whose clock is ``days`` ahead (negative: behind).
    The one fake here is the controller's clock; the database server's is real."""
    return subprocess.run(
        [sys.executable, "-c", _SKEWED, str(days), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_a_controller_whose_clock_is_ahead_prunes_by_the_servers_clock(
    pg_store_url: Callable[[], str],
) -> None:
    """Retention on a shared store compared each run's start with the pruning controller's
    own clock: one controller a year ahead (a bad RTC, a wrong NTP server) running
    `history-prune --keep 30d` — or any recording with `history_keep` set — deleted every
    other controller's history. The cutoff is the database server's clock now."""
    from readiness.model import utcnow
    from readiness.store import RunMeta

    url = pg_store_url()
    with open_store(parse_location(url)) as store:
        for hours in (2, 1):
            started = utcnow() - timedelta(hours=hours)
            store.record(
                REPORT, RunMeta("validate", "web", "readiness validate", "ctl", "u", started)
            )
    res = skewed_readiness(365, "history-prune", "--keep", "30d", "--store", url)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("pruned 0 run(s) older than 30d"), res.stdout
    with open_store(parse_location(url), create=False) as store:
        assert len(store.runs()) == 2
    res = skewed_readiness(0, "history-prune", "--keep", "90m", "--store", url)
    assert res.stdout.startswith("pruned 1 run(s) older than 90m"), res  # the real one prunes


def test_a_controller_whose_clock_is_off_is_told_when_it_records(
    pg_store_url: Callable[[], str], tmp_path: Path
) -> None:
    """Its runs were stamped by its own clock and sorted among the other controllers' runs
    (history, diff's previous run, trends) by it, with no word."""
    from tests.services.apps import write_app

    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    local:\n      ansible_connection: local\n"
        f"      readiness:\n        app_root: {app}\n"
    )
    url = pg_store_url()
    argv = ("validate", "-i", str(inv), "-c", "environment", "--quiet", "--store", url)
    for days, said in ((-3, "3d behind"), (400, "400d ahead of")):
        res = skewed_readiness(days, *argv)
        assert res.returncode in (0, 1), res.stderr
        assert res.stderr == (
            f"readiness: warning: this controller's clock is {said} the store's database "
            "server: its runs' start times are off by as much\n"
        )
    assert skewed_readiness(0, *argv).stderr == ""


def test_a_select_only_role_reads_the_store_and_validate_says_it_was_not_recorded(
    pg_cluster: PgCluster, pg_store_url: Callable[[], str], tmp_path: Path
) -> None:
    """The PostgreSQL side of a read-only store: a role granted only SELECT (an auditor, a
    dashboard) reads history, diff, drift and show; its `validate` audits, prints, keeps
    the audit's exit code and says in one line that the run was not recorded."""
    from readiness.model import utcnow
    from readiness.store import RunMeta
    from tests.services.apps import write_app
    from tests.store.test_store_cli import readiness

    url = pg_store_url()
    db = url.rsplit("/", 1)[1]
    with open_store(parse_location(url)) as store:
        fps = {"db1": {"env:A": (store.fingerprint("x"), False)}}
        for hours in (2, 1):
            started = utcnow() - timedelta(hours=hours)
            store.record(
                REPORT,
                RunMeta("validate", "web", "readiness validate", "ctl", "u", started),
                fingerprints=fps,
            )
    reader = pg_cluster.new_role("reader")
    pg_cluster.admin(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{reader.name}"', db=db)
    as_reader = pg_cluster.dsn(reader.name, reader.password, db)
    for argv, expect in (
        (("history",), "validate"),
        (("diff",), "diff "),
        (("drift",), "DRIFT across"),
        (("show", "latest"), "PRODUCTION READINESS"),
    ):
        res = readiness(*argv, store=as_reader)
        assert (res.returncode, res.stderr) == (0, ""), (argv, res.stderr)
        assert expect in res.stdout
    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    local:\n      ansible_connection: local\n"
        f"      readiness:\n        app_root: {app}\n"
    )
    res = readiness("validate", "-i", str(inv), "-c", "environment", "--format", "json",
                    store=as_reader)  # fmt: skip
    assert res.returncode == json.loads(res.stdout)["exit_code"], res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("readiness: warning: run not recorded: store: ")
    assert "permission denied" in lines[0] and reader.password not in res.stderr
    with open_store(parse_location(url), create=False) as store:
        assert len(store.runs()) == 2


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare (a resolv.conf of its own in a mount namespace)",
)
@pytest.mark.timeout(120)
def test_a_store_host_whose_dns_never_answers_costs_the_connect_timeout(tmp_path: Path) -> None:
    """libpq resolves the store's host name with no bound (connect_timeout starts after):
    a name whose name server never answers held `readiness validate` for minutes (the
    resolver's own retries, 30 s x 5 here), past SIGTERM. Now the name is resolved within
    the connect timeout and the run ends on one line, its exit code unchanged."""
    from tests.services.apps import write_app

    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    local:\n      ansible_connection: local\n"
        f"      readiness:\n        app_root: {app}\n"
    )
    resolv = tmp_path / "resolv.conf"
    # a name server that never answers (resolv.conf takes port 53 only)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.77", 53))
        resolv.write_text("nameserver 127.0.0.77\noptions timeout:30 attempts:5\n")
        url = "postgresql://u@db.dns-hangs.test/x?connect_timeout=2"
        argv = [str(BIN / "readiness"), "validate", "-i", str(inv), "-c", "environment",
                "--format", "json"]  # fmt: skip
        script = 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"'
        started = time.monotonic()
        done = subprocess.run(
            ["unshare", "-m", "sh", "-c", script, "sh", str(resolv), *argv, f"--store={url}"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=100,
            check=False,
            cwd=tmp_path,
        )
        took = time.monotonic() - started
    assert took < 2 + 8, (took, done.stderr)
    assert done.returncode == json.loads(done.stdout)["exit_code"], done.stderr
    assert done.returncode in (0, 1), done.stderr
    assert done.stderr.splitlines() == [
        "readiness: warning: run not recorded: cannot connect to store "
        "postgresql://u@db.dns-hangs.test/x?connect_timeout=2: host name 'db.dns-hangs.test' "
        "did not resolve within 2 s (DNS)"
    ], done.stderr


def test_a_store_url_naming_its_host_resolves_it_and_records(
    pg_store_url: Callable[[], str],
) -> None:
    """The name is resolved by readiness (within the connect timeout) and libpq gets the
    address with the name: a `localhost` URL records and reads back as before."""
    url = pg_store_url()
    assert "@127.0.0.1:" in url
    named = url.replace("@127.0.0.1:", "@localhost:", 1)
    with open_store(parse_location(named)) as store:
        run_id = store.record(REPORT, meta())
        assert store.resolve("latest").run_id == run_id
