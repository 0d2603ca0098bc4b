"""Nothing listening, found without importing psycopg or requests, reads exactly as the
drivers say it (readiness/checks/_postgres.py ``refused_connection``,
readiness/checks/_access.py ``nothing_listens``; docs/performance.md start-up)."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from typing import Any

import psycopg
import pytest
import requests

from readiness.appconfig import AppConfig
from readiness.checks import _access, _conninfo, _postgres, monitoring
from readiness.checks import database_migration as dbm
from readiness.profile import Profile, deep_merge
from readiness.registry import CheckContext, default_profile
from tests.services import ports


def closed_port(family: socket.AddressFamily = socket.AF_INET) -> int:
    return ports.closed_port("::1" if family == socket.AF_INET6 else "127.0.0.1")


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def context(dsn: str) -> CheckContext:
    return CheckContext(
        host="local",
        profile=Profile(deep_merge(default_profile(), {"database_dsn": dsn})),
        facts={dbm.DIR_FACT: {"exists": False, "path": "/opt/mahavishnu/migrations"}},
        app=AppConfig(settings={}, env_prefix="MAHAVISHNU_"),
        is_local=True,
    )


def outcome_both_ways(monkeypatch: pytest.MonkeyPatch, dsn: str) -> tuple[Any, Any]:
    fast = dbm.evaluate(context(dsn))
    with monkeypatch.context() as patch:
        patch.setattr(_postgres, "refused_connection", lambda target: None)
        slow = dbm.evaluate(context(dsn))
    return fast, slow


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_a_refused_database_reads_as_psycopg_says_it(
    monkeypatch: pytest.MonkeyPatch, family: socket.AddressFamily
) -> None:
    if family == socket.AF_INET6 and not ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    for name in [n for n in __import__("os").environ if n.startswith("PG")]:
        monkeypatch.delenv(name)
    host = "[::1]" if family == socket.AF_INET6 else "127.0.0.1"
    dsn = f"postgresql://app:Refused-Pw-1@{host}:{closed_port(family)}/app?sslmode=prefer"
    fast, slow = outcome_both_ways(monkeypatch, dsn)
    assert fast.details["connection"]["reason"] == "server_down"
    assert fast == slow


def test_the_refusal_text_is_psycopgs_own() -> None:
    port = closed_port()
    with pytest.raises(psycopg.OperationalError) as raised:
        psycopg.connect(f"host=127.0.0.1 port={port} dbname=app user=app connect_timeout=2")
    dsn_text = f"postgresql://app@127.0.0.1:{port}/app"
    ctx = context(dsn_text)
    target = _postgres.resolve_target(ctx, dbm.Findings())
    assert target is not None
    ours = _postgres.refused_connection(target)
    assert ours is not None
    assert " ".join(str(ours).split()) == " ".join(str(raised.value).split())


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app@localhost:{port}/app",  # a name: libpq's text names its addresses
        "postgresql://app@127.0.0.1:{port},127.0.0.1:{port}/app",  # several servers
        "host=127.0.0.1 port={port} dbname=app service=x",  # a key that may send libpq elsewhere
        "host=127.0.0.1 hostaddr=127.0.0.2 port={port} dbname=app",
    ],
)
def test_anything_but_the_plainest_dsn_is_left_to_psycopg(dsn: str) -> None:
    ctx = context(dsn.format(port=closed_port()))
    target = _postgres.resolve_target(ctx, dbm.Findings())
    if target is not None:
        assert _postgres.refused_connection(target) is None


def test_a_pg_variable_in_the_environment_leaves_it_to_psycopg(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPORT", "5")
    target = _postgres.resolve_target(
        context(f"postgresql://app@127.0.0.1:{closed_port()}/app"), dbm.Findings()
    )
    assert target is not None
    assert _postgres.refused_connection(target) is None


def test_a_listening_database_port_is_left_to_psycopg() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        target = _postgres.resolve_target(
            context(f"postgresql://app@127.0.0.1:{port}/app"), dbm.Findings()
        )
        assert target is not None
        assert _postgres.refused_connection(target) is None


# --- HTTP --------------------------------------------------------------------------------


def requests_says(url: str, timeout: float) -> tuple[Any, str | None]:
    """monitoring._get's answer through the HTTP client, skipping the fast path."""
    original = _access.nothing_listens
    try:
        _access.nothing_listens = lambda url, timeout: None  # type: ignore[assignment]
        return monitoring._get(url, timeout, direct=True)
    finally:
        _access.nothing_listens = original  # type: ignore[assignment]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_a_refused_url_reads_as_requests_says_it(host: str) -> None:
    if host == "[::1]" and not ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    url = f"http://{host}:{closed_port(socket.AF_INET6 if '[' in host else socket.AF_INET)}/-/ready"
    assert _access.nothing_listens(url, 2.0) == "connection refused"
    assert (
        monitoring._get(url, 2.0, direct=True)
        == requests_says(url, 2.0)
        == (
            None,
            "connection refused",
        )
    )


def test_a_listening_url_is_asked_through_requests() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/api/health"
        assert _access.nothing_listens(url, 2.0) is None


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1:1/x", "http://:80/x", "http://127.0.0.1:99999/x", "not a url"]
)
def test_urls_the_client_reports_in_its_own_words_are_left_to_it(url: str) -> None:
    assert _access.nothing_listens(url, 1.0) is None


def test_the_local_example_needs_neither_psycopg_nor_requests() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from readiness.cli import main\n"
        "sys.argv = ['readiness', 'validate', '--store', 'none']\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('psycopg', 'requests') if m in sys.modules))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert res.stdout.strip().splitlines()[-1] == "[]", res.stderr
    assert requests.__name__ == "requests"


def _no_sockets(monkeypatch: pytest.MonkeyPatch, error: int) -> None:
    def refuse(*args: Any, **kwargs: Any) -> socket.socket:
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(socket, "socket", refuse)


@pytest.mark.parametrize("error", [errno.EAFNOSUPPORT, errno.EMFILE])
def test_a_socket_that_cannot_be_created_leaves_the_database_to_psycopg(
    monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    target = _postgres.resolve_target(
        context(f"postgresql://app@[::1]:{closed_port()}/app"), dbm.Findings()
    )
    assert target is not None
    _no_sockets(monkeypatch, error)
    assert _postgres.refused_connection(target) is None


@pytest.mark.parametrize("error", [errno.EAFNOSUPPORT, errno.EMFILE])
def test_a_socket_that_cannot_be_created_leaves_the_url_to_requests(
    monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    assert _access.nothing_listens(url, 1.0) == "connection refused"
    _no_sockets(monkeypatch, error)
    assert _access.nothing_listens(url, 1.0) is None


def test_a_system_libpq_leaves_the_database_to_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the bundled libpq's text is certain; a system one may refuse what psycopg sends."""
    target = _postgres.resolve_target(
        context(f"postgresql://app@127.0.0.1:{closed_port()}/app"), dbm.Findings()
    )
    assert target is not None
    assert _postgres.refused_connection(target) is not None  # the bundled libpq: fast path
    monkeypatch.setattr(_conninfo, "bundled", lambda: False)
    assert _postgres.refused_connection(target) is None
