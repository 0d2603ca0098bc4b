"""Helpers shared by checks: DSN parsing, secret-aware value descriptions, endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["Dsn", "describe_secret", "parse_dsn", "parse_endpoint", "truthy"]

PG_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True)
class Dsn:
    scheme: str
    host: str
    port: int
    dbname: str
    user: str
    password: str

    def safe(self) -> str:
        """The DSN without its password, for reports."""
        auth = f"{self.user}@" if self.user else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}/{self.dbname}"


def parse_dsn(value: str) -> tuple[Dsn | None, str | None]:
    """Parse a postgresql:// DSN or a libpq key=value string; return (dsn, problem)."""
    value = value.strip()
    if "://" not in value:
        return _parse_kv(value)
    try:
        parts = urlsplit(value)
        port = parts.port or 5432
    except ValueError as exc:
        return None, f"malformed URL ({exc})"
    if parts.scheme not in PG_SCHEMES:
        return None, f"scheme {parts.scheme!r} is not postgresql:// or postgres://"
    if not parts.hostname:
        return None, "no host"
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        return None, "no database name"
    return Dsn(
        parts.scheme,
        parts.hostname,
        port,
        dbname,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
    ), None


def _parse_kv(value: str) -> tuple[Dsn | None, str | None]:
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return None, "not a postgresql:// URL"
    try:
        d = conninfo_to_dict(value)
    except Exception:
        return None, "neither a postgresql:// URL nor a valid key=value connection string"
    if not d.get("dbname"):
        return None, "no dbname"
    if not d.get("host"):
        return None, "no host"
    return Dsn(
        "postgresql",
        str(d["host"]),
        int(str(d.get("port") or 5432)),
        str(d["dbname"]),
        str(d.get("user") or ""),
        str(d.get("password") or ""),
    ), None


def describe_secret(value: str | None, source: str | None) -> dict[str, Any]:
    """What reports may say about a secret: set or not, its length, where it came from."""
    if value is None:
        return {"status": "missing"}
    return {"status": "set" if value else "empty", "length": len(value), "source": source}


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "enabled")
    return bool(value)


def parse_endpoint(value: str, default_port: int = 4317) -> tuple[str, int] | None:
    """``http://h:4317`` or ``h:4317`` → (host, port); None when it cannot be parsed."""
    text = value.strip()
    if "://" not in text:
        text = "tcp://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme, default_port)
    return parts.hostname, port
