"""Parsed host YAML cached per distinct text (readiness/hostdata.py): a cached answer is
exactly what parsing gives, each caller gets its own copy, errors are never cached."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from readiness import hostdata
from readiness.hostdata import HostDataError, load_yaml
from readiness.inventory.strict_yaml import line_of

DOCS = [
    "a: 1\nb:\n  c: [1, 2, {d: e}]\n  f: null\n",
    "- x\n- y: 1\n  z: 2\n- [a, b]\n",
    "when: 2026-11-28\nat: 2026-11-28T01:02:03Z\nflag: yes\nn: 0x1f\nf: 1.5e3\n",
    "s: !!set {a, b}\nbin: !!binary aGVsbG8=\nstr: 'quoted: ''x'''\n",
    "omap: !!omap [{a: 1}, {b: 2}]\npairs: !!pairs [{a: 1}, {a: 2}]\n",
    "deep:\n  er:\n    still:\n      deeper: [1, {k: v}]\n",
    "plain text, not a mapping\n",
    "",
    "caf\u00e9: \u00fcml\u00e4ut\n",
    "groups:\n  - name: app\n    rules:\n      - alert: Down\n        expr: up == 0\n",
]


def lines(data: Any) -> Any:
    """Every mapping's own line and its keys' lines, recursively."""
    if isinstance(data, dict):
        return (
            getattr(data, "line", None),
            {str(k): (line_of(data, k), lines(v)) for k, v in data.items()},
        )
    if isinstance(data, list | tuple):
        return [lines(v) for v in data]
    return None


def typed(data: Any) -> Any:
    """The data with every value's exact type, in order; a set's members sorted, since a
    set's iteration order is not part of its value (and differs between equal sets)."""
    if isinstance(data, dict):
        return (type(data), [(typed(k), typed(v)) for k, v in data.items()])
    if isinstance(data, list | tuple):
        return (type(data), [typed(v) for v in data])
    if isinstance(data, set | frozenset):
        return (type(data), sorted((typed(v) for v in data), key=repr))
    return (type(data), data)


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    with hostdata._yaml_cache_lock:
        hostdata._yaml_cache.clear()


@pytest.mark.parametrize("text", DOCS)
def test_a_cached_parse_equals_a_fresh_one(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_yaml(text, "/srv/a/settings.yaml")
    second = load_yaml(text, "/srv/b/settings.yaml")  # another host, same content
    with monkeypatch.context() as patch:
        patch.setattr(hostdata, "_YAML_CACHE_MAX_TEXT", 0)  # the cache off: parsed again
        fresh = load_yaml(text, "/srv/c/settings.yaml")
    for data in (first, second):
        assert data == fresh
        assert type(data) is type(fresh)
        assert lines(data) == lines(fresh)
        assert typed(data) == typed(fresh)


def test_the_cache_is_used_and_each_caller_gets_its_own_copy() -> None:
    text = "a:\n  b: [1, 2]\n  c: {d: x}\nwhen: 2026-11-28\n"
    first = load_yaml(text, "one.yaml")
    assert len(hostdata._yaml_cache) == 1
    first["a"]["b"].append(3)
    first["a"]["c"]["d"] = "changed"
    first["new"] = True
    second = load_yaml(text, "two.yaml")
    assert second == {"a": {"b": [1, 2], "c": {"d": "x"}}, "when": datetime.date(2026, 11, 28)}
    assert second["a"] is not first["a"]


def test_errors_are_not_cached_and_name_each_callers_path() -> None:
    text = "a: 1\na: 2\n"
    for path in ("/srv/one.yaml", "/srv/two.yaml"):
        with pytest.raises(HostDataError, match=f"^{path}:2: invalid YAML: .*duplicate key"):
            load_yaml(text, path)
    assert not hostdata._yaml_cache


def test_anchored_and_big_texts_are_parsed_every_time() -> None:
    anchored = "base: &b {x: 1}\nuse: *b\n"
    assert load_yaml(anchored, "a.yaml") == {"base": {"x": 1}, "use": {"x": 1}}
    big = "k: " + "v" * (hostdata._YAML_CACHE_MAX_TEXT + 1) + "\n"
    assert load_yaml(big, "b.yaml")["k"].startswith("v")
    assert not hostdata._yaml_cache


def test_the_cache_is_bounded() -> None:
    for i in range(hostdata._YAML_CACHE_ENTRIES + 10):
        load_yaml(f"k: {i}\n", "x.yaml")
    assert len(hostdata._yaml_cache) == hostdata._YAML_CACHE_ENTRIES
    assert load_yaml("k: 3\n", "x.yaml") == {"k": 3}  # evicted, parsed again


ALIASED = "base: &b {x: [1, 2]}\none: *b\ntwo: *b\nlist: &l [a, b]\nagain: *l\n"


@pytest.mark.parametrize("text", [*DOCS, ALIASED])
def test_copy_parsed_equals_a_deepcopy(text: str) -> None:
    """The fast copy of parsed data is what copy.deepcopy gives: equal, same types and
    lines, nothing shared with the original; aliased data is deep-copied (sharing kept)."""
    import copy

    data = load_yaml(text, "/srv/a/settings.yaml")
    fast, slow = hostdata.copy_parsed(data), copy.deepcopy(data)
    assert fast == slow and typed(fast) == typed(slow) and lines(fast) == lines(slow)
    assert type(fast) is type(slow)

    def containers(value: Any) -> list[int]:
        found = []
        if isinstance(value, dict | list | set | tuple):
            found.append(id(value))
            items = value.values() if isinstance(value, dict) else value
            for item in items:
                found += containers(item)
        return found

    if isinstance(data, dict | list):
        assert not set(containers(fast)) & set(containers(data))
    if text == ALIASED:
        assert fast["one"] is fast["two"] and fast["list"] is fast["again"]  # as deepcopy
