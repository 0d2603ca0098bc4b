"""Every command-line option in one table: type, range, help, placeholder and short flag.

The tasks' ``--help``, the coercion of flag, configuration-file and Python-API values,
and the command-line contract test (tests/cli/test_contract.py) are all generated
from :data:`OPTIONS` (plus the few per-task variants in :data:`TASK_VARIANTS`), so
an option cannot be added without a type, a range and a short-flag decision.

This module is a leaf: it imports nothing from invoke or the rest of readiness
except the error types, so ``RunOptions`` can validate itself with it.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import UsageError, refuse_unless_creatable
from .redact import redact_url_password

__all__ = [
    "CONFIG_KEYS",
    "OPTIONS",
    "TASK_VARIANTS",
    "OptionSpec",
    "did_you_mean",
    "option",
    "validate_config",
]

KINDS = ("int", "float", "str", "bool", "list", "choice")
_PLACEHOLDERS = {"int": "INT", "float": "SECONDS", "str": "STRING", "list": "NAME"}


@dataclass(frozen=True)
class OptionSpec:
    """One option: what a value must be, and how it is shown and typed."""

    name: str  # the Python parameter name (``connect_timeout``)
    kind: str  # one of KINDS
    help: str
    short: str | None = None  # the single short flag letter, or None
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    placeholder: str = ""
    optional_value: bool = False  # ``--save`` alone means "the default path"
    config: bool = False  # may be set under ``readiness:`` in invoke.yaml/readiness.yaml
    allow_empty: bool = False  # "" is meaningful (ssh_config: "" reads no ssh_config at all)
    # a "str" option that may be given several times (``-i a.ini -i b.yml``, as ansible -i):
    # the values are joined with "," into one string
    repeatable: bool = False
    # (valid, invalid) sample values for the generated contract test; derived when empty.
    samples: tuple[tuple[str, ...], tuple[str, ...]] = field(default=((), ()))

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: unknown kind {self.kind!r}")

    def __deepcopy__(self, memo: dict[int, Any]) -> OptionSpec:
        """Itself: a spec is immutable (frozen, plain values), and invoke's parser deep-copies
        every task's arguments, each holding its spec, on every command line (start-up)."""
        return self

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def takes_value(self) -> bool:
        return self.kind != "bool"

    @property
    def metavar(self) -> str:
        if self.placeholder:
            return self.placeholder
        if self.kind == "choice":
            return self.name.upper()
        return _PLACEHOLDERS.get(self.kind, "")

    def valid_range(self) -> str:
        """The values this option accepts, in words (``an integer 1..1000``)."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind in ("int", "float"):
            noun = "an integer" if self.kind == "int" else "a number"
            if self.metavar == "SECONDS":
                noun = "a whole number of seconds" if self.kind == "int" else "a number of seconds"
            return f"{noun} {_num(self.minimum)}..{_num(self.maximum)}"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "list":
            return "one or more non-empty names"
        return "a non-empty string"

    def full_help(self) -> str:
        """The help line: the spec's text plus range and default where they help."""
        extra = []
        if self.kind in ("int", "float"):
            extra.append(f"{_num(self.minimum)}..{_num(self.maximum)}")
        if self.default not in (None, False, (), []) and self.kind != "choice":
            extra.append(f"default {_num(self.default)}")
        if self.kind == "choice":
            extra.insert(0, ", ".join(self.choices))
            if self.default is not None:
                extra.append(f"default {self.default}")
        return f"{self.help} ({'; '.join(extra)})" if extra else self.help

    def coerce(self, value: Any, source: str | None = None) -> Any:
        """``value`` as this option's type, range-checked; UsageError (one line) otherwise."""
        where = source or self.flag
        if self.kind == "bool":
            return _as_bool(value, where, self)
        if self.kind == "list":
            return _as_list(value, where, self)
        if isinstance(value, bool):
            raise self.error(value, where)
        if self.kind == "int":
            return self._number(value, where, integer=True)
        if self.kind == "float":
            return self._number(value, where, integer=False)
        text = value if isinstance(value, str) else None
        if text is None or (not text.strip() and not self.allow_empty):
            raise self.error(value, where)
        _refuse_unprintable(text, where, any_bytes=self.name in BYTES_FILE_NAMES)
        if self.kind == "choice" and text not in self.choices:
            raise self.error(value, where)
        if self.placeholder in _PATH_PLACEHOLDERS:
            _refuse_too_long_path(text, where)
        return text

    def _number(self, value: Any, where: str, *, integer: bool) -> int | float:
        # ASCII decimal only: float() also took '1_0' (10), '١٢' (12), '0x..' never, 'inf'
        if isinstance(value, str) and not _DECIMAL.fullmatch(value):
            raise self.error(value, where)
        try:
            number: float = float(value.strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise self.error(value, where) from None
        if not math.isfinite(number) or (integer and number != int(number)):
            raise self.error(value, where)
        if self.minimum is not None and number < self.minimum:
            raise self.error(value, where)
        if self.maximum is not None and number > self.maximum:
            raise self.error(value, where)
        return int(number) if integer else number

    def error(self, value: Any, where: str | None = None) -> UsageError:
        hint = ""
        if self.kind == "choice" and isinstance(value, str):
            hint = did_you_mean(value, self.choices)
        # the value may be a store or broker URL with its password (a config file's mapping too)
        shown = _shown(redact_url_password(repr(value)))
        return UsageError(f"{where or self.flag}: expected {self.valid_range()}, got {shown}{hint}")


# Options that name files (each piece of an inventory list, a store path or URL)
_PATH_PLACEHOLDERS = frozenset(("FILE", "PATH", "STORE", "FORMAT[:PATH]"))
_NAME_MAX, _PATH_MAX = 255, 4095  # Linux: bytes in one name, in a whole path
_SHOWN_MAX = 120
_DECIMAL = re.compile(r"[ \t]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _shown(text: str) -> str:
    """``text`` (a repr) for a one-line message: a 100,000-character value is cut, not echoed."""
    if len(text) <= _SHOWN_MAX:
        return text
    return f"{text[: _SHOWN_MAX - 20]}...{text[-12:]} ({len(text) - 2} characters)"


# Options naming a report file readiness writes: a Linux file name is bytes, and one that is
# not UTF-8 (a Latin-1 directory) is written as named (tests/security/test_hostile_data.py).
# Everything else that is not UTF-8 is refused: it is stored, printed or sent somewhere.
BYTES_FILE_NAMES = frozenset(("save", "report"))


def _refuse_unprintable(text: str, where: str, *, any_bytes: bool = False) -> None:
    """A control character (newline, ESC, NUL) or bytes that are not UTF-8 in a value
    (``--name $'a\\nb'``, ``--name $'\\xff'``) is refused: written raw it split the
    one-line output and messages, drove the terminal, or (not UTF-8) raised a traceback
    where the value was stored or printed."""
    found = (_CONTROL if any_bytes else _UNPRINTABLE).search(text)
    if found is None:
        return
    char = found.group()
    what = (
        "bytes that are not UTF-8"
        if "\ud800" <= char <= "\udfff"
        else f"a control character ({char!r})"
    )
    raise UsageError(f"{where}: {_shown(repr(text))} contains {what}: write plain text")


def _refuse_too_long_path(text: str, where: str) -> None:
    """A file name the kernel refuses (ENAMETOOLONG) is a usage error before anything
    touches it: ``--inventory`` / ``--save`` of 100,000 characters was a traceback."""
    url = "://" in text  # a store URL: only its length
    for piece in [text] if url else re.split(r"[,:]", text):
        data = piece.encode("utf-8", "surrogateescape")
        names = [] if url else data.split(b"/")
        if len(data) > _PATH_MAX or any(len(name) > _NAME_MAX for name in names):
            raise UsageError(
                f"{where}: {_shown(repr(text))} is too long for a file name (a name over "
                f"{_NAME_MAX} bytes, or a path over {_PATH_MAX})"
            )


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _as_bool(value: Any, where: str, spec: OptionSpec) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "off", "0"):
        return False
    raise spec.error(value, where)


def _as_list(value: Any, where: str, spec: OptionSpec) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise spec.error(value, where)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise spec.error(item, where)
        _refuse_unprintable(item, where, any_bytes=spec.name in BYTES_FILE_NAMES)
        parts = [p.strip() for p in item.split(",")]
        if not all(parts):
            raise UsageError(f"{where}: empty name in {item!r} (expected {spec.valid_range()})")
        out += parts
    return out


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word``, or None when none is close."""
    names = list(candidates)
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if not close:  # -c ENVIRONMENT, --format JSON: the same word in other case
        lowered = {name.lower(): name for name in reversed(names)}
        found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
        close = [lowered[found[0]]] if found else []
    return close[0] if close else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or '' when none is close."""
    close = closest(word, candidates)
    return f" (did you mean {close!r}?)" if close else ""


# --- the table -------------------------------------------------------------------------------

# readiness.report.FORMATS and readiness.suites.SUITES, spelled out to keep this module a
# leaf; tests/cli/test_contract.py checks they agree.
_FORMATS = (
    "text",
    "table",
    "json",
    "markdown",
    "junit",
    "nagios",
    "prometheus",
    "sarif",
    "tap",
    "html",
)
_HUMAN_FORMATS = ("text", "table", "json", "markdown")
SUITE_NAMES = (
    "validate",
    "check-config",
    "run-integration-tests",
    "run-benchmarks",
    "run-all-tests",
)

OPTIONS: dict[str, OptionSpec] = {
    s.name: s
    for s in (
        OptionSpec(
            "hosts",
            "str",
            "Host pattern: group, host, a,b  a:b  a:&b  a:!b  web*",
            short="H",
            default="local",
            placeholder="PATTERN",
        ),
        OptionSpec(
            "check",
            "list",
            "Check to run; repeatable or comma list (default: every check of the suite)",
            short="c",
            placeholder="NAME",
            samples=(("environment",), ("",)),
        ),
        OptionSpec(
            "format",
            "choice",
            "Output format",
            short="o",
            default="text",
            choices=_FORMATS,
        ),
        OptionSpec("json", "bool", "Shorthand for --format json", short="j"),
        OptionSpec(
            "save",
            "str",
            "Also save the report to PATH (a directory gets the default name; an extension "
            "picks the format, as for --report); alone: reports/readiness-<time>.<ext>",
            short="s",
            placeholder="PATH",
            optional_value=True,
        ),
        OptionSpec(
            "report",
            "list",
            "Also write a report: FORMAT:PATH, PATH (format from its extension), FORMAT: "
            "(default name) or FORMAT alone (stdout, instead of --format); repeatable",
            short="r",
            placeholder="FORMAT[:PATH]",
            samples=(("junit:r.xml",), ("",)),
        ),
        OptionSpec(
            "inventory",
            "str",
            "Inventory file or directory; repeatable, as ansible -i (default: $READINESS_INVENTORY, "
            "readiness.inventory, else ./inventories)",
            short="i",
            placeholder="PATH",
            config=True,
            repeatable=True,
        ),
        OptionSpec(
            "profile",
            "str",
            "Profile YAML file overriding the built-in application defaults",
            short="p",
            placeholder="FILE",
            config=True,
        ),
        OptionSpec(
            "limit",
            "str",
            "Further limit the selected hosts with another pattern (like ansible --limit)",
            short="l",
            placeholder="PATTERN",
        ),
        OptionSpec(
            "forks",
            "int",
            "Hosts audited at once",
            short="f",
            default=32,
            minimum=1,
            maximum=1000,
            config=True,
        ),
        OptionSpec(
            "connect_timeout",
            "float",
            "Seconds to establish an SSH connection",
            short="T",
            default=10.0,
            minimum=0.1,
            maximum=3600,
            config=True,
        ),
        OptionSpec(
            "command_timeout",
            "int",
            # whole seconds: the host-side deadline is a whole-second alarm, so 1.5 would
            # silently become 2 there (docs/cli.md)
            "Seconds one remote command may run (whole seconds)",
            default=60,
            placeholder="SECONDS",
            minimum=1,
            maximum=86400,
            config=True,
        ),
        OptionSpec(
            "host_deadline",
            "float",
            "Seconds one host may take in total",
            default=120.0,
            minimum=0.1,
            maximum=86400,
            config=True,
        ),
        OptionSpec(
            "sudo",
            "bool",
            "Run the probe through `sudo -n` (never prompts), like ansible --become",
            short="b",
            config=True,
        ),
        OptionSpec(
            "accept_new_host_keys",
            "bool",
            "Trust-on-first-use: record unknown host keys (changed keys still fail)",
            config=True,
        ),
        OptionSpec(
            "known_hosts",
            "str",
            "known_hosts file to verify against (default ~/.ssh/known_hosts)",
            placeholder="FILE",
            config=True,
        ),
        OptionSpec("quiet", "bool", "No progress line on stderr", short="q", config=True),
        OptionSpec(
            "fail_on",
            "choice",
            "Exit 1 from this status up (degraded: warnings fail too)",
            default="not_ready",
            choices=("not_ready", "degraded"),
            placeholder="STATUS",
        ),
        OptionSpec(
            "group_by",
            "choice",
            "Group hosts by inventory group (a host in two groups is shown under both); "
            "text, table and markdown",
            short="g",
            choices=("group",),
            placeholder="KEY",
        ),
        OptionSpec(
            "color",
            "choice",
            "Colour text and table output; auto: on a terminal unless NO_COLOR is set",
            default="auto",
            choices=("auto", "always", "never"),
            placeholder="WHEN",
            config=True,
        ),
        # remediate
        OptionSpec("apply", "bool", "Carry the plan out (default: dry run, print it as a diff)"),
        OptionSpec(
            "yes",
            "bool",
            "Apply to several hosts without asking (required when there is no terminal)",
            short="y",
        ),
        OptionSpec(
            "run_migrations",
            "bool",
            "Plan (and with --apply run, on the host) the profile's migration_command when the "
            "audit reports pending migrations; never a guessed tool, and it cannot be reverted",
        ),
        OptionSpec(
            "audit_log",
            "str",
            "JSON-lines audit log (default: ~/.local/state/readiness/remediation-audit.jsonl)",
            placeholder="FILE",
        ),
        # inventory
        OptionSpec(
            "vars",
            "bool",
            "Also show each host's merged inventory variables, secrets masked",
        ),
        # bench
        OptionSpec(
            "rounds",
            "int",
            "Measure the floor and the suite this many times each",
            default=1,
            minimum=1,
            maximum=5,
        ),
        # results store (docs/history.md)
        OptionSpec(
            "store",
            "str",
            "Results store: SQLite path, postgresql://URL, or none (default: $READINESS_STORE, "
            "readiness.store, else ~/.local/share/readiness/history.sqlite3)",
            placeholder="STORE",
            config=True,
        ),
        OptionSpec("baseline", "bool", "Fail only on regressions against the accepted baseline"),
        OptionSpec(
            "drift", "bool", "Add a DRIFT section: hosts whose settings/env differ from most hosts"
        ),
        OptionSpec(
            "since",
            "str",
            "Only runs since an age (7d, 12h) or a date",
            placeholder="WHEN",
            samples=((), ("0d", "100000000000d", "yesterday")),
        ),
        OptionSpec(
            "kind",
            "choice",
            "Only runs of this kind (what recorded them)",
            choices=("remediate", *SUITE_NAMES),  # a typo was an empty answer, exit 0
            placeholder="KIND",
        ),
        OptionSpec(
            "keep",
            "str",
            "Keep runs younger than this age (90d, 12w, 36h)",
            placeholder="AGE",
            samples=((), ("0d", "99999999d", "100000000000d", "90")),
        ),
        OptionSpec("run", "str", "Run id, unique prefix, latest or latest~N", placeholder="RUN"),
        OptionSpec(
            "old",
            "str",
            "The earlier run (default: the run before --new of the same pattern and kind)",
            placeholder="RUN",
        ),
        OptionSpec("new", "str", "The later run (default: latest)", placeholder="RUN"),
        OptionSpec("name", "str", "Baseline name", default="default", placeholder="NAME"),
        OptionSpec("output", "str", "File to write (default: stdout)", placeholder="FILE"),
        OptionSpec("file", "str", "A readiness.baseline/1 JSON file", placeholder="FILE"),
        OptionSpec(
            "trend", "bool", "Per check: how many hosts were ready/degraded/not ready in each run"
        ),
        # watch
        OptionSpec(
            "every",
            "str",
            "Interval between run starts (15m, 1h, 30s)",
            default="15m",
            placeholder="INTERVAL",
            samples=((), ("0s", "100000000000d", "15x")),
        ),
        OptionSpec(
            "jitter",
            "float",
            "Each start moves by up to this fraction of the interval",
            default=0.1,
            minimum=0,
            maximum=0.99,
            placeholder="FRACTION",
        ),
        OptionSpec(
            "listen",
            "str",
            "HTTP address for /metrics, /healthz and / (port 0: any)",
            default="127.0.0.1:9470",
            placeholder="HOST:PORT",
        ),
        OptionSpec(
            "alertmanager_url",
            "str",
            "Alertmanager base URL to send alerts to",
            placeholder="URL",
            config=True,
            samples=((), ("", "alertmanager:9093", "ftp://am.example/")),
        ),
        OptionSpec(
            "webhook",
            "str",
            "URL that gets one JSON POST per alert",
            placeholder="URL",
            samples=((), ("", "notaurl", "http://")),
        ),
        OptionSpec(
            "alert_after",
            "int",
            "Consecutive bad (or good) results before an alert fires (resolves)",
            default=2,
            minimum=1,
            maximum=1000,
        ),
        OptionSpec(
            "alert_on",
            "choice",
            "Status from which a result is bad",
            default="degraded",
            choices=("degraded", "not_ready"),
            placeholder="STATUS",
        ),
        OptionSpec(
            "max_runs",
            "int",
            "Stop after this many runs (default: until SIGTERM/SIGINT)",
            minimum=1,
            maximum=10**6,
        ),
        # nagios
        OptionSpec("suite", "choice", "Suite to run", default="validate", choices=SUITE_NAMES),
        # bench
        OptionSpec(
            "hostile",
            "bool",
            "Hostile fleet: 5 % refused, 2.6 % stalling before the banner, 2.4 % hanging probes",
        ),
        OptionSpec(
            "app",
            "choice",
            "App tree on every host: the bundled example, the minimal tree, or both",
            default="both",
            choices=("both", "example", "minimal"),
        ),
        OptionSpec(
            "skip_ansible",
            "bool",
            "Leave out the Ansible raw/command reference rows",
        ),
        # configuration-file only (no flag)
        OptionSpec(
            "history_keep",
            "str",
            "Prune recorded runs older than this age after each run (90d)",
            placeholder="AGE",
            config=True,
        ),
        OptionSpec(
            "progress_interval",
            "float",
            "Seconds between plain progress lines when stderr is not a terminal",
            default=10.0,
            minimum=0.1,
            maximum=3600,
            config=True,
        ),
        OptionSpec(
            "ssh_config",
            "str",
            'ssh_config file to read host settings from ("": none)',
            placeholder="FILE",
            config=True,
            allow_empty=True,
        ),
        OptionSpec("identity_file", "str", "Private key file", placeholder="FILE", config=True),
        # distributed engine (docs/distributed.md)
        OptionSpec(
            "engine",
            "choice",
            "Where hosts are audited: local (this process) or celery (workers; default local, "
            "or $READINESS_ENGINE)",
            choices=("local", "celery"),
            placeholder="ENGINE",
            config=True,
        ),
        OptionSpec(
            "broker",
            "str",
            "Celery broker URL, e.g. redis://:PASSWORD@HOST:6379/0 (default $READINESS_BROKER_URL)",
            placeholder="URL",
            config=True,
        ),
        OptionSpec(
            "concurrency",
            "int",
            "Shards this worker audits at once (each with the run's --forks SSH sessions)",
            default=2,
            minimum=1,
            maximum=64,
        ),
        OptionSpec(
            "queues",
            "str",
            "Comma-separated queues this worker takes shards from (a region's readiness_queue)",
            placeholder="QUEUE[,QUEUE]",
            default="readiness",
        ),
        OptionSpec(
            "timeout",
            "float",
            "Seconds to wait for the workers' answers",
            default=2.0,
            minimum=0.1,
            maximum=60,
        ),
        OptionSpec(
            "workers",
            "str",
            "bench --engine celery: worker counts to measure, comma-separated (1..16 each)",
            placeholder="N[,N]",
            default="1,2,4",
        ),
        OptionSpec(
            "shard_size",
            "int",
            "Hosts per shard sent to a worker (celery engine)",
            default=25,
            minimum=1,
            maximum=10000,
            config=True,
        ),
        OptionSpec(
            "shard_wait",
            "float",
            "Seconds a queued shard may wait while no worker of its queue takes, beats on or "
            "finishes a shard (or a lost worker's shard for redelivery) before its hosts are "
            "reported UNREACHABLE (celery engine)",
            default=60.0,
            minimum=1,
            maximum=86400,
            config=True,
        ),
        OptionSpec(
            "visibility_timeout",
            "float",
            "Seconds before a shard taken by a worker that died is redelivered (Redis broker); "
            "must exceed the longest shard",
            default=300.0,
            minimum=1,
            maximum=86400,
            config=True,
        ),
        OptionSpec(
            "max_output",
            "int",
            "Bytes of output kept per remote command",
            default=8 * 1024 * 1024,
            minimum=1,
            maximum=1024**3,
            config=True,
        ),
    )
}

# Options whose meaning differs in one task (same flag, another type or range).
TASK_VARIANTS: dict[str, dict[str, OptionSpec]] = {
    "bench": {
        "hosts": OptionSpec(
            "hosts",
            "int",
            "Number of loopback sshd hosts to start",
            short="H",
            default=10,
            minimum=1,
            maximum=1000,
        ),
        "check": replace(
            OPTIONS["check"], help="Check to run; repeatable (default: every validate check)"
        ),
    },
    "inventory": {
        "hosts": replace(OPTIONS["hosts"], default="all"),
        "format": replace(
            OPTIONS["format"],
            choices=("text", "json"),
            help="Output format (json: the whole effective profile per host)",
        ),
    },
    "checks": {"format": replace(OPTIONS["format"], choices=("text", "json"))},
    "history": {
        "hosts": replace(
            OPTIONS["hosts"],
            default=None,
            help="Per-host timelines for hosts or groups matching these globs (a,b  web*)",
        ),
        "check": replace(OPTIONS["check"], kind="str", help="Timelines of this check only"),
        "limit": OptionSpec(
            "limit",
            "int",
            "At most this many runs listed",
            short="l",
            default=50,
            minimum=1,
            maximum=100000,
        ),
        "format": replace(OPTIONS["format"], choices=_HUMAN_FORMATS),
    },
    "show": {"format": replace(OPTIONS["format"], help="Any report format")},
    "diff": {"format": replace(OPTIONS["format"], choices=_HUMAN_FORMATS)},
    "drift": {
        "format": replace(OPTIONS["format"], choices=_HUMAN_FORMATS),
        "hosts": replace(OPTIONS["hosts"], default=None, help="Only these hosts (globs)"),
        "run": replace(OPTIONS["run"], help="The run to examine (default: latest)"),
        "since": replace(
            OPTIONS["since"],
            help="Compare each host with itself in this earlier run instead of with the others",
            samples=((), ()),  # a run reference, not an age
        ),
    },
    "baseline-accept": {
        "run": replace(OPTIONS["run"], help="Run to accept (default: latest)"),
        "hosts": replace(
            OPTIONS["hosts"], default=None, help="Accept only these hosts' results (globs)"
        ),
        "check": replace(OPTIONS["check"], kind="str", help="Accept only this check's results"),
    },
    "baseline-import": {
        "name": replace(OPTIONS["name"], default=None, help="Store it under this name")
    },
    "workers": {"format": replace(OPTIONS["format"], choices=("text", "json"))},
    # the plugin convention (docs/reports.md): the threshold makes a state CRITICAL, not exit 1
    "nagios": {
        "fail_on": replace(
            OPTIONS["fail_on"],
            help="CRITICAL (exit 2) from this status up (degraded: warnings are CRITICAL too)",
        )
    },
    "remediate": {
        "format": replace(OPTIONS["format"], choices=("text", "json")),
        "check": replace(
            OPTIONS["check"],
            help="Check to fix; repeatable or comma list (default: every check that has a fixer)",
        ),
        "sudo": replace(
            OPTIONS["sudo"], help="Run the audit and the fixes through `sudo -n` (never prompts)"
        ),
    },
}

CONFIG_KEYS: tuple[str, ...] = tuple(n for n, s in OPTIONS.items() if s.config)


def option(name: str, task: str | None = None) -> OptionSpec:
    """The spec of ``name`` as ``task`` means it."""
    variant = TASK_VARIANTS.get(task or "", {}).get(name)
    if variant is not None:
        return variant
    try:
        return OPTIONS[name]
    except KeyError:
        raise KeyError(f"option {name!r} has no entry in readiness.options.OPTIONS") from None


def validate_config(section: Any, where: str = "configuration") -> dict[str, Any]:
    """The ``readiness:`` configuration section, every key known and every value typed."""
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise UsageError(f"{where}: 'readiness' must be a mapping, got {type(section).__name__}")
    out: dict[str, Any] = {}
    lines: Mapping[str, int] = getattr(section, "key_lines", {})  # strict YAML remembers lines
    for key, value in section.items():
        name = str(key).replace("-", "_")
        at = f"{where}:{lines[str(key)]}" if str(key) in lines else where
        if name not in CONFIG_KEYS:
            hint = did_you_mean(name, CONFIG_KEYS)
            raise UsageError(f"{at}: unknown key readiness.{key}{hint}")
        if value is None:
            continue
        out[name] = OPTIONS[name].coerce(value, f"{at}: readiness.{key}")
    return out


def check_ssh_config(value: str | None) -> None:
    """An ssh_config named explicitly that is not a file is one line, exit 2, before any
    host is contacted (every ssh host used to be UNREACHABLE naming it, exit 1). A file ssh
    would refuse is judged where it is parsed, with the SSH connections (errors.py)."""
    from pathlib import Path

    if value and not Path(value).expanduser().is_file():
        raise UsageError(f"ssh config not found: {value}")


def check_known_hosts(value: str | None, *, accept_new: bool) -> None:
    """An explicitly chosen known_hosts file that cannot be used is one line, exit 2, before
    any host is contacted (every host used to report an unknown key naming it).

    The default (~/.ssh/known_hosts) may be missing: each host's unknown-key reason then
    says how to add its key (docs/fleet.md). With trust on first use a missing file is
    fine when it can be created (its directories are made when the first key is recorded).
    """
    from pathlib import Path

    if not value:
        return
    path = Path(value).expanduser()
    where = f"known_hosts file {value}"
    if path.is_dir():
        raise UsageError(f"{where}: is a directory, not a known_hosts file")
    if path.exists():
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise UsageError(f"{where}: cannot be read: {exc.strerror or exc}") from None
        return
    if not accept_new:
        raise UsageError(
            f"{where}: no such file, and host keys are verified against it: create it "
            "(ssh-keyscan HOST >> FILE, after checking the keys) or pass "
            "--accept-new-host-keys to record keys on first use"
        )
    # The shared check probes with a temporary file: os.access() says yes to root even on a
    # read-only mount.
    refuse_unless_creatable(path.parent, f"{where} (no such file, to be created)")
