"""Secret names answered once per distinct name (readiness/redact.py): the same answers."""

from __future__ import annotations

import fnmatch
import re

from readiness import redact
from readiness.redact import is_secret_name

NAMES = [
    "password",
    "DB_PASSWORD",
    "api_token",
    "TOKEN_URL",
    "secret_key",
    "user",
    "host",
    "MAHAVISHNU_DATABASE__URL",
    "private_key_path",
    "passwd",
    "auth",
    "x",
    "",
    "session_secret",
    "SECRET",
    "token_expiry_s",
    "CUSTOM_THING",
    "custom_thing",
]
PATTERNS = [(), ("CUSTOM_*",), ["*_thing", "HOST"], ("*",)]


def uncached(name: str, patterns: tuple[str, ...] | list[str]) -> bool:
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, p.upper()) for p in patterns) or bool(
        redact._SECRET_KEY.search(name)
    )


def test_cached_answers_equal_the_patterns_own() -> None:
    for _ in range(2):  # the second time from the cache
        for patterns in PATTERNS:
            for name in NAMES:
                assert is_secret_name(name, patterns) == uncached(name, patterns), (name, patterns)
    assert redact._secret_name_cached.cache_info().hits > 0
    assert any(is_secret_name(n) for n in NAMES) and not all(is_secret_name(n) for n in NAMES)


def test_detail_keys_are_judged_as_before() -> None:
    r = redact.Redactor()
    for key in NAMES:
        expected = bool(key and re.search(redact._SECRET_KEY, key))
        masked = r.obj({key: "plain-value-123"})[key] == redact.MASK
        assert masked == expected, key


def test_a_long_name_is_answered_uncached_with_the_same_answer() -> None:
    """Hosts choose the names: one longer than 4 KiB is never kept by either cache."""
    for name in ("x" * 5000 + "_PASSWORD", "y" * 5000, "CUSTOM_" + "z" * 5000):
        for patterns in PATTERNS:
            names = redact._secret_name_cached.cache_info().currsize
            keys = redact._secret_key_cached.cache_info().currsize
            assert is_secret_name(name, patterns) == uncached(name, patterns), (name, patterns)
            assert redact._secret_name_cached.cache_info().currsize == names
            assert redact._secret_key_cached.cache_info().currsize == keys
    assert is_secret_name("x" * 5000 + "_PASSWORD")
    assert not is_secret_name("y" * 5000)
