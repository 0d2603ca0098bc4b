"""The original validator's async API on top of the fleet engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from readiness import ProductionReadinessValidator, Status, print_validation_report
from tests.services.cli import local_inventory


def test_validate_all_returns_results_keyed_by_check_name(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    root = app_tree()
    inv = tmp_path / "inv.yml"
    local_inventory(inv, root)
    validator = ProductionReadinessValidator(inventory=str(inv))
    results = asyncio.run(validator.validate_all())
    assert {"environment", "configuration"} <= set(results)
    assert results["environment"].is_ready()
    report = validator.generate_report(results)
    assert "PRODUCTION READINESS VALIDATION REPORT" in report
    assert "ENVIRONMENT" in report


def test_each_check_has_its_own_awaitable(app_tree: Callable[..., Path]) -> None:
    validator = ProductionReadinessValidator(
        profile_overrides={"app_root": str(app_tree(env={"MAHAVISHNU_REPOS_PATH": None}))}
    )
    env = asyncio.run(validator.validate_environment())
    assert env.check_name == "environment"
    assert env.status is Status.NOT_READY
    conf = asyncio.run(validator.validate_configuration())
    assert conf.check_name == "configuration"


def test_print_validation_report_prints_the_text_layout(
    app_tree: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    validator = ProductionReadinessValidator(profile_overrides={"app_root": str(app_tree())})
    results = asyncio.run(validator.validate_all())
    print_validation_report(results)
    assert "OVERALL STATUS:" in capsys.readouterr().out
