"""Drift fingerprints: keyed, never plain; odd hosts out across a group; changes over time."""

from __future__ import annotations

import hashlib
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
    assert "- a: env:X changed" in md


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
