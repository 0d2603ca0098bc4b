"""Secrets never leave a run: values, URL passwords and secret-named keys are masked."""

from __future__ import annotations

from readiness.model import CheckResult, Status
from readiness.redact import MASK, Redactor, is_secret_name, redact_url_password


def test_registered_secret_values_are_replaced_everywhere() -> None:
    r = Redactor(["hunter2-very-secret"])
    res = r.result(
        CheckResult(
            "x",
            Status.READY,
            "got hunter2-very-secret",
            {"d": ["a hunter2-very-secret b"]},
            ("use hunter2-very-secret",),
        )
    )
    assert "hunter2" not in repr(res.to_dict())
    assert MASK in res.message


def test_dsn_passwords_are_masked_in_urls_and_key_value_strings() -> None:
    assert (
        redact_url_password("postgresql://app:pw123@db:5432/x")
        == f"postgresql://app:{MASK}@db:5432/x"
    )
    assert "pw123" not in redact_url_password("host=db password=pw123 dbname=x")


def test_values_under_secret_named_keys_are_masked_but_descriptions_kept() -> None:
    out = Redactor().obj(
        {"password": "abc123xyz", "secret": {"status": "set", "length": 40}, "api_token": "set"}
    )
    assert out["password"] == MASK
    assert out["secret"] == {"status": "set", "length": 40}
    assert out["api_token"] == "set"


def test_short_values_are_not_registered_to_avoid_masking_everything() -> None:
    r = Redactor(["ab"])
    assert r.text("about") == "about"


def test_secret_names_match_profile_patterns() -> None:
    assert is_secret_name("MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING", ["*CONNECTION_STRING*"])
    assert is_secret_name("MAHAVISHNU_AUTH__SECRET")
    assert not is_secret_name("MAHAVISHNU_REPOS_PATH", ["*SECRET*"])


def test_short_secrets_are_masked_as_words_not_inside_other_words() -> None:
    r = Redactor(["short"])
    assert r.text("auth secret is too short (5 < 32)") == f"auth secret is too {MASK} (5 < 32)"
    assert r.text("shortcut") == "shortcut"


def test_secret_assignments_in_host_text_are_masked_and_ordinary_ones_kept() -> None:
    r = Redactor()
    line = "0 3 * * * PGPASSWORD=hunter2-canary pg_dump app; export API_TOKEN='a b' DB_PASS=x1"
    out = r.text(line)
    assert "hunter2-canary" not in out and "'a b'" not in out and "x1" not in out
    assert out == f"0 3 * * * PGPASSWORD={MASK} pg_dump app; export API_TOKEN={MASK} DB_PASS={MASK}"
    for kept in ("MAHAVISHNU_AUTH__ENABLED=false", "RETRY_MAX=3", "JWT_SECRET=set", "AUTHOR=ann"):
        assert r.text(kept) == kept


def test_a_fleet_of_secrets_redacts_exactly_as_testing_each_secret_would() -> None:
    """Past a few dozen secrets, strings are matched through a prefix index (a fleet adds a
    few per host); the result must be exactly the one-by-one replacement's."""
    import random
    import re as re_

    from readiness.redact import MASK, Redactor, redact_url_password

    rng = random.Random(7)
    alphabet = "abcdefXYZ0123456789-_*"
    secrets = {"".join(rng.choice(alphabet) for _ in range(rng.randint(4, 14))) for _ in range(400)}
    secrets |= {"abc*", "*abc", "hunter2", "hunter22", "short", "shortest"}

    def reference(value: str) -> str:
        for s in sorted(secrets, key=len, reverse=True):
            if s not in value:
                continue
            if len(s) >= 8:
                value = value.replace(s, MASK)
            else:
                value = re_.sub(rf"(?<![\w]){re_.escape(s)}(?![\w])", MASK, value)
        return redact_url_password(value)

    ordered = sorted(secrets)
    redactor = Redactor(ordered)
    for _ in range(400):
        parts = [
            rng.choice(ordered)
            if rng.random() < 0.3
            else rng.choice(alphabet + " ") * rng.randint(1, 6)
            for _ in range(rng.randint(1, 12))
        ]
        value = "".join(parts)
        assert redactor.text(value) == reference(value), value
    assert redactor.text("x abc*abc y") == reference("x abc*abc y")
