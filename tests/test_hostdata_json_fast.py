"""Host JSON without any lone surrogate skips the string rewrite and only has its depth
checked (readiness/hostdata.py ``load_json``): same data, same errors as the full walk."""

from __future__ import annotations

import json
from typing import Any

import pytest

from readiness import hostdata
from readiness.hostdata import HostDataError, load_json


def nested(depth: int, kind: str) -> str:
    text = "1"
    for i in range(depth):
        text = (
            f'{{"k{i}": {text}}}'
            if (kind == "dict" or (kind == "mixed" and i % 2))
            else f"[{text}]"
        )
    return text


CORPUS: list[str | bytes] = [
    '{"a": 1, "b": [1, 2, {"c": "d"}], "e": null, "f": 1.5, "g": true}',
    '"just a string"',
    "[]",
    "3",
    '{"name": "caf\\u00e9", "raw": "café", "emoji": "\\ud83d\\ude00"}',
    '{"lone": "\\ud800", "low": "\\uDC80x"}',
    '{"escaped backslash": "\\\\ud800 is text"}',
    '{"k\\udcc3": "v"}',
    '{"raw surrogate": "caf\udcc3"}',
    b'{"bytes": "\\ud800", "ok": 1}',
    b'{"bytes": "plain"}',
    nested(100, "dict"),
    nested(100, "list"),
    nested(101, "dict"),
    nested(101, "list"),
    nested(101, "mixed"),
    "[" + ",".join(nested(99, "list") for _ in range(3)) + "]",
    "[" + nested(100, "list") + "]",
]


def outcome(text: str | bytes, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(hostdata, "_surrogate_free", lambda text: False)
        try:
            data = load_json(text)
        except HostDataError as exc:
            return ("error", str(exc))
    return ("ok", json.dumps(data, ensure_ascii=True))


@pytest.mark.parametrize("text", CORPUS, ids=range(len(CORPUS)))
def test_the_fast_path_equals_the_full_walk(
    text: str | bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert outcome(text, fast=True, monkeypatch=monkeypatch) == outcome(
        text, fast=False, monkeypatch=monkeypatch
    )


def test_the_corpus_takes_both_paths_and_both_outcomes(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [t for t in CORPUS if isinstance(t, str)]
    assert any(hostdata._surrogate_free(t) for t in texts)
    assert any(not hostdata._surrogate_free(t) for t in texts)
    kinds = {outcome(t, fast=True, monkeypatch=monkeypatch)[0] for t in CORPUS}
    assert kinds == {"ok", "error"}


def test_lone_surrogates_are_still_escaped() -> None:
    assert load_json('{"a": "\\ud800"}') == {"a": "\\ud800"}
    assert load_json('{"a": "caf\udcc3"}') == {"a": "caf\\xc3"}
