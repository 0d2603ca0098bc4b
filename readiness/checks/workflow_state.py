"""``workflow_state``: a workflow started now is persisted, queryable by id, and completes.

Opt-in (``workflow_state.enabled``). The workflow is started either with an HTTP
request from the controller (``start_url``) or with an argv on the host
(``start_command``, the probe's ``run`` op, printing JSON with the id). Its state
is then read from the controller, ``GET status_url`` with ``{id}`` filled in:
the first GET right after the start proves the run was persisted and can be
queried by id; then it is polled (bounded in count and time) until a final
state, which must be ``expect_state``.

A remote host's loopback URL (``http://127.0.0.1:8080/...``) is reached through the host's
SSH connection per ``service_access`` (docs/fleet.md, "Services behind the host").
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..findings import Findings
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from . import _access
from ._integration import argv_of, enabled_section, gate
from ._owned import owned_run, refused_run
from .workflow_execution import extract_state, same_state

__all__ = ["DEFAULTS", "evaluate", "facts"]

NAME = "workflow_state"
FACT = f"{NAME}:start"

DEFAULTS: dict[str, Any] = {
    NAME: {
        "enabled": False,
        "start_url": None,  # POSTed from the controller
        "start_method": "POST",
        "start_json": {"workflow": "readiness-smoke", "dry_run": True},
        "start_command": None,  # or: argv run on the host, printing JSON with id_key
        "cwd": ".",
        "status_url": None,  # e.g. http://app:8080/workflows/{id}
        "headers": {},
        "id_key": "id",
        "state_key": "state",
        "expect_state": "completed",
        "final_states": ["completed", "failed", "crashed", "cancelled", "error"],
        "poll_interval_s": 1.0,
    },
    "thresholds": {"workflow_state_max_s": 60, "workflow_request_timeout_s": 5},
}
KEYS = tuple(k for k in DEFAULTS[NAME] if k != "enabled")
HOW = (
    "Enable with workflow_state: {enabled: true, start_url: http://app:8080/workflows, "
    "status_url: 'http://app:8080/workflows/{id}'}; see docs/checks/workflow_state.md"
)


def facts(profile: Profile) -> FactSpecs:
    cfg = enabled_section(profile, NAME)
    if cfg is None or not cfg.get("start_command") or cfg.get("start_url"):
        return {}
    cwd = profile.resolve(str(cfg.get("cwd") or ".")) or profile.app_root
    timeout = float(profile.threshold("workflow_request_timeout_s")) * 6
    # The app's code: run as the app tree's owner, never as root (docs/security.md).
    # The id is printed last (read from the last JSON line), after whatever it logs.
    return {FACT: owned_run(argv_of(cfg["start_command"]), cwd, timeout=timeout, keep="tail")}


def _dig(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(doc, Mapping) or part not in doc:
            return None
        doc = doc[part]
    return doc


class _Api:
    def __init__(
        self, ctx: CheckContext, cfg: Mapping[str, Any], routes: Mapping[str, _access.HttpRoute]
    ) -> None:

        self.routes = routes  # configured URL (status_url with {id}) → where requests go
        self.session = _access.http_session()  # no proxy variables, no ~/.netrc
        self.headers = {str(k): str(v) for k, v in dict(cfg.get("headers") or {}).items()}
        for value in self.headers.values():
            ctx.secret(value)
        self.timeout = float(ctx.profile.threshold("workflow_request_timeout_s"))

    def call(self, method: str, key: str, url: str, body: Any = None) -> tuple[int, Any]:
        """``method url`` (``url`` is ``key``'s configured URL, maybe with the id filled in)."""
        route = self.routes[key]
        res = self.session.request(
            method,
            route.to(url),
            json=body,
            headers={**route.headers, **self.headers},
            timeout=self.timeout,
        )
        try:
            return res.status_code, res.json()
        except ValueError:
            return res.status_code, None


def destinations(ctx: CheckContext) -> list[tuple[str, int]]:
    """Where :func:`evaluate` tunnels to: ``status_url`` and ``start_url``, once
    ``status_url`` is valid; none when the check is skipped."""
    if gate(ctx, NAME, KEYS, HOW) is not None:
        return []
    cfg = ctx.profile[NAME]
    status_url = str(cfg.get("status_url") or "")
    if "{id}" not in status_url:
        return []
    return _access.http_destinations(ctx, [u for u in (status_url, cfg.get("start_url")) if u])


def evaluate(ctx: CheckContext) -> Outcome:
    skipped = gate(ctx, NAME, KEYS, HOW)
    if skipped is not None:
        return skipped
    import requests

    f = Findings()
    cfg = ctx.profile[NAME]
    status_url = str(cfg.get("status_url") or "")
    if not status_url or "{id}" not in status_url:
        f.fail(
            "workflow_state.status_url must be set and contain {id}",
            "Set status_url: 'http://app:8080/workflows/{id}'",
        )
        return f.outcome("", subject="Workflow state")
    urls = {"status_url": status_url, "start_url": str(cfg.get("start_url") or "")}
    routes = {key: _access.http_route(ctx, url) for key, url in urls.items() if url}
    for route in routes.values():
        if route.stranded:
            f.unknown(route.why_stranded(ctx.host), _access.STRANDED_FIX)
            return f.outcome("", subject="Workflow state")
        if route.error:
            f.fail(f"workflow API request failed: {route.url}: {route.error}")
            return f.outcome("", subject="Workflow state")
    access = {r.url: r.access for r in routes.values() if r.access}
    if access:
        f.details["access"] = access
    api = _Api(ctx, cfg, routes)
    started = time.monotonic()
    try:
        run_id = _start(ctx, f, api, cfg)
        if run_id is not None:
            url = status_url.replace("{id}", quote(run_id, safe=""))
            f.details.update({"id": run_id, "status_url": url})
            if _persisted(f, api, cfg, url, run_id):
                _completes(ctx, f, api, cfg, url=url, started=started)
    except requests.RequestException as exc:
        f.fail(f"workflow API request failed: {type(exc).__name__}: {exc}")
    finally:
        api.session.close()
    return f.outcome(
        f"Workflow {f.details.get('id')} persisted, queryable by id and "
        f"{f.details.get('final_state')} in {f.details.get('duration_s')}s",
        subject="Workflow state",
    )


def _start(ctx: CheckContext, f: Findings, api: _Api, cfg: Mapping[str, Any]) -> str | None:
    id_key = str(cfg.get("id_key") or "id")
    if cfg.get("start_url"):
        method = str(cfg.get("start_method") or "POST").upper()
        status, doc = api.call(method, "start_url", str(cfg["start_url"]), cfg.get("start_json"))
        f.details["start"] = {"via": "http", "status": status}
        if not 200 <= status < 300:
            f.fail(f"starting the workflow failed: HTTP {status} from {cfg['start_url']}")
            return None
        run_id = _dig(doc, id_key)
    elif cfg.get("start_command"):
        fact = ctx.fact(FACT)
        f.details["start"] = {"via": "command", "exit_code": fact.get("exit_code")}
        if refused_run(f, "start_command", fact):
            return None
        if fact.get("exit_code") != 0 or fact.get("timed_out"):
            why = fact.get("error") or str(fact.get("stderr") or "").strip()[-300:]
            f.fail(f"start_command failed (exit code {fact.get('exit_code')}): {why}")
            return None
        run_id = extract_state(str(fact.get("stdout") or ""), json_key=id_key, regex=None)
    else:
        f.fail("set workflow_state.start_url or start_command", HOW)
        return None
    if run_id is None or run_id == "":
        f.fail(f"the start answer has no workflow id (key {id_key!r})", "Fix id_key in the profile")
        return None
    return str(run_id)


def _persisted(f: Findings, api: _Api, cfg: Mapping[str, Any], url: str, run_id: str) -> bool:
    status, doc = api.call("GET", "status_url", url)
    state = _dig(doc, str(cfg.get("state_key") or "state"))
    f.details["first_read"] = {"status": status, "state": state}
    echoed = _dig(doc, str(cfg.get("id_key") or "id"))
    if status != 200 or state is None:
        f.fail(
            f"workflow {run_id} is not queryable right after it started: GET {url} → HTTP {status}"
            + (" without a state" if status == 200 else ""),
            "Persist the workflow run before answering the start request (state store, DB)",
        )
        return False
    if echoed is not None and str(echoed) != run_id:
        f.fail(f"GET {url} answered another workflow ({echoed!r}, expected {run_id!r})")
        return False
    return True


def _completes(
    ctx: CheckContext, f: Findings, api: _Api, cfg: Mapping[str, Any], *, url: str, started: float
) -> None:
    budget = float(ctx.profile.threshold("workflow_state_max_s"))
    interval = max(0.05, float(cfg.get("poll_interval_s") or 1.0))
    expect = str(cfg.get("expect_state") or "completed")
    final = {str(s).strip().casefold() for s in cfg.get("final_states") or ()}
    final.add(expect.strip().casefold())
    state: Any = None
    polls = 0
    for polls in range(1, int(budget / interval) + 2):  # noqa: B007 - reported below
        status, doc = api.call("GET", "status_url", url)
        state = _dig(doc, str(cfg.get("state_key") or "state")) if status == 200 else None
        if state is not None and str(state).strip().casefold() in final:
            break
        if time.monotonic() - started + interval > budget:
            break
        time.sleep(interval)
    f.details.update(
        {"final_state": state, "polls": polls, "duration_s": round(time.monotonic() - started, 3)}
    )
    if state is None or str(state).strip().casefold() not in final:
        f.fail(
            f"workflow {f.details['id']} did not reach a final state within {budget:g}s "
            f"(last state {state!r}; thresholds.workflow_state_max_s)",
            "Check the workers processing workflows and the app's logs",
        )
    elif not same_state(str(state), expect):
        f.fail(
            f"workflow {f.details['id']} ended {state!r}, expected {expect!r}",
            f"Inspect the run: {json.dumps(url)}",
        )


register(
    NAME,
    title="Workflow state",
    description=(
        "Opt-in: starts a workflow (HTTP or a host command), checks its state is persisted and "
        "queryable by id right away, and polls it (bounded) until it completes."
    ),
    categories=("integration",),
    suites=("production",),
    facts=facts,
    defaults=DEFAULTS,
    profile_keys=(
        *(f"{NAME}.{k}" for k in DEFAULTS[NAME]),
        "thresholds.workflow_state_max_s",
        "thresholds.workflow_request_timeout_s",
        "service_access",
    ),
    aliases=("workflow_persistence",),
    order=215,
    destinations=destinations,
    opt_in=True,
)(evaluate)
