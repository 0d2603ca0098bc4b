"""libyaml's scanner under the strict loader: the same data, lines and refusals as the
pure-Python loader (which still handles every document libyaml's path does not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.errors import ReadinessError
from readiness.inventory.source import Where
from readiness.inventory.strict_yaml import _fast, _StrictLoader, compose_checked, parse_yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mahavishnu"


def _slow(text: str) -> Any:
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _lines(data: Any) -> Any:
    if isinstance(data, dict):
        return (
            getattr(data, "line", None),
            getattr(data, "key_lines", None),
            {k: _lines(v) for k, v in data.items()},
        )
    if isinstance(data, list):
        return [_lines(v) for v in data]
    return data


@pytest.mark.parametrize("path", ["settings/mahavishnu.yaml", "config/alerts.yml", "repos.yaml"])
def test_plain_documents_load_the_same_through_libyaml(path: str) -> None:
    text = (EXAMPLE / path).read_text()
    done, data = _fast(text)
    assert done
    assert data == _slow(text) and _lines(data) == _lines(_slow(text))
    a, b = yaml.compose(text, Loader=yaml.SafeLoader), compose_checked(text)
    assert yaml.serialize(a) == yaml.serialize(b)
    assert [(k.start_mark.line, v.start_mark.line) for k, v in a.value] == [
        (k.start_mark.line, v.start_mark.line) for k, v in b.value
    ]


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",  # duplicate key
        "a: &a [*a]\n",  # recursive alias
        "- &a [1,2]\n" + "- [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n" * 20,  # alias bomb
        "a: [1\n",  # syntax
        "a: 1\n  b: 2\n",
        "a:\tb\n",  # a tab: not plain, pure-Python only
        "k: caf\u00e9\n",
        "[" * 3000 + "]" * 3000,  # deep: never composed by libyaml's recursive C composer
        "- " * 3000 + "x\n",
        "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 600)),
    ],
)
def test_refusals_and_unusual_text_say_exactly_what_the_pure_python_loader_says(
    text: str,
) -> None:
    def outcome(parse: Any) -> str:
        try:
            return repr(_lines(parse(text)))
        except ReadinessError as exc:
            return f"error: {exc}"
        except RecursionError:
            return "too deep"

    def slow(t: str) -> Any:
        from readiness.inventory import strict_yaml

        saved = strict_yaml._CParser
        strict_yaml._CParser = None
        try:
            return parse_yaml(t, Where("f.yml"))
        finally:
            strict_yaml._CParser = saved

    assert outcome(lambda t: parse_yaml(t, Where("f.yml"))) == outcome(slow)
