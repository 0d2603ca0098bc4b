"""An env file of plain lines is parsed once per distinct text (readiness/appconfig.py
``env_text_values``): the same values python-dotenv gives, and never for a text that
interpolates or that python-dotenv warns about."""

from __future__ import annotations

import io
import logging

import pytest
from dotenv import dotenv_values

from readiness import appconfig
from readiness.appconfig import env_text_values

TEXTS = [
    "# comment\nA=1\nB = two words \nexport C=3\n\nD=\nE=x=y\n",
    "MAHAVISHNU_AUTH__SECRET=3f9c\nMAHAVISHNU_URL=postgresql://u:p@h:5432/db\n",
    "A='quoted'\nB=\"double\"\n",
    "A=value # inline comment\n",
    "A=$HOME/x\nB=${A}\n",
    "A=back\\\\slash\n",
    "not a binding\nA=1\n",
    "A='unterminated\nB=2\n",
    "A=caf\u00e9\n",
    "A=1\r\nB=2\r\n",
    "A=1\x0cB=2\n",
    "A=1\u2028B=2\n",
    "",
]


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_values_are_python_dotenvs(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    expected = dict(dotenv_values(stream=io.StringIO(text), interpolate=True))
    for _ in range(2):  # the second time from the cache, when cached
        assert env_text_values(text) == expected


def test_plain_texts_are_cached_and_callers_get_their_own_dict() -> None:
    text = "CACHED_A=1\nCACHED_B=2\n"
    first = env_text_values(text)
    first["CACHED_A"] = "changed"
    hits = appconfig._plain_env_values.cache_info().hits
    assert env_text_values(text) == {"CACHED_A": "1", "CACHED_B": "2"}
    assert appconfig._plain_env_values.cache_info().hits == hits + 1


@pytest.mark.parametrize("text", ["A=$HOME\n", "A='x'\n", "broken line\n", "A=x # c\n", "A=\x01\n"])
def test_texts_that_interpolate_quote_or_may_warn_are_not_cached(text: str) -> None:
    assert not all(appconfig._PLAIN_ENV_LINE.fullmatch(line) for line in text.splitlines())


def test_warnings_still_appear_for_every_host(caplog: pytest.LogCaptureFixture) -> None:
    text = "A=1\nB='unterminated\n"
    with caplog.at_level(logging.WARNING):
        env_text_values(text)
        env_text_values(text)
    assert len([r for r in caplog.records if "could not parse" in r.getMessage()]) == 2
