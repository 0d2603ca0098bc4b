"""Configuration drift: keyed fingerprints of what each host runs with, compared across
hosts and over time.

During a recorded run, :class:`DriftCollector` sees each host's parsed configuration (the
settings file's keys and the env file's variables, as the checks read them; the alert
rules, cron lines and migration scripts the checks asked the probe for, and the
versions of the Python distributions in the app's environment, which it asks the probe
for itself) and keeps only ``item → HMAC-SHA256(store key, value)``: no value, and no
plain hash of one (a plain hash of a short secret is a dictionary lookup away). Items
whose name marks a secret (the profile's ``secret_env`` patterns, ``*SECRET*``,
``*PASSWORD*``...) are flagged so reports can say "JWT secret differs" without ever
showing it. Package and interpreter versions are the one exception: they are public
facts an operator needs to read ("httpx 0.27.0, the rest 0.28.1"), so a version that
looks like one (PEP 440 characters) is kept in clear next to its fingerprint.

``drift_across_hosts`` names the odd ones out; ``drift_over_time`` what changed on each
host between two runs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import posixpath
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..redact import is_secret_name
from ..tables import tabulate
from ._text import field, md_text, plain

__all__ = [
    "DISTS_FACT",
    "DriftCollector",
    "DriftFinding",
    "Fingerprint",
    "Fingerprints",
    "dists_spec",
    "drift_across_hosts",
    "drift_over_time",
    "item_check",
    "package_items",
    "render_drift",
    "shown",
]

# item → (fingerprint, is_secret) or, for a version shown in clear, (fingerprint, False, version)
Fingerprint = tuple[str, bool] | tuple[str, bool, str]
Fingerprints = dict[str, Fingerprint]
_FP_HEX = 16  # 64 bits: enough to tell configurations apart, short in JSON
# The probe fact the collector asks for itself (runner.FACT_REQUESTS): package versions.
DISTS_FACT = "drift:dists"
MAX_DISTS = 2000  # distributions per host the probe reports and the store keeps
_DIST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?")  # PEP 503 normalised
_VERSION = re.compile(r"[0-9][0-9A-Za-z.+!_-]{0,63}")  # what may be shown in clear
_SEPARATORS = re.compile(r"[-_.]+")


def shown(fp: Fingerprint) -> str | None:
    """The value kept in clear next to a fingerprint (package versions), or None."""
    return fp[2] if len(fp) > 2 else None


class DriftCollector:
    """Thread-safe observer of each audited host's configuration (see runner.APP_OBSERVERS)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._lock = threading.Lock()
        self.hosts: dict[str, Fingerprints] = {}
        # Each host's secret values, in memory until its facts are seen: a version or
        # package name that carries one is never shown in clear (nor listed).
        self._secrets: dict[str, set[str]] = {}

    def fingerprint(self, value: Any) -> str:
        text = json.dumps(value, sort_keys=True, default=str)
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:_FP_HEX]

    def __call__(self, host: str, app: Any, profile: Any) -> None:
        patterns = [str(p) for p in (profile.get("secret_env") or ())]
        items: Fingerprints = {}
        # Bounded like the rules and cron sources: a hostile host's settings file of 24,000
        # keys made a 1.2 MB fingerprint set, stored anew each run it changed one value.
        env = list(dict(getattr(app, "env", {}) or {}).items())
        for name, var in _bounded(env):
            items[f"env:{name}"] = (self.fingerprint(var.value), is_secret_name(name, patterns))
        for dotted, value in _bounded(_leaves(getattr(app, "settings", {}) or {})):
            secret = is_secret_name(dotted.rsplit(".", 1)[-1], patterns)
            items[f"settings:{dotted}"] = (self.fingerprint(value), secret)
        secrets = {
            str(var.value)
            for name, var in dict(getattr(app, "env", {}) or {}).items()
            if is_secret_name(name, patterns)
        }
        secrets.update(
            str(value)
            for dotted, value in _leaves(getattr(app, "settings", {}) or {})
            if is_secret_name(dotted.rsplit(".", 1)[-1], patterns)
        )
        with self._lock:
            self.hosts.setdefault(host, {}).update(items)
            self._secrets[host] = {v for v in secrets if len(v) >= 4}

    def fact_request(self, profile: Any) -> dict[str, dict[str, Any]]:
        """The probe fact of the app's package versions (see runner.FACT_REQUESTS)."""
        try:
            return {DISTS_FACT: dists_spec(profile)}
        except Exception:  # a profile it cannot read costs the fingerprint, not the audit
            return {}

    def observe_facts(self, host: str, facts: Mapping[str, Any], profile: Any) -> None:
        """Fingerprint what the checks already asked the probe for (see
        runner.FACT_OBSERVERS): alert rules, cron lines, migration scripts on disk."""
        with self._lock:
            secrets = self._secrets.pop(host, set())
        fingerprinted: Fingerprints = {}
        try:
            items = fact_items(facts, profile)
            fingerprinted.update(
                {k: (self.fingerprint(v), secret) for k, (v, secret) in items.items()}
            )
            for item, (version, clear) in package_items(facts.get(DISTS_FACT), secrets).items():
                fp = self.fingerprint(version)
                fingerprinted[item] = (fp, False, clear) if clear is not None else (fp, False)
        except Exception:  # hostile host data must never break the audit
            return
        with self._lock:
            self.hosts.setdefault(host, {}).update(fingerprinted)

    def add_host_meta(self, report: Any) -> None:
        """What the probe reports about each audited host itself: the python3 interpreter
        version and the account the audit ran as (``host:python3``, ``host:user``); and
        the migration level the database_migration check read from the database
        (``migrations:database``)."""
        with self._lock:
            for h in report.hosts:
                if h.host not in self.hosts:
                    continue
                meta = dict(getattr(h, "facts_meta", {}) or {})
                for key, item in (("python", "host:python3"), ("user", "host:user")):
                    if meta.get(key):
                        self.hosts[h.host][item] = (self.fingerprint(meta[key]), False)
                for result in h.results:
                    applied = dict(result.details or {}).get("applied")
                    if result.check_name == "database_migration" and applied is not None:
                        level = sorted(str(v) for v in applied)
                        self.hosts[h.host]["migrations:database"] = (
                            self.fingerprint(level),
                            False,
                        )


_MAX_FACT_ITEMS = 500  # a hostile host's thousand-rule file must not bloat the store
MAX_CONFIG_ITEMS = 2000  # env variables, and settings leaves, fingerprinted per host
_MAX_ITEM_NAME = 200  # a longer variable name or dotted settings key is not fingerprinted


def _bounded(pairs: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The first :data:`MAX_CONFIG_ITEMS` (name, value) pairs in file order whose name is
    at most :data:`_MAX_ITEM_NAME` characters."""
    out: list[tuple[str, Any]] = []
    for name, value in pairs:
        if len(out) >= MAX_CONFIG_ITEMS:
            break
        if len(str(name)) <= _MAX_ITEM_NAME:
            out.append((str(name), value))
    return out


def dists_spec(profile: Any) -> dict[str, Any]:
    """Where the app's distributions are: the venv of ``adapter_python`` when it is a
    ``<venv>/bin/python`` path, else ``<app_root>/.venv`` or ``<app_root>/venv``; with
    none of those, the site directories of the host's ``python3`` (the interpreter
    ``adapter_python: python3`` names)."""
    roots: list[str] = []
    python = str(profile.get("adapter_python") or "python3")
    if "/" in python:
        resolved = str(profile.resolve(python))
        bindir = posixpath.dirname(resolved)
        if posixpath.basename(bindir) == "bin":
            roots.append(posixpath.dirname(bindir))
    for name in (".venv", "venv"):
        path = str(profile.resolve(name))
        if path not in roots:
            roots.append(path)
    return {"op": "dists", "roots": roots, "system": "/" not in python, "max_dists": MAX_DISTS}


def package_items(
    fact: Any, secrets: set[str] | frozenset[str] = frozenset()
) -> dict[str, tuple[str, str | None]]:
    """item → (version, the version when it may be shown in clear) from the probe's
    ``dists`` fact: ``package:<name>`` per distribution, ``python:venv`` for the
    interpreter the venv was made from. A name that is not PEP 503-normalised, or that
    carries one of the host's secret values, is left out; a version that does not look
    like one (or carries a secret) is fingerprinted but not shown."""
    if not isinstance(fact, Mapping) or not isinstance(fact.get("dists"), Mapping):
        return {}
    # Compared as names are normalised (lower case, runs of -_. as one -): a secret must
    # not come back lower-cased in a package name either.
    folded = {_SEPARATORS.sub("-", s.lower()) for s in secrets}

    def carries_secret(text: str) -> bool:
        flat = _SEPARATORS.sub("-", text.lower())
        return any(s in flat for s in folded)

    def clear(text: str) -> str | None:
        return text if _VERSION.fullmatch(text) and not carries_secret(text) else None

    out: dict[str, tuple[str, str | None]] = {}
    for raw, version in list(fact["dists"].items())[:MAX_DISTS]:
        name = str(raw)
        if not _DIST_NAME.fullmatch(name) or carries_secret(name):
            continue
        text = "" if version is None else str(version)[:64]
        out[f"package:{name}"] = (text, clear(text))
    if fact.get("venv") and fact.get("python"):
        text = str(fact["python"])[:40]
        out["python:venv"] = (text, clear(text))
    return out


def fact_items(facts: Mapping[str, Any], profile: Any = None) -> dict[str, tuple[Any, bool]]:
    """item → (value to fingerprint, is_secret) from the checks' facts.

    - ``alert:<name>`` per Prometheus alert rule (``record:<name>`` per recording rule),
      or ``alert_rules:file`` for a rules file that is not a parseable rules list;
    - ``cron:<source>``: the non-comment lines of each crontab source (a cron line may
      carry a password, so these count as secret); a profile's ``backup_cron_files`` are
      named as the profile names them, so hosts with different app roots compare;
    - ``migrations:scripts``: the migration level the scripts on disk lead to (Alembic
      head revisions, the highest SQL script version).
    """
    from ..checks import backup_restore, database_migration, monitoring

    items: dict[str, tuple[Any, bool]] = {}
    rules = facts.get(monitoring.RULES_FACT)
    if isinstance(rules, Mapping) and isinstance(rules.get("text"), str):
        items.update(_rule_items(str(rules["text"]), str(rules.get("path") or "")))
    cron = facts.get(backup_restore.CRON_FACT)
    if isinstance(cron, Mapping):
        named = {
            str(profile.resolve(str(p))): str(p)
            for p in (profile.get("backup_cron_files") if profile is not None else None) or ()
        }
        by_source: dict[str, list[str]] = {}
        for entry in list(cron.get("entries") or ())[: _MAX_FACT_ITEMS * 10]:
            if isinstance(entry, Mapping):
                source = str(entry.get("source"))
                by_source.setdefault(named.get(source, source), []).append(str(entry.get("line")))
        for source in sorted(by_source)[:_MAX_FACT_ITEMS]:
            items[f"cron:{source}"] = (by_source[source], True)
    level = _migration_level(facts, database_migration)
    if level is not None:
        items["migrations:scripts"] = (level, False)
    return items


def _rule_items(text: str, path: str) -> dict[str, tuple[Any, bool]]:
    from ..hostdata import HostDataError, load_yaml

    try:
        doc = load_yaml(text, path)
    except HostDataError:
        doc = None
    groups = doc.get("groups") if isinstance(doc, Mapping) else None
    if not isinstance(groups, list):
        return {"alert_rules:file": (text, False)}
    out: dict[str, tuple[Any, bool]] = {}
    for group in groups:
        for rule in (group.get("rules") if isinstance(group, Mapping) else None) or ():
            if not isinstance(rule, Mapping) or len(out) >= _MAX_FACT_ITEMS:
                continue
            kind = "alert" if rule.get("alert") is not None else "record"
            name = str(rule.get(kind) or "?")[:120]
            item = f"{kind}:{name}"
            if item in out:  # the same name in two groups: both count, in order
                item = f"{item}#{sum(1 for k in out if k.startswith(item))}"
            out[item] = (rule, False)
    return out


def _migration_level(facts: Mapping[str, Any], dm: Any) -> dict[str, Any] | None:
    listing = facts.get(dm.DIR_FACT)
    if not isinstance(listing, Mapping) or not listing.get("entries"):
        return None
    sql = [
        int(m.group("version"))
        for e in listing.get("entries") or ()
        if (m := dm.SQL_SCRIPT.match(str(e.get("name", "")).rsplit("/", 1)[-1]))
    ]
    revisions: set[str] = set()
    downs: set[str] = set()
    unreadable = 0
    for name in dm._alembic_names(listing):
        fact = facts.get(dm.SCRIPT_FACT + name)
        text = str(fact.get("text") or "") if isinstance(fact, Mapping) else ""
        script = dm._parse_alembic(name, text)
        if script is None:
            unreadable += 1
            continue
        revisions.add(script.key)
        downs.update(script.down)
    return {
        "alembic_heads": sorted(revisions - downs),
        "sql_level": max(sql, default=None),
        "unreadable": unreadable,
    }


def _leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, Mapping) and node:
        out: list[tuple[str, Any]] = []
        for k, v in node.items():
            out.extend(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return [(prefix, node)] if prefix else []


@dataclass(frozen=True)
class DriftFinding:
    host: str
    item: str
    kind: str  # "differs", "missing", "extra" (across hosts); "changed", "added", "removed"
    secret: bool
    agree: int = 0  # hosts holding the majority value
    group: int = 0  # hosts compared
    value: str | None = None  # this host's value, when shown in clear (versions)
    norm: str | None = None  # the majority's value (across hosts) or the old one (over time)

    @property
    def text(self) -> str:
        label = f"{self.item} (secret)" if self.secret else self.item
        mine = f"{label} {self.value}" if self.value is not None else label
        norm = f" ({self.norm})" if self.norm is not None else ""
        if self.kind == "differs":
            return f"{self.host}: {mine} differs from {self.agree} of {self.group} hosts{norm}"
        if self.kind == "missing":
            where = f"{self.agree} of {self.group} hosts"
            return f"{self.host}: {label} is missing (set on {where}{', ' + self.norm if self.norm else ''})"
        if self.kind == "extra":
            where = "only on this host" if self.agree == 1 else f"on only {self.agree}"
            return f"{self.host}: {mine} is set {where} of {self.group} hosts"
        if self.kind == "changed" and self.value is not None and self.norm is not None:
            return f"{self.host}: {label} changed {self.norm} → {self.value}"
        if self.kind in ("added", "removed") and self.value is not None:
            return f"{self.host}: {label} {self.kind} ({self.value})"
        return f"{self.host}: {label} {self.kind}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "item": self.item,
            "kind": self.kind,
            "secret": self.secret,
            "agree": self.agree,
            "group": self.group,
            "value": self.value,
            "norm": self.norm,
            "text": self.text,
        }


def drift_across_hosts(hosts: Mapping[str, Fingerprints]) -> list[DriftFinding]:
    """Per item, the value most hosts share is the norm; every other host is named.

    An item set on fewer than half the hosts is reported where it *is* set (``extra``);
    otherwise the hosts lacking it are (``missing``). A tie names nobody for ``differs``:
    with no majority there is no odd one out.
    """
    n = len(hosts)
    if n < 2:
        return []
    items = sorted({i for fps in hosts.values() for i in fps})
    out: list[DriftFinding] = []
    for item in items:
        holders = {h: fps[item] for h, fps in hosts.items() if item in fps}
        secret = any(fp[1] for fp in holders.values())
        if len(holders) * 2 <= n and len(holders) < n:
            out.extend(
                DriftFinding(h, item, "extra", secret, len(holders), n, shown(fp))
                for h, fp in holders.items()
            )
            continue
        counts = Counter(fp[0] for fp in holders.values())
        (top, top_n), *rest = counts.most_common()
        norm = next((shown(fp) for fp in holders.values() if fp[0] == top), None)
        tie = bool(rest and rest[0][1] == top_n)
        out.extend(
            DriftFinding(h, item, "missing", secret, len(holders), n, None, None if tie else norm)
            for h in hosts
            if h not in holders
        )
        if tie:
            continue
        out.extend(
            DriftFinding(h, item, "differs", secret, top_n, n, shown(fp), norm)
            for h, fp in holders.items()
            if fp[0] != top
        )
    return sorted(out, key=lambda f: (f.host, f.item))


# Items fingerprinted from the facts one check asked for: a run without that check has
# none of them, which is not their removal from the host.
_ITEM_CHECKS = (
    ("alert:", "monitoring"),
    ("record:", "monitoring"),
    ("alert_rules:", "monitoring"),
    ("cron:", "backup_restore"),
    ("migrations:", "database_migration"),
)


def item_check(item: str) -> str | None:
    """The check whose facts an item comes from (None: every recorded run has it)."""
    return next((check for prefix, check in _ITEM_CHECKS if item.startswith(prefix)), None)


def drift_over_time(
    before: Mapping[str, Fingerprints],
    after: Mapping[str, Fingerprints],
    not_audited: frozenset[str] | set[str] = frozenset(),
) -> list[DriftFinding]:
    """Per host present in both runs: items changed, added or removed. Items of the checks
    in ``not_audited`` (not run in one of the two runs) are not compared: a run of
    ``-c environment`` reported every alert rule and cron line as removed."""
    out: list[DriftFinding] = []
    for host in sorted(set(before) & set(after)):
        old, new = before[host], after[host]
        for item in sorted(set(old) | set(new)):
            if item_check(item) in not_audited:
                continue
            if item not in old:
                out.append(DriftFinding(host, item, "added", new[item][1], value=shown(new[item])))
            elif item not in new:
                out.append(
                    DriftFinding(host, item, "removed", old[item][1], value=shown(old[item]))
                )
            elif old[item][0] != new[item][0]:
                secret = new[item][1] or old[item][1]
                was, now = shown(old[item]), shown(new[item])
                out.append(DriftFinding(host, item, "changed", secret, value=now, norm=was))
    return out


def render_drift(
    findings: Sequence[DriftFinding],
    fmt: str,
    title: str,
    not_compared: Mapping[str, Sequence[str]] | None = None,
    checks_not_compared: Sequence[str] | None = None,
) -> str:
    """``not_compared``: over time, run id → hosts with fingerprints only in that run;
    ``checks_not_compared``: checks whose items were not compared (run in only one run)."""
    alone = {run: list(hosts) for run, hosts in (not_compared or {}).items() if hosts}
    notes = [
        f"not compared (fingerprints only in run {run}): {', '.join(hosts)}"
        for run, hosts in alone.items()
    ]
    if checks_not_compared:
        notes.append(
            "not compared (checks not run in both runs): " + ", ".join(checks_not_compared)
        )
    if fmt == "json":
        doc: dict[str, Any] = {
            "schema": "readiness.drift/1",
            "title": title,
            "findings": [f.to_dict() for f in findings],
        }
        if not_compared is not None:
            doc["only_in_run"] = alone
        if checks_not_compared is not None:
            doc["checks_not_compared"] = list(checks_not_compared)
        return json.dumps(doc, indent=2)
    if fmt == "markdown":
        lines = [f"### {md_text(title)}", ""]
        lines.extend(f"- {md_text(f.text)}" for f in findings)
        lines = lines if findings else [*lines, "_no drift_"]
        return "\n".join([*lines, *(f"\n_{md_text(note)}_" for note in notes)])
    if fmt == "table":
        rows = [
            [field(f.host), field(f.item), f.kind, "yes" if f.secret else "", field(f.text)]
            for f in findings
        ]
        body = tabulate(
            rows, headers=["host", "item", "drift", "secret", "finding"], tablefmt="grid"
        )
        return plain("\n".join([field(title), body if rows else "no drift", *map(field, notes)]))
    # one line per finding: a settings key or a value with a newline must not forge another
    body_lines = [f"  {field(f.text)}" for f in findings] or ["  no drift"]
    return "\n".join([field(title), *body_lines, *(f"  {field(note)}" for note in notes)])
