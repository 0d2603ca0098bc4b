"""Drift fingerprints: keyed, never plain; odd hosts out across a group; changes over time."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from readiness.appconfig import AppConfig, EnvVar
from readiness.model import Status
from readiness.store.drift import DriftCollector, drift_across_hosts, drift_over_time, render_drift
from tests.store.helpers import fleet, meta, sqlite_store

SECRET = "SENTINEL-drift-jwt-0a1b2c3d4e5f"


class _Profile(dict):  # type: ignore[type-arg]
    pass


def _app(env: dict[str, str], settings: dict[str, object] | None = None) -> AppConfig:
    return AppConfig(
        settings=settings or {"pools": {"max_workers": 10}},
        env={k: EnvVar(k, v, ".env") for k, v in env.items()},
        env_prefix="MAHAVISHNU_",
    )


def _collect(key: bytes, hosts: dict[str, AppConfig]) -> DriftCollector:
    collector = DriftCollector(key)
    for name, app in hosts.items():
        collector(name, app, _Profile(secret_env=["*_SECRET"]))
    return collector


def test_the_odd_hosts_out_are_named_with_the_size_of_the_majority() -> None:
    hosts = {
        f"web{i:02d}": _app(
            {"MAHAVISHNU_AUTH__SECRET": SECRET, "MAHAVISHNU_POOLS__MAX_WORKERS": "8"}
        )
        for i in range(12)
    }
    hosts["web07"] = _app(
        {"MAHAVISHNU_AUTH__SECRET": SECRET, "MAHAVISHNU_POOLS__MAX_WORKERS": "64"}
    )
    hosts["web03"] = _app(
        {"MAHAVISHNU_AUTH__SECRET": "another-secret-value", "MAHAVISHNU_POOLS__MAX_WORKERS": "8"}
    )
    hosts["web05"] = _app(
        {"MAHAVISHNU_AUTH__SECRET": SECRET}, {"pools": {"max_workers": 10}, "debug": True}
    )
    texts = [f.text for f in drift_across_hosts(_collect(b"k" * 32, hosts).hosts)]
    assert texts == [
        "web03: env:MAHAVISHNU_AUTH__SECRET (secret) differs from 11 of 12 hosts",
        "web05: env:MAHAVISHNU_POOLS__MAX_WORKERS is missing (set on 11 of 12 hosts)",
        "web05: settings:debug is set only on this host of 12 hosts",
        "web07: env:MAHAVISHNU_POOLS__MAX_WORKERS differs from 10 of 12 hosts",  # web05 lacks it
    ]


def test_a_tie_names_nobody_and_one_host_has_no_drift() -> None:
    two = _collect(b"k" * 32, {"a": _app({"X": "1"}), "b": _app({"X": "2"})}).hosts
    assert drift_across_hosts(two) == []
    assert drift_across_hosts({"a": two["a"]}) == []


def test_fingerprints_are_keyed_hmacs_never_plain_hashes() -> None:
    app = {"a": _app({"MAHAVISHNU_AUTH__SECRET": SECRET})}
    one = _collect(b"1" * 32, app).hosts["a"]["env:MAHAVISHNU_AUTH__SECRET"]
    two = _collect(b"2" * 32, app).hosts["a"]["env:MAHAVISHNU_AUTH__SECRET"]
    assert one[1] is True and two[1] is True
    assert one[0] != two[0]
    for digest in (
        hashlib.sha256(SECRET.encode()).hexdigest(),
        hashlib.md5(SECRET.encode()).hexdigest(),  # noqa: S324 - what a careless store would do
    ):
        assert one[0] not in digest and SECRET not in one[0]


def test_changes_over_time_per_host() -> None:
    key = b"k" * 32
    before = _collect(key, {"a": _app({"X": "1", "OLD": "x"}), "b": _app({"X": "1"})}).hosts
    after = _collect(key, {"a": _app({"X": "2", "NEW_SECRET": "y"}), "b": _app({"X": "1"})}).hosts
    found = [(f.host, f.item, f.kind, f.secret) for f in drift_over_time(before, after)]
    assert found == [
        ("a", "env:NEW_SECRET", "added", True),
        ("a", "env:OLD", "removed", False),
        ("a", "env:X", "changed", False),
    ]
    md = render_drift(drift_over_time(before, after), "markdown", "t")
    assert "- `a: env:X changed`" in md  # host text in a code span (docs/reports.md)


def test_fingerprints_are_stored_per_run_and_deduplicated(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with sqlite_store(path) as store:
        collector = DriftCollector(store.hmac_key())
        for name in ("a", "b"):
            collector(name, _app({"MAHAVISHNU_AUTH__SECRET": SECRET}), _Profile())
        report = fleet({"a": {"env": Status.READY}, "b": {"env": Status.READY}})
        first = store.record(report, meta(), fingerprints=collector.hosts)
        store.record(report, meta(minutes=1), fingerprints=collector.hosts)
        assert store.fingerprints(store.resolve(first)) == collector.hosts
        count = store._db.execute("SELECT COUNT(*) FROM fingerprint_sets")[0][0]
        assert count == 1  # two hosts, two runs, one distinct set
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("h.db*"))
    assert SECRET.encode() not in raw
    assert hashlib.sha256(SECRET.encode()).hexdigest()[:16].encode() not in raw


def test_the_interpreter_version_the_probe_saw_is_fingerprinted() -> None:
    from readiness.model import HostReport

    collector = _collect(b"k" * 32, {h: _app({"X": "1"}) for h in ("a", "b", "c")})
    report = fleet({h: {"env": Status.READY} for h in ("a", "b", "c")})
    metas = {"a": "3.11.2", "b": "3.11.2", "c": "3.9.2"}
    report = report.with_hosts(
        HostReport(h.host, h.results, facts_meta={"python": metas[h.host], "user": "root"})
        for h in report.hosts
    )
    collector.add_host_meta(report)
    texts = [f.text for f in drift_across_hosts(collector.hosts)]
    assert texts == ["c: host:python3 differs from 2 of 3 hosts"]


# -- what the checks read: alert rules, cron lines, migration level ----------------------------

RULES = (
    "groups:\n- name: app\n  rules:\n  - alert: HighErrorRate\n"
    "    expr: rate(errors_total[5m]) > {threshold}\n    for: 5m\n"
    "  - record: job:errors:rate5m\n    expr: rate(errors_total[5m])\n"
)
CRON_SECRET = "SENTINEL-cron-token-9f8e7d"


def _facts(threshold: int, cron_hour: int, heads: tuple[str, ...]) -> dict[str, object]:
    from readiness.checks import backup_restore, database_migration, monitoring

    scripts = {"a1": None, "b2": "a1", "c3": "b2"}
    names = [
        f"versions/{rev}.py" for rev in scripts if rev in heads or rev == "a1" or rev < max(heads)
    ]
    facts: dict[str, object] = {
        monitoring.RULES_FACT: {
            "path": "/app/config/alerts.yml",
            "exists": True,
            "text": RULES.format(threshold=threshold),
        },
        backup_restore.CRON_FACT: {
            "entries": [
                {"source": "/etc/crontab", "line": "17 * * * * root run-parts /etc/cron.hourly"},
                {
                    "source": "/app/cron/app",
                    "line": f"0 {cron_hour} * * * /usr/local/bin/app-backup --token {CRON_SECRET}",
                },
            ],
            "errors": [],
        },
        database_migration.DIR_FACT: {
            "path": "/app/migrations",
            "exists": True,
            "type": "dir",
            "entries": [{"name": n} for n in names],
        },
    }
    for name in names:
        rev = name.split("/")[1][:-3]
        down = scripts[rev]
        facts[database_migration.SCRIPT_FACT + name] = {
            "text": f"revision = '{rev}'\ndown_revision = {down!r}\n"
        }
    return facts


def test_alert_rules_cron_lines_and_migration_level_name_the_odd_host() -> None:
    collector = DriftCollector(b"k" * 32)
    facts = {
        "web01": _facts(1, 2, ("c3",)),
        "web02": _facts(1, 2, ("c3",)),
        "web03": _facts(5, 2, ("c3",)),  # a hand-edited alert threshold
        "web04": _facts(1, 3, ("c3",)),  # the backup runs at another hour
        "web05": _facts(1, 2, ("b2",)),  # one migration behind
    }
    for host, host_facts in facts.items():
        collector.observe_facts(host, host_facts, _Profile())
    texts = [f.text for f in drift_across_hosts(collector.hosts)]
    assert texts == [
        "web03: alert:HighErrorRate differs from 4 of 5 hosts",
        "web04: cron:/app/cron/app (secret) differs from 4 of 5 hosts",
        "web05: migrations:scripts differs from 4 of 5 hosts",
    ]
    assert "record:job:errors:rate5m" in collector.hosts["web01"]
    assert CRON_SECRET not in json.dumps(collector.hosts)

    later = DriftCollector(b"k" * 32)
    later.hosts = {h: dict(fps) for h, fps in collector.hosts.items()}
    later.observe_facts("web05", _facts(1, 2, ("c3",)), _Profile())
    assert [f.text for f in drift_over_time(collector.hosts, later.hosts)] == [
        "web05: migrations:scripts changed"
    ]


def test_hostile_rules_file_is_fingerprinted_whole_and_the_database_level_is_kept() -> None:
    from readiness.checks import monitoring
    from readiness.model import HostReport

    collector = DriftCollector(b"k" * 32)
    collector.observe_facts("a", {monitoring.RULES_FACT: {"text": "a: &x [*x"}}, _Profile())
    assert set(collector.hosts["a"]) == {"alert_rules:file"}
    report = fleet({h: {"database_migration": Status.READY} for h in ("a", "b", "c")})
    applied = {"a": ["c3"], "b": ["c3"], "c": ["b2"]}
    for host in ("b", "c"):
        collector.observe_facts(host, {}, _Profile())
    report = report.with_hosts(
        HostReport(
            h.host, tuple(replace(r, details={"applied": applied[h.host]}) for r in h.results)
        )
        for h in report.hosts
    )
    collector.add_host_meta(report)
    texts = [f.text for f in drift_across_hosts(collector.hosts)]
    assert "c: migrations:database differs from 2 of 3 hosts" in texts


def test_drift_through_the_cli_names_the_changed_cron_line_and_alert_rule(tmp_path: Path) -> None:
    from tests.services.apps import write_app
    from tests.store.test_store_cli import readiness

    inv = ["all:", "  hosts:"]
    for i, (threshold, hour) in enumerate([(1, 2), (1, 2), (5, 2)]):
        root = write_app(
            tmp_path / f"app{i}",
            files={
                "config/alerts.yml": RULES.format(threshold=threshold),
                "cron/app": f"0 {hour} * * * /usr/local/bin/app-backup\n",
                "migrations/versions/a1.py": "revision = 'a1'\ndown_revision = None\n",
            },
        )
        inv += [
            f"    h{i}:",
            "      ansible_connection: local",
            "      readiness:",
            f"        app_root: {root}",
            "        backup_cron_files: [cron/app]",
        ]
    (tmp_path / "inv.yml").write_text("\n".join(inv) + "\n")
    store = tmp_path / "s.db"
    argv = [
        "validate",
        "-i",
        str(tmp_path / "inv.yml"),
        "--hosts",
        "all",
        "--quiet",
        "-c",
        "monitoring,backup_restore,database_migration",
    ]

    first = readiness(*argv, "--drift", "--format", "json", store=store)
    assert first.returncode == 1, first.stderr
    texts = [f["text"] for f in json.loads(first.stdout)["drift"]["findings"]]
    assert texts == ["h2: alert:HighErrorRate differs from 2 of 3 hosts"]

    (tmp_path / "app1" / "cron" / "app").write_text("0 4 * * * /usr/local/bin/app-backup\n")
    assert readiness(*argv, store=store).returncode == 1
    since = readiness("drift", "--since", "latest~1", store=store)
    assert since.returncode == 1, since.stderr  # drift found
    assert since.stdout.splitlines()[1:] == ["  h1: cron:cron/app (secret) changed"]
    across = readiness("drift", "--format", "json", store=store)
    assert across.returncode == 1, across.stderr
    assert {f["text"] for f in json.loads(across.stdout)["findings"]} == {
        "h1: cron:cron/app (secret) differs from 2 of 3 hosts",
        "h2: alert:HighErrorRate differs from 2 of 3 hosts",
    }


def test_the_drift_section_is_in_every_saved_report_and_in_show(tmp_path: Path) -> None:
    """Text, table, Markdown and HTML carry the DRIFT section (host text escaped), saved
    files and `show RUN` too, not only stdout and JSON."""
    from tests.services.apps import write_app
    from tests.store.test_store_cli import readiness

    inv = ["all:", "  hosts:"]
    for i in range(3):
        settings: dict[str, object] = {"<b>odd|key</b>": 1} if i == 2 else {}
        root = write_app(tmp_path / f"app{i}", settings=settings)
        inv += [f"    h{i}:", "      ansible_connection: local", "      readiness:"]
        inv += [f"        app_root: {root}"]
    (tmp_path / "inv.yml").write_text("\n".join(inv) + "\n")
    store = tmp_path / "s.db"
    reports = {fmt: tmp_path / f"r.{fmt}" for fmt in ("text", "table", "markdown", "html")}
    res = readiness(
        "validate", "-i", str(tmp_path / "inv.yml"), "-H", "all", "--quiet", "-c", "environment", "--drift",
        *(a for fmt, path in reports.items() for a in ("--report", f"{fmt}:{path}")),
        store=store,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout
    finding = "h2: settings:<b>odd|key</b> is set only on this host of 3 hosts"
    title = "DRIFT across 3 host(s): 1 odd one(s) out"
    assert f"{title}\n  {finding}" in res.stdout
    assert res.stdout.count(title) == 1  # once, in the report, not again after it
    for fmt in ("text", "table"):
        assert f"{title}\n  {finding}" in reports[fmt].read_text(), fmt
    assert f"- `{finding}`" in reports["markdown"].read_text()  # a code span: no HTML, no link
    page = reports["html"].read_text()
    assert '<section id="drift"><h2>Drift</h2>' in page and "<b>odd" not in page
    assert "settings:&lt;b&gt;odd|key&lt;/b&gt; is set only on this host" in page
    shown = readiness("show", "latest", store=store)
    assert f"{title}\n  {finding}" in shown.stdout
    plain = readiness("validate", "-i", str(tmp_path / "inv.yml"), "-H", "all", "--quiet", "-c", "environment",
                      store=store)  # fmt: skip
    assert "DRIFT" not in plain.stdout  # no --drift, no section
    # A remediate run (it records no fingerprints) since then does not hide the drift.
    dry = readiness("remediate", "-i", str(tmp_path / "inv.yml"), "-H", "all", "-c", "environment",
                    "--quiet", store=store)  # fmt: skip
    assert dry.returncode in (0, 1), dry.stderr
    assert "remediate" in readiness("history", store=store).stdout.splitlines()[2]
    after = readiness("drift", store=store)
    assert after.returncode == 1, after.stderr
    assert after.stdout.splitlines()[1:] == [f"  {finding}"]


def test_drift_since_names_the_hosts_it_could_not_compare(tmp_path: Path) -> None:
    """`drift --since` compares hosts present in both runs. A host only in the older run
    (decommissioned, or unreachable now) or only in the newer one (added) was silently
    left out, so "no drift" read as the whole fleet's."""
    from tests.services.apps import write_app
    from tests.store.test_store_cli import readiness

    roots = {name: write_app(tmp_path / name) for name in ("h0", "h1", "h2", "h3")}

    def inventory(*names: str) -> None:
        lines = ["all:", "  children:", "    web:", "      hosts:"]
        for name in names:
            lines += [
                f"        {name}:",
                "          ansible_connection: local",
                f"          readiness: {{app_root: {roots[name]}}}",
            ]
        (tmp_path / "inv.yml").write_text("\n".join(lines) + "\n")

    store = tmp_path / "s.db"
    argv = ["validate", "-i", str(tmp_path / "inv.yml"), "--hosts", "all", "--quiet"]
    argv += ["-c", "environment"]
    inventory("h0", "h1", "h2")
    readiness(*argv, store=store)
    inventory("h0", "h1", "h3")  # h2 gone, h3 new
    readiness(*argv, store=store)
    runs = json.loads(readiness("history", "--format", "json", store=store).stdout)["runs"]
    new, old = runs[0]["run_id"], runs[1]["run_id"]

    text = readiness("drift", "--since", "latest~1", store=store)
    assert text.returncode == 0, text.stderr  # nothing drifted on h0, h1
    assert text.stdout.splitlines()[1:] == [
        "  no drift",
        f"  not compared (fingerprints only in run {old}): h2",
        f"  not compared (fingerprints only in run {new}): h3",
    ]
    doc = json.loads(
        readiness("drift", "--since", "latest~1", "--format", "json", store=store).stdout
    )
    assert doc["findings"] == [] and doc["only_in_run"] == {old: ["h2"], new: ["h3"]}
    # --hosts matches the older run's hosts too (by name or group)
    for pattern in ("h2", "web"):
        only = readiness("drift", "--since", "latest~1", "--hosts", pattern, store=store)
        assert f"not compared (fingerprints only in run {old}): h2" in only.stdout, only.stdout


def test_drift_since_a_run_of_other_checks_reports_no_removed_rules(tmp_path: Path) -> None:
    """`drift --since` from a full run to a `-c environment` run called every alert rule,
    cron line and the migration level "removed" (exit 1): those items exist only in runs
    of the checks that read them. They are not compared, and the output says so."""
    from tests.services.apps import write_app
    from tests.store.test_store_cli import readiness

    root = write_app(
        tmp_path / "app",
        env={"MAHAVISHNU_POOLS__MAX_WORKERS": "10"},
        files={
            "config/alerts.yml": RULES.format(threshold=1),
            "cron/app": "0 2 * * * /usr/local/bin/app-backup\n",
            "migrations/versions/a1.py": "revision = 'a1'\ndown_revision = None\n",
        },
    )
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    h0:\n      ansible_connection: local\n      readiness:\n"
        f"        app_root: {root}\n        backup_cron_files: [cron/app]\n"
    )
    store = tmp_path / "s.db"
    argv = ["validate", "-i", str(inv), "--hosts", "all", "--quiet", "-c"]
    readiness(*argv, "environment,monitoring,backup_restore,database_migration", store=store)
    write_app(root, env={"MAHAVISHNU_POOLS__MAX_WORKERS": "20"})
    readiness(*argv, "environment", store=store)
    readiness(*argv, "environment", store=store)

    changed = readiness("drift", "--since", "latest~2", "--run", "latest~1", store=store)
    assert changed.returncode == 1, changed.stderr
    assert changed.stdout.splitlines()[1:] == [
        "  h0: env:MAHAVISHNU_POOLS__MAX_WORKERS changed",
        "  not compared (checks not run in both runs): backup_restore, database_migration, "
        "monitoring",
    ]
    doc = json.loads(
        readiness("drift", "--since", "latest~2", "--format", "json", store=store).stdout
    )
    assert [f["item"] for f in doc["findings"]] == ["env:MAHAVISHNU_POOLS__MAX_WORKERS"]
    assert doc["checks_not_compared"] == ["backup_restore", "database_migration", "monitoring"]
    same = readiness("drift", "--since", "latest~1", store=store)
    assert same.returncode == 0 and same.stdout.splitlines()[1:] == ["  no drift"], same


def test_a_newline_in_a_settings_key_cannot_forge_a_drift_finding(tmp_path: Path) -> None:
    """`readiness drift --since` (text, table) printed each finding as given: a settings key
    holding a newline (the host writes the file) started a forged finding of its own."""
    import yaml

    from tests.services.apps import write_app
    from tests.services.cli import local_inventory
    from tests.store.test_store_cli import readiness

    root = write_app(tmp_path / "app")
    inv = str(local_inventory(tmp_path / "inv.yml", root))
    store = tmp_path / "s.db"
    argv = ("validate", "-i", inv, "-c", "configuration")
    assert readiness(*argv, store=store).returncode in (0, 1)
    settings = root / "settings" / "mahavishnu.yaml"
    data = yaml.safe_load(settings.read_text())
    data["x\n  local: settings:auth.algorithm changed\x1b[2J"] = 1
    settings.write_text(yaml.safe_dump(data))
    assert readiness(*argv, store=store).returncode in (0, 1)
    for fmt in ("text", "table"):
        res = readiness("drift", "--since", "latest~1", "--format", fmt, store=store)
        assert res.returncode == 1, res.stderr  # drift found
        assert "settings:x\\n  local: settings:auth" in res.stdout, (fmt, res.stdout)
        assert "\x1b" not in res.stdout
        for line in res.stdout.splitlines():
            assert not line.strip(" |").startswith("local: settings:auth"), (fmt, line)


def test_a_hostile_hosts_thousands_of_settings_and_env_keys_are_fingerprinted_bounded(
    tmp_path: Path,
) -> None:
    """Env variables and settings leaves had no bound, unlike rules and cron sources: a
    settings file of 24,000 keys made a 1.2 MB fingerprint set, stored anew every run
    in which the host changed one value."""
    import yaml

    from readiness.store.drift import MAX_CONFIG_ITEMS
    from readiness.store.location import parse_location
    from tests.services.apps import BASE_SETTINGS, write_app
    from tests.store.test_store_cli import readiness

    junk = {f"k{i:x}": 1 for i in range(6000)}
    root = write_app(
        tmp_path / "app",
        settings_text=yaml.safe_dump({**BASE_SETTINGS, "zz": junk}, sort_keys=False),
        env={f"MAHAVISHNU_JUNK_{i}": "x" for i in range(4000)},
    )
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    h0:\n      ansible_connection: local\n      readiness:\n"
        f"        app_root: {root}\n"
    )
    store = tmp_path / "s.db"
    argv = ["validate", "-i", str(inv), "--hosts", "all", "--quiet", "-c", "environment"]
    res = readiness(*argv, store=store)
    assert res.returncode in (0, 1), res.stderr
    from readiness.store import open_store

    with open_store(parse_location(str(store))) as db:
        items = db.fingerprints(db.resolve("latest"))["h0"]
        size = db._db.execute("SELECT MAX(LENGTH(body)) FROM fingerprint_sets")[0][0]
    settings = [i for i in items if i.startswith("settings:")]
    env = [i for i in items if i.startswith("env:")]
    assert len(settings) == len(env) == MAX_CONFIG_ITEMS
    assert "settings:pools.max_workers" in items  # the file's own keys come first
    assert "settings:zz.k0" in items and "settings:zz.k176f" not in items
    assert size < 250_000, size


def test_drift_hosts_matching_no_host_is_exit_2_not_no_drift(tmp_path: Path) -> None:
    """`drift --hosts webz` (a typo) answered "DRIFT across 0 host(s) ...: no drift", exit 0:
    a CI gate on drift passed without looking at any host."""
    from tests.store.test_store_cli import readiness

    store = tmp_path / "s.db"
    with sqlite_store(store) as db:
        key = db.hmac_key()
        hosts = {"web1": {"env:A": "1"}, "web2": {"env:A": "2"}, "web3": {"env:A": "2"}}
        fps = {
            h: {k: (hmac_hex(key, v), False) for k, v in items.items()}
            for h, items in hosts.items()
        }
        report = fleet({h: {"environment": Status.READY} for h in hosts})
        old = db.record(report, meta(minutes=0), fingerprints=fps)
        new = db.record(report, meta(minutes=5), fingerprints=fps)
    found = readiness("drift", "--hosts", "web*", store=store)
    assert found.returncode == 1 and "web1: env:A differs from 2 of 3 hosts" in found.stdout
    for argv, runs in (
        (("drift", "--hosts", "webz"), f"run {new}"),
        (("drift", "--hosts", "webz", "--since", old), f"runs {old} and {new}"),
    ):
        res = readiness(*argv, store=store)
        assert (res.returncode, res.stdout) == (2, ""), res
        assert (
            res.stderr == f"readiness: --hosts 'webz' matches no host with fingerprints in {runs}\n"
        )


def hmac_hex(key: bytes, value: str) -> str:
    import hmac

    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]


def test_drift_since_a_run_without_fingerprints_is_exit_2_not_no_drift(tmp_path: Path) -> None:
    """`drift --since latest~1` right after a remediate run (which records no fingerprints)
    compared nothing and answered "no drift", exit 0."""
    from tests.store.test_store_cli import readiness

    store = tmp_path / "s.db"
    with sqlite_store(store) as db:
        key = db.hmac_key()
        fps = {"web1": {"env:A": (hmac_hex(key, "1"), False)}}
        report = fleet({"web1": {"environment": Status.READY}})
        db.record(report, meta(minutes=0), fingerprints=fps)
        fix = db.record(report, meta(kind="remediate", minutes=1))
        db.record(report, meta(minutes=2), fingerprints=fps)
    res = readiness("drift", "--since", "latest~1", store=store)
    assert (res.returncode, res.stdout) == (2, ""), res
    assert res.stderr == (
        f"readiness: run {fix} has no drift fingerprints (recorded before they existed, "
        "or remediate)\n"
    )
    assert readiness("drift", "--since", "latest~2", store=store).returncode == 0


def test_a_host_a_run_was_cut_short_on_is_not_compared_not_half_removed(tmp_path: Path) -> None:
    """Ctrl-C while a host was audited left it fingerprinted in part (its configuration
    seen, its probe facts not): `drift --since` then called its packages and alert rules
    "removed". A host with INTERRUPTED results is recorded without fingerprints."""
    from tests.store.test_store_cli import readiness

    store = tmp_path / "s.db"
    with sqlite_store(store) as db:
        key = db.hmac_key()
        full = {
            "env:A": (hmac_hex(key, "1"), False),
            "package:httpx": (hmac_hex(key, "0.28"), False, "0.28"),
        }
        part = {"env:A": full["env:A"]}
        ok = {"environment": Status.READY}
        old = db.record(
            fleet({"web1": ok, "web2": ok}),
            meta(minutes=0),
            fingerprints={"web1": full, "web2": full},
        )
        cut = fleet({"web1": ok, "web2": {"environment": Status.INTERRUPTED}}, interrupted=True)
        new = db.record(cut, meta(minutes=5), fingerprints={"web1": full, "web2": part})
    res = readiness("drift", "--since", old, "--run", new, store=store)
    assert res.returncode == 0, res
    assert res.stdout.splitlines()[1:] == [
        "  no drift",
        f"  not compared (fingerprints only in run {old}): web2",
    ]


def test_drift_since_the_same_or_a_newer_run_is_exit_2_not_no_drift(tmp_path: Path) -> None:
    """`drift --since latest` compared the newest run with itself ("no drift", exit 0), and
    `--since` a run newer than `--run` compared backwards, an added item read as removed,
    without a word. Both are usage errors; runs whose start times and recording order
    disagree (overlapping runs, controllers' clocks apart) are compared with a warning."""
    from tests.store.test_store_cli import readiness

    store = tmp_path / "s.db"
    with sqlite_store(store) as db:
        key = db.hmac_key()
        report = fleet({"web1": {"environment": Status.READY}})
        old = db.record(report, meta(minutes=0), fingerprints={"web1": {}})
        new = db.record(
            report, meta(minutes=5), fingerprints={"web1": {"env:A": (hmac_hex(key, "1"), False)}}
        )
    forward = readiness("drift", "--since", old, store=store)
    assert forward.returncode == 1 and "web1: env:A added" in forward.stdout, forward
    for argv, said in (
        (
            ("drift", "--since", "latest"),
            f"--since latest (run {new}) is the newest run with fingerprints: a run compared "
            "with itself shows no drift; name an earlier run (e.g. --since latest~1)",
        ),
        (
            ("drift", "--run", old, "--since", new),
            f"--since {new} (run {new}) is newer than --run {old} ({old}): --since names the "
            "earlier run; swap them",
        ),
    ):
        res = readiness(*argv, store=store)
        assert (res.returncode, res.stdout, res.stderr) == (2, "", f"readiness: {said}\n"), res
    # a run that started before the other but was recorded after it (a long run; or its
    # controller's clock is behind): compared as given, with a warning
    with sqlite_store(store) as db:
        late = db.record(report, meta(minutes=-10), fingerprints={"web1": {}})
    res = readiness("drift", "--run", late, "--since", new, store=store)
    assert res.returncode == 1 and "web1: env:A removed" in res.stdout, res
    assert res.stderr == (
        f"readiness: warning: --since {new} (run {new}) started after {late} (runs that "
        "overlapped, or controllers whose clocks differ): which one is earlier cannot be "
        "told; compared as given\n"
    )
