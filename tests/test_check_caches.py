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
