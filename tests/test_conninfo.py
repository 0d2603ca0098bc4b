"""libpq's DSN parser through ctypes equals psycopg's ``conninfo_to_dict`` (readiness/checks/_conninfo.py)."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict as psycopg_conninfo_to_dict

from readiness.checks import _conninfo
from readiness.checks._common import parse_dsn

CORPUS = [
    "",
    "postgresql://app:s3cret@127.0.0.1:5432/app",
    "postgres://app@localhost/app",
    "postgresql://app:p%40ss@[::1]:6543/db?sslmode=require&connect_timeout=3",
    "postgresql://a,b:5433,c/db?target_session_attrs=read-write",
    "postgresql:///db?host=/var/run/postgresql&port=5433",
    "postgresql://u:pw@h/db?application_name=x%20y&options=-c%20search_path%3Dapp",
    "host=127.0.0.1 port=5432 dbname=app user=app password='it''s'",
    "host=127.0.0.1 dbname=app password='a b \\' c'",
    "host=/tmp dbname=x passfile=/etc/shadow sslrootcert=/root/ca",
    "hostaddr=127.0.0.1,::1 host=a,b port=1,2 dbname=d",
    "dbname=é user=ü",
    "postgresql://h/%C3%A9",
    # refused by libpq
    "postgresql://u:pw@h:notaport/db?bogus=1",
    "postgresql://h/db?nosuchkey=1",
    "host=h nosuchkey=1",
    "host='unterminated",
    "host=h dbname",
    "= =",
    "postgresql://[::1/db",
    "postgresql://h/db?sslmode",
    "postgresql://u:%zz@h/db",
    "postgresql://h/%ff",
    "http://h/db",
    "mysql://u:pw@h/db",
    "just some words",
    "host=a\tdbname=b",
]


def _psycopg(value: str) -> tuple[str, object]:
    try:
        d = psycopg_conninfo_to_dict(value)
    except psycopg.ProgrammingError as exc:
        return "error", str(exc)
    except UnicodeError as exc:
        return "unicode", type(exc).__name__
    return "ok", {k: str(v) for k, v in d.items() if v is not None}


def _ours(value: str) -> tuple[str, object]:
    try:
        d = _conninfo.conninfo_to_dict(value)
    except _conninfo.ConninfoError as exc:
        return "error", str(exc)
    except UnicodeError as exc:
        return "unicode", type(exc).__name__
    return "ok", d


def test_the_bundled_libpq_is_used_here() -> None:
    # Otherwise the comparison below would compare psycopg with itself.
    assert psycopg.pq.__impl__ == "binary"
    assert _conninfo._libpq() is not None


@pytest.mark.parametrize("value", CORPUS)
def test_libpq_through_ctypes_reads_each_string_as_psycopg_does(value: str) -> None:
    assert _ours(value) == _psycopg(value)
    assert _ours(value) == _psycopg(value)  # the cached answer too


def test_a_nul_byte_goes_through_psycopg() -> None:
    assert _ours("host=h\0 dbname=x") == _psycopg("host=h\0 dbname=x")


def test_callers_cannot_change_the_cached_answer() -> None:
    first = _conninfo.conninfo_to_dict("host=h dbname=d")
    first["dbname"] = "changed"
    assert _conninfo.conninfo_to_dict("host=h dbname=d")["dbname"] == "d"


def test_parse_dsn_verdicts_equal_the_psycopg_path(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = [parse_dsn(v) for v in CORPUS]
    _conninfo._cached.cache_clear()
    monkeypatch.setattr(_conninfo, "_libpq", lambda: None)  # psycopg's own parser
    try:
        slow = [parse_dsn(v) for v in CORPUS]
    finally:
        _conninfo._cached.cache_clear()
    assert fast == slow
    assert sum(d is not None for d, _ in fast) >= 8


def test_reading_a_dsn_does_not_import_psycopg() -> None:
    code = (
        "import sys\n"
        "from readiness.checks._common import parse_dsn\n"
        "dsn, problem = parse_dsn('postgresql://app:pw@127.0.0.1:5432/app')\n"
        "assert problem is None and dsn.port == 5432, problem\n"
        "print('psycopg' in sys.modules)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert res.stdout.strip() == "False"


def test_the_corpus_holds_accepted_and_refused_strings() -> None:
    kinds = [_psycopg(v)[0] for v in CORPUS]
    assert kinds.count("ok") >= 10 and kinds.count("error") >= 10 and "unicode" in kinds


def test_a_long_dsn_is_parsed_uncached_with_the_same_answer() -> None:
    """Hosts choose the DSNs (passwords included): one longer than 4 KiB is never kept."""
    password = "p" * 6000
    dsn = f"host=h dbname=d password={password}"
    _conninfo._cached.cache_clear()
    first = _conninfo.conninfo_to_dict(dsn)
    assert _psycopg(dsn) == ("ok", first)
    assert first["password"] == password
    assert _conninfo.conninfo_to_dict(dsn) == first
    assert _conninfo._cached.cache_info().currsize == 0
    _conninfo.conninfo_to_dict("host=h dbname=short")
    assert _conninfo._cached.cache_info().currsize == 1  # a short one still is
