"""What is recorded about a run besides its results: command line (masked), who, where."""

from __future__ import annotations

import io
import socket
from pathlib import Path

from readiness.model import Status, utcnow
from readiness.store.location import parse_location
from readiness.store.record import record_run, redact_argv, run_meta
from tests.store.helpers import fleet, sqlite_store


def test_secret_options_and_url_passwords_are_masked_in_the_command() -> None:
    argv = [
        "readiness",
        "validate",
        "--hosts",
        "web",
        "--store",
        "postgresql://ops:pa55w0rd-x@db:5432/readiness",
        "--api-token",
        "tok-123456",
        "--password=hunter22",
        "--profile",
        "my profile.yml",
    ]
    text = redact_argv(argv)
    for secret in ("pa55w0rd-x", "tok-123456", "hunter22"):
        assert secret not in text
    assert text == (
        "readiness validate --hosts web --store postgresql://ops:***@db:5432/readiness "
        '--api-token *** --password=*** --profile "my profile.yml"'
    )


def test_run_meta_names_controller_user_and_fingerprints_the_profile(tmp_path: Path) -> None:
    profile = tmp_path / "p.yml"
    profile.write_text("secret_env: ['X']\njwt: super-secret-profile-value\n")
    meta = run_meta("validate", "web", started=utcnow(), profile=str(profile), argv=["readiness"])
    assert meta.controller == socket.gethostname()
    assert meta.user
    assert "super-secret-profile-value" in meta.profile_material  # only ever HMACed:
    location = parse_location(str(tmp_path / "h.db"))
    run_id = record_run(location, fleet({"a": {"env": Status.READY}}), meta)
    assert run_id is not None
    with sqlite_store(tmp_path / "h.db") as store:
        fp = store.resolve(run_id).profile_fingerprint
        assert len(fp) == 16 and fp == store.fingerprint(meta.profile_material)
        other = sqlite_store(tmp_path / "other.db")
        assert other.fingerprint(meta.profile_material) != fp  # keyed per store, not a plain hash
        other.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("h.db*"))
    assert b"super-secret-profile-value" not in raw


def test_a_failing_store_warns_and_returns_none(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    err = io.StringIO()
    meta = run_meta("validate", "web", started=utcnow(), argv=["readiness"])
    got = record_run(
        parse_location(str(tmp_path / "f" / "h.db")),
        fleet({"a": {"e": Status.READY}}),
        meta,
        warn=err,
    )
    assert got is None
    assert err.getvalue().startswith("readiness: warning: run not recorded: cannot open store")


def test_a_configured_retention_prunes_on_every_recorded_run(tmp_path: Path) -> None:
    from datetime import timedelta

    from readiness.store.cli import config_keep
    from tests.store.helpers import meta

    keep = config_keep({"history_keep": "7d"})
    assert keep == timedelta(days=7) and config_keep({}) is None
    location = parse_location(str(tmp_path / "h.db"))
    report = fleet({"a": {"env": Status.READY}})
    old = record_run(location, report, meta(minutes=0), keep=keep)  # 2026-11-01: weeks ago
    new = record_run(
        location, report, run_meta("validate", "web", started=utcnow(), argv=["r"]), keep=keep
    )
    with sqlite_store(tmp_path / "h.db") as store:
        assert [r.run_id for r in store.runs()] == [new] != [old]
