"""Per-text caches inside checks give what parsing gives (monitoring's alert-rule tree,
database_migration's Alembic revisions)."""

from __future__ import annotations

import yaml

from readiness.checks import database_migration as dbm
from readiness.checks import monitoring

RULES = [
    "groups:\n  - name: app\n    rules:\n      - alert: Down\n        expr: up == 0\n",
    "groups:\n  - rules:\n      - record: x\n      - alert: A\n",
    "groups: 3\n",
    "not: [rules\n",
    "groups:\n  - name: a\n    rules: []\n" + "#" * 70_000 + "\n",
]


def test_validate_rules_answers_as_without_the_tree_cache() -> None:
    for text in RULES:
        cached = [monitoring.validate_rules(text, f"/srv/{i}/alerts.yml") for i in range(2)]
        monitoring._rules_tree_cached.cache_clear()
        original = monitoring._rules_tree
        try:
            monitoring._rules_tree = monitoring.compose_checked  # type: ignore[assignment]
            fresh = monitoring.validate_rules(text, "/srv/1/alerts.yml")
        finally:
            monitoring._rules_tree = original  # type: ignore[assignment]
        assert cached[1] == fresh
        assert cached[0][1] == fresh[1]


def test_the_tree_is_composed_once_per_text() -> None:
    text = RULES[0]
    assert monitoring._rules_tree(text) is monitoring._rules_tree(text)
    a, b = yaml.compose(text, Loader=yaml.SafeLoader), monitoring._rules_tree(text)
    assert a is not None and b is not None
    assert yaml.serialize(a) == yaml.serialize(b)
    big = RULES[-1]
    assert monitoring._rules_tree(big) is not monitoring._rules_tree(big)  # too big to keep


def test_alembic_revisions_are_read_as_without_the_cache() -> None:
    texts = [
        'revision = "abc"\ndown_revision = None\n',
        "revision = 'b2'\ndown_revision = ('a1', 'a0')  # merge\n",
        'down_revision = "x"\n',
        'revision = "big"\n' + "#" * 20_000 + "\n",
    ]
    for text in texts:
        for _ in range(2):
            assert dbm._parse_alembic("versions/x.py", text) == dbm._parse_alembic_text(
                "versions/x.py", text
            )
    assert dbm._parse_alembic("versions/y.py", texts[0]) == dbm.Script("versions/y.py", "abc")
    assert dbm._parse_alembic_cached.cache_info().hits >= 2


ADDRESSES = [
    "127.0.0.1", "localhost", "LOCALHOST", "db.localhost", "[::1]", "::1", "%2Fvar%2Frun",
    "/var/run/postgresql", "", "  127.0.0.2 ", "10.0.0.5", "db.example", "[fe80::1]",
    "0.0.0.0", "127.1", "x" * 2000 + ".localhost", "1" * 3000,
]  # fmt: skip


def test_host_local_answers_as_parsing_each_address() -> None:
    """Addresses answered once each give what parsing every time gives (long ones uncached)."""
    from readiness.checks import _access

    reference = _access._host_local  # the uncached parse the cache wraps

    for _ in range(2):  # the second time from the cache
        assert [_access.host_local(a) for a in ADDRESSES] == [reference(a) for a in ADDRESSES]
    size = _access._host_local_cached.cache_info().currsize
    assert _access.host_local("y" * 5000) is False
    assert _access._host_local_cached.cache_info().currsize == size


def test_profile_paths_and_keys_read_as_the_mapping_and_posixpath_give() -> None:
    """A profile's paths resolved once per (app root, path), and its own ``get``: the same
    answers as posixpath on every call and ``Mapping.get``."""
    import posixpath
    from collections.abc import Mapping

    from readiness.profile import Profile

    roots = ["/srv/app", "/srv/app/", "/srv//app/../other", "", "relative/root", "/" + "r" * 5000]
    paths = ["settings.yml", "./a/../b", "../../etc/x", "/abs/path", "~/home", "a//b/", "", None]
    for root in roots:
        profile = Profile({"app_root": root, "k": 1, "n": None, "d": {"x": {"y": 2}}})
        for path in paths:
            expected = None
            if path:
                base = posixpath.normpath(root or "/")
                absolute = path.startswith("~") or posixpath.isabs(path)
                expected = path if absolute else posixpath.normpath(posixpath.join(base, path))
            assert profile.resolve(path) == expected, (root, path)
            assert profile.resolve(path) == expected  # the second time from the cache
        for key, default in (("k", None), ("n", 5), ("missing", 7), ("d", None)):
            assert profile.get(key, default) == Mapping.get(profile, key, default)
        assert profile.get_path("d.x.y") == 2 and profile.get_path("d.x.z", 3) == 3
