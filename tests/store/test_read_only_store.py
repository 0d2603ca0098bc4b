"""A store this user may not write (a read-only directory or file): `validate` still audits,
prints its report and keeps its exit code, says in one line that the run was not recorded;
the reading commands read it; the writing ones say it is read-only (exit 2).

The suite runs as root, for whom permission bits do not apply: each command runs under
``setpriv`` without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH, so root obeys them like any user.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from readiness.store import open_store
from readiness.store.location import parse_location
from tests.services.apps import write_app

ROOT = Path(__file__).resolve().parents[2]
READINESS = str(Path(sys.executable).parent / "readiness")
_NO_DAC = "-dac_override,-dac_read_search"


def as_plain_user(*args: str) -> subprocess.CompletedProcess[str]:
    """``readiness ARGS`` with permission bits enforced (root without its DAC override)."""
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is required"
    return subprocess.run(
        [setpriv, f"--bounding-set={_NO_DAC}", f"--inh-caps={_NO_DAC}", "--", READINESS, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def run_count(store: Path) -> int:
    with open_store(parse_location(str(store)), create=False) as s:
        return len(s.runs())


@pytest.fixture(params=["directory", "file"])
def read_only_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(inventory, store) with two recorded runs and a baseline; then the store's directory
    (or only its file) made read-only."""
    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    local:\n      ansible_connection: local\n"
        f"      readiness:\n        app_root: {app}\n"
    )
    store = tmp_path / "st" / "history.sqlite3"
    for _ in range(2):
        res = as_plain_user("validate", "-i", str(inv), "-c", "environment", "--quiet",
                            "--store", str(store))  # fmt: skip
        assert res.returncode in (0, 1), res.stderr
    assert as_plain_user("baseline-accept", "--store", str(store)).returncode == 0
    assert sorted(p.name for p in store.parent.iterdir()) == ["history.sqlite3"]
    locked = store.parent if request.param == "directory" else store
    mode = locked.stat().st_mode
    locked.chmod(0o500 if request.param == "directory" else 0o400)
    try:
        yield inv, store
    finally:
        locked.chmod(mode)


def test_validate_on_a_read_only_store_audits_reports_and_says_the_run_was_not_recorded(
    read_only_store: tuple[Path, Path],
) -> None:
    inv, store = read_only_store
    before = store.read_bytes()
    res = as_plain_user("validate", "-i", str(inv), "-c", "environment", "--format", "json",
                        "--store", str(store))  # fmt: skip
    report = json.loads(res.stdout)  # the whole report, printed
    assert res.returncode == report["exit_code"] and res.returncode in (0, 1), res.stderr
    warnings = [line for line in res.stderr.splitlines() if "not recorded" in line]
    assert len(warnings) == 1, res.stderr
    assert warnings[0].startswith(
        f"readiness: warning: run not recorded: store {store} is read-only (no write permission on "
    ), res.stderr
    assert "Traceback" not in res.stderr
    # --baseline only reads the store: the ratchet still judges the run (exit 0 or 1, not 2)
    judged = as_plain_user("validate", "-i", str(inv), "-c", "environment", "--baseline",
                           "--drift", "--quiet", "--store", str(store))  # fmt: skip
    assert judged.returncode in (0, 1), judged.stderr
    assert "run not recorded" in judged.stderr and "Traceback" not in judged.stderr
    assert store.read_bytes() == before
    assert sorted(p.name for p in store.parent.iterdir()) == ["history.sqlite3"]  # no -wal/-shm


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("history",), "validate"),
        (("history", "--hosts", "local"), "environment"),
        (("history", "--trend"), "environment"),
        (("show", "latest"), "PRODUCTION READINESS"),
        (("diff",), "diff "),
        (("drift",), "DRIFT across 1 host(s)"),
        (("drift", "--since", "latest~1"), "DRIFT on each host"),
        (("baseline-export",), '"readiness.baseline/1"'),
    ],
)
def test_the_reading_commands_read_a_read_only_store(
    read_only_store: tuple[Path, Path], args: tuple[str, ...], expect: str
) -> None:
    _inv, store = read_only_store
    before = store.read_bytes()
    res = as_plain_user(*args, "--store", str(store))
    assert res.returncode == 0, res.stderr
    assert expect in res.stdout
    assert res.stderr == ""
    assert store.read_bytes() == before
    assert sorted(p.name for p in store.parent.iterdir()) == ["history.sqlite3"]


def test_a_write_to_a_read_only_store_is_one_line_naming_it_exit_2(
    read_only_store: tuple[Path, Path], tmp_path: Path
) -> None:
    _inv, store = read_only_store
    baseline = tmp_path / "b.json"
    assert as_plain_user("baseline-export", "--output", str(baseline),
                         "--store", str(store)).returncode == 0  # fmt: skip
    for args in (("baseline-accept",), ("baseline-import", str(baseline))):
        res = as_plain_user(*args, "--store", str(store))
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert res.stderr.startswith(f"readiness: store {store} is read-only ("), res.stderr
        assert len(res.stderr.splitlines()) == 1, res.stderr
    assert run_count(store) == 2


def test_the_html_report_of_a_run_on_a_read_only_store_still_draws_its_trend(
    read_only_store: tuple[Path, Path], tmp_path: Path
) -> None:
    """The store could not record the run, so it was dropped for the whole run: the HTML
    report said "trends appear once the results store (--store) holds earlier runs" of a
    store holding two of them."""
    inv, store = read_only_store
    page = tmp_path / "report.html"
    res = as_plain_user("validate", "-i", str(inv), "-c", "environment", "--quiet",
                        "--report", f"html:{page}", "--store", str(store))  # fmt: skip
    assert res.returncode in (0, 1) and "run not recorded" in res.stderr, res.stderr
    html = page.read_text()
    assert '<figure class="trend" data-check="environment">' in html
    assert "trends appear once" not in html


def test_a_store_reached_through_a_symlink_is_judged_by_the_files_own_directory(
    tmp_path: Path,
) -> None:
    """SQLite writes its -wal/-shm beside the file a symlink names: a link kept in a
    read-only directory to a store in a writable one is a writable store."""
    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    local:\n      ansible_connection: local\n"
        f"      readiness:\n        app_root: {app}\n"
    )
    real = tmp_path / "data" / "history.sqlite3"
    links = tmp_path / "links"
    links.mkdir()
    (links / "history.sqlite3").symlink_to(real)
    argv = ("validate", "-i", str(inv), "-c", "environment", "--quiet", "--store")
    assert as_plain_user(*argv, str(real)).returncode in (0, 1)
    links.chmod(0o500)
    try:
        res = as_plain_user(*argv, str(links / "history.sqlite3"))
    finally:
        links.chmod(0o700)
    assert res.returncode in (0, 1) and "not recorded" not in res.stderr, res.stderr
    assert run_count(real) == 2
