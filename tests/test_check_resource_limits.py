"""resource_limits: concurrency, retries and timeouts judged on real app trees audited locally."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from readiness.appconfig import AppConfig, EnvVar
from readiness.checks.resource_limits import judge_limits, record_limits
from readiness.findings import Findings
from readiness.model import Status
from readiness.registry import default_profile, get
from tests.services.apps import audit_local, one
from tests.services.cli import local_inventory, run_cli

AppTree = Callable[..., Path]
RETRY = {"resilience": {"retry": {"max_attempts": 3}}}


def test_limits_within_the_seed_ranges_are_ready(app_tree: AppTree) -> None:
    result = one(audit_local(app_tree(settings=RETRY), ["resource_limits"]))
    assert result.status is Status.READY, result.message
    assert "max_concurrent_workflows=10" in result.message
    assert result.details["limits"]["workflow_timeout"]["range"] == "300-1800s"


def test_concurrency_above_the_range_is_degraded_with_a_concrete_recommendation(
    app_tree: AppTree,
) -> None:
    root = app_tree(settings={**RETRY, "max_concurrent_workflows": 50})
    result = one(audit_local(root, ["resource_limits"]))
    assert result.status is Status.DEGRADED
    assert "max_concurrent_workflows = 50 is outside the recommended range 5-20" in result.message
    assert any("within 5-20" in r for r in result.recommendations)


def test_timeout_below_the_range_is_degraded(app_tree: AppTree) -> None:
    result = one(
        audit_local(app_tree(settings={**RETRY, "workflow_timeout": 30}), ["resource_limits"])
    )
    assert result.status is Status.DEGRADED
    assert "workflow_timeout = 30s" in result.message


def test_absent_retry_setting_is_not_ready(app_tree: AppTree) -> None:
    result = one(audit_local(app_tree(), ["resource_limits"]))
    assert result.status is Status.NOT_READY
    assert "resilience.retry.max_attempts is not set" in result.message
    assert any("MAHAVISHNU_RESILIENCE__RETRY__MAX_ATTEMPTS" in r for r in result.recommendations)


def test_a_non_numeric_timeout_is_not_ready(app_tree: AppTree) -> None:
    root = app_tree(settings={**RETRY, "workflow_timeout": "ten minutes"})
    result = one(audit_local(root, ["resource_limits"]))
    assert result.status is Status.NOT_READY
    assert "workflow_timeout = 'ten minutes' is not a number" in result.message


def test_a_boolean_is_not_accepted_as_a_number(app_tree: AppTree) -> None:
    root = app_tree(settings={"resilience": {"retry": {"max_attempts": True}}})
    result = one(audit_local(root, ["resource_limits"]))
    assert result.status is Status.NOT_READY
    assert result.details["limits"]["retry_attempts"]["verdict"] == "invalid"


def test_an_environment_override_is_what_gets_judged(app_tree: AppTree) -> None:
    root = app_tree(settings=RETRY, env={"MAHAVISHNU_WORKFLOW_TIMEOUT": "5000"})
    result = one(audit_local(root, ["resource_limits"]))
    assert result.status is Status.DEGRADED
    assert result.details["limits"]["workflow_timeout"]["source"] == "env file"
    assert result.details["limits"]["workflow_timeout"]["value"] == 5000


def test_profile_ranges_replace_the_defaults(app_tree: AppTree) -> None:
    root = app_tree(settings={**RETRY, "max_concurrent_workflows": 50})
    profile = {"resource_ranges": {"max_concurrent_workflows": {"min": 10, "max": 100}}}
    result = one(audit_local(root, ["resource_limits"], profile))
    assert result.status is Status.READY, result.message
    assert result.details["limits"]["max_concurrent_workflows"]["range"] == "10-100"


def test_a_null_range_entry_is_not_checked(app_tree: AppTree) -> None:
    profile = {"resource_ranges": {"retry_attempts": None}}
    result = one(audit_local(app_tree(), ["resource_limits"], profile))
    assert result.status is Status.READY, result.message
    assert "retry_attempts" not in result.details["limits"]


def test_a_profile_range_with_min_above_max_is_refused_with_the_profile(app_tree: AppTree) -> None:
    """Refused before any host is contacted (it was each host's NOT_READY finding);
    tests/test_profile.py has the generated test and the command's exit 2."""
    from readiness.errors import ProfileError

    profile = {"resource_ranges": {"workflow_timeout": {"min": 900, "max": 300}}}
    with pytest.raises(ProfileError, match=r"workflow_timeout\.min' \(900\) must not be above"):
        audit_local(app_tree(settings=RETRY), ["resource_limits"], profile)


def test_unparseable_settings_name_the_file_and_line(app_tree: AppTree) -> None:
    root = app_tree(settings_text="server_name: x\nworkflow_timeout: [600\nauth: {}\n")
    result = one(audit_local(root, ["resource_limits"]))
    assert result.status is Status.NOT_READY
    assert f"{root}/settings/mahavishnu.yaml:" in result.message


def test_judge_limits_can_be_reused_by_other_checks() -> None:
    """Pure logic: judgements from an AppConfig built in memory, turned into findings."""
    app = AppConfig(
        settings={"max_concurrent_workflows": 4, "workflow_timeout": 600},
        env={"MAHAVISHNU_RESILIENCE__RETRY__MAX_ATTEMPTS": EnvVar("x", "4", "env file")},
        env_prefix="MAHAVISHNU_",
    )
    judgements = judge_limits(app, default_profile()["resource_ranges"])
    verdicts = {j.name: j.verdict for j in judgements}
    assert verdicts == {
        "max_concurrent_workflows": "out_of_range",
        "retry_attempts": "ok",
        "workflow_timeout": "ok",
    }
    f = Findings()
    record_limits(f, app, judgements)
    assert f.status is Status.DEGRADED


def test_it_belongs_to_the_production_suite_as_configuration() -> None:
    spec = get("resource_limits")
    assert spec.suites == ("production",)
    assert spec.categories == ("configuration",)
    assert spec.order == 130


@pytest.mark.parametrize("where", ["settings", "env"])
def test_a_nan_timeout_is_not_a_number(app_tree: AppTree, where: str) -> None:
    """Was DEGRADED "nans is outside the recommended range": NaN compares false with every
    bound. It is a malformed value (an int setting refuses it, a float one is useless)."""
    if where == "settings":
        root = app_tree(settings={**RETRY, "workflow_timeout": float("nan")})
    else:
        root = app_tree(settings=RETRY, env={"MAHAVISHNU_WORKFLOW_TIMEOUT": "nan"})
    result = one(audit_local(root, ["resource_limits"]))
    assert result.status is Status.NOT_READY
    assert "workflow_timeout = nan is not a number" in result.message
    assert any("a number within 300-1800s" in r for r in result.recommendations)


@pytest.mark.parametrize("where", ["settings", "env"])
def test_a_quoted_number_is_judged_like_the_same_number_from_the_environment(
    app_tree: AppTree, tmp_path: Path, where: str
) -> None:
    """`workflow_timeout: "600"` in the settings file was NOT_READY "'600' is not a number"
    while MAHAVISHNU_WORKFLOW_TIMEOUT=600 was READY: the app reads both as 600."""
    quoted = {"max_concurrent_workflows": " 10 ", "workflow_timeout": "600"}
    if where == "settings":
        root = app_tree(settings={**RETRY, **quoted})
    else:
        env = {"MAHAVISHNU_MAX_CONCURRENT_WORKFLOWS": " 10 ", "MAHAVISHNU_WORKFLOW_TIMEOUT": "600"}
        root = app_tree(settings=RETRY, env=env)
    inv = local_inventory(tmp_path / "inv.yml", root)
    res = run_cli("validate", "-i", str(inv), "-c", "resource_limits", "--format", "json")
    result = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert result["status"] == "ready", result["message"]
    assert res.returncode == 0, res.stderr
    assert result["details"]["limits"]["workflow_timeout"]["value"] == 600
    assert result["details"]["limits"]["max_concurrent_workflows"]["value"] == 10
