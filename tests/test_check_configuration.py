"""``configuration``: adapters, pools, observability (real TCP reachability), security."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from readiness.model import Status
from tests.services.apps import BASE_SETTINGS, audit_local, one
from tests.services.cli import local_inventory, run_cli, validate_check
from tests.services.ports import closed_port


@pytest.fixture
def listening_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def test_complete_configuration_with_a_reachable_otlp_endpoint_is_ready(
    app_tree: Callable[..., Path], listening_port: int
) -> None:
    root = app_tree(
        settings={"observability": {"otlp_endpoint": f"http://127.0.0.1:{listening_port}"}}
    )
    r = one(audit_local(root, "configuration"))
    assert r.status is Status.READY, r.message
    assert r.details["observability"]["reachable"] is True


def test_an_unreachable_otlp_endpoint_degrades(app_tree: Callable[..., Path]) -> None:
    root = app_tree(settings={"observability": {"otlp_endpoint": f"127.0.0.1:{closed_port()}"}})
    r = one(audit_local(root, "configuration"))
    assert r.status is Status.DEGRADED
    assert any("OTLP" in rec for rec in r.recommendations)


def test_an_enabled_adapter_missing_settings_degrades_and_names_them(
    app_tree: Callable[..., Path], listening_port: int
) -> None:
    root = app_tree(
        settings={
            "adapters": {"llamaindex": {"embedding_model": None}},
            "observability": {"otlp_endpoint": f"127.0.0.1:{listening_port}"},
        }
    )
    r = one(audit_local(root, "configuration"))
    assert r.status is Status.DEGRADED
    assert r.details["adapters"]["llamaindex"]["missing"] == ["embedding_model"]
    assert "Configure llamaindex adapter properly" in r.recommendations[0]


@pytest.mark.parametrize(
    ("pools", "needle"),
    [
        ({"min_workers": 9, "max_workers": 2}, "min_workers (9) > pools.max_workers (2)"),
        ({"min_workers": 0, "max_workers": 2}, "positive"),
        ({"routing_strategy": "coinflip"}, "unknown pool routing strategy"),
    ],
)
def test_bad_pool_settings_are_not_ready(
    app_tree: Callable[..., Path], pools: dict[str, object], needle: str
) -> None:
    r = one(audit_local(app_tree(settings={"pools": pools}), "configuration"))
    assert r.status is Status.NOT_READY
    assert needle in " ".join(r.details["problems"])


def test_a_short_auth_secret_is_not_ready_and_never_shown(app_tree: Callable[..., Path]) -> None:
    r = one(
        audit_local(app_tree(env={"MAHAVISHNU_AUTH__SECRET": "short-secret-xyz"}), "configuration")
    )
    assert r.status is Status.NOT_READY
    assert "too short (16 < 32" in r.message
    assert "short-secret-xyz" not in repr(r.to_dict())


@pytest.mark.parametrize(
    ("quoted", "says"),
    [
        ('"' + " " * 40 + '"', "auth is enabled but the auth secret is only whitespace"),
        (
            '"abc' + " " * 40 + '"',
            "too short (3 < 32 characters without its surrounding whitespace",
        ),
    ],
)
def test_whitespace_does_not_make_an_auth_secret_strong(
    app_tree: Callable[..., Path], quoted: str, says: str
) -> None:
    """40 quoted spaces, or "abc" padded to 43 characters, were judged READY: the length
    counted the padding. A secret is judged without its surrounding whitespace."""
    root = app_tree()
    env = root / ".env"
    env.write_text(f"MAHAVISHNU_REPOS_PATH=repos.yaml\nMAHAVISHNU_AUTH__SECRET={quoted}\n")
    r = one(audit_local(root, "configuration"))
    assert r.status is Status.NOT_READY
    assert says in r.message
    assert any("MAHAVISHNU_AUTH__SECRET to a strong secret" in x for x in r.recommendations)


@pytest.mark.parametrize("spelling", ["y", "Y", "t"])
def test_auth_enabled_as_pydantic_reads_it_is_on(
    app_tree: Callable[..., Path], spelling: str
) -> None:
    """``auth: {enabled: y}`` (a string in YAML) is true to pydantic, so the app runs with
    authentication on; it was NOT_READY "authentication is disabled on a production host"."""
    root = app_tree(settings={"auth": {"enabled": spelling}})
    r = one(audit_local(root, "configuration"))
    assert "authentication" not in r.message, r.message
    assert r.details["security"]["auth_enabled"] is True


def test_a_disallowed_algorithm_is_not_ready(app_tree: Callable[..., Path]) -> None:
    r = one(audit_local(app_tree(settings={"auth": {"algorithm": "none"}}), "configuration"))
    assert r.status is Status.NOT_READY
    assert any("HS256, RS256" in rec for rec in r.recommendations)


def test_env_overrides_are_judged_not_the_file(app_tree: Callable[..., Path]) -> None:
    root = app_tree(
        settings={"pools": {"max_workers": 1, "min_workers": 1}},
        env={"MAHAVISHNU_POOLS__MIN_WORKERS": "5"},
    )
    r = one(audit_local(root, "configuration"))
    assert r.details["pools"]["min_workers"] == 5
    assert r.status is Status.NOT_READY


def test_a_missing_or_broken_settings_file_is_not_ready(app_tree: Callable[..., Path]) -> None:
    root = app_tree(settings_text="auth:\n  enabled: [true\n")
    r = one(audit_local(root, "configuration"))
    assert r.status is Status.NOT_READY
    assert "mahavishnu.yaml:" in r.message
    (root / "settings" / "mahavishnu.yaml").unlink()
    r = one(audit_local(root, "configuration"))
    assert r.status is Status.NOT_READY
    assert "does not exist" in r.message


def test_a_settings_file_longer_than_the_probe_reads_is_not_judged(
    app_tree: Callable[..., Path],
) -> None:
    """Was judged on its head alone: auth.enabled: false past 256 KiB was never seen."""
    root = app_tree()
    settings = root / "settings" / "mahavishnu.yaml"
    with settings.open("a") as fh:
        fh.write(("#" * 79 + "\n") * 4000 + "auth:\n  enabled: false\n")
    r = one(audit_local(root, "configuration"))
    assert r.status is Status.NOT_READY
    assert f"settings file {settings} ({settings.stat().st_size} bytes) is longer" in r.message
    assert r.recommendations == (
        f"Keep {settings} under 256 KiB (move comments and data elsewhere)",
    )


def test_pool_workers_written_as_quoted_numbers_are_those_numbers(
    app_tree: Callable[..., Path], listening_port: int, tmp_path: Path
) -> None:
    """`min_workers: "2"` (a quoted YAML value, as templated configs write it) and
    `max_workers: 8.0` are 2 and 8 to the app (pydantic): validate said NOT_READY "pool
    workers must be positive integers". A fraction or a word is still refused."""
    otlp = {"otlp_endpoint": f"http://127.0.0.1:{listening_port}"}
    root = app_tree(
        settings={"pools": {"min_workers": "2", "max_workers": 8.0}, "observability": otlp}
    )
    inv = local_inventory(tmp_path / "inv.yml", root)
    res = run_cli("validate", "-i", str(inv), "-c", "configuration", "--format", "json")
    result = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert result["status"] == "ready", result["message"]
    assert res.returncode == 0, res.stderr
    assert result["details"]["pools"]["min_workers"] == 2
    root = app_tree(
        settings={"pools": {"min_workers": "two", "max_workers": 8.5}, "observability": otlp}
    )
    result = validate_check(inv, "configuration")
    assert result["status"] == "not_ready"
    assert "min_workers='two', max_workers=8.5" in result["message"]


def test_an_unset_auth_algorithm_is_undetermined_not_none(
    app_tree: Callable[..., Path], listening_port: int, tmp_path: Path
) -> None:
    """auth.algorithm set nowhere: the app signs with its own default, which the audit
    cannot see; validate said NOT_READY "auth algorithm None is not allowed". An algorithm
    outside the allowed ones is still NOT_READY."""
    settings = copy.deepcopy(BASE_SETTINGS)
    del settings["auth"]["algorithm"]
    settings["observability"]["otlp_endpoint"] = f"http://127.0.0.1:{listening_port}"
    root = app_tree(settings_text=yaml.safe_dump(settings))
    inv = local_inventory(tmp_path / "inv.yml", root)
    result = validate_check(inv, "configuration")
    assert result["status"] == "degraded", result["message"]
    assert "auth.algorithm is not set, so the app's default applies" in result["message"]
    assert "None" not in result["message"]
    settings["auth"]["algorithm"] = "none"
    app_tree(settings_text=yaml.safe_dump(settings))
    result = validate_check(inv, "configuration")
    assert result["status"] == "not_ready"
    assert "auth algorithm 'none' is not allowed" in result["message"]


# (secret, status, what the message says): a 32+ character secret of few distinct characters
# is a repeated or patterned value; it was READY ("a" * 40, "password" four times over).
SECRETS = [
    ("a" * 40, "not_ready", "auth secret is weak: 40 characters but only 1 distinct (< 8)"),
    ("password" * 4, "not_ready", "auth secret is weak: 32 characters but only 7 distinct (< 8)"),
    ("ab12" * 10, "not_ready", "auth secret is weak: 40 characters but only 4 distinct (< 8)"),
    ("3f9a0c1b7e2d4a6f8b0c9d1e3f5a7b2c", "ready", ""),  # a random 32-character hex secret
    ("abcdefgh" * 4, "ready", ""),  # 8 distinct: at the limit
]


def test_a_long_secret_of_few_distinct_characters_is_weak_in_both_checks_that_judge_it(
    tmp_path: Path, listening_port: int
) -> None:
    """Through `readiness validate -c configuration` and `-c security_settings` (the
    production suites judge the secret there)."""
    from tests.services.apps import write_app

    otlp = {"observability": {"otlp_endpoint": f"http://127.0.0.1:{listening_port}"}}
    for i, (secret, status, says) in enumerate(SECRETS):
        root = write_app(tmp_path / f"app{i}", settings=otlp)
        (root / ".env").write_text(
            f"MAHAVISHNU_REPOS_PATH=repos.yaml\nMAHAVISHNU_AUTH__SECRET={secret}\n"
        )
        inventory = local_inventory(tmp_path / f"inv{i}.yml", root)
        r = validate_check(inventory, "configuration")
        assert r["status"] == status, (secret, r["message"])
        assert says in r["message"]
        assert secret not in json.dumps(r), "the secret is never shown"
        if status == "not_ready":
            assert any("strong secret (32+ random characters)" in x for x in r["recommendations"])
            security = validate_check(inventory, "security_settings")
            assert says in json.dumps(security["details"]["problems"]), security["message"]
