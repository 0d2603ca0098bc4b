"""The app's effective configuration: settings file overlaid by env file and process env."""

from __future__ import annotations

from readiness.appconfig import (
    SOURCE_ENV_FILE,
    SOURCE_PROCESS,
    SOURCE_SETTINGS,
    build_app_config,
    coerce_scalar,
)


def _cfg(settings: str = "", env_file: str = "", environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return build_app_config(
        settings_fact={"path": "/app/settings.yaml", "text": settings},
        env_file_fact={"text": env_file},
        process_fact={"environ": environ} if environ is not None else None,
        env_prefix="MAHAVISHNU_",
    )


def test_env_vars_override_settings_with_double_underscore_nesting() -> None:
    app = _cfg("auth:\n  enabled: false\n  algorithm: HS256\n", "MAHAVISHNU_AUTH__ENABLED=true\n")
    assert app.get("auth.enabled") is True
    assert app.source("auth.enabled") == SOURCE_ENV_FILE
    assert app.get("auth.algorithm") == "HS256"
    assert app.source("auth.algorithm") == SOURCE_SETTINGS
    assert app.get("auth") == {"enabled": True, "algorithm": "HS256"}


def test_process_environment_wins_over_the_env_file() -> None:
    app = _cfg("", "MAHAVISHNU_AUTH__SECRET=from-file\n", {"MAHAVISHNU_AUTH__SECRET": "from-proc"})
    assert app.get("auth.secret") == "from-proc"
    assert app.env["MAHAVISHNU_AUTH__SECRET"].source == SOURCE_PROCESS


def test_settings_only_in_the_environment_are_found() -> None:
    app = _cfg("", "MAHAVISHNU_POOLS__MIN_WORKERS=2\nMAHAVISHNU_POOLS__MAX_WORKERS=4\n")
    assert app.get("pools") == {"min_workers": 2, "max_workers": 4}


def test_env_file_quotes_export_and_comments_parse_like_dotenv() -> None:
    app = _cfg("", "# comment\nexport MAHAVISHNU_A=\"x y\"\nMAHAVISHNU_B='z'\nOTHER=1\n")
    assert app.env["MAHAVISHNU_A"].value == "x y"
    assert app.env["MAHAVISHNU_B"].value == "z"
    assert "OTHER" not in app.env


def test_broken_settings_yaml_names_file_and_line() -> None:
    app = _cfg("a: 1\nb: [oops\n")
    assert app.settings_error is not None
    assert app.settings_error.startswith("/app/settings.yaml:")
    assert app.settings == {}


def test_scalars_are_coerced_like_pydantic() -> None:
    assert coerce_scalar("true") is True
    assert coerce_scalar("8") == 8
    assert coerce_scalar("0.5") == 0.5
    assert coerce_scalar("hello") == "hello"


def test_settings_yaml_never_constructs_python_objects() -> None:
    app = _cfg("x: !!python/object/apply:os.system ['touch /tmp/readiness-pwned']\n")
    assert app.settings == {}
    assert app.settings_error is not None and "settings.yaml" in app.settings_error
