"""History and diff of a real loopback sshd fleet whose files the test changes between runs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from readiness.loopback import LoopbackFleet, start_fleet
from tests.services.apps import write_app
from tests.services.sshd import host_entry, write_inventory
from tests.store.test_store_cli import readiness

pytestmark = pytest.mark.ssh


@pytest.fixture(scope="module")
def store_fleet() -> Iterator[LoopbackFleet]:
    """Three healthy hosts of our own (the session fleet must not be changed)."""
    fleet = start_fleet(3, app_writer=lambda _i, root: write_app(root))
    try:
        yield fleet
    finally:
        fleet.stop()


def _validate(fleet: LoopbackFleet, inv: Path, store: Path) -> int:
    res = readiness(
        "validate",
        "-i",
        str(inv),
        "--hosts",
        "fleet",
        "-c",
        "environment",
        "--known-hosts",
        str(fleet.known_hosts),
        "--quiet",
        store=store,
    )
    assert "Traceback" not in res.stderr and "not recorded" not in res.stderr, res.stderr
    return res.returncode


def test_the_diff_names_exactly_what_changed_on_the_hosts(
    store_fleet: LoopbackFleet, tmp_path: Path
) -> None:
    h0, h1, h2 = store_fleet.hosts
    for h in (h0, h1, h2):  # whatever another test of this module left there
        write_app(h.app_root)
    store = tmp_path / "h.db"
    inv = write_inventory(
        tmp_path / "inv.yml", {h.name: host_entry(store_fleet, h) for h in (h0, h1, h2)}
    )
    assert _validate(store_fleet, inv, store) == 0

    write_app(h1.app_root, env={"MAHAVISHNU_AUTH__SECRET": None})  # h0001 breaks
    inv = write_inventory(
        tmp_path / "inv.yml", {h.name: host_entry(store_fleet, h) for h in (h0, h1)}
    )
    assert _validate(store_fleet, inv, store) == 1

    shown = json.loads(readiness("show", "latest", "--format", "json", store=store).stdout)
    message = next(
        c["message"] for h in shown["hosts"] if h["host"] == h1.name for c in h["checks"]
    )
    runs = json.loads(readiness("history", "--format", "json", store=store).stdout)["runs"]
    assert [r["pattern"] for r in runs] == ["fleet", "fleet"]
    diff = readiness("diff", store=store)
    assert diff.returncode == 1
    assert diff.stdout.splitlines()[:4] == [
        f"diff {runs[1]['run_id']} → {runs[0]['run_id']}: WORSE "
        "(1 new, 0 worse, 0 changed, 0 better, 0 resolved)",
        f"hosts removed: {h2.name}",
        f"  new      {h1.name} / environment: READY → NOT_READY",
        f"           now: {message}",
    ]
    assert "MAHAVISHNU_AUTH__SECRET" in message

    write_app(h1.app_root)  # repaired on the host
    assert _validate(store_fleet, inv, store) == 0
    repaired = readiness("diff", "--format", "json", store=store)
    assert repaired.returncode == 0
    data = json.loads(repaired.stdout)
    assert [(c["host"], c["change"]) for c in data["changes"]] == [(h1.name, "resolved")]
    timeline = readiness("history", "--hosts", h1.name, store=store)
    row = timeline.stdout.splitlines()[2].split()
    assert row[:5] == [h1.name, "environment", "✓✗✓", "READY", "3"]


DRIFT_SECRET = "SENTINEL-drift-ssh-jwt-77aa88bb99cc"


def test_drift_names_the_odd_hosts_out_and_what_changed(
    store_fleet: LoopbackFleet, tmp_path: Path
) -> None:
    import hashlib

    h0, h1, h2 = store_fleet.hosts
    workers = {"MAHAVISHNU_POOLS__MAX_WORKERS": "8"}
    for h in (h0, h1, h2):
        write_app(h.app_root, env=workers)
    store = tmp_path / "h.db"
    inv = write_inventory(
        tmp_path / "inv.yml", {h.name: host_entry(store_fleet, h) for h in (h0, h1, h2)}
    )
    assert _validate(store_fleet, inv, store) == 0
    write_app(h1.app_root, env={"MAHAVISHNU_POOLS__MAX_WORKERS": "64"})
    write_app(h2.app_root, env={**workers, "MAHAVISHNU_AUTH__SECRET": DRIFT_SECRET})
    res = readiness(
        "validate", "-i", str(inv), "--hosts", "fleet", "-c", "environment",
        "--known-hosts", str(store_fleet.known_hosts), "--quiet", "--drift", "--format", "json",
        store=store,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    texts = [f["text"] for f in json.loads(res.stdout)["drift"]["findings"]]
    assert texts == [
        f"{h1.name}: env:MAHAVISHNU_POOLS__MAX_WORKERS differs from 2 of 3 hosts",
        f"{h2.name}: env:MAHAVISHNU_AUTH__SECRET (secret) differs from 2 of 3 hosts",
    ]
    across = readiness("drift", store=store)
    assert across.returncode == 1
    assert across.stdout.splitlines()[1:] == [f"  {t}" for t in texts]
    over_time = readiness("drift", "--since", "latest~1", "--format", "json", store=store)
    assert over_time.returncode == 1
    changes = [(f["host"], f["item"], f["kind"]) for f in json.loads(over_time.stdout)["findings"]]
    assert changes == [
        (h1.name, "env:MAHAVISHNU_POOLS__MAX_WORKERS", "changed"),
        (h2.name, "env:MAHAVISHNU_AUTH__SECRET", "changed"),
    ]
    only_h0 = readiness("drift", "--hosts", h0.name, store=store)
    assert only_h0.returncode == 0 and "no drift" in only_h0.stdout
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("h.db*"))
    blob = (res.stdout + across.stdout + over_time.stdout).encode() + raw
    assert DRIFT_SECRET.encode() not in blob
    assert hashlib.sha256(DRIFT_SECRET.encode()).hexdigest()[:16].encode() not in blob


def _venv(root: Path, packages: dict[str, str], python: str = "3.11.4") -> None:
    """An app venv as pip leaves it: pyvenv.cfg and one ``<name>-<version>.dist-info`` each."""
    venv = root / ".venv"
    shutil.rmtree(venv, ignore_errors=True)
    site = venv / "lib" / f"python{python.rsplit('.', 1)[0]}" / "site-packages"
    site.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = {python}\n")
    for name, version in packages.items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_drift_names_the_host_with_another_package_version_and_the_upgrade(
    store_fleet: LoopbackFleet, tmp_path: Path
) -> None:
    h0, h1, h2 = store_fleet.hosts
    packages = {"httpx": "0.28.1", "pydantic": "2.9.2", "Flask_Login": "0.6.3"}
    for h in (h0, h1, h2):
        write_app(h.app_root)
        _venv(h.app_root, packages)
    _venv(h1.app_root, {**packages, "httpx": "0.27.0"})
    store = tmp_path / "h.db"
    inv = write_inventory(
        tmp_path / "inv.yml", {h.name: host_entry(store_fleet, h) for h in (h0, h1, h2)}
    )
    try:
        assert _validate(store_fleet, inv, store) == 0
        across = readiness("drift", "--hosts", "fleet", store=store)
        assert across.returncode == 1, across.stderr
        assert across.stdout.splitlines()[1:] == [
            f"  {h1.name}: package:httpx 0.27.0 differs from 2 of 3 hosts (0.28.1)"
        ]

        _venv(h1.app_root, packages, python="3.11.9")  # upgraded, and the venv rebuilt
        assert _validate(store_fleet, inv, store) == 0
        since = readiness("drift", "--since", "latest~1", "--format", "json", store=store)
        assert since.returncode == 1, since.stderr
        found = [f["text"] for f in json.loads(since.stdout)["findings"]]
        assert found == [
            f"{h1.name}: package:httpx changed 0.27.0 → 0.28.1",
            f"{h1.name}: python:venv changed 3.11.4 → 3.11.9",
        ]
        now = readiness("drift", store=store)
        assert now.stdout.splitlines()[1:] == [
            f"  {h1.name}: python:venv 3.11.9 differs from 2 of 3 hosts (3.11.4)"
        ]
        from tests.store.helpers import sqlite_store

        with sqlite_store(store) as opened:
            stored = opened.fingerprints(opened.resolve("latest"))
        # Names are PEP 503-normalised; versions are kept in clear next to their HMAC.
        assert {i for i in stored[h0.name] if i.startswith(("package:", "python:"))} == {
            "package:flask-login",
            "package:httpx",
            "package:pydantic",
            "python:venv",
        }
        assert stored[h0.name]["package:flask-login"][2] == "0.6.3"
    finally:
        for h in (h0, h1, h2):
            shutil.rmtree(h.app_root / ".venv", ignore_errors=True)
