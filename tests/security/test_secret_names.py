"""Secret names and passwords containing '@' never leak (#18, low items).

Default secret names now also cover ``*_PASS``, ``*_PWD`` and credential-shaped AUTH names
(``BASIC_AUTH``, ``*AUTHORIZATION*``), but not words that merely contain "auth" or "pass"
(``AUTHOR``, ``AUTH_ENABLED``, ``OAUTH_PROVIDER``, ``BYPASS``): masking those would hide
what a check judged. A password with an unencoded '@' is masked whole, in messages and in
``readiness inventory``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from readiness.profile import Profile
from readiness.redact import MASK, Redactor, is_secret_name, redact_url_password
from readiness.registry import default_profile

BIN = Path(sys.executable).parent


def _patterns() -> list[str]:
    profile: Profile = default_profile()
    return [str(p) for p in profile.get("secret_env") or ()]


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASS",
        "SMTP_PWD",
        "MAHAVISHNU_DATABASE__PASS",
        "BASIC_AUTH",
        "HTTP_AUTHORIZATION",
        "smtp_pwd",
        "proxy-auth",
    ],
)
def test_credential_names_are_secret(name: str) -> None:
    assert is_secret_name(name, _patterns())
    assert Redactor().obj({name: "hunter2-value"}) == {name: MASK}


@pytest.mark.parametrize(
    "name",
    [
        "AUTHOR",
        "AUTHOR_EMAIL",
        "MAHAVISHNU_AUTH__ENABLED",
        "OAUTH_PROVIDER",
        "BYPASS",
        "COMPASS_URL",
    ],
)
def test_names_that_merely_contain_auth_or_pass_are_not(name: str) -> None:
    assert not is_secret_name(name, _patterns())
    assert Redactor().obj({name: "visible-value"}) == {name: "visible-value"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:Sec@ret-Tail-99@db:5432/app", "postgresql://app:***@db:5432/app"),
        ("redis://:p@w@d-tail@127.0.0.1:6379/0 then", "redis://:***@127.0.0.1:6379/0 then"),
        ("https://a:b@c and https://d:e@f/x", "https://a:***@c and https://d:***@f/x"),
        ("http://host:80/path@x", "http://host:80/path@x"),
    ],
)
def test_a_password_with_an_at_sign_is_masked_whole(text: str, expected: str) -> None:
    assert redact_url_password(text) == expected


def test_readiness_inventory_never_shows_part_of_an_at_sign_password(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.9\n      readiness:\n"
        "        app_root: /srv/app\n"
        "        database_dsn: 'postgresql://app:Sec@ret-Tail-99@db.internal:5432/app'\n"
    )
    for fmt in ("text", "json"):
        res = subprocess.run(
            [str(BIN / "readiness"), "inventory", "-i", str(inv), "--format", fmt],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
            cwd=tmp_path,
        )
        assert res.returncode == 0, res.stderr
        shown = res.stdout + res.stderr
        assert "db.internal" in shown  # the value is shown, its password is not
        for fragment in ("Sec@ret", "ret-Tail-99", "Tail-99"):
            assert fragment not in shown, (fmt, fragment)
