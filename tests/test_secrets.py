"""Sentinel secrets planted in the env file, DSN and settings appear in no output and no saved file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from readiness.report import EXTENSIONS, FORMATS
from tests.services.apps import audit_local, write_app
from tests.services.cli import local_inventory, run_cli

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


@pytest.mark.parametrize("fmt", list(FORMATS))  # every format of the renderer table
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


# A secret with the characters a check's repr() or a JSON dump writes differently: a
# backslash, both quotes, a non-ASCII letter and an invisible one.
QUOTED = "SENTINEL-q\\uo'te\"d-ü\u200b-7f3a"


def test_a_secret_a_check_quotes_is_masked_in_every_format(tmp_path: Path) -> None:
    """The JWT secret pasted into a setting that is not a secret (auth.algorithm): the
    configuration check quotes the bad value with repr(), which writes the backslash and
    the quote escaped, so the registered secret no longer matched and every format that
    shows messages printed it (as 'SENTINEL-q\\\\uo\\'te"d...'). One run writes every format
    of the renderer table."""
    app = write_app(tmp_path / "app", settings={"auth": {"algorithm": QUOTED}})
    with (app / ".env").open("a") as env:  # a double-quoted .env value: \\ and \" escaped
        quoted = QUOTED.replace("\\", "\\\\").replace('"', '\\"')
        env.write(f'MAHAVISHNU_AUTH__SECRET="{quoted}"\n')
    inv = local_inventory(tmp_path / "inv.yml", app)
    reports = {fmt: tmp_path / f"out-{fmt}.{EXTENSIONS[fmt]}" for fmt in FORMATS}
    args = [a for fmt, path in reports.items() for a in ("--report", f"{fmt}:{path}")]
    res = run_cli("validate", "-i", str(inv), "-c", "configuration", *args)
    assert res.returncode == 1, res.stderr
    shown = reports["text"].read_text()
    assert "auth.algorithm" in shown and "***" in shown, shown  # the value was judged, masked
    for fmt, path in reports.items():
        blob = path.read_text()
        assert "SENTINEL" not in blob, (fmt, blob[blob.find("SENTINEL") - 80 :][:200])
    assert "SENTINEL" not in res.stdout + res.stderr
