"""``alert_delivery``: a test alert sent now reaches a receiver, unsilenced, within the threshold.

Opt-in (``alert_delivery.enabled``). From the controller (requests, explicit timeouts):

1. POST one alert with a unique ``readiness_test_id`` label and a short ``endsAt`` to
   Alertmanager's ``/api/v2/alerts`` (or, with only ``webhook_url``, an
   Alertmanager-style notification straight to the webhook);
2. Alertmanager: poll ``GET /api/v2/alerts?filter=readiness_test_id="…"`` until it
   is listed; ``suppressed`` (silenced or inhibited) is NOT_READY;
3. receiver (``receiver_query_url``): poll it until the unique id appears in its answer —
   that is the only proof the notification left Alertmanager; the latency reported is
   from the POST to that moment;
4. finally resolve the alert (``endsAt`` = now), so nobody is paged for longer than needed.

A remote host's loopback URL (``http://127.0.0.1:9093``) is reached through the host's SSH
connection per ``service_access`` (docs/fleet.md, "Services behind the host").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from ..findings import Findings
from ..model import Outcome
from ..registry import CheckContext, register
from . import _access
from ._integration import gate

__all__ = ["DEFAULTS", "TEST_LABEL", "evaluate"]

NAME = "alert_delivery"
TEST_LABEL = "readiness_test_id"

DEFAULTS: dict[str, Any] = {
    NAME: {
        "enabled": False,
        "alertmanager_url": None,  # e.g. http://alertmanager.internal:9093
        "webhook_url": None,  # without Alertmanager: POST a notification straight here
        "receiver_query_url": None,  # GET → what the receiver got (searched for the test id)
        "receiver_headers": {},
        "labels": {"alertname": "ReadinessTestAlert", "severity": "none", "readiness": "test"},
        "annotations": {"summary": "readiness alert delivery test; resolves by itself"},
        "alert_ttl_s": 120,  # endsAt of the test alert (it is also resolved at the end)
        "poll_interval_s": 0.5,
    },
    "thresholds": {"alert_delivery_max_seconds": 60, "alert_request_timeout_s": 5},
}
KEYS = tuple(k for k in DEFAULTS[NAME] if k != "enabled")
HOW = (
    "Enable with alert_delivery: {enabled: true, alertmanager_url: http://alertmanager:9093, "
    "receiver_query_url: <URL listing what your receiver got>}; see docs/checks/alert_delivery.md"
)


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class _Trial:
    """One test alert: its labels, timings and the HTTP session that sends it."""

    def __init__(self, ctx: CheckContext, cfg: Mapping[str, Any]) -> None:

        self.cfg = cfg
        import uuid  # on first use: uuid imports platform, a cost of every start-up

        self.test_id = uuid.uuid4().hex
        labels = {str(k): str(v) for k, v in dict(cfg.get("labels") or {}).items()}
        labels.update({TEST_LABEL: self.test_id, "instance": ctx.host})
        self.labels = labels
        self.timeout = float(ctx.profile.threshold("alert_request_timeout_s"))
        self.budget = float(ctx.profile.threshold("alert_delivery_max_seconds"))
        self.interval = max(0.05, float(cfg.get("poll_interval_s") or 0.5))
        self.session = _access.http_session()  # never through a proxy, no ~/.netrc
        self.started = time.monotonic()
        self.now = datetime.now(timezone.utc)

    def alert(self, ends: datetime) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "annotations": {
                str(k): str(v) for k, v in dict(self.cfg.get("annotations") or {}).items()
            },
            "startsAt": _iso(self.now),
            "endsAt": _iso(ends),
        }

    def ends(self) -> datetime:
        return self.now + timedelta(seconds=float(self.cfg.get("alert_ttl_s") or 120))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def poll(self, probe: Callable[[], Any]) -> Any:
        """Call ``probe`` until it returns something truthy or the budget is spent (bounded)."""
        for _ in range(int(self.budget / self.interval) + 2):
            value = probe()
            if value or self.elapsed() + self.interval > self.budget:
                return value
            time.sleep(self.interval)
        return None


def destinations(ctx: CheckContext) -> list[tuple[str, int]]:
    """Where :func:`evaluate` tunnels to: Alertmanager (or the webhook) and the receiver's
    query URL; none when the check is skipped."""
    if gate(ctx, NAME, KEYS, HOW) is not None:
        return []
    cfg = ctx.profile[NAME]
    send = cfg.get("alertmanager_url") or cfg.get("webhook_url")
    if not send:
        return []
    urls = [str(send)] + ([str(cfg["receiver_query_url"])] if cfg.get("receiver_query_url") else [])
    return _access.http_destinations(ctx, urls)


def evaluate(ctx: CheckContext) -> Outcome:
    skipped = gate(ctx, NAME, KEYS, HOW)
    if skipped is not None:
        return skipped
    import requests

    f = Findings()
    cfg = ctx.profile[NAME]
    am, hook = cfg.get("alertmanager_url"), cfg.get("webhook_url")
    query = cfg.get("receiver_query_url")
    if not am and not hook:
        f.fail(
            "alert_delivery needs alertmanager_url (or webhook_url)",
            "Set alert_delivery.alertmanager_url to your Alertmanager's base URL",
        )
        return f.outcome("", subject="Alert delivery")
    send = _access.http_route(ctx, str(am or hook))
    receiver = _access.http_route(ctx, str(query)) if query else None
    routes = [r for r in (send, receiver) if r is not None]
    for route in routes:
        if route.stranded:
            f.unknown(route.why_stranded(ctx.host), _access.STRANDED_FIX)
            return f.outcome("", subject="Alert delivery")
        if route.error:
            f.fail(f"alert delivery test failed: {route.url}: {route.error}")
            return f.outcome("", subject="Alert delivery")
    access = {r.url: r.access for r in routes if r.access}
    if access:
        f.details["access"] = access
    trial = _Trial(ctx, cfg)
    f.details.update({"test_id": trial.test_id, "labels": trial.labels})
    try:
        sent = _send_alertmanager(f, trial, send) if am else _send_webhook(f, trial, send)
        if sent and receiver is not None:
            _confirm_receiver(ctx, f, trial, receiver)
    except requests.RequestException as exc:
        f.fail(f"alert delivery test failed: {type(exc).__name__}: {exc}")
    finally:
        if am:
            _resolve(f, trial, send)
        trial.session.close()
    latency = f.details.get("latency_s")
    via = "the receiver" if query else "Alertmanager (active, not silenced or inhibited)"
    return f.outcome(
        f"Test alert {trial.test_id[:12]} confirmed by {via} in {latency}s",
        subject="Alert delivery",
    )


def _send_alertmanager(f: Findings, trial: _Trial, am: _access.HttpRoute) -> bool:
    url = am.target.rstrip("/") + "/api/v2/alerts"
    res = trial.session.post(
        url, json=[trial.alert(trial.ends())], headers=am.headers, timeout=trial.timeout
    )
    f.details["alertmanager"] = {"url": am.url, "post_status": res.status_code}
    if not res.ok:
        f.fail(
            f"Alertmanager refused the test alert: HTTP {res.status_code} {res.text[:200]}",
            "Check alertmanager_url and that the API v2 is enabled",
        )
        return False
    params = {"filter": f'{TEST_LABEL}="{trial.test_id}"'}

    def listed() -> dict[str, Any] | None:
        got = trial.session.get(url, params=params, headers=am.headers, timeout=trial.timeout)
        alerts = got.json() if got.ok else []
        states = [a for a in alerts if a.get("status", {}).get("state") != "unprocessed"]
        return states[0] if states else None

    alert = trial.poll(listed)
    if alert is None:
        f.fail(
            f"the test alert never appeared in Alertmanager within {trial.budget:g}s",
            "Check Alertmanager's logs: it accepted the alert but does not list it",
        )
        return False
    status = alert.get("status", {})
    f.details["alertmanager"].update(
        {
            "state": status.get("state"),
            "silenced_by": status.get("silencedBy") or [],
            "inhibited_by": status.get("inhibitedBy") or [],
            "receivers": [r.get("name") for r in alert.get("receivers") or []],
        }
    )
    if status.get("state") != "active":
        why = "silenced by " + ", ".join(status.get("silencedBy") or [])
        if status.get("inhibitedBy"):
            why = "inhibited by " + ", ".join(status["inhibitedBy"])
        f.fail(
            f"the test alert is {status.get('state')} ({why}): real alerts like it would not be delivered",
            "Expire the silence (or fix the inhibition rule) matching the test alert's labels "
            f"{dict(trial.labels)}",
        )
        return False
    silent = _silent_receivers(trial, am, f.details["alertmanager"]["receivers"])
    if silent:
        f.fail(
            f"the test alert is routed only to receiver(s) {', '.join(silent)}, which send no "
            "notification (no *_configs in Alertmanager's configuration): real alerts like it "
            "would go nowhere",
            f"Route alerts with the labels {dict(trial.labels)} to a receiver that notifies "
            "someone (webhook_configs, email_configs, ...), or set alert_delivery.labels to "
            "those of the real alerts that must page",
        )
        return False
    f.details["latency_s"] = round(trial.elapsed(), 3)
    f.details["confirmed_by"] = "alertmanager"
    return True


def _silent_receivers(trial: _Trial, am: _access.HttpRoute, names: list[Any]) -> list[str]:
    """The alert's receivers when none of them has a notification integration (a "null"
    receiver: kube-prometheus routes severity none there), from Alertmanager's own
    configuration (``/api/v2/status``); empty when any of them notifies, or when that
    cannot be read (the receiver check, if configured, still has the last word)."""
    import requests

    from ..hostdata import HostDataError, load_yaml

    wanted = {str(n) for n in names if n}
    if not wanted:
        return []
    try:
        res = trial.session.get(
            am.target.rstrip("/") + "/api/v2/status", headers=am.headers, timeout=trial.timeout
        )
        original = res.json().get("config", {}).get("original") if res.ok else None
        config = load_yaml(str(original), "Alertmanager configuration") if original else None
    except (requests.RequestException, ValueError, AttributeError, HostDataError):
        return []
    receivers = config.get("receivers") if isinstance(config, Mapping) else None
    if not isinstance(receivers, list):
        return []
    notifies = {
        str(r.get("name")): any(k.endswith("_configs") and v for k, v in r.items())
        for r in receivers
        if isinstance(r, Mapping)
    }
    if any(notifies.get(n, True) for n in wanted):
        return []
    return sorted(wanted)


def _send_webhook(f: Findings, trial: _Trial, hook: _access.HttpRoute) -> bool:
    alert = {"status": "firing", **trial.alert(trial.ends())}
    payload = {
        "version": "4",
        "status": "firing",
        "receiver": "readiness",
        "groupKey": f"readiness:{trial.test_id}",
        "groupLabels": {TEST_LABEL: trial.test_id},
        "commonLabels": trial.labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": "",
        "alerts": [alert],
    }
    res = trial.session.post(hook.target, json=payload, headers=hook.headers, timeout=trial.timeout)
    f.details["webhook"] = {"url": hook.url, "status": res.status_code}
    if not res.ok:
        f.fail(
            f"the webhook refused the test notification: HTTP {res.status_code}",
            "Check webhook_url and the receiver's logs",
        )
        return False
    f.details["latency_s"] = round(trial.elapsed(), 3)
    f.details["confirmed_by"] = "webhook answer"
    return True


def _confirm_receiver(
    ctx: CheckContext, f: Findings, trial: _Trial, receiver: _access.HttpRoute
) -> None:
    headers = {str(k): str(v) for k, v in dict(trial.cfg.get("receiver_headers") or {}).items()}
    for value in headers.values():
        ctx.secret(value)
    headers = {**receiver.headers, **headers}

    def arrived() -> bool:
        got = trial.session.get(receiver.target, headers=headers, timeout=trial.timeout)
        return got.ok and trial.test_id in got.text

    if not trial.poll(arrived):
        f.fail(
            f"the test alert was not delivered to the receiver within {trial.budget:g}s "
            f"(thresholds.alert_delivery_max_seconds)",
            "Check the Alertmanager route for these labels, the receiver's URL and group_wait",
        )
        return
    f.details["latency_s"] = round(trial.elapsed(), 3)
    f.details["confirmed_by"] = "receiver"


def _resolve(f: Findings, trial: _Trial, am: _access.HttpRoute) -> None:
    """End the test alert now (best effort: a failure is a warning, the alert expires anyway)."""
    import requests

    try:
        res = trial.session.post(
            am.target.rstrip("/") + "/api/v2/alerts",
            json=[trial.alert(datetime.now(timezone.utc))],
            headers=am.headers,
            timeout=trial.timeout,
        )
        ok = res.ok
    except requests.RequestException:
        ok = False
    f.details["resolved"] = ok
    if not ok:
        f.warn(
            "the test alert could not be resolved; it expires by itself at endsAt",
            "Nothing to do unless the alert keeps firing",
        )


def _profile_keys() -> tuple[str, ...]:
    return (
        *(f"{NAME}.{k}" for k in DEFAULTS[NAME]),
        "thresholds.alert_delivery_max_seconds",
        "thresholds.alert_request_timeout_s",
        "service_access",
    )


register(
    NAME,
    title="Alert delivery",
    description=(
        "Opt-in: sends a uniquely-labelled, short-lived test alert to Alertmanager (or a "
        "webhook), checks it is active and not silenced or inhibited, confirms it reached the "
        "receiver, reports the delivery latency, and resolves it."
    ),
    categories=("integration",),
    suites=("production",),
    defaults=DEFAULTS,
    profile_keys=_profile_keys(),
    aliases=("alerting_test", "test_alert"),
    order=205,
    destinations=destinations,
    opt_in=True,
)(evaluate)
