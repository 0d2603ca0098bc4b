"""Sentinel secrets planted in the env file, DSN and settings appear in no output and no saved file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.services.apps import audit_local
from tests.services.cli import local_inventory

ROOT = Path(__file__).resolve().parent.parent
JWT = "SENTINEL-jwt-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
DB_PW = "SENTINEL-dbpass-7c1d"
API_TOKEN = "SENTINEL-token-5e6f7a8b"
SETTINGS_SECRET = "SENTINEL-settings-literal-9a8b7c6d5e4f"


@pytest.fixture
def leaky_app(app_tree: Callable[..., Path]) -> Path:
    return app_tree(
        settings={"otel_storage": {"enabled": True}, "integrations": {"api_key": SETTINGS_SECRET}},
        env={
            "MAHAVISHNU_AUTH__SECRET": JWT,
            "MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING": f"postgresql://app:{DB_PW}@127.0.0.1:1/app",
            "MAHAVISHNU_SERVICE_TOKEN": API_TOKEN,
            "MAHAVISHNU_ADMIN__PASSWORD": "changeme",
        },
    )


SENTINELS = (JWT, DB_PW, API_TOKEN, SETTINGS_SECRET)


@pytest.mark.parametrize("fmt", ["text", "table", "json", "markdown"])
def test_no_sentinel_in_any_format_or_saved_file(leaky_app: Path, tmp_path: Path, fmt: str) -> None:
    inv = tmp_path / "inv.yml"
    local_inventory(inv, leaky_app)
    saved = tmp_path / f"report.{fmt}"
    res = subprocess.run(
        [
            str(Path(sys.executable).parent / "invoke"),
            "validate",
            "-i",
            str(inv),
            "--format",
            fmt,
            "--save",
            str(saved),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert res.returncode == 1  # the app is not ready (insecure default), the report still renders
    blob = res.stdout + res.stderr + saved.read_text()
    if fmt in ("text", "json"):  # formats with details name the variable...
        assert "MAHAVISHNU_AUTH__SECRET" in blob
    for s in SENTINELS:
        assert s not in blob  # ...its value never is


def test_no_sentinel_in_the_python_api_results(leaky_app: Path) -> None:
    report = audit_local(leaky_app, None)
    text = repr(report.to_dict())
    for s in SENTINELS:
        assert s not in text
