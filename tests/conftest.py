"""Shared fixtures. Real services (sshd, PostgreSQL, Prometheus, HTTP) live in tests/services/.

Order matters: a plugin imported by another plugin must be listed first, or pytest
cannot rewrite its asserts.
"""

from __future__ import annotations

pytest_plugins = [
    "tests.services.apps",
    "tests.services.httpd",
    "tests.services.alertmanager",
    "tests.services.postgres",
    "tests.services.sshd",
    "tests.services.prometheus",
]
