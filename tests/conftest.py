"""Shared fixtures. Real services (sshd, PostgreSQL, Prometheus, HTTP) live in tests/services/.

Order matters: a plugin imported by another plugin must be listed first, or pytest
cannot rewrite its asserts.
"""

from __future__ import annotations

pytest_plugins = [
    "tests.services.ports",
    "tests.services.apps",
    "tests.services.httpd",
    "tests.services.alertmanager",
    "tests.services.postgres",
    "tests.services.sshd",
    "tests.services.prometheus",
]


import os  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _session_results_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every run the tests make (in-process and in `readiness` subprocesses) is recorded in
    a session-private store, never in the developer's ~/.local/share/readiness."""
    path = tmp_path_factory.mktemp("results-store") / "history.sqlite3"
    previous = os.environ.get("READINESS_STORE")
    os.environ["READINESS_STORE"] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop("READINESS_STORE", None)
        else:
            os.environ["READINESS_STORE"] = previous


@pytest.fixture(scope="session", autouse=True)
def _session_xdg_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The XDG state, cache and config homes point into the session's temp dir, so that
    nothing a test runs writes under the real home: `remediate --apply` without
    --audit-log appended to ~/.local/state/readiness/remediation-audit.jsonl on every run,
    and Chromium wrote ~/.cache/dconf and ~/.config/chromium/Crash Reports. A test of a
    default location sets its own HOME and drops the variable (test_hostile_host)."""
    root = tmp_path_factory.mktemp("xdg")
    names = {"XDG_STATE_HOME": "state", "XDG_CACHE_HOME": "cache", "XDG_CONFIG_HOME": "config"}
    with pytest.MonkeyPatch.context() as patch:
        for var, sub in names.items():
            (root / sub).mkdir()
            patch.setenv(var, str(root / sub))
        yield root
