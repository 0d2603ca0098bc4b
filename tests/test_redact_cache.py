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


def _reference_text(secrets: set[str], value: str) -> str:
    """The redaction of one text, secret by secret, longest first (no index, no memo)."""
    for s in sorted(secrets, key=len, reverse=True):
        if s not in value:
            continue
        if len(s) >= 8:
            value = value.replace(s, redact.MASK)
        else:
            value = re.sub(rf"(?<![\w]){re.escape(s)}(?![\w])", redact.MASK, value)
    return redact.redact_url_password(value)


def test_a_remembered_text_is_redacted_again_once_a_new_secret_arrives() -> None:
    """Texts are remembered per set of secrets: a secret added later (another host's, or a
    check's) is masked in a text that was redacted before it existed."""
    r = redact.Redactor(["first-secret-1"])
    text = "dsn uses first-secret-1 and later-secret-2 at postgres://u:pw@db/x"
    secrets = {"first-secret-1"}
    for added in ("later-secret-2", "late", "postgres", "x" * 40):
        assert r.text(text) == _reference_text(secrets, text)
        assert r.text(text) == _reference_text(secrets, text)  # remembered
        r.add(added)
        secrets.add(added)
    assert r.text(text) == _reference_text(secrets, text)
    assert "later-secret-2" not in r.text(text) and "first-secret-1" not in r.text(text)


def test_texts_redacted_from_many_threads_equal_the_reference() -> None:
    """Threads redact while others add secrets: each answer masks at least every secret
    added before the call began, and never leaves a remembered answer stale."""
    import random
    import threading

    rng = random.Random(11)
    secrets = [f"secret-{i:04d}-{rng.randrange(10**6)}" for i in range(120)]
    texts = [f"host {i}: {secrets[i % 120]} and {secrets[(i * 7) % 120]} =" for i in range(300)]
    r = redact.Redactor()
    errors: list[str] = []
    added = [0]  # secrets whose add() has returned

    def worker(seed: int) -> None:
        local = random.Random(seed)
        for _ in range(400):
            value = local.choice(texts)
            known = set(secrets[: added[0]])  # added before this call began
            out = r.text(value)
            leaked = [s for s in known if s in out]
            if leaked:
                errors.append(f"{value!r}: {leaked}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for n, s in enumerate(secrets, 1):
        r.add(s)
        added[0] = n
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    everything = set(secrets)
    for value in texts:
        assert r.text(value) == _reference_text(everything, value)


def test_remembered_texts_are_bounded_in_number_and_length() -> None:
    r = redact.Redactor(["bounded-secret"])
    long_text = "bounded-secret " + "y" * (redact._MEMO_MAX_CHARS + 1)
    assert r.text(long_text).startswith(redact.MASK)
    for i in range(redact._MEMO_ENTRIES + 50):
        r.text(f"text {i}")
    memo = r._secrets_in_order()[2]
    assert len(memo) == redact._MEMO_ENTRIES and long_text not in memo
    assert r.text("text 4095 bounded-secret") == f"text 4095 {redact.MASK}"


def test_plain_data_is_redacted_as_the_general_mapping_path_does() -> None:
    """dict, list, tuple, str and scalars take a fast path by exact type; other mappings,
    sequences and str subclasses the general one: both give the same data."""
    import types
    from collections import UserDict

    class Text(str):
        pass

    class Items(tuple):  # type: ignore[type-arg]
        pass

    r = redact.Redactor(["hunter2-canary"])
    plain = {
        "password": "hunter2",
        "api_token": "set",
        "nested": {"dsn": "postgresql://app:pw@db/x", "n": 3, "f": 1.5, "ok": True, "none": None},
        "list": ["a hunter2-canary b", ("token=abc",), [{"secret": "zzz"}]],
        5: "five",
        "names": ("x", "y"),
    }

    def general(value: object) -> object:
        if isinstance(value, dict):
            return types.MappingProxyType({k: general(v) for k, v in value.items()})
        if isinstance(value, list):
            return Items(general(v) for v in value)
        if isinstance(value, tuple):
            return Items(general(v) for v in value)
        if isinstance(value, str):
            return Text(value)
        return value

    fast = r.obj(plain)
    assert fast == r.obj(general(plain)) == r.obj(UserDict(plain))
    assert fast["password"] == redact.MASK and fast["api_token"] == "set"
    assert fast["nested"]["dsn"] == f"postgresql://app:{redact.MASK}@db/x"
    assert fast["list"][0] == f"a {redact.MASK} b" and fast["5"] == "five"
    assert type(fast["names"]) is list and fast["list"][2] == [{"secret": redact.MASK}]


def test_a_hosts_settings_register_the_secrets_the_general_walk_finds() -> None:
    """The runner registers every string under a secret-named key of the settings (strings
    and dicts tested first): the same values as walking with Mapping tested first."""
    import types
    from collections.abc import Mapping
    from typing import Any

    from readiness.appconfig import build_app_config
    from readiness.profile import Profile
    from readiness.runner import _register_secrets

    settings = (
        "auth: {secret: jwt-secret-value, enabled: true, token_ttl: 30}\n"
        "database: {url: 'postgresql://u:pw@h/db', password: db-password-1}\n"
        "providers:\n  - {name: a, api_key: key-one-123}\n  - [nested-list, {token: tok-2222}]\n"
        "plain: {value: not-a-secret}\nsecret_list: [one-secret, two-secret]\n"
    )
    app = build_app_config(
        settings_fact={"text": settings, "path": "/srv/app/s.yaml"},
        env_file_fact={"text": "APP_API_TOKEN=env-token-1\nAPP_NAME=app\n"},
        process_fact=None,
        env_prefix="APP_",
    )
    patterns = ["*_TOKEN", "CUSTOM*"]
    profile = Profile({"secret_env": patterns})

    def reference(node: Any, key: str = "") -> set[str]:
        if isinstance(node, Mapping):
            return set().union(*(reference(v, str(k)) for k, v in node.items()))
        if isinstance(node, list):
            return set().union(*(reference(v, key) for v in node))
        if isinstance(node, str) and key and redact.is_secret_name(key, patterns):
            return {node}
        return set()

    registered = redact.Redactor()
    _register_secrets(registered, app, profile)
    expected = reference(app.settings) | {"env-token-1"}
    assert registered._secrets == {s for s in expected if len(s) >= 4}
    assert {"jwt-secret-value", "db-password-1", "key-one-123", "tok-2222"} <= registered._secrets
    assert "not-a-secret" not in registered._secrets
    proxied = build_app_config(
        settings_fact=None, env_file_fact=None, process_fact=None, env_prefix=""
    )
    other = redact.Redactor()
    object.__setattr__(proxied, "settings", types.MappingProxyType({"password": "proxy-pass"}))
    _register_secrets(other, proxied, profile)
    assert other._secrets == {"proxy-pass"}
