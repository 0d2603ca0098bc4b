"""The store's commands through the real `readiness` program: every run recorded, history,
show, diff, baselines, prune, and secret canaries in the store file and every output."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from readiness.store import open_store
from readiness.store.location import parse_location
from tests.services.apps import write_app

ROOT = Path(__file__).resolve().parents[2]
READINESS = str(Path(sys.executable).parent / "readiness")


def readiness(*args: str, store: Path | str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [READINESS, *args]
    if store is not None:
        argv += ["--store", str(store)]
    return subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def local_app(tmp_path: Path) -> tuple[Path, Path]:
    """(app root, inventory) for the local host; the test rewrites the app between runs."""
    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    local:\n      ansible_connection: local\n"
        f"      readiness:\n        app_root: {app}\n"
    )
    return app, inv


def validate(inv: Path, store: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return readiness(
        "validate", "-i", str(inv), "-c", "environment", "--quiet", *extra, store=store
    )


def test_runs_are_recorded_and_diffed_through_the_cli(
    local_app: tuple[Path, Path], tmp_path: Path
) -> None:
    app, inv = local_app
    store = tmp_path / "history.sqlite3"
    assert validate(inv, store).returncode == 0
    write_app(app, env={"MAHAVISHNU_AUTH__SECRET": None})
    broken = validate(inv, store)
    assert broken.returncode == 1
    assert "run not recorded" not in broken.stderr

    hist = readiness("history", "--format", "json", store=store)
    assert hist.returncode == 0, hist.stderr
    runs = json.loads(hist.stdout)["runs"]
    assert [r["overall_status"] for r in runs] == ["not_ready", "ready"]
    assert runs[0]["pattern"] == "local" and runs[0]["kind"] == "validate"
    assert runs[0]["command"].startswith("readiness validate -i ")
    assert "--store" in runs[0]["command"]

    diff = readiness("diff", store=store)
    assert diff.returncode == 1, diff.stderr
    assert f"diff {runs[1]['run_id']} → {runs[0]['run_id']}: WORSE (1 new," in diff.stdout
    assert "  new      local / environment: READY → NOT_READY" in diff.stdout
    md = readiness("diff", "--format", "markdown", store=store)
    assert (
        md.stdout.startswith("### readiness diff ") and "| new | local | environment |" in md.stdout
    )

    write_app(app)
    assert validate(inv, store).returncode == 0
    fixed = readiness("diff", "--format", "json", store=store)
    assert fixed.returncode == 0
    data = json.loads(fixed.stdout)
    assert data["counts"]["resolved"] == 1 and data["worse"] is False
    explicit = readiness(
        "diff", "--old", runs[1]["run_id"], "--new", runs[0]["run_id"], store=store
    )
    assert explicit.returncode == 1

    timeline = readiness("history", "--hosts", "local", "--check", "environment", store=store)
    assert timeline.returncode == 0
    assert "✓✗✓" in timeline.stdout

    trend = readiness("history", "--trend", store=store)
    assert trend.returncode == 0
    assert trend.stdout.splitlines()[2].split() == ["environment", "█▁█", "1", "0", "0", "3"]
    points = json.loads(readiness("history", "--trend", "--format", "json", store=store).stdout)
    assert [(p["ready"], p["not_ready"]) for p in points["checks"]["environment"]] == [
        (1, 0),
        (0, 1),
        (1, 0),
    ]
    # --kind and --hosts narrow the trend as they narrow history (they were ignored).
    for argv, runs_seen in (
        (("--kind", "validate"), "3"),
        (("--hosts", "loc*"), "3"),
        (("--kind", "remediate"), None),
        (("--hosts", "web*"), None),
    ):
        narrowed = readiness("history", "--trend", *argv, store=store)
        assert narrowed.returncode == 0, narrowed.stderr
        if runs_seen is None:
            said = f"no results recorded in store {store} matching {' '.join(argv)}\n"
            assert narrowed.stdout == said, argv
        else:
            assert narrowed.stdout.splitlines()[2].split()[-1] == runs_seen, argv


def test_show_re_renders_a_stored_run_in_every_format(
    local_app: tuple[Path, Path], tmp_path: Path
) -> None:
    app, inv = local_app
    store = tmp_path / "h.db"
    write_app(app, env={"MAHAVISHNU_AUTH__SECRET": None})
    live = validate(inv, store, "--format", "table")
    for fmt in ("text", "table", "json", "markdown"):
        shown = readiness("show", "latest", "--format", fmt, store=store)
        assert shown.returncode == 0, shown.stderr
        if fmt == "table":
            assert shown.stdout == live.stdout
    doc = json.loads(readiness("show", "latest", "--format", "json", store=store).stdout)
    assert doc["schema"] == "readiness.report/1"
    assert doc["hosts"][0]["checks"][0]["status"] == "not_ready"
    assert doc["stored_run"]["kind"] == "validate"
    missing = readiness("show", "nope", store=store)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [f"readiness: no run 'nope' in store {store}"]


def test_baseline_ratchet_export_and_import(local_app: tuple[Path, Path], tmp_path: Path) -> None:
    app, inv = local_app
    store = tmp_path / "h.db"
    assert validate(inv, store).returncode == 0
    no_base = validate(inv, store, "--baseline")
    assert no_base.returncode == 2 and "no baseline 'default'" in no_base.stderr
    accepted = readiness("baseline-accept", store=store)
    assert accepted.returncode == 0 and "1 result(s) of run" in accepted.stdout

    write_app(app, env={"MAHAVISHNU_AUTH__SECRET": None})
    page, md = tmp_path / "r.html", tmp_path / "r.md"
    reports = ("--report", f"html:{page}", "--report", f"markdown:{md}")
    regressed = validate(inv, store, "--baseline", *reports)
    assert regressed.returncode == 1
    line = "REGRESSION local / environment: NOT_READY (baseline: READY)"
    assert regressed.stdout.count(line) == 1  # in the report, once
    # The section is part of the report: saved files and show carry it too.
    assert (
        '<section id="baseline"><h2>Baseline</h2>' in page.read_text() and line in page.read_text()
    )
    assert f"- `{line} — " in md.read_text()  # host text in a code span (docs/reports.md)
    assert line in readiness("show", "latest", store=store).stdout
    html_out = validate(inv, store, "--baseline", "--format", "html").stdout
    assert html_out.rstrip().endswith("</html>") and line in html_out  # no text after the page

    assert readiness("baseline-accept", "--run", "latest", store=store).returncode == 0
    known = validate(inv, store, "--baseline", "--format", "json")
    assert known.returncode == 0, known.stdout[-500:]
    doc = json.loads(known.stdout)
    assert doc["overall_status"] == "not_ready"  # still reported...
    assert doc["baseline"]["known"][0]["check"] == "environment"  # ...but known
    assert doc["baseline"]["regressions"] == []

    exported = tmp_path / "baseline.json"
    assert readiness("baseline-export", "--output", str(exported), store=store).returncode == 0
    other = tmp_path / "other.db"
    assert validate(inv, other).returncode == 1
    assert readiness("baseline-import", str(exported), store=other).returncode == 0
    assert validate(inv, other, "--baseline").returncode == 0
    bad = tmp_path / "bad.json"
    for text in ("[]", '{"schema": "readiness.baseline/1", "entries": 5}', '{"schema": '):
        bad.write_text(text)
        imported = readiness("baseline-import", str(bad), store=other)
        assert imported.returncode == 2, (text, imported.stderr)
        assert len(imported.stderr.strip().splitlines()) == 1, imported.stderr
    assert "'entries' must be a list" in imported.stderr or "not JSON" in imported.stderr


def test_the_configured_history_keep_prunes_every_recorded_run_and_a_bad_one_is_exit_2(
    local_app: tuple[Path, Path], tmp_path: Path
) -> None:
    from readiness.model import Status
    from tests.store.helpers import fleet, meta, sqlite_store

    _, inv = local_app
    store = tmp_path / "h.db"
    with sqlite_store(store) as opened:  # a run from a year before the test's T0
        opened.record(fleet({"local": {"environment": Status.READY}}), meta(minutes=-525600))
    cfg = tmp_path / "invoke.yaml"
    cfg.write_text("readiness:\n  history_keep: 30d\n")
    argv = ("validate", "-i", str(inv), "-c", "environment", "--quiet")
    assert readiness("-f", str(cfg), *argv, store=store).returncode == 0
    runs = json.loads(readiness("history", "--format", "json", store=store).stdout)["runs"]
    assert len(runs) == 1 and runs[0]["started_at"] > "2026-11"  # the old one was pruned

    cfg.write_text("readiness:\n  history_keep: banana\n")
    bad = readiness("-f", str(cfg), *argv, store=store)
    assert bad.returncode == 2 and bad.stdout == ""  # refused before the audit, not after
    assert bad.stderr.strip().splitlines() == [
        "readiness: readiness.history_keep: bad age 'banana': use a number and a unit "
        "s/m/h/d/w, e.g. 7d or 12h"
    ]
    assert (
        len(json.loads(readiness("history", "--format", "json", store=store).stdout)["runs"]) == 1
    )


def test_prune_and_bad_values_are_one_line_exit_2(
    local_app: tuple[Path, Path], tmp_path: Path
) -> None:
    _, inv = local_app
    store = tmp_path / "h.db"
    validate(inv, store)
    kept = readiness("history-prune", "--keep", "90d", store=store)
    assert kept.returncode == 0 and "pruned 0 run(s)" in kept.stdout
    for argv in (
        ("history-prune",),
        ("history-prune", "--keep", "soon"),
        ("history", "--since", "yesterday-ish"),
        ("history", "--format", "yaml"),
        ("diff", "--format", "html"),
        ("show", "latest", "--format", "pdf"),
    ):
        res = readiness(*argv, store=store)
        assert res.returncode == 2, (argv, res.stdout, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    first_only = readiness("diff", store=store)
    assert first_only.returncode == 2 and "nothing to compare with" in first_only.stderr


def test_store_none_records_nothing_and_a_broken_store_only_warns(
    local_app: tuple[Path, Path], tmp_path: Path
) -> None:
    _, inv = local_app
    res = validate(inv, "none")  # type: ignore[arg-type]
    assert res.returncode == 0 and res.stderr == ""
    blocked = tmp_path / "file"
    blocked.write_text("x")
    broken = validate(inv, blocked / "sub" / "h.db")
    assert broken.returncode == 0  # the audit's verdict, not the store's
    assert "readiness: warning: run not recorded: cannot open store" in broken.stderr
    assert "READY" in broken.stdout


def test_a_store_path_with_a_typo_in_its_directories_makes_no_tree(
    local_app: tuple[Path, Path], tmp_path: Path
) -> None:
    """`--store /srv/readinss/db/history.sqlite3` (a typo) made the whole mistyped tree and
    recorded the run there, exit 0, with no word: `history` then showed nothing of it.
    Like `mkdir` without `-p`, only the store's own directory is made; a deeper missing
    one is the one-line warning (validate, its exit code kept) or exit 2 (baseline-import)."""
    _, inv = local_app
    typo = tmp_path / "typo"
    store = typo / "db" / "history.sqlite3"
    res = validate(inv, store)
    assert res.returncode == 0 and "READY" in res.stdout, res.stderr
    assert res.stderr == (
        f"readiness: warning: run not recorded: cannot open store {store}: {typo} does not "
        "exist (readiness creates the store's own directory, not a tree: check the path)\n"
    )
    exported = tmp_path / "b.json"
    exported.write_text(
        json.dumps({"schema": "readiness.baseline/1", "name": "default", "entries": []})
    )
    imported = readiness("baseline-import", str(exported), store=store)
    assert (imported.returncode, imported.stdout) == (2, ""), imported
    assert imported.stderr.startswith(f"readiness: cannot open store {store}: {typo} does not")
    assert not typo.exists()
    one_level = tmp_path / "new" / "history.sqlite3"  # its own directory is still made
    assert validate(inv, one_level).returncode == 0 and one_level.is_file()


def test_remediate_runs_are_recorded(local_app: tuple[Path, Path], tmp_path: Path) -> None:
    app, inv = local_app
    store = tmp_path / "h.db"
    write_app(app, env={"MAHAVISHNU_POOLS__MAX_WORKERS": "0"})
    res = readiness("remediate", "-i", str(inv), "-c", "environment", "--quiet", store=store)
    assert res.returncode in (0, 1), res.stderr
    hist = json.loads(
        readiness("history", "--kind", "remediate", "--format", "json", store=store).stdout
    )
    assert len(hist["runs"]) == 1
    shown = json.loads(
        readiness("show", hist["runs"][0]["run_id"], "--format", "json", store=store).stdout
    )
    assert shown["remediation"]["mode"] == "dry-run"
    assert shown["hosts"][0]["checks"][0]["check_name"] == "environment"


JWT = "SENTINEL-store-jwt-4b5a69788796a5b4c3d2"
DB_PW = "SENTINEL-store-dbpw-7c1d"
TOKEN = "SENTINEL-store-token-5e6f"
STORE_PW = "SENTINEL-store-pgpw-9e8d"


def test_secret_canaries_reach_neither_the_store_nor_any_output(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    app = app_tree(
        env={
            "MAHAVISHNU_AUTH__SECRET": JWT,
            "MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING": f"postgresql://app:{DB_PW}@127.0.0.1:1/app",
            "MAHAVISHNU_SERVICE_TOKEN": TOKEN,
        },
        settings={"otel_storage": {"enabled": True}},
    )
    inv = tmp_path / "inv.yml"
    inv.write_text(
        f"all:\n  hosts:\n    local:\n      ansible_connection: local\n      readiness:\n        app_root: {app}\n"
    )
    # The app user names packages after the secrets: drift must neither list nor show them.
    site = app / ".venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / f"{JWT.replace('-', '_')}-1.0.dist-info").mkdir()
    (site / "tokpkg.dist-info").mkdir()
    (site / "tokpkg.dist-info" / "METADATA").write_text(f"Version: 1.0+{TOKEN}\n")
    store = tmp_path / "canary.db"
    page = tmp_path / "canary-report.html"
    outputs = []
    for _ in range(2):
        run = readiness("validate", "-i", str(inv), "--quiet", "--token", TOKEN, store=store)
        outputs.append(run.stdout + run.stderr)  # --token is refused (exit 2), never echoed
        run = readiness("validate", "-i", str(inv), "--quiet", "--format", "json", store=store)
        outputs.append(run.stdout + run.stderr)
        run = readiness(
            "validate", "-i", str(inv), "--quiet", "--drift", "--report", f"html:{page}",
            store=store,
        )  # fmt: skip
        outputs.append(run.stdout + run.stderr + page.read_text())
    for argv in (
        ("history",),
        ("history", "--format", "json"),
        ("history", "--hosts", "all", "--format", "json"),
        ("history", "--trend", "--format", "json"),
        ("diff", "--format", "json"),
        ("diff", "--format", "markdown"),
        ("drift", "--format", "json"),
        ("drift", "--since", "latest~1", "--format", "json"),
        ("baseline-accept",),
        ("baseline-export",),
        *(("show", "latest", "--format", f) for f in ("text", "table", "json", "markdown", "html")),
    ):
        res = readiness(*argv, store=store)
        outputs.append(res.stdout + res.stderr)
    # A store URL with a password on the command line is masked where the command is recorded.
    pg_like = readiness("history", store=f"postgresql://u:{STORE_PW}@127.0.0.1:1/db")
    outputs.append(pg_like.stdout + pg_like.stderr)
    assert pg_like.returncode == 2
    blob = "\n".join(outputs).encode()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("canary.db")]
    assert files, "the store was not written"
    raw = b"".join(p.read_bytes() for p in files)
    assert b"MAHAVISHNU_AUTH__SECRET" in raw  # the finding names the variable...
    assert b'"package:tokpkg"' in raw  # fingerprinted, its version not shown
    for secret in (JWT, DB_PW, TOKEN, STORE_PW):
        for form in (secret, secret.lower(), secret.lower().replace("-", "_")):
            assert form.encode() not in raw  # ...never its value
            assert form.encode() not in blob


def test_an_unreachable_shared_store_warns_once_and_never_blocks_the_audit(
    local_app: tuple[Path, Path],
) -> None:
    from tests.services.ports import closed_port

    _, inv = local_app
    url = f"postgresql://ops:SENTINEL-closed-pw@127.0.0.1:{closed_port()}/readiness"
    res = validate(inv, url)  # type: ignore[arg-type]
    assert res.returncode == 0 and "READY" in res.stdout
    warnings = [line for line in res.stderr.splitlines() if "run not recorded" in line]
    assert len(warnings) == 1 and warnings[0].startswith(
        "readiness: warning: run not recorded: cannot connect"
    )
    assert "SENTINEL-closed-pw" not in res.stderr
    needed = validate(inv, url, "--baseline")  # type: ignore[arg-type]
    assert needed.returncode == 2
    assert needed.stderr.strip().startswith(
        "readiness: cannot connect to store postgresql://ops:***@"
    )


def test_show_of_a_suite_run_is_the_live_report_with_its_gates(
    local_app: tuple[Path, Path], tmp_path: Path
) -> None:
    _, inv = local_app
    store = tmp_path / "h.db"
    argv = ("check-config", "-i", str(inv), "--quiet")
    live_text = readiness(*argv, store=store)
    assert "QUALITY GATES (check-config)" in live_text.stdout
    assert readiness("show", "latest", store=store).stdout == live_text.stdout
    live = json.loads(readiness(*argv, "--format", "json", store=store).stdout)
    shown = json.loads(readiness("show", "latest", "--format", "json", store=store).stdout)
    assert shown.pop("stored_run")["kind"] == "check-config"
    for doc in (live, shown):  # per-result times are not stored (the run's start is)
        for host in doc["hosts"]:
            for check in host["checks"]:
                check.pop("timestamp")
    assert shown == live


def test_history_of_an_empty_store_names_filters_only_when_given(tmp_path: Path) -> None:
    """`history` on a fresh store said "no runs recorded (matching these filters)" with no
    filter given. Now: which store, and the filters only when there are some."""
    store = tmp_path / "empty.sqlite3"
    open_store(parse_location(str(store))).close()  # exists, holds no run
    for argv, said in (
        ((), f"no runs recorded in store {store}"),
        (("--kind", "remediate"), f"no runs recorded in store {store} matching --kind remediate"),
        (("--trend",), f"no results recorded in store {store}"),
        (
            ("--check", "environment"),
            f"no results recorded in store {store} matching --check environment",
        ),
    ):
        res = readiness("history", *argv, store=store)
        assert (res.returncode, res.stdout, res.stderr) == (0, said + "\n", ""), argv


@pytest.mark.parametrize("store", ["mysql://u:pw@db/x", "redis://127.0.0.1/0", "sqllite:///x.db"])
def test_a_store_url_of_another_scheme_is_refused_not_made_a_directory(
    tmp_path: Path, store: str
) -> None:
    """`--store mysql://...` was taken as a relative SQLite path: a directory "mysql:" with a
    fresh empty store in it, and "no runs recorded"."""
    res = subprocess.run(
        [READINESS, "history", "--store", store],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    scheme = store.split("://", maxsplit=1)[0]
    assert res.returncode == 2 and res.stdout == "", res
    assert res.stderr.startswith("readiness: results store ") and "pw" not in res.stderr
    assert f"unsupported scheme {scheme}://" in res.stderr and len(res.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["history", "validate"])
@pytest.mark.parametrize(
    "store",
    [
        "host=127.0.0.1 port=1 dbname=x password=Kv-Store-Pw-88",
        # libpq reads any of its keywords first; only these seven were recognised
        "sslmode=disable host=127.0.0.1 port=1 dbname=x password=Kv-Store-Pw-88",
        "connect_timeout=5 user=app password = Kv-Store-Pw-88",
    ],
)
def test_a_key_value_store_dsn_is_refused_never_made_a_file_named_after_its_password(
    tmp_path: Path, command: str, store: str
) -> None:
    """`--store "host=db dbname=x password=…"` was taken as an SQLite path: `validate` made
    a file named after the password in the current directory."""
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    local:\n      ansible_connection: local\n")
    argv = [READINESS, command, "--store", store]
    argv += ["-i", str(inventory), "-q"] if command == "validate" else []
    res = subprocess.run(
        argv,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert res.returncode == 2 and res.stdout == "", res
    assert res.stderr.startswith("readiness: results store: a key=value connection string")
    assert len(res.stderr.splitlines()) == 1 and "Kv-Store-Pw-88" not in res.stderr
    assert list(tmp_path.iterdir()) == [inventory]


def test_what_libpq_reads_as_a_key_value_dsn_is_refused_and_what_it_refuses_is_a_path() -> None:
    """Differential against libpq's own parser (PQconninfoParse, through psycopg): every
    keyword it knows, first in the string, makes a connection string, and a password in
    one must never become a file name; strings libpq refuses stay SQLite paths."""
    import psycopg
    from psycopg import pq
    from psycopg.conninfo import conninfo_to_dict

    from readiness.errors import UsageError
    from readiness.store.location import LIBPQ_KEYWORDS

    keywords = {o.keyword.decode() for o in pq.Conninfo.get_defaults()}
    assert keywords <= LIBPQ_KEYWORDS, f"a newer libpq: add {sorted(keywords - LIBPQ_KEYWORDS)}"
    for keyword in sorted(keywords):
        dsn = f"{keyword}=1 host=127.0.0.1 password=Kv-Canary-9"
        assert conninfo_to_dict(dsn)["password"] == "Kv-Canary-9"  # libpq: a connection string
        with pytest.raises(UsageError) as refused:
            parse_location(dsn)
        assert "Kv-Canary-9" not in str(refused.value), keyword
    for path in ("history.db", "/srv/a=b.sqlite3", "a=b.db", "runs/2026 11.db", "~/h.db"):
        with pytest.raises(psycopg.ProgrammingError):
            conninfo_to_dict(path)
        assert parse_location(path).kind == "sqlite", path


def test_baseline_accept_by_default_takes_the_latest_audit_not_a_remediate_run(
    local_app: tuple[Path, Path], tmp_path: Path
) -> None:
    """A dry-run `remediate` after `validate` is recorded too, and `baseline-accept` took
    it: a baseline of only the fixable checks, so `validate --baseline` found every other
    check a new problem. The latest validate or suite run is accepted instead."""
    _app, inv = local_app
    store = tmp_path / "h.db"
    audit = readiness("validate", "-i", str(inv), "--quiet", "--json", store=store)
    assert audit.returncode in (0, 1), audit.stderr
    run_id = json.loads(readiness("show", "latest", "-o", "json", store=store).stdout)[
        "stored_run"
    ]["run_id"]
    plan = readiness("remediate", "-i", str(inv), "-H", "local", "-q", store=store)
    assert plan.returncode == 0, plan.stderr
    kinds = json.loads(readiness("history", "-o", "json", store=store).stdout)["runs"]
    assert [r["kind"] for r in kinds] == ["remediate", "validate"]
    accepted = readiness("baseline-accept", store=store)
    assert accepted.returncode == 0, accepted.stderr
    assert f"of run {run_id} now form baseline 'default'" in accepted.stdout
    judged = readiness("validate", "-i", str(inv), "--quiet", "--baseline", store=store)
    assert judged.returncode == 0, judged.stdout[-800:]  # nothing new against itself


@pytest.mark.parametrize(
    ("argv", "code", "said"),
    [
        (("history",), 0, "no runs recorded in store {store} (it does not exist)"),
        (("history", "--trend"), 0, "no results recorded in store {store} (it does not exist)"),
        (("show", "latest"), 2, "readiness: no run 'latest' in store {store} (it does not exist)"),
        (("diff",), 2, "readiness: no run 'latest' in store {store} (it does not exist)"),
        (("drift",), 2, "readiness: no run 'latest' in store {store} (it does not exist)"),
        (
            ("baseline-export",),
            2,
            "readiness: no baseline 'default' in store {store} (it does not exist)",
        ),
        (
            ("history-prune", "--keep", "30d"),
            0,
            "pruned 0 run(s) older than 30d from store {store} (it does not exist)",
        ),
    ],
)
def test_reading_a_store_that_does_not_exist_creates_neither_file_nor_directory(
    tmp_path: Path, argv: tuple[str, ...], code: int, said: str
) -> None:
    """`history --store /x/new.sqlite3` created /x and an empty store just by reading it."""
    store = tmp_path / "x" / "new.sqlite3"
    res = readiness(*argv, store=store)
    out = res.stdout if code == 0 else res.stderr
    assert (res.returncode, out) == (code, said.format(store=store) + "\n"), res
    assert list(tmp_path.iterdir()) == []


def test_a_diff_named_the_wrong_way_round_says_so(tmp_path: Path) -> None:
    """`diff --old latest --new latest~1` compared the runs backwards without a word: the
    newer run's regression read as "resolved" and the exit code as 0."""
    from readiness.model import Status
    from tests.store.helpers import fleet, meta, sqlite_store

    store = tmp_path / "h.db"
    with sqlite_store(store) as db:
        older = db.record(fleet({"web1": {"environment": Status.READY}}), meta(minutes=0))
        newer = db.record(fleet({"web1": {"environment": Status.NOT_READY}}), meta(minutes=5))

    backwards = readiness("diff", "--old", newer, "--new", older, store=store)
    assert backwards.returncode == 0  # compared as given: the regression is undone that way
    assert "  resolved web1 / environment: NOT_READY → READY" in backwards.stdout
    assert backwards.stderr == (
        f"readiness: warning: --old {newer} started after --new {older}: showing what "
        "changed going back in time (swap them for what the newer run changed)\n"
    )
    same = readiness("diff", "--old", "latest", "--new", newer, store=store)
    assert same.returncode == 0 and "  no changes" in same.stdout
    assert same.stderr == (
        f"readiness: warning: --old and --new are the same run {newer}: nothing can differ\n"
    )
    forwards = readiness("diff", "--old", older, "--new", newer, store=store)
    assert forwards.returncode == 1 and forwards.stderr == ""


def test_a_backwards_diff_says_so_in_its_markdown_and_json_not_only_on_stderr(
    tmp_path: Path,
) -> None:
    """`diff --old NEWER --new OLDER --format markdown` is a PR comment: the stderr warning
    never reaches it, and its heading read "NOT WORSE (… 1 resolved …)" for a regression.
    The heading says the runs are backwards now, and JSON carries "backwards": true."""
    from readiness.model import Status
    from tests.store.helpers import fleet, meta, sqlite_store

    store = tmp_path / "h.db"
    with sqlite_store(store) as db:
        older = db.record(fleet({"web1": {"environment": Status.READY}}), meta(minutes=0))
        newer = db.record(fleet({"web1": {"environment": Status.NOT_READY}}), meta(minutes=5))
    mark = f"; backwards: {newer} is the newer run"
    for fmt in ("markdown", "text", "table"):
        res = readiness("diff", "--old", newer, "--new", older, "--format", fmt, store=store)
        assert res.returncode == 0, res.stderr  # compared as given
        assert res.stdout.splitlines()[0].endswith(mark), (fmt, res.stdout)
        assert "started after --new" in res.stderr
        ahead = readiness("diff", "--old", older, "--new", newer, "--format", fmt, store=store)
        assert ahead.returncode == 1 and "backwards" not in ahead.stdout, (fmt, ahead.stdout)
    for names, backwards in (((newer, older), True), ((older, newer), False)):
        res = readiness(
            "diff", "--old", names[0], "--new", names[1], "--format", "json", store=store
        )
        doc = json.loads(res.stdout)
        assert doc["backwards"] is backwards and [r["run_id"] for r in doc["runs"]] == list(names)


def test_a_problem_found_on_a_host_that_was_unreachable_is_new_not_better(
    tmp_path: Path,
) -> None:
    """web1 was down when the baseline was accepted (every check UNREACHABLE); back up, it
    shows a real NOT_READY. That counted as "better" than the outage: `diff` exited 0 and
    `validate --baseline` took the never-seen problem as accepted, also exit 0."""
    app = write_app(tmp_path / "app", env={"MAHAVISHNU_AUTH__SECRET": None})
    inv = tmp_path / "inv.yml"
    store = tmp_path / "h.db"
    inv.write_text(  # an address nothing listens on: UNREACHABLE
        "all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.9\n      ansible_port: 1\n"
    )
    down = readiness("validate", "-i", str(inv), "-H", "web1", "-c", "environment", store=store)
    assert down.returncode == 1 and "UNREACHABLE" in down.stdout, down.stderr
    assert readiness("baseline-accept", store=store).returncode == 0

    inv.write_text(
        "all:\n  hosts:\n    web1:\n      ansible_connection: local\n"
        f"      readiness:\n        app_root: {app}\n"
    )
    up = readiness(
        "validate", "-i", str(inv), "-H", "web1", "-c", "environment", "--baseline", store=store
    )
    assert up.returncode == 1, up.stdout + up.stderr
    assert "REGRESSION web1 / environment: NOT_READY (baseline: UNREACHABLE)" in up.stdout

    diff = readiness("diff", store=store)
    assert diff.returncode == 1, diff.stdout + diff.stderr
    assert "  new      web1 / environment: UNREACHABLE → NOT_READY" in diff.stdout

    # the outage itself stays accepted: still down is known, not a regression
    inv.write_text(
        "all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.9\n      ansible_port: 1\n"
    )
    still_down = readiness(
        "validate", "-i", str(inv), "-H", "web1", "-c", "environment", "--baseline", store=store
    )
    assert still_down.returncode == 0, still_down.stdout + still_down.stderr


def test_every_report_of_a_ratcheted_run_gives_the_exit_code_the_cli_gives(
    local_app: tuple[Path, Path], tmp_path: Path
) -> None:
    """`validate --baseline` with only known problems exits 0, yet its JSON said
    `"exit_code": 1, "verdict": "fail"`, the Prometheus file `readiness_run_exit_code 1`,
    the table `(exit 1)` and `history` recorded exit 1. The Nagios state stays the
    fleet's (CRITICAL): a CI ratchet pages nobody less."""
    app, inv = local_app
    store = tmp_path / "h.db"
    write_app(app, env={"MAHAVISHNU_AUTH__SECRET": None})
    assert validate(inv, store).returncode == 1
    assert readiness("baseline-accept", store=store).returncode == 0
    prom, table, nagios = tmp_path / "r.prom", tmp_path / "r.txt", tmp_path / "r.nagios"
    reports = ["--report", f"prometheus:{prom}", "--report", f"table:{table}"]
    reports += ["--report", f"nagios:{nagios}", "--format", "json"]
    known = validate(inv, store, "--baseline", *reports)
    assert known.returncode == 0, known.stderr
    doc = json.loads(known.stdout)
    assert (doc["exit_code"], doc["verdict"], doc["overall_status"]) == (0, "pass", "not_ready")
    assert "\nreadiness_run_exit_code 0.0\n" in prom.read_text()
    assert "overall: NOT_READY (exit 0)" in table.read_text()
    assert nagios.read_text().startswith("READINESS CRITICAL - 1/1 hosts not ready: local")
    runs = json.loads(readiness("history", "--format", "json", store=store).stdout)["runs"]
    assert [r["exit_code"] for r in runs] == [0, 1]
    shown = json.loads(readiness("show", "latest", "--format", "json", store=store).stdout)
    assert (shown["exit_code"], shown["verdict"]) == (0, "pass")

    stricter = validate(inv, store, "--baseline", "--fail-on", "degraded", "--format", "json")
    doc = json.loads(stricter.stdout)  # still known: NOT_READY was accepted
    assert stricter.returncode == doc["exit_code"] == 0 and doc["fail_on"] == "degraded"


def test_baseline_export_never_replaces_a_special_file(tmp_path: Path) -> None:
    """`baseline-export --output /dev/stdout` (or /dev/full, a FIFO) wrote a temporary file
    beside it and renamed it over: as root that replaced the device node in /dev with a
    regular file. Now it is refused like `--save`/`--report` (one line, exit 2). A FIFO
    and a link to /dev/null here stand in for /dev (a test must not risk the real one)."""
    import os
    import stat

    from readiness.model import Status
    from readiness.store.baseline import entries_from_run
    from tests.store.helpers import fleet, meta, sqlite_store

    store = tmp_path / "h.db"
    with sqlite_store(store) as db:
        db.record(fleet({"web1": {"environment": Status.READY}}), meta())
        db.set_baseline(entries_from_run(db.load("latest")))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    null_link = tmp_path / "null"
    null_link.symlink_to("/dev/null")
    for target in (fifo, null_link):
        res = readiness("baseline-export", "--output", str(target), store=store)
        assert res.returncode == 2 and res.stdout == "", res
        assert res.stderr == (
            f"readiness: --output {target}: cannot write: {target} is not a regular file\n"
        )
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and null_link.is_symlink()
    leftovers = {p.name for p in tmp_path.iterdir()} - {"h.db", "h.db-wal", "h.db-shm"}
    assert leftovers == {"null", "pipe"}  # no temporary file left behind
    written = readiness("baseline-export", "--output", str(tmp_path / "b.json"), store=store)
    assert written.returncode == 0 and json.loads((tmp_path / "b.json").read_text())["entries"]


def test_baseline_export_onto_the_store_itself_is_refused(tmp_path: Path) -> None:
    """`baseline-export --output` naming the store (a slip of the shell's history, or a
    symlink to it) replaced the whole store with the JSON, exit 0: every run was gone."""
    from readiness.model import Status
    from readiness.store.baseline import entries_from_run
    from tests.store.helpers import fleet, meta, sqlite_store

    store = tmp_path / "h.db"
    with sqlite_store(store) as db:
        db.record(fleet({"web1": {"environment": Status.READY}}), meta())
        db.set_baseline(entries_from_run(db.load("latest")))
    link = tmp_path / "link.json"
    link.symlink_to(store)
    before = store.read_bytes()
    for given in (store, link):
        res = readiness("baseline-export", "--output", str(given), store=store)
        assert (res.returncode, res.stdout) == (2, ""), res
        assert res.stderr == (
            f"readiness: --output {given}: cannot write: it is the results store\n"
        )
    assert store.read_bytes() == before
    assert readiness("history", store=store).returncode == 0


def test_baseline_import_reads_only_a_bounded_regular_file(tmp_path: Path) -> None:
    """`baseline-import /dev/zero` read until memory ran out (a MemoryError traceback) and
    `baseline-import FIFO` waited for a writer forever: one line and exit 2, at once."""
    import os

    from readiness.store.baseline import MAX_BASELINE_BYTES

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.json"
    with huge.open("wb") as fh:  # sparse: costs no disk
        fh.truncate(MAX_BASELINE_BYTES + 1)
    store = tmp_path / "h.db"
    for given, why in (
        (fifo, "not a regular file"),
        (Path("/dev/null"), "not a regular file"),  # /dev/zero's kind, without its risk
        (tmp_path, "not a regular file"),
        (huge, "larger than 64 MiB"),
    ):
        started = time.monotonic()
        res = readiness("baseline-import", str(given), store=store)
        assert (res.returncode, res.stdout) == (2, ""), res
        assert res.stderr == f"readiness: cannot read baseline file {given}: {why}\n"
        assert time.monotonic() - started < 30
    assert not store.exists()


def test_baseline_export_into_a_directory_that_does_not_exist_is_exit_2_as_cp_does(
    tmp_path: Path,
) -> None:
    """`baseline-export --output ci/baselnie/b.json` (a typo) made the directory tree
    `ci/baselnie/` and wrote there, exit 0. Like `cp`, it is one line and exit 2, and
    nothing is created — through a dangling symlink either; through a symlink to a file,
    that file is replaced and the link kept, and an existing file is overwritten."""
    from readiness.model import Status
    from readiness.store.baseline import entries_from_run
    from tests.store.helpers import fleet, meta, sqlite_store

    store = tmp_path / "h.db"
    with sqlite_store(store) as db:
        db.record(fleet({"web1": {"environment": Status.READY}}), meta())
        db.set_baseline(entries_from_run(db.load("latest")))
    out = tmp_path / "out"
    out.mkdir()
    dangling = out / "link.json"
    dangling.symlink_to(tmp_path / "gone" / "b.json")
    for given, missing in (
        (out / "typo" / "deeper" / "b.json", out / "typo" / "deeper"),
        (dangling, tmp_path / "gone"),
    ):
        res = readiness("baseline-export", "--output", str(given), store=store)
        assert (res.returncode, res.stdout) == (2, ""), res
        assert res.stderr == (
            f"readiness: --output {given}: cannot write: no such directory {missing}\n"
        )
    assert sorted(p.name for p in out.iterdir()) == ["link.json"]
    assert not (tmp_path / "gone").exists()
    real = out / "real.json"
    real.write_text("old\n")
    link = out / "to-real.json"
    link.symlink_to(real)
    for given in (real, link):
        res = readiness("baseline-export", "--output", str(given), store=store)
        assert res.returncode == 0, res
        assert json.loads(real.read_text())["entries"][0]["host"] == "web1"
    assert link.is_symlink() and sorted(p.name for p in out.iterdir()) == [
        "link.json",
        "real.json",
        "to-real.json",
    ]


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (("--baseline", "--store", "none"), "--baseline needs a results store (--store is 'none')"),
        (("--drift", "--store", "none"), "--drift needs a results store (--store is 'none')"),
        (
            ("--baseline", "--store", "{store}"),
            "no baseline 'default' in store {store} (it does not exist): run "
            "`readiness baseline-accept` or `readiness baseline-import FILE` first",
        ),
    ],
)
def test_a_baseline_or_drift_the_store_cannot_give_is_exit_2_before_the_audit(
    silent_server: tuple[str, int], tmp_path: Path, extra: tuple[str, ...], said: str
) -> None:
    """docs/exit-codes.md: 2 is a usage error "before anything runs"; docs/history.md:
    `validate --baseline` on a store that does not exist creates nothing. The whole fleet
    used to be audited first (here: a host that never answers, 20 s) and the store created."""
    addr, port = silent_server
    inv = tmp_path / "inv.yml"
    inv.write_text(
        f"all:\n  hosts:\n    stall:\n      ansible_host: {addr}\n      ansible_port: {port}\n"
    )
    known = tmp_path / "known_hosts"
    known.write_text("")
    store = tmp_path / "none-yet" / "h.db"
    argv = [a.format(store=store) for a in extra]
    slow = ("-T", "20", "--host-deadline", "20", "--known-hosts", str(known), "-H", "stall")
    started = time.monotonic()
    res = readiness("validate", "-i", str(inv), "-c", "environment", *slow, *argv)
    took = time.monotonic() - started
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.splitlines() == [f"readiness: {said.format(store=store)}"]
    assert took < 10, f"the unanswering host was audited first ({took:.1f} s)"
    assert not store.parent.exists()


def test_another_programs_sqlite_database_is_refused_and_left_untouched(
    local_app: tuple[Path, Path], tmp_path: Path
) -> None:
    """`history --store app.db` (a mistyped path) switched another program's database to
    WAL mode and created readiness' tables in it; `validate` then recorded runs there."""
    import sqlite3

    _, inv = local_app
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (id INTEGER, name TEXT)")
        conn.execute("INSERT INTO users VALUES (1, 'ada')")
    conn.close()
    before = foreign.read_bytes()
    said = (
        f"store {foreign} is not a readiness store (an SQLite database with 1 other "
        "table(s)): it is left as it is; name another file"
    )
    for argv in (("history",), ("diff",), ("history-prune", "--keep", "1d")):
        res = readiness(*argv, store=foreign)
        assert (res.returncode, res.stdout, res.stderr) == (2, "", f"readiness: {said}\n"), argv
    run = validate(inv, foreign)
    assert run.returncode == 0  # the audit's verdict; recording is what is refused
    assert f"readiness: warning: run not recorded: {said}" in run.stderr
    assert foreign.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app", "app.db", "inv.yml"]


def test_history_since_a_time_after_the_clock_says_so(tmp_path: Path) -> None:
    """`history --since 09:00` typed in local time ahead of UTC is read as UTC: a time in
    the future, and the answer was "no runs", exit 0, with no hint why. It still answers
    (another controller's clock may be ahead), with one warning line."""
    from datetime import datetime, timedelta, timezone

    from readiness.model import Status
    from tests.store.helpers import fleet, meta, sqlite_store

    store = tmp_path / "h.db"
    with sqlite_store(store) as db:
        db.record(fleet({"web1": {"environment": Status.READY}}), meta())
    ahead = (datetime.now(timezone.utc) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    res = readiness("history", "--since", ahead, store=store)
    assert res.returncode == 0 and res.stdout.startswith("no runs recorded"), res
    warning = res.stderr.splitlines()
    assert len(warning) == 1, res.stderr
    assert warning[0].startswith(f"readiness: warning: --since {ahead} is "), res.stderr
    assert warning[0].endswith("UTC); a time without a zone is UTC"), res.stderr
    assert readiness("history", "--since", "2d", store=store).stderr == ""


def test_since_a_date_before_year_1000_or_out_of_range_in_utc(tmp_path: Path) -> None:
    """`history --since 0999-01-01` answered "no runs" (year 999 was written "999", which
    sorts after "2026"); a date whose UTC time is before year 1 or after 9999 was a
    traceback."""
    from readiness.model import Status
    from tests.store.helpers import fleet, meta, sqlite_store

    store = tmp_path / "h.db"
    with sqlite_store(store) as db:
        run = db.record(fleet({"web1": {"environment": Status.DEGRADED}}), meta())
    for since in ("0999-01-01", "0001-01-01"):
        listed = readiness("history", "--since", since, "--format", "json", store=store)
        assert listed.returncode == 0, listed.stderr
        assert [r["run_id"] for r in json.loads(listed.stdout)["runs"]] == [run]
        timeline = readiness("history", "--hosts", "web1", "--since", since, store=store)
        assert "web1" in timeline.stdout and "⚠" in timeline.stdout, timeline
    for since in ("0001-01-01T00:00+01:00", "9999-12-31T23:59-01:00"):
        res = readiness("history", "--since", since, store=store)
        assert (res.returncode, res.stdout) == (2, ""), res
        assert res.stderr == f"readiness: bad --since '{since}': out of range in UTC\n"


def test_diff_without_old_compares_with_the_run_that_started_before_not_the_one_recorded(
    tmp_path: Path,
) -> None:
    """A long run (watch's, over the whole fleet) recorded after a quick manual run that
    started later: plain `diff` compared them backwards, warning about an `--old` nobody
    had named, its regression read as nothing ("backwards" in the heading, exit 0)."""
    from readiness.model import Status
    from tests.store.helpers import fleet, meta, sqlite_store

    store = tmp_path / "h.db"
    with sqlite_store(store) as db:
        first = db.record(fleet({"web1": {"environment": Status.READY}}), meta(minutes=0))
        db.record(fleet({"web1": {"environment": Status.NOT_READY}}), meta(minutes=7))
        long = db.record(fleet({"web1": {"environment": Status.NOT_READY}}), meta(minutes=5))
    res = readiness("diff", store=store)
    assert (res.returncode, res.stderr) == (1, ""), res
    assert res.stdout.splitlines()[:2] == [
        f"diff {first} → {long}: WORSE (1 new, 0 worse, 0 changed, 0 better, 0 resolved)",
        "  new      web1 / environment: READY → NOT_READY",
    ]
    # equal start times: the one recorded first is the earlier
    with sqlite_store(store) as db:
        again = db.record(fleet({"web1": {"environment": Status.READY}}), meta(minutes=5))
    same_start = readiness("diff", "--format", "json", store=store)
    doc = json.loads(same_start.stdout)
    assert (doc["old_run"], doc["new_run"], doc["backwards"]) == (long, again, False)


def test_latest_n_beyond_any_store_is_no_such_run(tmp_path: Path) -> None:
    """`show latest~99999999999999999999` was "store PATH: datatype mismatch" (its LIMIT
    overflowed SQLite's integers)."""
    from readiness.model import Status
    from tests.store.helpers import fleet, meta, sqlite_store

    store = tmp_path / "h.db"
    with sqlite_store(store) as db:
        db.record(fleet({"web1": {"environment": Status.READY}}), meta())
    for ref in ("latest~1", "latest~99999999999999999999"):
        for argv in (("show", ref), ("diff", "--old", ref), ("drift", "--run", ref)):
            res = readiness(*argv, store=store)
            assert (res.returncode, res.stdout) == (2, ""), res
            assert res.stderr == f"readiness: no run '{ref}' in store {store}\n"


@pytest.mark.parametrize(
    "password",
    [
        "SENTINEL PWPART spaces",
        "SENTINEL%zzbadpercent",
        "SENTINEL@ATPART@SIGNPART",
        "SENTINEL/SLASHPART",
    ],
)
def test_a_malformed_store_url_never_shows_its_password(
    local_app: tuple[Path, Path], password: str
) -> None:
    """libpq quotes what it made of a malformed URL: a password with a space was shown
    whole (twice), a bad %-escape came back as 'invalid percent-encoded token: "..."', and
    after an unencoded '@' the rest was shown as the host name."""
    from tests.services.ports import closed_port

    _, inv = local_app
    url = f"postgresql://ops:{password}@127.0.0.1:{closed_port()}/readiness"
    pieces = [p for p in password.replace("@", " ").replace("/", " ").split() if p]
    shown = readiness("history", store=url)
    assert shown.returncode == 2 and len(shown.stderr.splitlines()) == 1, shown
    assert shown.stderr.startswith("readiness: cannot connect to store postgresql://ops:***@")
    run = validate(inv, url)  # type: ignore[arg-type]
    assert run.returncode == 0 and "run not recorded: cannot connect" in run.stderr
    for piece in [password, *pieces]:
        assert piece not in shown.stdout + shown.stderr + run.stdout + run.stderr, piece


def test_a_run_cut_short_is_not_a_regression_in_diff(tmp_path: Path) -> None:
    """A run interrupted by Ctrl-C (watch's second signal, validate's first) records the
    hosts it never got to as INTERRUPTED: plain `diff` called each of their checks a
    "new" problem (READY → INTERRUPTED) or "worse" (NOT_READY → INTERRUPTED), exit 1."""
    from readiness.model import Status
    from tests.store.helpers import fleet, meta, sqlite_store

    store = tmp_path / "h.db"
    before = {"environment": Status.READY, "documentation": Status.NOT_READY}
    with sqlite_store(store) as db:
        db.record(fleet({"web1": before, "web2": before}), meta(minutes=0))
        cut = {"environment": Status.INTERRUPTED, "documentation": Status.INTERRUPTED}
        worse = {"environment": Status.NOT_READY, "documentation": Status.NOT_READY}
        report = fleet({"web1": worse, "web2": cut}, interrupted=True, interrupted_by="SIGINT")
        new = db.record(report, meta(minutes=5))
    res = readiness("diff", store=store)
    assert res.returncode == 1, res  # web1 was audited: its regression still counts
    assert res.stdout.splitlines()[1:] == [
        "not compared (interrupted in the new run): web2",
        "  new      web1 / environment: READY → NOT_READY",
        "           now: environment is not_ready",
        "           → fix environment",
    ]
    doc = json.loads(readiness("diff", "--format", "json", store=store).stdout)
    assert doc["not_compared_interrupted"] == ["web2"]
    assert [(c["host"], c["change"]) for c in doc["changes"]] == [("web1", "new")]
    with sqlite_store(store) as db:  # only the cut-short host differs: not worse
        db.record(fleet({"web1": worse, "web2": cut}, interrupted=True), meta(minutes=9))
    assert readiness("diff", "--old", new, store=store).returncode == 0


def test_a_diff_names_what_it_could_not_compare_instead_of_no_changes(tmp_path: Path) -> None:
    """`diff` after a `-c environment` run that followed a full one said "no changes",
    exit 0: the checks the new run did not run were silently not compared. A host down in
    both runs (UNREACHABLE → UNREACHABLE) was "no change" too, though nothing was seen.
    Both are named now, in every format; the exit code is unchanged (nothing got worse)."""
    from readiness.model import Status
    from tests.store.helpers import fleet, meta, sqlite_store

    store = tmp_path / "h.db"
    down = {"environment": Status.UNREACHABLE, "documentation": Status.UNREACHABLE}
    with sqlite_store(store) as db:
        db.record(
            fleet(
                {
                    "web1": {"environment": Status.READY, "documentation": Status.DEGRADED},
                    "web2": down,
                }
            ),
            meta(minutes=0),
        )
        db.record(
            fleet(
                {"web1": {"environment": Status.READY}, "web2": {"environment": Status.UNREACHABLE}}
            ),
            meta(minutes=5),
        )
    res = readiness("diff", store=store)
    assert res.returncode == 0, res
    assert res.stdout.splitlines()[1:] == [
        "not compared (checks not run in the new run): documentation",
        "not compared (nothing seen in either run: unreachable or error): web2",
    ]
    doc = json.loads(readiness("diff", "--format", "json", store=store).stdout)
    assert (doc["checks_not_compared"], doc["not_compared_unseen"]) == (["documentation"], ["web2"])
    md = readiness("diff", "--format", "markdown", store=store).stdout
    assert "- `not compared (checks not run in the new run): documentation`" in md
    assert "- `not compared (nothing seen in either run: unreachable or error): web2`" in md


def test_baseline_accept_by_default_skips_a_run_cut_short(tmp_path: Path) -> None:
    """After a Ctrl-C'd run, `baseline-accept` took it: the hosts it never got to were
    accepted as INTERRUPTED (which accepts only itself), replacing their accepted
    statuses, so the next `validate --baseline` failed on every known problem."""
    from readiness.model import Status
    from tests.store.helpers import fleet, meta, sqlite_store

    store = tmp_path / "h.db"
    known = {"environment": Status.NOT_READY, "documentation": Status.READY}
    cut = {"environment": Status.INTERRUPTED, "documentation": Status.INTERRUPTED}
    with sqlite_store(store) as db:
        complete = db.record(fleet({"web1": known, "web2": known}), meta(minutes=0))
        report = fleet({"web1": known, "web2": cut}, interrupted=True, interrupted_by="SIGINT")
        db.record(report, meta(minutes=5))
    accepted = readiness("baseline-accept", store=store)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout == f"4 result(s) of run {complete} now form baseline 'default'\n"
    entries = json.loads(readiness("baseline-export", store=store).stdout)["entries"]
    assert {(e["host"], e["check"], e["status"]) for e in entries} == {
        (h, c, s.value) for h in ("web1", "web2") for c, s in known.items()
    }


def test_an_audit_starts_while_another_controller_holds_the_write_lock(
    local_app: tuple[Path, Path], tmp_path: Path
) -> None:
    """Reading the store's key took the write lock before the audit: behind another
    controller's long recording or prune the audit waited up to 30 s to start, then ran
    unrecorded ("database is locked") even when the lock was free by the time it ended."""
    import sqlite3

    from tests.services.cli import LiveCli

    _, inv = local_app
    store = tmp_path / "h.db"
    assert validate(inv, store).returncode == 0
    writer = sqlite3.connect(store, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM findings WHERE 0")
    argv = ["validate", "-i", str(inv), "-c", "environment", "--quiet", "--store", str(store)]
    cli = LiveCli(argv, cwd=ROOT)
    try:
        with cli.changed:  # the report is printed while the lock is still held
            printed = cli.changed.wait_for(lambda: any("READY" in line for line in cli.out), 20)
        writer.execute("COMMIT")
        assert printed, "".join(cli.err)
        _out, err = cli.finish(within=40)
    finally:
        writer.close()
        cli.close()
    assert cli.proc.returncode == 0 and err == "", err
    runs = json.loads(readiness("history", "--format", "json", store=store).stdout)["runs"]
    assert len(runs) == 2


def test_history_since_leaves_out_a_run_that_started_before_it_though_recorded_after(
    tmp_path: Path,
) -> None:
    """Timelines and trends took every run recorded after the first run started since
    --since: a long run that started before it, recorded later, was in `history --hosts
    --since` and `--trend --since` (though not in the plain `history --since` list)."""
    from datetime import timedelta

    from readiness.model import Status, utcnow
    from readiness.store.db import RunMeta
    from tests.store.helpers import fleet, sqlite_store

    store = tmp_path / "h.db"
    now = utcnow()

    def at(hours_ago: float) -> RunMeta:
        return RunMeta(
            "validate", "web", "readiness validate", "ctl", "me", now - timedelta(hours=hours_ago)
        )

    with sqlite_store(store) as db:
        quick = db.record(fleet({"web1": {"environment": Status.READY}}), at(0.5))
        db.record(fleet({"web1": {"environment": Status.NOT_READY}}), at(2))  # long, recorded last
    runs = json.loads(readiness("history", "--since", "1h", "--format", "json", store=store).stdout)
    assert [r["run_id"] for r in runs["runs"]] == [quick]
    timeline = readiness(
        "history", "--hosts", "web1", "--since", "1h", "--format", "json", store=store
    )
    series = json.loads(timeline.stdout)["hosts"]["web1"]["environment"]
    assert [p["run_id"] for p in series] == [quick]
    trend = readiness("history", "--trend", "--since", "1h", "--format", "json", store=store)
    assert [p["run_id"] for p in json.loads(trend.stdout)["checks"]["environment"]] == [quick]
