"""Build small, real application trees on disk and audit them on the local host."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from readiness import FleetReport, validate
from readiness.model import CheckResult

from .daemon import stop

DEMO = Path(__file__).resolve().parents[2] / "examples" / "mahavishnu" / "bin" / "mahavishnu-demo"

GOOD_SECRET = "Zq8w3Jr5Nv1Lx7Tb9Hc2Pm4Kd6Fs0Gy1Ae3Ru5Wi7O"

BASE_SETTINGS: dict[str, Any] = {
    "server_name": "mahavishnu-test",
    "repos_path": "repos.yaml",
    "max_concurrent_workflows": 10,
    "workflow_timeout": 600,
    "auth": {"enabled": True, "algorithm": "HS256"},
    "adapters": {
        "prefect": {"enabled": True, "api_url": "http://127.0.0.1:4200/api"},
        "llamaindex": {"enabled": True, "llm_model": "llama3", "embedding_model": "nomic"},
        "agno": {"enabled": False},
    },
    "pools": {
        "enabled": True,
        "min_workers": 2,
        "max_workers": 8,
        "routing_strategy": "least_loaded",
    },
    "observability": {"metrics_enabled": True, "otlp_endpoint": None},
    "otel_storage": {"enabled": False},
}

BASE_ENV = {
    "MAHAVISHNU_REPOS_PATH": "repos.yaml",
    "MAHAVISHNU_AUTH__SECRET": GOOD_SECRET,
}


@dataclass(frozen=True)
class LocalTestHost:
    """A HostLike for the controller itself (what the inventory's ``local`` resolves to)."""

    name: str = "local"
    address: str = "localhost"
    port: int = 0
    user: str | None = None
    key_file: str | None = None
    groups: tuple[str, ...] = ()
    local: bool = True
    vars: Mapping[str, Any] = field(default_factory=dict)

    @property
    def profile_vars(self) -> Mapping[str, Any]:
        value = self.vars.get("readiness", {})
        return value if isinstance(value, Mapping) else {}


def deep_update(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in changes.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = deep_update(out[k], v)
        else:
            out[k] = v
    return out


def write_app(
    root: Path,
    *,
    settings: Mapping[str, Any] | None = None,
    settings_text: str | None = None,
    env: Mapping[str, str | None] | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """Write a Mahavishnu-style app tree: settings YAML, .env (mode 0600), extra files.

    ``settings`` is deep-merged over BASE_SETTINGS; ``env`` over BASE_ENV (None removes).
    """
    (root / "settings").mkdir(parents=True, exist_ok=True)
    text = (
        settings_text
        if settings_text is not None
        else yaml.safe_dump(deep_update(BASE_SETTINGS, settings or {}))
    )
    (root / "settings" / "mahavishnu.yaml").write_text(text)
    merged = {**BASE_ENV, **(env or {})}
    lines = [f"{k}={v}" for k, v in merged.items() if v is not None]
    env_path = root / ".env"
    env_path.write_text("\n".join(lines) + "\n")
    env_path.chmod(0o600)
    for rel, content in (files or {}).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    return root


def audit_local(
    app_root: Path | str,
    checks: list[str] | str,
    profile: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> FleetReport:
    overrides = {"app_root": str(app_root), **(profile or {})}
    return validate([LocalTestHost()], checks, profile_overrides=overrides, **kwargs)


def one(report: FleetReport) -> CheckResult:
    assert len(report.results) == 1, report.results
    return report.results[0]


@pytest.fixture
def app_tree(tmp_path: Path) -> Callable[..., Path]:
    """``app_tree(settings={...}, env={...}, files={...})`` → the app root under tmp_path."""

    def make(**kwargs: Any) -> Path:
        return write_app(tmp_path / "app", **kwargs)

    return make


def env_file_of(root: Path) -> dict[str, str]:
    """The app's .env as systemd's EnvironmentFile= would export it."""
    return {k: v for k, v in dotenv_values(root / ".env").items() if v is not None}


@contextmanager
def running_service(
    root: Path, env: Mapping[str, str] | None = None, *, pidfile: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The example app's stand-in service (examples/mahavishnu/bin/mahavishnu-demo), started
    with exactly ``env`` (default: the app's .env, as EnvironmentFile= would) plus PATH, its
    pidfile under ``root/run``; stopped (SIGTERM, then SIGKILL) on exit."""
    pidfile = pidfile or root / "run" / "mahavishnu.pid"
    environ = {"PATH": os.environ["PATH"], **(env_file_of(root) if env is None else env)}
    proc = subprocess.Popen(
        [sys.executable, str(DEMO), "--pidfile", str(pidfile), "--env-file", ""],
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (pidfile.exists() and pidfile.read_text().strip() == str(proc.pid)):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mahavishnu-demo did not write {pidfile} (exit {proc.poll()})")
            time.sleep(0.02)
        yield proc, pidfile
    finally:
        stop(proc)
