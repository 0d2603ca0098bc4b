"""Package and interpreter versions for drift: read from the app's venv by the real probe,
never by running the app's code; bounded and never following the app user's links."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from readiness.collect import run_probe
from readiness.profile import Profile
from readiness.store.drift import (
    DISTS_FACT,
    MAX_DISTS,
    DriftCollector,
    dists_spec,
    drift_across_hosts,
    drift_over_time,
    package_items,
)
from readiness.transport import LocalTransport
from tests.security.hostile import chown_tree

CANARY = "CANARY-root-only-dist-5b6c7d"


def _probe(profile: Profile) -> dict[str, Any]:
    facts = run_probe(LocalTransport(), {DISTS_FACT: dists_spec(profile)}, timeout_s=60)["facts"]
    return dict(facts[DISTS_FACT])


def _site(root: Path, python: str = "3.12.7") -> Path:
    venv = root / ".venv"
    (venv / "pyvenv.cfg").parent.mkdir(parents=True, exist_ok=True)
    (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion_info = {python}\n")
    site = venv / "lib" / "python3.12" / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    return site


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A 0755 directory under /tmp (nobody must be able to cross it, unlike tmp_path's)."""
    assert os.geteuid() == 0, "the hostile-host tests run as root, like readiness under --sudo"
    path = Path(tempfile.mkdtemp(prefix="readiness-dists-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_venvs_distributions_and_interpreter_are_read_from_names_and_headers(
    tmp_path: Path,
) -> None:
    site = _site(tmp_path)
    (site / "HTTPX-0.28.1.dist-info").mkdir()
    (site / "Foo_Bar.baz-1.0.dist-info").mkdir()
    (site / "legacy-2.0-py3.12.egg-info").write_text("Name: legacy\n")  # distutils: a file
    (site / "mylib.egg-info").mkdir()  # a development install: no version in the name
    (site / "mylib.egg-info" / "PKG-INFO").write_text("Name: mylib\nVersion: 0.1.dev0\n")
    (site / "noversion.dist-info").mkdir()
    (site / "noversion.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: noversion\nVersion: 3.2.1\n\nVersion: 9.9 (body)\n"
    )
    (site / "httpx").mkdir()  # the package itself is not a distribution
    fact = _probe(Profile({"app_root": str(tmp_path), "adapter_python": "python3"}))
    assert fact["root"] == str(tmp_path / ".venv") and fact["venv"] is True
    assert fact["python"] == "3.12.7"
    assert fact["dists"] == {
        "foo-bar-baz": "1.0",
        "httpx": "0.28.1",
        "legacy": "2.0",
        "mylib": "0.1.dev0",
        "noversion": "3.2.1",
    }
    assert fact["metadata_reads"] == 2 and fact["truncated"] is False
    items = package_items(fact)
    assert items["package:httpx"] == ("0.28.1", "0.28.1")
    assert items["python:venv"] == ("3.12.7", "3.12.7")


def test_the_venv_of_adapter_python_wins_and_without_a_venv_the_hosts_python3_is_read(
    tmp_path: Path,
) -> None:
    site = _site(tmp_path / "env")  # /…/env/.venv
    (site / "only_here-1.0.dist-info").mkdir()
    app = tmp_path / "app"
    app.mkdir()
    profile = Profile({"app_root": str(app), "adapter_python": f"{tmp_path}/env/.venv/bin/python"})
    assert dists_spec(profile)["roots"][0] == f"{tmp_path}/env/.venv"
    assert _probe(profile)["dists"] == {"only-here": "1.0"}
    system = _probe(Profile({"app_root": str(app), "adapter_python": "python3"}))
    assert system["venv"] is False and system["python"]  # the interpreter running the probe
    assert system["root"] and "only-here" not in system["dists"]


def test_hostile_venv_links_are_never_followed_and_reads_are_bounded(shared_root: Path) -> None:
    """nobody's venv: a dist-info and a whole site directory linking to root-only places, a
    100 MB METADATA, a binary one, a FIFO, and 3,000 distributions."""
    vault = shared_root / "vault"
    (vault / "linked.dist-info").mkdir(parents=True)
    (vault / "linked.dist-info" / "METADATA").write_text(f"Version: {CANARY}\n")
    (vault / f"{CANARY.lower()}-1.0.dist-info").mkdir()
    vault.chmod(0o700)
    app = shared_root / "app"
    site = _site(app)
    (site / "linked.dist-info").symlink_to(vault / "linked.dist-info")
    huge = site / "huge.dist-info"
    huge.mkdir()
    with (huge / "METADATA").open("wb") as fh:
        fh.write(b"Metadata-Version: 2.1\nName: huge\n")
        fh.seek(100 * 1024 * 1024)  # sparse: 100 MB, the Version header past the bound
        fh.write(b"Version: 6.6.6\n")
    (site / "binary.dist-info").mkdir()
    binary = b"Metadata-Version: 2.1\nVersion: 1\x00\xff\xfe\x1b[31m" + bytes(range(256)) * 512
    (site / "binary.dist-info" / "METADATA").write_bytes(binary)
    (site / "fifo.dist-info").mkdir()
    os.mkfifo(site / "fifo.dist-info" / "METADATA")
    for i in range(3000):
        (site / f"zbulk{i:04d}-1.{i}.dist-info").touch()  # sorted after the others
    other = app / ".venv" / "lib" / "python3.13"
    other.mkdir()
    (other / "site-packages").symlink_to(vault)  # a whole site directory into the vault
    chown_tree(app)
    profile = Profile({"app_root": str(app), "adapter_python": "python3"})

    started = time.monotonic()
    fact = _probe(profile)
    # no hang on the FIFO: a hang runs into the probe's 60 s deadline; the bound is far
    # above the ~1 s this takes so that a loaded CI machine does not fail it (it did at 10)
    assert time.monotonic() - started < 50
    dists = fact["dists"]
    assert CANARY not in str(fact) and CANARY.lower() not in str(fact)
    assert len(dists) == MAX_DISTS and fact["truncated"] is True
    assert dists["binary"] is not None  # read (bounded); whatever it says is not shown:
    assert dists["huge"] is None and dists["fifo"] is None
    assert dists["linked"] is None  # the name counts, the link is never opened
    assert any("refused" in str(e) for e in fact["errors"]), fact["errors"]
    items = package_items(fact)
    assert items["package:binary"][1] is None
    assert len(items) == MAX_DISTS + 1  # + python:venv


def test_a_name_or_version_carrying_a_hosts_secret_is_never_shown() -> None:
    from readiness.appconfig import AppConfig, EnvVar

    secret = "s3cr3tvalue"
    collector = DriftCollector(b"k" * 32)
    app = AppConfig(
        settings={}, env={"APP_SECRET": EnvVar("APP_SECRET", secret, ".env")}, env_prefix=""
    )
    collector("a", app, Profile({"secret_env": ["*_SECRET"]}))
    fact = {"dists": {f"x{secret}": "1.0", "ok": f"1.0+{secret}", "fine": "2.0"}}
    collector.observe_facts("a", {DISTS_FACT: fact}, Profile({}))
    items = collector.hosts["a"]
    assert set(items) >= {"package:ok", "package:fine"} and "package:x" + secret not in items
    assert len(items["package:ok"]) == 2  # fingerprinted, not shown
    assert items["package:fine"][2] == "2.0"
    assert secret not in str(items)


def test_version_findings_show_the_odd_value_and_the_norm() -> None:
    def fps(version: str) -> dict[str, tuple[str, bool, str]]:
        return {"package:httpx": (f"fp-{version}", False, version)}

    hosts = {f"web{i:02d}": fps("0.28.1") for i in range(1, 13)}
    hosts["web07"] = fps("0.27.0")
    hosts["web09"] = {}
    texts = [f.text for f in drift_across_hosts(hosts)]
    assert texts == [
        "web07: package:httpx 0.27.0 differs from 10 of 12 hosts (0.28.1)",
        "web09: package:httpx is missing (set on 11 of 12 hosts, 0.28.1)",
    ]
    later = {**hosts, "web07": fps("0.28.1")}
    found = drift_over_time(hosts, later)
    assert [f.text for f in found] == ["web07: package:httpx changed 0.27.0 → 0.28.1"]
    assert found[0].to_dict()["value"] == "0.28.1" and found[0].to_dict()["norm"] == "0.27.0"
