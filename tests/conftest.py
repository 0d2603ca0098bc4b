"""Shared fixtures. Real services (sshd, PostgreSQL, Prometheus, HTTP) live in tests/services/."""

from __future__ import annotations

pytest_plugins = [
    "tests.services.apps",
    "tests.services.postgres",
    "tests.services.sshd",
    "tests.services.prometheus",
    "tests.services.httpd",
]
