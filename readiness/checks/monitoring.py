"""``monitoring``: Prometheus scrapes the app, Grafana is healthy, alert rules and dashboards exist.

Prometheus and Grafana are asked over HTTP from the controller (``requests``,
explicit timeouts, TLS verified), through the host's SSH connection when
``service_access`` says so (plain http only). The alert rules file and the
dashboards are read on the host by the probe and judged here.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from ..appconfig import AppConfig
from ..findings import Findings
from ..hostdata import HostDataError, load_json, load_yaml
from ..inventory.strict_yaml import compose_checked
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from . import _access
from ._common import unreadable

if TYPE_CHECKING:
    import requests

DEFAULTS: dict[str, Any] = {
    "prometheus_url": "http://127.0.0.1:9090",
    # The app's scrape job, and optionally its instance label (or a substring of its scrape URL).
    "prometheus_job": "mahavishnu",
    "prometheus_instance": None,
    "grafana_url": "http://127.0.0.1:3000",
    "alert_rules_file": "config/alerts.yml",
    "dashboards_dir": "dashboards",
    "thresholds": {"monitoring_http_timeout_s": 3, "monitoring_max_dashboards": 20},
}

RULES_FACT = "monitoring:alert_rules"
# config/alerts.yaml for config/alerts.yml (and back): the same file to Prometheus, and the
# seed's name differs from many deployments' only by that spelling.
RULES_TWIN_FACT = "monitoring:alert_rules_twin"
DASHBOARDS_FACT = "monitoring:dashboards"
DASHBOARD_PREFIX = "monitoring:dashboard:"
_RULES_MAX_BYTES = 1024 * 1024
_NEEDS_CREDENTIALS = (401, 403, 407)
_DASHBOARD_MAX_BYTES = 2 * 1024 * 1024


def facts(profile: Profile) -> FactSpecs:
    out: FactSpecs = {}
    rules = profile.path_of("alert_rules_file")
    if rules:
        out[RULES_FACT] = {"op": "file", "path": rules, "max_bytes": _RULES_MAX_BYTES}
        twin = _twin(rules)
        if twin:
            out[RULES_TWIN_FACT] = {"op": "file", "path": twin, "max_bytes": _RULES_MAX_BYTES}
    dashboards = profile.path_of("dashboards_dir")
    if dashboards:
        out[DASHBOARDS_FACT] = {
            "op": "list",
            "path": dashboards,
            "patterns": ["*.json"],
            "recursive": True,
            "max_entries": 500,
        }
    return out


def followup(profile: Profile, app: AppConfig, got: Mapping[str, Any]) -> FactSpecs:
    """Read the first ``monitoring_max_dashboards`` dashboard files the listing found."""
    limit = int(profile.threshold("monitoring_max_dashboards"))
    out: FactSpecs = {}
    for entry in _dashboard_entries(got.get(DASHBOARDS_FACT))[:limit]:
        out[DASHBOARD_PREFIX + str(entry["name"])] = {
            "op": "file",
            "path": entry["path"],
            "max_bytes": _DASHBOARD_MAX_BYTES,
        }
    return out


def _dashboard_entries(fact: Any) -> list[Mapping[str, Any]]:
    if not isinstance(fact, Mapping):
        return []
    return [e for e in fact.get("entries") or () if e.get("type") == "file"]


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    timeout = float(ctx.profile.threshold("monitoring_http_timeout_s"))
    f.details["prometheus"] = _prometheus(ctx, f, timeout)
    f.details["grafana"] = _grafana(ctx, f, timeout)
    f.details["alert_rules"] = _alert_rules(ctx, f)
    f.details["dashboards"] = _dashboards(ctx, f)
    return f.outcome(
        "Monitoring is in place: Prometheus scrapes the app, Grafana is healthy, "
        f"{f.details['alert_rules'].get('alerts', 0)} alert rule(s), "
        f"{f.details['dashboards'].get('valid', 0)} dashboard(s)" + _unread(f),
        subject="Monitoring",
    )


# -- HTTP ---------------------------------------------------------------------


def _base_url(ctx: CheckContext, key: str) -> str | None:
    value = ctx.profile.get(key)
    if not value:
        return None
    url = str(value).rstrip("/")
    with contextlib.suppress(ValueError):  # a malformed URL fails later, with its own message
        ctx.secret(urlsplit(url).password)
    return url


def _get(
    url: str, timeout: float, headers: Mapping[str, str] | None = None, *, direct: bool = False
) -> tuple[requests.Response | None, str | None]:
    """GET with connect and read timeouts and TLS verification; (response, error).

    ``direct``: ``url`` is not a tunnel's, so when nothing listens there the answer is
    known without importing the HTTP client (:func:`._access.nothing_listens`)."""
    if direct:
        unreachable = _access.nothing_listens(url, timeout)
        if unreachable is not None:
            return None, unreachable
    import requests

    try:
        with _access.http_session() as session:  # no proxy variables, no ~/.netrc
            res = session.get(
                url, timeout=(timeout, timeout), allow_redirects=False, headers=dict(headers or {})
            )
    except requests.Timeout:
        return None, f"no answer within {timeout:g}s"
    except requests.RequestException as exc:
        return None, _short_error(exc)
    return res, None


def _short_error(exc: Exception) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    return f"{type(exc).__name__}: {text[:200]}"


def _http_problem(res: requests.Response | None) -> str:
    if res is None:
        return "no answer"
    text = res.text.strip()[:120]
    return f"HTTP {res.status_code}: {text}" if text else f"HTTP {res.status_code}"


def _json(res: requests.Response) -> Any:
    try:
        return res.json()
    except ValueError:
        return None


def _prometheus(ctx: CheckContext, f: Findings, timeout: float) -> dict[str, Any]:
    url = _base_url(ctx, "prometheus_url")
    start = "Start Prometheus server for metrics collection"
    if url is None:
        f.fail("no Prometheus URL configured", f"{start} and set prometheus_url in the profile")
        return {"url": None}
    out: dict[str, Any] = {"url": url}
    http = _access.http_route(ctx, url)
    if http.access:
        out["access"] = http.access
    if http.stranded:  # asked from the controller it would be the controller's Prometheus
        out["ready"] = None
        f.unknown(f"Prometheus: {http.why_stranded(ctx.host)}", _access.STRANDED_FIX)
        return out
    res, error = (
        (None, http.error)
        if http.error
        else _get(f"{http.target}/-/ready", timeout, http.headers, direct=http.via is None)
    )
    if res is not None and res.status_code in _NEEDS_CREDENTIALS:
        # Prometheus behind basic auth (web.config.yml) or an authenticating proxy is
        # running; whether it is ready cannot be told without credentials. It was NOT_READY
        # "not ready (HTTP 401)" with "Start Prometheus server".
        out["ready"] = None
        f.unknown(
            f"Prometheus at {url} asks for credentials (HTTP {res.status_code}), so whether "
            "it is ready cannot be told",
            "Give the audit read access: put the user and password in prometheus_url "
            "(http://USER:PASSWORD@host:9090, the password is masked in reports)",
        )
        return out
    if res is None or res.status_code != 200:
        why = error or _http_problem(res)
        out["ready"] = False
        f.fail(
            f"Prometheus at {url} is not ready ({why})",
            f"{start} (expected at {url}; set prometheus_url if it runs elsewhere)",
        )
        return out
    out["ready"] = True
    out["targets"] = _targets(ctx, f, url, http, timeout)
    return out


def _targets(
    ctx: CheckContext, f: Findings, url: str, http: _access.HttpRoute, timeout: float
) -> list[dict[str, Any]]:
    job = str(ctx.profile.get("prometheus_job") or "")
    instance = ctx.profile.get("prometheus_instance")
    res, error = _get(f"{http.target}/api/v1/targets?state=active", timeout, http.headers)
    body = _json(res) if res is not None and res.status_code == 200 else None
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, Mapping):
        why = error or (f"HTTP {res.status_code}" if res is not None else "no answer")
        f.unknown(
            f"cannot list Prometheus targets at {url}/api/v1/targets ({why})",
            "Check that Prometheus's HTTP API is reachable from the controller",
        )
        return []
    mine = [t for t in data.get("activeTargets") or () if _is_app_target(t, job, instance)]
    if not instance:
        # One job scraping the whole fleet: this host is judged on its own target (named
        # as the inventory or the host itself names it), not blamed for another's.
        mine = _this_hosts(ctx, mine) or mine
    wanted = f"job {job!r}" + (f" instance {instance!r}" if instance else "")
    if not mine:
        f.fail(
            f"Prometheus has no active target for {wanted}",
            f"Add a scrape job '{job}' for the app's /metrics endpoint to prometheus.yml "
            "(or set prometheus_job/prometheus_instance in the profile)",
        )
        return []
    return [_judge_target(t, f) for t in mine]


def _this_hosts(ctx: CheckContext, targets: list[Any]) -> list[Any]:
    """The targets whose instance (or scrape URL) names this host, by its inventory name
    or the name it gives itself, whole or short."""
    names = _names({ctx.host, str(ctx.meta.get("hostname") or "")})

    def host_of(target: Mapping[str, Any]) -> set[str]:
        labels = target.get("labels") or {}
        found = set()
        with contextlib.suppress(ValueError):
            found.add(urlsplit(str(target.get("scrapeUrl") or "")).hostname or "")
        with contextlib.suppress(ValueError):
            found.add(urlsplit("//" + str(labels.get("instance") or "")).hostname or "")
        return _names(found)

    return [t for t in targets if isinstance(t, Mapping) and host_of(t) & names]


def _names(hosts: set[str]) -> set[str]:
    """Host names, lower-cased, each with its short form (never an address's first byte)."""
    out = set()
    for host in (h.lower() for h in hosts if h):
        out.add(host)
        if not host.replace(".", "").isdigit() and ":" not in host:
            out.add(host.split(".")[0])
    return out


def _is_app_target(target: Mapping[str, Any], job: str, instance: Any) -> bool:
    labels = target.get("labels") or {}
    if job and labels.get("job") != job:
        return False
    if instance:
        return labels.get("instance") == instance or str(instance) in str(
            target.get("scrapeUrl", "")
        )
    return True


def _judge_target(target: Mapping[str, Any], f: Findings) -> dict[str, Any]:
    labels = target.get("labels") or {}
    name = f"{labels.get('job')}/{labels.get('instance')}"
    health = str(target.get("health", "unknown"))
    last_error = str(target.get("lastError") or "")
    if health == "down":
        f.fail(
            f"Prometheus target {name} is down: {last_error or 'no error reported'}",
            f"Fix the app's metrics endpoint {target.get('scrapeUrl')} so Prometheus can scrape it",
        )
    elif health != "up":
        f.unknown(
            f"Prometheus target {name} has not been scraped yet (health {health!r})",
            "Rerun the audit after one scrape interval",
        )
    return {
        "target": name,
        "health": health,
        "scrape_url": target.get("scrapeUrl"),
        "last_error": last_error,
        "last_scrape": target.get("lastScrape"),
    }


def _grafana(ctx: CheckContext, f: Findings, timeout: float) -> dict[str, Any]:
    url = _base_url(ctx, "grafana_url")
    start = "Start Grafana server for visualization"
    if url is None:
        f.warn("no Grafana URL configured", f"{start} and set grafana_url in the profile")
        return {"url": None}
    http = _access.http_route(ctx, url)
    if http.stranded:  # asked from the controller it would be the controller's Grafana
        f.unknown(f"Grafana: {http.why_stranded(ctx.host)}", _access.STRANDED_FIX)
        undetermined: dict[str, Any] = {"url": url, "healthy": None}
        if http.access:
            undetermined["access"] = http.access
        return undetermined
    res, error = (
        (None, http.error)
        if http.error
        else _get(f"{http.target}/api/health", timeout, http.headers, direct=http.via is None)
    )
    body = _json(res) if res is not None else None
    database = body.get("database") if isinstance(body, Mapping) else None
    out: dict[str, Any] = {"url": url, "healthy": False, "database": database}
    if http.access:
        out["access"] = http.access
    if res is None:
        f.warn(f"Grafana at {url} is not reachable ({error})", f"{start} (expected at {url})")
    elif res.status_code in _NEEDS_CREDENTIALS:
        # An authenticating proxy in front of Grafana: it answers, its health is unknown
        # (it was "unhealthy … check its database connection").
        out["healthy"] = None
        f.unknown(
            f"Grafana at {url} asks for credentials (HTTP {res.status_code}), so whether it "
            "is healthy cannot be told",
            "Let the audit reach /api/health (it needs no login in Grafana itself): put the "
            "proxy's user and password in grafana_url, or point grafana_url past the proxy",
        )
    elif res.status_code != 200 or database != "ok":
        f.warn(
            f"Grafana at {url} is unhealthy (HTTP {res.status_code}, database {database!r})",
            f"{start}: check its database connection (grafana-server logs)",
        )
    else:
        out.update(healthy=True, version=body.get("version") if isinstance(body, Mapping) else None)
    return out


# -- alert rules ---------------------------------------------------------------


def _twin(path: str) -> str | None:
    for one, other in ((".yml", ".yaml"), (".yaml", ".yml")):
        if path.endswith(one):
            return path[: -len(one)] + other
    return None


def _alert_rules(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    rel = str(ctx.profile.get("alert_rules_file") or "config/alerts.yml")
    create = f"Create {rel} with alert rules"
    fact = ctx.fact(RULES_FACT)
    twin = ctx.fact(RULES_TWIN_FACT)
    if fact.get("exists") is False and twin.get("exists"):
        fact = twin  # config/alerts.yaml where the profile says config/alerts.yml
    path = fact.get("path") or ctx.profile.path_of("alert_rules_file")
    out: dict[str, Any] = {"file": path, "alerts": 0}
    if not fact.get("exists"):
        if unreadable(fact):
            f.unknown(f"cannot stat alert rules file {path} ({fact['error']})", "Rerun with --sudo")
        else:
            f.fail(f"alert rules file {path} does not exist", create)
        return out
    if fact.get("type") != "file" or fact.get("text") is None:
        why = fact.get("error") or f"it is a {fact.get('type')}"
        f.fail(f"alert rules file {path} cannot be read ({why})", create)
        return out
    if fact.get("truncated"):
        f.unknown(
            f"alert rules file {path} is larger than {_RULES_MAX_BYTES} bytes; not judged",
            "Split the alert rules into several files",
        )
        return out
    problems, counts = validate_rules(str(fact["text"]), str(path))
    out.update(counts)
    for problem in problems:
        f.fail(
            problem,
            f"Fix {rel}: groups → rules, each with 'alert' and 'expr' (see `promtool check rules {rel}`)",
        )
    if not problems and counts["alerts"] == 0:
        f.fail(f"alert rules file {path} defines no alert rules", create)
    return out


def validate_rules(text: str, path: str) -> tuple[list[str], dict[str, int]]:
    """Check Prometheus rules YAML: ``groups`` → ``name`` + ``rules`` → ``alert``/``record`` + ``expr``.

    Returns the problems (each naming ``path:line``) and counts of groups, alerts, records.
    """
    counts = {"groups": 0, "alerts": 0, "records": 0}
    try:
        load_yaml(text, path)  # the host wrote it: strict, alias-budgeted, depth-limited
        root = _rules_tree(text)  # accepted above: libyaml composes it safely
    except HostDataError as exc:
        return [str(exc)], counts
    groups = _child(root, "groups")
    if not isinstance(groups, yaml.SequenceNode):
        line = _line(groups or root)
        return [
            f"{path}:{line}: not a Prometheus rules file (needs a top-level 'groups' list)"
        ], counts
    problems: list[str] = _unknown_keys(root, _FILE_KEYS, f"{path}:{_line(root)}: the file")
    seen: set[str] = set()
    for gi, group in enumerate(groups.value):
        counts["groups"] += 1
        name = _scalar(_child(group, "name")) or f"#{gi + 1}"
        where = f"{path}:{_line(group)}: group {name!r}"
        if _scalar(_child(group, "name")) is None:
            problems.append(f"{path}:{_line(group)}: group #{gi + 1} has no 'name'")
        elif name in seen:
            problems.append(f"{where} is repeated in the same file")
        seen.add(name)
        problems += _group_problems(group, where)
        rules = _child(group, "rules")
        if not isinstance(rules, yaml.SequenceNode):
            problems.append(f"{path}:{_line(group)}: group {name!r} has no 'rules' list")
            continue
        for ri, rule in enumerate(rules.value):
            problems += _rule_problems(
                rule, f"{path}:{_line(rule)}: group {name!r} rule #{ri + 1}", counts
            )
    return problems, counts


def _rules_tree(text: str) -> yaml.Node | None:
    """The rules' node tree, composed once per distinct text up to 64 KiB (a fleet's hosts
    usually share their alert rules). Shared between hosts: only read, never changed."""
    if len(text) <= _RULES_CACHE_MAX_TEXT:
        return _rules_tree_cached(text)
    return compose_checked(text)


_RULES_CACHE_MAX_TEXT = 64 * 1024


@functools.lru_cache(maxsize=32)
def _rules_tree_cached(text: str) -> yaml.Node | None:
    return compose_checked(text)


# The keys Prometheus's rule file format knows (model/rulefmt, up to Prometheus 3): it
# decodes with KnownFields, so any other key makes Prometheus refuse the whole file
# (`severity:` beside `expr:` instead of under `labels:` is the usual one).
_FILE_KEYS = frozenset({"groups"})
_GROUP_KEYS = frozenset({"name", "interval", "query_offset", "limit", "rules", "labels"})
_RULE_KEYS = frozenset(
    {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
)
# prometheus/common model.ParseDuration: units in this order, integers only ("0" alone too).
_DURATION = re.compile(r"0|(?=.)(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?")


def _unknown_keys(node: yaml.Node | None, known: frozenset[str], where: str) -> list[str]:
    if not isinstance(node, yaml.MappingNode):
        return []
    return [
        f"{where} has unknown key {k.value!r} (Prometheus refuses the whole file)"
        for k, _ in node.value
        if isinstance(k, yaml.ScalarNode) and k.value not in known
    ]


def _duration_problems(node: yaml.Node | None, key: str, where: str) -> list[str]:
    value = _child(node, key)
    if value is None:
        return []
    if not isinstance(value, yaml.ScalarNode) or not _DURATION.fullmatch(value.value):
        shown = value.value if isinstance(value, yaml.ScalarNode) else "(not a string)"
        return [f"{where}: {key} {shown!r} is not a Prometheus duration (e.g. 5m, 1h30m)"]
    return []


def _string_map_problems(node: yaml.Node | None, key: str, where: str) -> list[str]:
    value = _child(node, key)
    if value is None or (isinstance(value, yaml.ScalarNode) and value.tag.endswith(":null")):
        return []
    if not isinstance(value, yaml.MappingNode) or not all(
        isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode) for k, v in value.value
    ):
        return [f"{where}: {key} must map names to strings"]
    return []


def _group_problems(group: yaml.Node, where: str) -> list[str]:
    problems = _unknown_keys(group, _GROUP_KEYS, where)
    for key in ("interval", "query_offset"):
        problems += _duration_problems(group, key, where)
    limit = _child(group, "limit")
    if limit is not None and not (
        isinstance(limit, yaml.ScalarNode) and re.fullmatch(r"[-+]?\d+", limit.value)
    ):
        problems.append(f"{where}: limit must be a whole number")
    return problems + _string_map_problems(group, "labels", where)


def _rule_problems(rule: yaml.Node, where: str, counts: dict[str, int]) -> list[str]:
    alert, record = _scalar(_child(rule, "alert")), _scalar(_child(rule, "record"))
    expr = _scalar(_child(rule, "expr"))
    label = f" ({alert or record})" if alert or record else ""
    problems = _unknown_keys(rule, _RULE_KEYS, f"{where}{label}")
    if alert and record:
        problems.append(f"{where}{label} sets both 'alert' and 'record' (only one may be set)")
    if alert:
        counts["alerts"] += 1
    elif record:
        counts["records"] += 1
    else:
        problems.append(f"{where} has neither 'alert' nor 'record'")
    if not expr:
        problems.append(f"{where}{label} has no 'expr'")
    for key in ("for", "keep_firing_for"):
        found = _duration_problems(rule, key, f"{where}{label}")
        problems += found
        value = _scalar(_child(rule, key))
        if record and not alert and not found and value and value.strip("0ywdhms"):
            problems.append(f"{where}{label}: a recording rule cannot have '{key}'")
    if record and not alert:
        if _child(rule, "annotations") is not None and _mapping_size(rule, "annotations"):
            problems.append(f"{where}{label}: a recording rule cannot have 'annotations'")
        if "{" in record or "}" in record:
            problems.append(f"{where}{label}: braces in the recording rule name (the expression?)")
    for key in ("labels", "annotations"):
        problems += _string_map_problems(rule, key, f"{where}{label}")
    return problems


def _mapping_size(node: yaml.Node, key: str) -> int:
    value = _child(node, key)
    return len(value.value) if isinstance(value, yaml.MappingNode) else 0


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key and isinstance(v, yaml.Node):
            return v
    return None


def _scalar(node: yaml.Node | None) -> str | None:
    if isinstance(node, yaml.ScalarNode) and node.value.strip():
        return str(node.value)
    return None


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


# -- dashboards -----------------------------------------------------------------


def _dashboards(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    rel = str(ctx.profile.get("dashboards_dir") or "dashboards")
    listing = ctx.fact(DASHBOARDS_FACT)
    path = listing.get("path") or ctx.profile.path_of("dashboards_dir")
    out: dict[str, Any] = {"dir": path, "found": 0, "valid": 0, "invalid": []}
    export = f"Export Grafana dashboards as JSON into {rel}/ (Dashboard → Share → Export)"
    if unreadable(listing):
        # There may well be dashboards: the audit account cannot list them.
        f.unknown(
            f"cannot list dashboards directory {path} ({listing['error']})",
            "Rerun with --sudo (or as a user that may read the dashboards directory)",
        )
        return out
    if not listing.get("exists") or listing.get("type") != "dir":
        f.warn(f"dashboards directory {path} does not exist", f"Create {rel}/. {export}")
        return out
    entries = _dashboard_entries(listing)
    out["found"] = len(entries)
    if not entries:
        f.warn(f"no dashboard JSON files in {path}", export)
        return out
    limit = int(ctx.profile.threshold("monitoring_max_dashboards"))
    out["read"] = min(len(entries), limit)
    if len(entries) > limit or listing.get("truncated"):
        out["not_read"] = max(0, len(entries) - limit)
    titles = []
    for entry in entries[:limit]:
        title, problem = _judge_dashboard(ctx.fact(DASHBOARD_PREFIX + str(entry["name"])))
        if problem:
            out["invalid"].append(str(entry["name"]))
            f.warn(
                f"dashboard {entry['path']} {problem}",
                f"Re-export {rel}/{entry['name']} from Grafana",
            )
        else:
            titles.append(title)
    out["valid"] = len(titles)
    out["titles"] = titles
    return out


def _judge_dashboard(fact: Mapping[str, Any]) -> tuple[str, str | None]:
    if fact.get("text") is None:
        return "", f"cannot be read ({fact.get('error') or 'not collected'})"
    if fact.get("truncated"):
        return "", f"is larger than {_DASHBOARD_MAX_BYTES} bytes; not judged"
    try:
        data = load_json(str(fact["text"]))
    except HostDataError as exc:
        return "", f"is not valid JSON: {exc}".replace("JSON: invalid JSON:", "JSON:")
    if isinstance(data, Mapping) and isinstance(data.get("dashboard"), Mapping):
        data = data["dashboard"]  # the HTTP API's export wraps the model
    if not isinstance(data, Mapping) or not isinstance(data.get("panels", []), list):
        return "", "is not a Grafana dashboard (expected an object with a 'panels' list)"
    return str(data.get("title") or fact.get("path")), None


def _unread(f: Findings) -> str:
    """The dashboards past monitoring_max_dashboards, for the READY message: it counted the
    ones read ("2 dashboard(s)") as if they were all there were."""
    dashboards = f.details.get("dashboards") or {}
    more = int(dashboards.get("not_read") or 0)
    if not more:
        return ""
    return f" ({more} more not read: thresholds.monitoring_max_dashboards)"


def destinations(ctx: CheckContext) -> list[tuple[str, int]]:
    """Prometheus's and Grafana's tunnel destinations: :func:`evaluate` asks both,
    whatever the other answers."""
    found = []
    for key in ("prometheus_url", "grafana_url"):
        url = _base_url(ctx, key)
        dest = _access.http_destination(ctx, url) if url is not None else None
        if dest is not None:
            found.append(dest)
    return found


register(
    "monitoring",
    title="Monitoring",
    description=(
        "Prometheus is ready and scrapes the app's target (health up), Grafana's /api/health is ok, "
        "the alert rules file is valid Prometheus rules YAML, dashboard JSON files parse."
    ),
    categories=("operations",),
    suites=("validate",),
    facts=facts,
    followup=followup,
    destinations=destinations,
    defaults=DEFAULTS,
    profile_keys=(
        "prometheus_url",
        "prometheus_job",
        "prometheus_instance",
        "grafana_url",
        "service_access",
        "alert_rules_file",
        "dashboards_dir",
        "thresholds.monitoring_http_timeout_s",
        "thresholds.monitoring_max_dashboards",
    ),
    order=50,
)(evaluate)
