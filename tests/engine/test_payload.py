"""What a shard may carry of a profile: the pure logic of ``wire_profiles`` (the end-to-end
proof, with real Redis and workers, is in test_celery_engine.py section 8)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from readiness.engine.payload import wire_profiles
from readiness.errors import UsageError
from readiness.profile import Profile, deep_merge
from readiness.registry import default_profile

PW = "Canary-pw-9f3e"


def _sent(**layer: Any) -> dict[str, Any]:
    profile = Profile(deep_merge(dict(default_profile()), layer))
    return dict(wire_profiles([SimpleNamespace(name="web-1")], {"web-1": profile})["web-1"])


def test_the_built_in_profile_travels_whole() -> None:
    assert _sent() == dict(default_profile())  # rbac.token_env & co. name variables


@pytest.mark.parametrize(
    ("dsn", "sent"),
    [
        (f"postgresql://app:{PW}@db:5432/app", "postgresql://app@db:5432/app"),
        (f"postgres://:{PW}@db/app", "postgres://db/app"),
        (
            f"postgresql://app@db/app?sslmode=require&password={PW}",
            "postgresql://app@db/app?sslmode=require",
        ),
        (f"host=db user=app password='a b\\' {PW}' dbname=app", "host=db user=app dbname=app"),
        (f"host=db password={PW} dbname=app user=app", "host=db dbname=app user=app"),
        ("postgresql://app@db/app", "postgresql://app@db/app"),
    ],
)
def test_a_dsn_travels_without_its_password_and_nothing_else_changes(dsn: str, sent: str) -> None:
    got = _sent(database_dsn=dsn, backup_roundtrip={"admin_dsn": dsn})
    assert got["database_dsn"] == got["backup_roundtrip"]["admin_dsn"] == sent


@pytest.mark.parametrize(
    ("layer", "key"),
    [
        (
            {"alert_delivery": {"webhook_url": f"https://u:{PW}@hooks/x"}},
            "alert_delivery.webhook_url",
        ),
        ({"prometheus_url": f"http://p:9090/?token={PW}"}, "prometheus_url"),
        ({"adapter_health": {"x": {"api_key": PW}}}, "adapter_health.x.api_key"),
        ({"backup_command": f"PGPASSWORD={PW} pg_dump app"}, "backup_command"),
        ({"migration_command": ["alembic", "--password", PW]}, "migration_command"),
        ({"database_dsn": f"postgresql://app:{PW}@db/app?sslpassword={PW}"}, "database_dsn"),
        # libpq ends this password at the first '@': it cannot be taken out as libpq reads it
        ({"database_dsn": f"postgresql://app:p@{PW}@db/app"}, "database_dsn"),
        # through the host's tunnel a worker's libpq is pinned to the DSN's own password
        ({"service_access": "ssh", "database_dsn": f"postgresql://a:{PW}@db/app"}, "database_dsn"),
    ],
)
def test_a_credential_no_worker_can_look_up_is_refused_by_key_never_by_value(
    layer: dict[str, Any], key: str
) -> None:
    with pytest.raises(UsageError) as refused:
        _sent(**layer)
    text = str(refused.value)
    assert f"profile key {key} of host web-1" in text and "--engine local" in text
    assert PW not in text and "\n" not in text


def test_only_a_section_named_after_a_check_outside_the_run_stays_home() -> None:
    from readiness.registry import get

    layer = {"alert_delivery": {"webhook_url": f"https://u:{PW}@hooks/x"}}
    profile = Profile(deep_merge(dict(default_profile()), layer))
    hosts = [SimpleNamespace(name="web-1"), SimpleNamespace(name="web-2")]
    profiles = {"web-1": profile, "web-2": profile}
    sent = wire_profiles(hosts, profiles, [get("environment")])
    assert "alert_delivery" not in sent["web-1"] and PW not in str(sent)
    with pytest.raises(UsageError) as refused:  # a check of the run reads it
        wire_profiles(hosts, profiles, [get("environment"), get("alert_delivery")])
    assert "profile key alert_delivery.webhook_url of all 2 hosts (web-1, web-2) holds" in str(
        refused.value
    )
    # a shared key is never "another check's": a DSN with service_access: ssh still refuses
    ssh = {"service_access": "ssh", "database_dsn": f"postgresql://a:{PW}@db/app"}
    shared = Profile(deep_merge(dict(default_profile()), ssh))
    with pytest.raises(UsageError, match="profile key database_dsn of host web-1"):
        wire_profiles(hosts[:1], {"web-1": shared}, [get("environment")])
