"""Where the results store lives: ``--store`` ← ``READINESS_STORE`` ← config ← XDG default.

A location is a PostgreSQL URL (``postgresql://…`` / ``postgres://…``), an SQLite
path (``sqlite:///abs/path`` or a plain path), or ``none``/``off`` to record nothing.
The default is ``$XDG_DATA_HOME/readiness/history.sqlite3``
(``~/.local/share/readiness/history.sqlite3`` when ``XDG_DATA_HOME`` is unset).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..errors import UsageError
from ..redact import redact_url_password

__all__ = [
    "LIBPQ_KEYWORDS",
    "STORE_ENV",
    "StoreLocation",
    "default_sqlite_path",
    "mask_url_secret",
    "resolve_location",
]

STORE_ENV = "READINESS_STORE"
_DISABLED = {"none", "off", "no", "false", "0"}
_PG_SCHEMES = ("postgresql://", "postgres://")
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
# A libpq key=value connection string ("sslmode=require host=db password=…"): as a "path"
# it made an SQLite file named after the password in the current directory. libpq reads
# one when the first word is one of its keywords; these are libpq 18's (PQconndefaults),
# and tests/store compares them with the keywords of the libpq psycopg loads.
LIBPQ_KEYWORDS = frozenset(
    [
        "application_name",
        "channel_binding",
        "client_encoding",
        "connect_timeout",
        "dbname",
        "fallback_application_name",
        "gssdelegation",
        "gssencmode",
        "gsslib",
        "host",
        "hostaddr",
        "keepalives",
        "keepalives_count",
        "keepalives_idle",
        "keepalives_interval",
        "krbsrvname",
        "load_balance_hosts",
        "max_protocol_version",
        "min_protocol_version",
        "oauth_client_id",
        "oauth_client_secret",
        "oauth_issuer",
        "oauth_scope",
        "options",
        "passfile",
        "password",
        "port",
        "replication",
        "require_auth",
        "requirepeer",
        "scram_client_key",
        "scram_server_key",
        "service",
        "ssl_max_protocol_version",
        "ssl_min_protocol_version",
        "sslcert",
        "sslcertmode",
        "sslcompression",
        "sslcrl",
        "sslcrldir",
        "sslkey",
        "sslkeylogfile",
        "sslmode",
        "sslnegotiation",
        "sslpassword",
        "sslrootcert",
        "sslsni",
        "target_session_attrs",
        "tcp_user_timeout",
        "user",
    ]
)
_FIRST_KEY = re.compile(r"\s*([A-Za-z_]+)\s*=")
# wherever it stands, a password-like key=value never becomes a file name
_SECRET_KEY = re.compile(
    r"(?:^|\s)(?:password|sslpassword|oauth_client_secret|scram_client_key|scram_server_key)\s*=",
    re.I,
)


def _key_value_dsn(text: str) -> bool:
    first = _FIRST_KEY.match(text)
    if first is not None and first.group(1).lower() in LIBPQ_KEYWORDS:
        return True
    return _SECRET_KEY.search(text) is not None


@dataclass(frozen=True)
class StoreLocation:
    """A parsed location. ``url`` may hold a password: print :attr:`display`, never ``url``."""

    kind: str  # "sqlite", "postgresql" or "none"
    url: str
    path: Path | None = None
    default: bool = False  # the XDG path nobody named: its parent directories may be made

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    @property
    def display(self) -> str:
        if self.path is not None:
            return str(self.path)
        return mask_url_secret(redact_url_password(self.url), self.url) if self.url else "none"


def mask_url_secret(text: str, url: str) -> str:
    """``text`` with the password of ``url`` masked as it was typed, and each piece of it.

    :func:`redact_url_password` reads a URL as RFC 3986 does; libpq quotes what it made
    of a malformed one: ``u:pa ss@db`` (a space) was shown whole, ``u:pa%zzss@db`` came
    back as 'invalid percent-encoded token: "pa%zzss"', and ``u:pa@ss@db`` as 'failed to
    resolve host 'ss@db''. The password is taken to end at the URL's last ``@``."""
    rest = url.partition("://")[2]
    userinfo = rest.rpartition("@")[0]
    password = userinfo.partition(":")[2]
    if not password:
        return text
    pieces = {password, unquote(password), *re.split(r"[@/?#\s]+", password)}
    for piece in sorted((p for p in pieces if p), key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


def default_sqlite_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "readiness" / "history.sqlite3"


def parse_location(value: str) -> StoreLocation:
    text = value.strip()
    if text.lower() in _DISABLED:
        return StoreLocation("none", "")
    if text.lower().startswith(_PG_SCHEMES):
        return StoreLocation("postgresql", text)
    if _key_value_dsn(text):
        raise UsageError(  # never quoted: it may hold a password
            "results store: a key=value connection string is not supported; write it as a "
            "postgresql://USER@HOST:PORT/DBNAME URL"
        )
    url = _URL.match(text)
    if url and url.group("scheme").lower() != "sqlite":
        # mysql://..., a typo'd scheme: it was taken as a relative SQLite path and made a
        # directory named "mysql:" holding a new empty store
        raise UsageError(
            f"results store {redact_url_password(text)}: unsupported scheme "
            f"{url.group('scheme')}:// (a SQLite path, sqlite:///PATH, postgresql://URL, or none)"
        )
    if url:
        text = text[len(url.group(0)) :]
    path = Path(text).expanduser()
    return StoreLocation("sqlite", str(path), path)


def resolve_location(
    flag: str | None,
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> StoreLocation:
    """The flag wins, then ``$READINESS_STORE``, then config ``readiness.store``, then XDG."""
    env = os.environ if env is None else env
    for candidate in (flag, env.get(STORE_ENV), (config or {}).get("store")):
        if candidate is not None and str(candidate).strip():
            return parse_location(str(candidate))
    path = default_sqlite_path(env)
    return StoreLocation("sqlite", str(path), path, default=True)
