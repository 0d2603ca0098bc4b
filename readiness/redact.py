"""Secrets never leave the run: redaction runs before any renderer, log line or saved file.

Three layers: (1) values registered as secret during the run (env values whose
names match the profile's ``secret_env`` patterns, DSN passwords, JWT secrets),
replaced wherever they appear; (2) passwords inside URLs/DSNs
(``scheme://user:PASSWORD@host``) and ``password=...`` key/value DSNs; (3) mapping
keys that name a secret (``password``, ``secret``, ``token``, ...) whose values
are replaced wholesale.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from .model import CheckResult, FleetReport, HostReport

__all__ = [
    "MASK",
    "Redactor",
    "about_a_secret",
    "holds_a_secret",
    "is_secret_name",
    "redact_url_password",
    "url_passwords",
]

MASK = "***"
_MIN_SECRET_LEN = 4
_WHOLE_WORD_BELOW = 8
_INDEX_ABOVE = 32  # secrets registered before a string is matched through an index
# The password runs to the LAST '@' of the authority: an unencoded '@' in a password
# ("p@ss") must not leave its tail ("ss@host") in a message.
_URL_PASSWORD = re.compile(
    r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s'\"]*:)(?P<pw>[^\s'\"/]+)"
    r"(?=@[^@\s'\"/]*(?:[/?#\s'\"]|$))"
)
# The user part of a URL that is not http(s), up to the ':' before its password.
_NON_HTTP_USER = (
    r"(?P<pre>(?<![a-zA-Z0-9+.\-])(?!https?://)[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s'\"]*:)"
)
# Nor an unencoded '/' (base64 passwords hold them, SQLAlchemy accepts them) its head or
# tail: outside http(s), whose paths may hold an '@' ("http://h:80/path@x"), a password
# also runs over '/' to the last '@' before any '?' or '#' (a query's "a@b" is no password).
_URL_SLASH_PASSWORD = re.compile(
    _NON_HTTP_USER + r"(?P<pw>[^\s'\"/?#]*/[^\s'\"?#]*)(?=@[^@\s'\"/]*(?:[/?#\s'\"]|$))",
    re.IGNORECASE,
)
# Nor a '?' or '#' after such a '/' ("ab/c?d"): a URL parser would end the authority at
# the '/', so it sees no user:password at all, and the two patterns above stopped at the
# '?'. When a '/', '?' or '#' comes before any '@' (outside http(s)), the password runs
# over them to the last '@' that is followed by a host; an '@' before the first of them
# is the userinfo's end, left to the patterns above ("u:pw@h/db?user=a@b" keeps its query).
_URL_QUERY_PASSWORD = re.compile(
    _NON_HTTP_USER + r"(?P<pw>[^\s'\"@/?#]*[/?#][^\s'\"]*)(?=@[^@\s'\"/?#]*(?:[/?#\s'\"]|$))",
    re.IGNORECASE,
)
# A quoted value is masked whole: `PASSWORD="two words"` left `words"` visible.
_KV_PASSWORD = re.compile(
    r"(?P<pre>\bpassword\s*=\s*)(?P<pw>'[^']*'|\"[^\"]*\"|\S+)", re.IGNORECASE
)
# Names that hold a secret. PASS/PWD/AUTH only as a whole last word (DB_PASS, SMTP_PWD,
# BASIC_AUTH) or AUTHORIZATION: AUTHOR, AUTH_ENABLED, OAUTH_PROVIDER, BYPASS are not secrets.
# Keys are also spelled with a hyphen (YAML `api-key:`, the `X-Api-Key` header), and a key
# file's `passphrase` is a password, also spelled as two words (`pass_phrase`, `pass-word`,
# `passwrd`: Ansible's no_log heuristic, PASSWORD_MATCH). A key is a secret by its first
# word (detect-secrets' keyword list and common settings): `signing_key`, `encryption_key`,
# `privkey`, `access_key` (but `ACCESS_KEY_ID` names it); never `*_KEY` alone, which would
# hide PRIMARY_KEY, ROUTING_KEY, CACHE_KEY_PREFIX (the default `secret_env` has `*_KEY` for
# env names only), and only as the last word, so `signing_key_file` (a path) is shown.
_SECRET_KEY = re.compile(
    r"(secret|password|passwd|passphrase|pass[_.\-](?:word|phrase|wd)|passwrd|token"
    r"|api[_.\-]?key|priv(?:ate)?[_.\-]?key|credential|authorization"
    r"|(?:access|account|auth|client|encrypt(?:ion)?|hmac|jwt|licen[cs]e|master|service"
    r"|session|signing|(?:^|[_.\-])(?:app|db|database|sign))[_.\-]?keys?$"
    r"|(?:^|[_.\-])(?:pass|pwd|auth|creds|salt|(?:db|database|key)pass)$)",
    re.I,
)


# A shell-style assignment whose name holds a secret, as host text carries it (a cron line
# `PGPASSWORD=hunter2 pg_dump …`, `export API_TOKEN="…"`): the value is masked, the name kept.
_ASSIGNMENT = re.compile(
    r"(?P<pre>(?<![\w.\-])(?P<name>[A-Za-z_][A-Za-z0-9_]*)=)"
    r"(?P<value>'[^']*'|\"[^\"]*\"|<[^<>\n]*>|[^\s;&|'\"]+)"
)


def _mask_assignment(m: re.Match[str]) -> str:
    value = m.group("value").strip("'\"")
    if not _SECRET_KEY.search(m.group("name")) or not value or _is_descriptive(value):
        return m.group(0)
    return m.group("pre") + MASK


def url_passwords(text: str) -> list[str]:
    """The passwords the URL masks above find in ``text``, and their parts split at ``/``
    and ``@``: a parser that splits such a URL elsewhere quotes a part in its errors
    (urlsplit: "Port could not be cast to integer value as 'HEAD'")."""
    found: list[str] = []
    for pattern in (_URL_PASSWORD, _URL_SLASH_PASSWORD, _URL_QUERY_PASSWORD):
        for m in pattern.finditer(text):
            found.append(m.group("pw"))
            found += re.split(r"[/@?#]", m.group("pw"))
    return [p for p in found if p]


# Credentials on command lines, as host text carries them (cron lines, timers, a diff of a
# cron file): `--password X`, `--token=X` (any secret-named long option, but not `--no-…`
# flags nor `…-file`/`…-path` options, which name a file), and the short forms of the usual
# backup tools: `mysqldump -pX`, `redis-cli -a X`, `curl -u user:X`, `sshpass -p X`.
_VALUE = r"(?P<value>'[^']*'|\"[^\"]*\"|[^\s'\"]+)"
_LONG_OPTION = re.compile(
    r"(?P<pre>(?<![\w-])--(?!no-)(?P<name>[A-Za-z][\w-]*)(?:=|\s+(?=[^\s-])))" + _VALUE
)
_MYSQL = r"\b(?:mysql\w*|mariadb[\w-]*)\b[^|;&\n]*?\s-p(?=[^\s-])"
_CURL = r"\b(?:curl|wget)\b[^|;&\n]*?\s(?:-u\s*|--user[=\s]\s*)[^:\s'\"]*:"
_TOOL_PATTERNS = tuple(
    (words, re.compile(f"(?P<pre>{pre})" + _VALUE))
    for words, pre in (
        (("mysql", "mariadb"), _MYSQL),
        (("redis-cli",), r"\bredis-cli\b[^|;&\n]*?\s-a\s+"),
        (("sshpass",), r"\bsshpass\b[^|;&\n]*?\s-p\s*"),
        (("curl", "wget"), _CURL),
    )
)
_FILE_OPTION = re.compile(r"[_-](?:file|path|dir)$", re.I)


def _mask_long_option(m: re.Match[str]) -> str:
    name = m.group("name")
    if not _SECRET_KEY.search(name) or _FILE_OPTION.search(name):
        return m.group(0)
    return m.group("pre") + MASK


def _redact_command_line(text: str) -> str:
    if "--" in text:
        text = _LONG_OPTION.sub(_mask_long_option, text)
    for words, pattern in _TOOL_PATTERNS:
        if any(word in text for word in words):
            text = pattern.sub(lambda m: m.group("pre") + MASK, text)
    return text


def redact_url_password(text: str) -> str:
    # Each pattern needs a "://" and an "@", or an "=", or a " -" to match: most messages
    # have none (a report holds thousands of strings per host), and skipping the regexes
    # then changes nothing.
    if "://" in text and "@" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group("pre") + MASK, text)
        text = _URL_SLASH_PASSWORD.sub(lambda m: m.group("pre") + MASK, text)
        text = _URL_QUERY_PASSWORD.sub(lambda m: m.group("pre") + MASK, text)
    if " -" in text:
        text = _redact_command_line(text)
    if "=" not in text:
        return text
    text = _KV_PASSWORD.sub(lambda m: m.group("pre") + MASK, text)
    return _ASSIGNMENT.sub(_mask_assignment, text)


def is_secret_name(name: str, patterns: Iterable[str] = ()) -> bool:
    return _secret_name(name, tuple(patterns))


# Names longer than this are answered uncached: the hosts choose the names, and a
# long-lived process must not keep 8192 huge ones in memory.
CACHED_NAME_MAX_CHARS = 4096


def _secret_name(name: str, patterns: tuple[str, ...]) -> bool:
    if len(name) > CACHED_NAME_MAX_CHARS:
        return _secret_name_uncached(name, patterns)
    return _secret_name_cached(name, patterns)


def _secret_name_uncached(name: str, patterns: tuple[str, ...]) -> bool:
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, p.upper()) for p in patterns) or _secret_key(name)


# The same few hundred names (settings keys, variables, detail keys) are asked about for
# every host and every string of its report: answered once per distinct name.
_secret_name_cached = functools.lru_cache(maxsize=8192)(_secret_name_uncached)


def _secret_key(name: str) -> bool:
    if len(name) > CACHED_NAME_MAX_CHARS:
        return _secret_key_uncached(name)
    return _secret_key_cached(name)


def _secret_key_uncached(name: str) -> bool:
    return bool(_SECRET_KEY.search(name))


_secret_key_cached = functools.lru_cache(maxsize=8192)(_secret_key_uncached)


# A name that mentions a secret but holds a setting about it (where it lives, how long it
# lasts, which backend keeps it, where to ask for one) is not a credential:
# AUTH__TOKEN_STORE=default, auth.token_url: https://idp/oauth/token, auth.token_expiry: 1h.
_ABOUT_A_SECRET = (
    "_FILE",
    "_PATH",
    "_DIR",
    "_ENV",
    "_NAME",
    "_VAR",
    "_TTL",
    "_SECONDS",
    "_MINUTES",
    "_HOURS",
    "_DAYS",
    "_LENGTH",
    "_ALGORITHM",
    "_POLICY",
    "_BACKEND",
    "_STORE",
    "_PROVIDER",
    "_ENABLED",
    "_TYPE",
    "_MODE",
    "_URL",
    "_URI",
    "_ENDPOINT",
    "_EXPIRY",
    "_EXPIRES",
    "_EXPIRATION",
    "_LIFETIME",
    "_ROTATION",
    "_HEADER",
    "_AUDIENCE",
    "_ISSUER",
    "_SCOPE",
    "_SCOPES",
)


def about_a_secret(name: str) -> bool:
    """``AUTH__TOKEN_URL`` / ``token_expiry``: a setting about a secret, not one."""
    return name.upper().endswith(_ABOUT_A_SECRET)


def holds_a_secret(name: str, patterns: Iterable[str] = ()) -> bool:
    """Whether a setting's value is masked wherever it appears: a secret name, unless the
    setting is about a secret (``token_audience: mahavishnu`` masked the app's name in every
    path of a report). A ``*_HEADER`` value still is one: it may be the header itself
    (``AUTHORIZATION_HEADER="Bearer …"``), not only its name."""
    if not is_secret_name(name, patterns):
        return False
    return not about_a_secret(name) or name.upper().endswith("_HEADER")


class Redactor:
    """Thread-safe set of known secret values plus pattern-based scrubbing."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        # The secrets longest first, their index past _INDEX_ABOVE of them, and the texts
        # redacted with exactly these secrets: made once per new secret (under the lock),
        # read without it (one attribute read: a string is redacted with every secret
        # added before it, as under the lock).
        self._ordered: _Ordered | None = None
        self.add(*secrets)

    def add(self, *values: str | None) -> None:
        with self._lock:
            for v in values:
                if v and len(str(v)) >= _MIN_SECRET_LEN and str(v) not in self._secrets:
                    for form in _written_forms(str(v)):
                        self._secrets.add(form)
                    self._ordered = None

    def _secrets_in_order(self) -> _Ordered:
        ordered = self._ordered
        if ordered is not None:
            return ordered
        with self._lock:
            if self._ordered is None:  # sorted once per new secret, not once per string
                secrets = sorted(self._secrets, key=len, reverse=True)
                index = _index_of(secrets) if len(secrets) > _INDEX_ABOVE else None
                self._ordered = (secrets, index, {})
            return self._ordered

    def text(self, value: str) -> str:
        ordered = self._secrets_in_order()
        # A fleet's hosts repeat most of their report's texts (~70 % on the example):
        # each distinct text is redacted once per set of secrets. Never a stale answer:
        # a new secret starts a new set, with no texts yet.
        done = ordered[2].get(value)
        if done is None:
            done = self._redacted(value, ordered)
            if len(value) <= _MEMO_MAX_CHARS and len(ordered[2]) < _MEMO_ENTRIES:
                ordered[2][value] = done
        return done

    def _redacted(self, value: str, ordered: _Ordered) -> str:
        secrets, index, _memo = ordered
        if index is not None:
            secrets = _candidates(secrets, index, value)
        for s in secrets:
            if s not in value:
                continue
            if len(s) >= _WHOLE_WORD_BELOW:
                value = value.replace(s, MASK)
            else:
                # A short weak secret ("short", "admin1") is masked as a word, not inside
                # every longer word that happens to contain it.
                value = re.sub(rf"(?<![\w]){re.escape(s)}(?![\w])", MASK, value)
        return redact_url_password(value)

    def obj(self, value: Any, key: str = "") -> Any:
        """Deep-redact JSON-like data; values under secret-named keys are masked, and
        non-finite floats become text ("nan", "inf", "-inf")."""
        # The plain types first, by exact type (a report holds a few hundred values per
        # host; an ABC isinstance costs ~1 us): the same answers as the general path below.
        kind = type(value)
        if kind is str:
            if key and _secret_key(key) and value and not _is_descriptive(value):
                return MASK
            return self.text(value)
        if kind is dict:
            obj = self.obj
            return {
                (k if type(k) is str else str(k)): obj(v, k if type(k) is str else str(k))
                for k, v in value.items()
            }
        if kind is list or kind is tuple:
            obj = self.obj
            return [obj(v) for v in value]
        if kind in _SCALARS:
            # NaN and +-inf from a host's settings (`.nan`, `.inf`) as text: as numbers they
            # made every JSON and SARIF report invalid JSON (NaN, -Infinity), which strict
            # parsers (JavaScript, Go, SARIF uploads) refuse whole.
            return repr(value) if kind is float and value - value != 0.0 else value
        return self._obj_general(value, key)

    def _obj_general(self, value: Any, key: str) -> Any:
        if isinstance(value, Mapping):
            return {str(k): self.obj(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.obj(v) for v in value]
        if isinstance(value, str):
            if key and _secret_key(key) and value and not _is_descriptive(value):
                return MASK
            return self.text(value)
        return value

    def result(self, r: CheckResult) -> CheckResult:
        return replace(
            r,
            message=self.text(r.message),
            details=self.obj(dict(r.details)),
            recommendations=tuple(self.text(x) for x in r.recommendations),
        )

    def host(self, h: HostReport) -> HostReport:
        return replace(
            h, results=tuple(self.result(r) for r in h.results), reason=self.text(h.reason)
        )

    def fleet(self, f: FleetReport) -> FleetReport:
        return f.with_hosts(self.host(h) for h in f.hosts)


_Index = tuple[dict[str, list[int]], list[int]]
_Ordered = tuple[list[str], _Index | None, dict[str, str]]
# Texts remembered per set of secrets: at most this many, each at most this long (report
# texts are short: 56 characters on average, 251 at most on the example), so a redactor
# that lives long (the results store's) keeps at most ~4 MiB of them.
_MEMO_ENTRIES = 4096
_MEMO_MAX_CHARS = 1024
_SCALARS = frozenset({int, float, bool, type(None)})


def _written_forms(secret: str) -> set[str]:
    """``secret`` as it is, and as a check's message may write it: quoted by ``repr()``
    (backslash doubled, a quote escaped or not, controls and invisible characters as
    ``\\xNN``/``\\u200b``) or by ``json.dumps`` (ASCII or not). A secret with a backslash
    or a quote, quoted with ``{value!r}`` in a message, no longer matched its plain form and
    reached every report."""
    single = repr(secret + '"')[1:-2]  # the string holds a '"': always '-quoted, ' escaped
    forms = {secret, single, single.replace("\\'", "'")}
    forms |= {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    return {f for f in forms if len(f) >= _MIN_SECRET_LEN}


def _index_of(ordered: list[str]) -> _Index:
    """Secrets by their first 4 characters (as ranks in ``ordered``), and those with a ``*``."""
    index: dict[str, list[int]] = {}
    starred: list[int] = []
    for rank, secret in enumerate(ordered):
        index.setdefault(secret[:_MIN_SECRET_LEN], []).append(rank)
        if "*" in secret:
            starred.append(rank)
    return index, starred


def _candidates(ordered: list[str], index: _Index, value: str) -> list[str]:
    """The secrets that may be in ``value``, in the same (longest first) order: one whose
    first 4 characters occur in it, or one with a ``*`` (a mask put in by an earlier
    replacement could complete it). A fleet registers a few secrets per host: testing each
    of thousands against every string would cost O(hosts²) (docs/performance.md)."""
    by_prefix, starred = index
    ranks = set(starred)
    for at in range(len(value) - _MIN_SECRET_LEN + 1):
        found = by_prefix.get(value[at : at + _MIN_SECRET_LEN])
        if found:
            ranks.update(found)
    return [ordered[r] for r in sorted(ranks)]


def _is_descriptive(value: str) -> bool:
    """Checks describe secrets ("set", "missing", "length 12"): keep those readable."""
    return value in {"set", "missing", "not set", "empty", MASK} or value.startswith(
        ("length ", "set (", "<generated on apply")
    )
