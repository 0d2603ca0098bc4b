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


def test_lookups_give_what_the_uncached_names_and_deepcopy_give(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Setting names made once per prefix, and the settings subtree copied by
    hostdata.copy_parsed: every lookup as with the names made each time and copy.deepcopy,
    and the parsed settings never changed by an overlay."""
    import copy

    from readiness import hostdata
    from readiness.appconfig import build_app_config

    settings = (
        "auth: {enabled: true, secret: s3, nested: {a: 1}}\n"
        "pools: &p {min_workers: 2, routing: [x, y]}\n"
        "copy: *p\nwhen: 2026-11-28\nresilience:\n  retry: {max_attempts: 3}\n"
    )
    env = "APP_AUTH__ENABLED=false\nAPP_POOLS__MIN_WORKERS=7\nAPP_EXTRA__ONLY__ENV=1\n"
    app = build_app_config(
        settings_fact={"text": settings, "path": "/srv/app/s.yaml"},
        env_file_fact={"text": env},
        process_fact={"environ": {"APP_RESILIENCE__RETRY__BACKOFF": "0.5"}},
        env_prefix="APP_",
    )
    keys = [
        "auth", "auth.enabled", "auth.nested", "pools", "copy", "when", "resilience",
        "resilience.retry", "extra", "extra.only", "missing", "missing.deeper",
        "x" * 5000,
    ]  # fmt: skip
    before = copy.deepcopy(dict(app.settings))
    fast = [app.lookup(k) for k in keys]
    with monkeypatch.context() as patch:
        patch.setattr(appconfig, "_env_name_cached", appconfig._env_name)
        patch.setattr(appconfig, "copy_parsed", copy.deepcopy)
        slow = [app.lookup(k) for k in keys]
    assert fast == slow
    assert fast[1] == (False, "env file") and fast[3][0]["min_workers"] == 7
    assert dict(app.settings) == before  # overlays wrote into copies only
    fast[3][0]["routing"].append("z")
    assert app.lookup("pools")[0]["routing"] == ["x", "y"]  # callers get their own copy
    assert hostdata.copy_parsed is not copy.deepcopy
