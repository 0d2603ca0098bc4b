"""Secret names and passwords containing '@' never leak (#18, low items).

Default secret names now also cover ``*_PASS``, ``*_PWD`` and credential-shaped AUTH names
(``BASIC_AUTH``, ``*AUTHORIZATION*``), but not words that merely contain "auth" or "pass"
(``AUTHOR``, ``AUTH_ENABLED``, ``OAUTH_PROVIDER``, ``BYPASS``): masking those would hide
what a check judged. A password with an unencoded '@' is masked whole, in messages and in
``readiness inventory``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from readiness.profile import Profile
from readiness.redact import (
    MASK,
    Redactor,
    holds_a_secret,
    is_secret_name,
    redact_url_password,
)
from readiness.registry import default_profile
from tests.services.cli import run_cli


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
        "api-key",
        "X-Api-Key",
        "private-key",
        "passphrase",
        "ssh_key_passphrase",
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


@pytest.mark.parametrize(
    ("dsn", "fragments"),
    [
        ("postgresql://app:Sec@ret-Tail-99@db.internal:5432/app", ("Sec@ret", "ret-Tail-99")),
        ("postgresql://app:Qm7/Slash?Query-Tail-4@db.internal/app", ("Qm7", "Query-Tail-4")),
        ("postgresql://app:Hs9/Slash#Hash-Tail-6@db.internal/app", ("Hs9", "Hash-Tail-6")),
    ],
)
def test_readiness_inventory_never_shows_part_of_an_at_sign_password(
    tmp_path: Path, dsn: str, fragments: tuple[str, ...]
) -> None:
    """Nor of one holding a '/' then a '?' or '#': it reached the output whole."""
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.9\n      readiness:\n"
        "        app_root: /srv/app\n"
        f"        database_dsn: '{dsn}'\n"
    )
    for fmt in ("text", "json"):
        res = run_cli("inventory", "-i", str(inv), "--format", fmt, cwd=tmp_path, timeout=60)
        assert res.returncode == 0, res.stderr
        shown = res.stdout + res.stderr
        assert "db.internal" in shown  # the value is shown, its password is not
        for fragment in (*fragments, "Slash", "Tail"):
            assert fragment not in shown, (fmt, fragment)


# A base64 password holds '/' (`openssl rand -base64 24`: ~40 % of them). libpq ends a URL's
# user:password at the first '/', so its head became the port and its tail the database
# name: "port 'Kq7' is not a number" showed the head, and a numeric head passed as a valid
# port and showed the whole URL, password included, as the target.
SLASH_HEAD, SLASH_TAIL = "Kq7hQ", "Slash-Tail-Zr8vW+Lm2=="
NUMERIC_TAIL = "Numeric-Head-Tail-5Tg"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"postgresql://app:{SLASH_HEAD}/{SLASH_TAIL}@db/app", "postgresql://app:***@db/app"),
        (f"x redis://:1234/{NUMERIC_TAIL}@127.0.0.1:6379/0 y", "x redis://:***@127.0.0.1:6379/0 y"),
        ("amqp://u:a/b@c@mq:5672/vh", "amqp://u:***@mq:5672/vh"),
        ("postgresql://u:pw@h/db?user=a@b", "postgresql://u:***@h/db?user=a@b"),  # a query's '@'
        ("https://h:8080/x?email=a@b.example", "https://h:8080/x?email=a@b.example"),
        ("http://host:80/path@x", "http://host:80/path@x"),  # http paths may hold an '@'
        # a '?' or '#' after the '/': the authority a parser sees ends before any '@'
        ("postgresql://app:ab/c?d@db/app", "postgresql://app:***@db/app"),
        (
            "x postgresql://app:ab/c#d@db:5432/app?ssl=1 y",
            "x postgresql://app:***@db:5432/app?ssl=1 y",
        ),
        ("redis://:a?b/c@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("mongodb://u:p#w/x@h/db", "mongodb://u:***@h/db"),
        ("postgresql://h/db?x=1/2@y", "postgresql://h/db?x=1/2@y"),  # no user:password
    ],
)
def test_a_password_with_a_slash_is_masked_whole(text: str, expected: str) -> None:
    assert redact_url_password(text) == expected


def test_a_dsn_with_a_slash_in_its_password_is_refused_without_quoting_it() -> None:
    from readiness.checks._common import parse_dsn

    for value in (
        f"postgresql://app:{SLASH_HEAD}/{SLASH_TAIL}@127.0.0.1:5432/app",
        f"postgresql://app:1234/{NUMERIC_TAIL}@127.0.0.1:5432/app",
    ):
        dsn, problem = parse_dsn(value)
        assert dsn is None and problem == (
            "an unencoded '/' in the user or password (write it as %2F)"
        )


@pytest.mark.ssh
def test_readiness_validate_never_shows_part_of_a_slash_password(
    ssh_fleet: Any, shared_root: Path
) -> None:
    """A real `readiness validate` over loopback sshd: neither the head nor the tail of a
    '/' password is in stdout, stderr, the saved report or the results store."""
    from tests.services.apps import write_app
    from tests.services.sshd import host_entry, write_inventory

    app = write_app(
        shared_root / "app",
        env={
            "MAHAVISHNU_DATABASE__URL": f"postgresql://app:1234/{NUMERIC_TAIL}@127.0.0.1:1/app",
            "MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING": (
                f"postgresql://app:{SLASH_HEAD}/{SLASH_TAIL}@127.0.0.1:1/app"
            ),
        },
        files={"migrations/0001_a.sql": "SELECT 1;\n"},
    )
    entry = host_entry(ssh_fleet, ssh_fleet.hosts[3])
    entry["readiness"] = {"app_root": str(app)}
    inventory = write_inventory(shared_root / "inv.yml", {"h": entry})
    saved, store = shared_root / "report.json", shared_root / "history.sqlite3"
    argv = ["validate", "-i", str(inventory), "-H", "h", "-q"]
    argv += ["-c", "environment,database_migration", "-o", "json", "--save", str(saved)]
    argv += ["--store", str(store), "--known-hosts", str(ssh_fleet.known_hosts)]
    res = run_cli(*argv, cwd=shared_root, env={**os.environ, "HOME": str(shared_root)})
    assert res.returncode == 1, res.stderr
    with sqlite3.connect(store) as db:
        stored = "\n".join(db.iterdump())
    for shown in (res.stdout, res.stderr, saved.read_text(), stored):
        for fragment in (SLASH_HEAD, SLASH_TAIL, NUMERIC_TAIL):
            assert fragment not in shown, fragment
    assert "an unencoded '/' in the user or password (write it as %2F)" in res.stdout


HYPHEN_LITERALS = {
    "api-key": "Hyphen-Api-Key-Literal-7Qw2",
    "private-key": "Hyphen-Private-Key-Literal-6As3",
    "passphrase": "Passphrase-Literal-3Op5",
}


@pytest.mark.ssh
def test_the_remediate_dry_run_masks_hyphenated_key_names_and_passphrases(
    ssh_fleet: Any, shared_root: Path
) -> None:
    """A real `readiness remediate` dry run over loopback sshd: the settings diff around the
    inserted `resilience:` keys showed `passphrase:` and `api-key:` literals in clear."""
    import yaml

    from tests.services.apps import BASE_SETTINGS, write_app
    from tests.services.sshd import host_entry, write_inventory

    text = yaml.safe_dump(BASE_SETTINGS) + "integrations:\n"
    text += "".join(f"  {key}: {value}\n" for key, value in HYPHEN_LITERALS.items())
    app = write_app(shared_root / "app", settings_text=text)
    entry = host_entry(ssh_fleet, ssh_fleet.hosts[3])
    entry["readiness"] = {"app_root": str(app)}
    inventory = write_inventory(shared_root / "inv.yml", {"h": entry})
    argv = ["remediate", "-i", str(inventory), "-H", "h", "-q"]
    argv += ["-c", "error_handling", "--store", "none"]
    argv += ["--known-hosts", str(ssh_fleet.known_hosts)]
    res = run_cli(*argv, cwd=shared_root, env={**os.environ, "HOME": str(shared_root)})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "+resilience:" in res.stdout  # the diff around the settings' last lines is shown
    for key, value in HYPHEN_LITERALS.items():
        assert f"{key}: ***" in res.stdout
        assert value not in res.stdout + res.stderr


# Backup cron lines carry credentials on the command line; the backup_restore check shows
# the lines that schedule backups, and the remediate diff of a cron file shows its lines.
CRON_SECRETS = {
    "mysqldump -u app -pCronMyPw11 app | gzip > b/a.sql.gz": "mysqldump -u app -p*** app",
    "mysqldump --password CronMyPw22 app > b/b.sql": "mysqldump --password *** app",
    "redis-cli -a CronRedisPw33 --rdb b/r.rdb": "redis-cli -a *** --rdb",
    "curl -u backup:CronCurlPw44 -T b/x https://store.example/up": "curl -u backup:*** -T",
    "/usr/local/bin/backup --token CronTok66 --secret=CronSec77": "--token *** --secret=***",
    "sshpass -p CronSshPw88 rsync -a b/ host:b/": "sshpass -p *** rsync",
    'PASSWORD="Cron Quoted99" /usr/local/bin/backup': "PASSWORD=*** /usr/local/bin/backup",
}


@pytest.mark.parametrize("line", sorted(CRON_SECRETS))
def test_credentials_on_a_command_line_are_masked(line: str) -> None:
    assert CRON_SECRETS[line] in redact_url_password(f"0 2 * * * {line}  # backup")


@pytest.mark.parametrize(
    "text",
    [
        "pg_dump --no-password -h db app",  # a flag, not a value
        "backup --password-file /etc/app/pw --verbose",  # names a file
        "mkdir -p /srv/app/backups",
        "cp -pr a b",
        "ssh -p 22 host",
        "mysqldump -u root -p app",  # -p alone prompts: nothing to mask
        "readiness validate --sudo -H web",
    ],
)
def test_command_lines_without_a_credential_are_kept(text: str) -> None:
    assert redact_url_password(text) == text


@pytest.mark.ssh
def test_backup_cron_lines_never_show_their_credentials(ssh_fleet: Any, shared_root: Path) -> None:
    """A real `readiness validate -c backup_restore --save` over loopback sshd: the schedule's
    cron lines are shown, their passwords and tokens are not."""
    from tests.services.apps import write_app
    from tests.services.sshd import host_entry, write_inventory

    cron = "".join(f"0 2 * * * {line}  # backup\n" for line in CRON_SECRETS)
    app = write_app(shared_root / "app", files={"cron/app": cron})
    entry = host_entry(ssh_fleet, ssh_fleet.hosts[3])
    entry["readiness"] = {"app_root": str(app), "backup_cron_files": ["cron/app"]}
    inventory = write_inventory(shared_root / "inv.yml", {"h": entry})
    saved = shared_root / "report.json"
    argv = ["validate", "-i", str(inventory), "-H", "h", "-q"]
    argv += ["-c", "backup_restore", "-o", "text", "--save", str(saved), "--store", "none"]
    argv += ["--known-hosts", str(ssh_fleet.known_hosts)]
    res = run_cli(*argv, cwd=shared_root, env={**os.environ, "HOME": str(shared_root)})
    assert res.returncode == 1, res.stderr
    shown = res.stdout + res.stderr + saved.read_text()
    for secret in ("CronMyPw11", "CronMyPw22", "CronRedisPw33", "CronCurlPw44", "CronTok66"):
        assert secret not in shown  # the credentials are not shown...
    assert "CronSec77" not in shown and "CronSshPw88" not in shown and "Quoted99" not in shown
    assert "redis-cli -a ***" in shown  # ...the lines are


def test_a_broker_password_with_a_slash_is_not_quoted_by_its_error(tmp_path: Path) -> None:
    """A real `readiness validate --engine celery`: urlsplit ends the netloc at the password's
    '/', and the broker error said "Port could not be cast to integer value as 'HEAD'"."""
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    r1:\n      ansible_host: 127.0.0.9\n")
    broker = "redis://:Broker-Head-7x/Broker-Tail-9y@127.0.0.1:1/0"
    argv = ["validate", "-i", str(inventory), "-H", "r1", "-q"]
    argv += ["--store", "none", "--engine", "celery", "--broker", broker]
    res = run_cli(*argv, cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)})
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.startswith("readiness: broker redis://:***@127.0.0.1:1/0 unreachable")
    for part in ("Broker-Head-7x", "Broker-Tail-9y"):
        assert part not in res.stdout + res.stderr


# Names that hold a secret and were not masked, compared against Ansible's no_log heuristic
# (module_utils/basic.py PASSWORD_MATCH: pass, pass_word, pass_phrase, passwrd, pass_wd as a
# word) and detect-secrets' keyword list (auth/service/account/db/client/priv key, db/key
# pass). A value under such a key, or NAME=value in host text, reached every report format.
SECRET_NAMES = [
    "pass_phrase",
    "SSH_PASS_PHRASE",
    "key_pass_phrase",
    "key-pass-phrase",
    "pass_word",
    "Pass-Word",
    "passwrd",
    "smtp_pass_wd",
    "signing_key",
    "jwtSigningKey",
    "SIGN_KEY",
    "encryption_key",
    "ENCRYPT_KEY",
    "session_key",
    "RAILS_MASTER_KEY",
    "hmac_key",
    "jwt_key",
    "NEW_RELIC_LICENSE_KEY",
    "APP_KEY",
    "DB_KEY",
    "database-key",
    "auth_key",
    "SECURE_AUTH_KEY",
    "client_key",
    "service_key",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "MINIO_ACCESS_KEY",
    "priv_key",
    "privkey",
    "ssl.private.key",
    "AUTH_SALT",
    "DB_CREDS",
    "DBPASS",
    "keypass",
    # already secret before: kept so (the task's list)
    "aws_secret_access_key",
    "client_secret",
    "cookie_secret",
    "access_token",
    "refresh_token",
    "private_key",
]

# Near misses: names of things that are not secrets. Masking them hides what a check judged.
HARMLESS_NAMES = [
    "PRIMARY_KEY",
    "CACHE_KEY_PREFIX",
    "CACHE_KEY",
    "ROUTING_KEY",
    "PARTITION_KEY",
    "IDEMPOTENCY_KEY",
    "public_key",
    "pub_key",
    "key",
    "hotkey",
    "mapkey",
    "design_key",
    "AWS_ACCESS_KEY_ID",  # names the key; AWS_SECRET_ACCESS_KEY is the secret
    "signing_key_file",  # a path to the key
    "encryption_key_dir",
    "session_key_prefix",
    "min_pass_rate",
    "PASS_THROUGH",
    "passive_mode",
    "surpass",
    "SALT_ROUNDS",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names_of_no_log_and_secret_scanners_are_secret(name: str) -> None:
    """Without the profile's patterns too: host text (`NAME=value`, `--name value`) and
    report details are masked by the names alone."""
    assert is_secret_name(name) and is_secret_name(name, _patterns())
    assert Redactor().obj({name: "hunter2-value"}) == {name: MASK}
    if name.isidentifier():  # a shell variable: `NAME=value cmd` in a cron line
        assert redact_url_password(f"{name}=hunter2-value run") == f"{name}=*** run"


@pytest.mark.parametrize("name", HARMLESS_NAMES)
def test_near_miss_names_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)
    assert Redactor().obj({name: "visible-value"}) == {name: "visible-value"}


# One canary per newly covered name, in the places host text carries it: a settings key, a
# cron line's assignment and a long option (backup_restore shows the lines).
NAME_CANARIES = {
    "key_pass_phrase": "Canary-KeyPassPhrase-4f1x",
    "pass_word": "Canary-PassWord-7h2q",
    "encryption_key": "Canary-EncryptionKey-9k3z",
}
CRON_CANARIES = {
    "SSH_PASS_PHRASE": "Canary-SshPassPhrase-2m5w",
    "SIGNING_KEY": "Canary-SigningKey-8p6v",
}
OPTION_CANARY = "Canary-KeyPassOption-3r7t"


def _canary_app(root: Path) -> Path:
    import yaml

    from tests.services.apps import BASE_SETTINGS, write_app
    from tests.services.cli import local_inventory

    text = yaml.safe_dump(BASE_SETTINGS) + "integrations:\n"
    text += "".join(f"  {key}: {value}\n" for key, value in NAME_CANARIES.items())
    cron = "".join(
        f"0 2 * * * {k}={v} /usr/local/bin/backup  # backup\n" for k, v in CRON_CANARIES.items()
    )
    cron += f"0 3 * * * /usr/local/bin/backup --key-pass-phrase {OPTION_CANARY}  # backup\n"
    app = write_app(root / "app", settings_text=text, files={"cron/app": cron})
    inventory = local_inventory(root / "inv.yml", app)
    data = yaml.safe_load(inventory.read_text())
    data["all"]["hosts"]["local"]["readiness"]["backup_cron_files"] = ["cron/app"]
    inventory.write_text(yaml.safe_dump(data))
    return inventory


CANARIES = (*NAME_CANARIES.values(), *CRON_CANARIES.values(), OPTION_CANARY)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_validate_shows_no_value_under_a_newly_covered_secret_name(
    tmp_path: Path, fmt: str
) -> None:
    """A real `readiness validate --save` of the local host: the cron lines are shown (with
    their names), their values and the settings' literals are in no output."""
    inventory = _canary_app(tmp_path)
    saved = tmp_path / f"report.{fmt}"
    argv = ["validate", "-i", str(inventory), "-H", "local", "-o", fmt]
    argv += ["-c", "backup_restore,security_settings", "--save", str(saved), "--store", "none"]
    res = run_cli(*argv, cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "SSH_PASS_PHRASE=***" in saved.read_text()  # the lines are shown, masked
    assert fmt == "text" or "--key-pass-phrase ***" in res.stdout  # (text cuts long details)
    for shown in (res.stdout, res.stderr, saved.read_text()):
        for canary in CANARIES:
            assert canary not in shown, (fmt, canary)


def test_the_remediate_dry_run_diff_masks_newly_covered_secret_names(tmp_path: Path) -> None:
    """A real `readiness remediate` dry run of the local host: the settings diff around the
    inserted `resilience:` keys showed `key_pass_phrase: <literal>` in clear."""
    inventory = _canary_app(tmp_path)
    argv = ["remediate", "-i", str(inventory), "-H", "local", "-q"]
    argv += ["-c", "error_handling", "--store", "none"]
    res = run_cli(*argv, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "+resilience:" in res.stdout
    for key in NAME_CANARIES:
        assert f"{key}: ***" in res.stdout
    for canary in CANARIES:
        assert canary not in res.stdout + res.stderr


def test_a_setting_about_a_secret_is_not_masked_everywhere_but_a_header_value_is(
    tmp_path: Path,
) -> None:
    """`auth.token_audience: mahavishnu` (a name that mentions a token, a value that is
    none) was registered as a secret, so every 'mahavishnu' of the report became *** (the
    app's paths, its process, its settings file). A real secret beside it, and a header
    value under *_HEADER (it may be the header itself), stay secrets."""
    import json

    from tests.services.apps import write_app
    from tests.services.cli import local_inventory

    secret = "aud-secret-canary-12345678901234567890"
    settings = {"auth": {"token_audience": "mahavishnu", "token_expiry": "1h", "secret": secret}}
    root = write_app(tmp_path / "mahavishnu", settings=settings)
    inventory = local_inventory(tmp_path / "inv.yml", root)
    done = run_cli("validate", "-i", str(inventory), "--format", "json", "--store", "none")
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    shown = json.dumps(report)
    assert str(root / "settings" / "mahavishnu.yaml") in shown  # the app's paths, readable
    assert secret not in shown
    assert holds_a_secret("AUTHORIZATION_HEADER") and holds_a_secret("auth.secret")
    assert not holds_a_secret("token_audience") and not holds_a_secret("API_KEY_HEADER_NAME")
