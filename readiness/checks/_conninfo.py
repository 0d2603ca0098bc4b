"""libpq's connection-string parser (``PQconninfoParse``) without importing psycopg.

Importing psycopg costs ~50-100 ms of start-up, and the checks that only read a DSN
(``environment``, ``database_migration`` before it connects) need nothing of it but
``conninfo_to_dict``. When psycopg would use its ``binary`` implementation (the bundled
libpq of ``psycopg_binary``), :func:`conninfo_to_dict` calls ``PQconninfoParse`` of that
very library through ``ctypes``: the parser stays libpq, the same build psycopg calls, so
the result and the error text are libpq's own. Any other set-up (``psycopg_c`` against
the system libpq, ``PSYCOPG_IMPL`` set to something else, a string ctypes cannot pass
whole) goes through ``psycopg.conninfo`` itself.

``tests/checks/test_conninfo.py`` compares both paths on a corpus of good and bad strings.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

__all__ = ["ConninfoError", "available", "conninfo_to_dict"]


class ConninfoError(ValueError):
    """libpq refused the string; the message is libpq's (it may quote the string)."""


class _Option(ctypes.Structure):
    # PQconninfoOption (libpq-fe.h)
    _fields_ = [
        ("keyword", ctypes.c_char_p),
        ("envvar", ctypes.c_char_p),
        ("compiled", ctypes.c_char_p),
        ("val", ctypes.c_char_p),
        ("label", ctypes.c_char_p),
        ("dispchar", ctypes.c_char_p),
        ("dispsize", ctypes.c_int),
    ]


_lock = threading.Lock()
_loaded: list[ctypes.CDLL | None] = []


def _bundled_libpq_path() -> str | None:
    """The libpq psycopg's ``binary`` implementation uses, when psycopg would pick it."""
    impl = os.environ.get("PSYCOPG_IMPL", "").lower()
    if impl not in ("", "binary"):
        return None
    if not impl and importlib.util.find_spec("psycopg_c") is not None:
        return None  # psycopg prefers psycopg_c (the system libpq)
    spec = importlib.util.find_spec("psycopg_binary")
    if spec is None or spec.origin is None:
        return None
    found = list((Path(spec.origin).parent.parent / "psycopg_binary.libs").glob("libpq-*.so*"))
    return str(found[0]) if len(found) == 1 else None


def _libpq() -> ctypes.CDLL | None:
    with _lock:
        if not _loaded:
            lib = None
            path = _bundled_libpq_path()
            if path is not None:
                try:
                    lib = ctypes.CDLL(path)
                    lib.PQconninfoParse.restype = ctypes.POINTER(_Option)
                    lib.PQconninfoParse.argtypes = [
                        ctypes.c_char_p,
                        ctypes.POINTER(ctypes.c_void_p),
                    ]
                    lib.PQconninfoFree.argtypes = [ctypes.POINTER(_Option)]
                    lib.PQfreemem.argtypes = [ctypes.c_void_p]
                except (OSError, AttributeError):
                    lib = None
            _loaded.append(lib)
        return _loaded[0]


def bundled() -> bool:
    """Whether the libpq in use is psycopg's bundled one (parsed through ctypes here): a
    system libpq (``psycopg_c``) may be older and refuse options the bundled one takes."""
    return _libpq() is not None


def available() -> bool:
    """Whether psycopg is installed (without importing it): the database checks need it to
    connect, and its libpq is the parser."""
    if "psycopg" in sys.modules:
        return sys.modules["psycopg"] is not None
    return _psycopg_installed()


@functools.lru_cache(maxsize=1)
def _psycopg_installed() -> bool:
    try:
        return importlib.util.find_spec("psycopg") is not None
    except ValueError:  # a module object without a spec
        return True


def _parse_ctypes(lib: ctypes.CDLL, conninfo: bytes) -> dict[str, str]:
    errmsg = ctypes.c_void_p()
    options = lib.PQconninfoParse(conninfo, ctypes.byref(errmsg))
    if not options:
        if not errmsg.value:
            raise MemoryError("couldn't allocate on conninfo parse")
        text = ctypes.string_at(errmsg.value).decode("utf8", "replace")
        lib.PQfreemem(errmsg)
        raise ConninfoError(text)
    try:
        out: dict[str, str] = {}
        i = 0
        while options[i].keyword is not None:
            val = options[i].val
            if val is not None:
                out[options[i].keyword.decode()] = val.decode()
            i += 1
        return out
    finally:
        lib.PQconninfoFree(options)


def _parse_psycopg(conninfo: str) -> dict[str, str]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict as psycopg_conninfo_to_dict

    try:
        parsed = psycopg_conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        raise ConninfoError(str(exc)) from None
    return {k: str(v) for k, v in parsed.items() if v is not None}


# Longer strings are parsed uncached: the hosts choose them (passwords included), and a
# long-lived process must not keep 256 huge ones in memory.
CACHED_MAX_CHARS = 4096


def _parse(conninfo: str) -> Mapping[str, str]:
    lib = _libpq()
    if lib is None or "\0" in conninfo:
        return MappingProxyType(_parse_psycopg(conninfo))
    return MappingProxyType(_parse_ctypes(lib, conninfo.encode()))


_cached = functools.lru_cache(maxsize=256)(_parse)


def conninfo_to_dict(conninfo: str) -> dict[str, str]:
    """``psycopg.conninfo.conninfo_to_dict(conninfo)``: every key libpq reads from the
    string, with its value. Raises :class:`ConninfoError` (libpq's message) when libpq
    refuses it, ``UnicodeError`` where psycopg would.

    Results are cached per distinct string of at most ``CACHED_MAX_CHARS`` (a fleet's
    hosts usually share one DSN); the cache holds only what the same string always gives,
    so no host sees another's data.
    """
    if len(conninfo) > CACHED_MAX_CHARS:
        return dict(_parse(conninfo))
    return dict(_cached(conninfo))
