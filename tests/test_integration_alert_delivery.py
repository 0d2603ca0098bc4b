"""``alert_delivery`` against a real Alertmanager on loopback and a recording webhook receiver."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from readiness.checks.alert_delivery import TEST_LABEL
from readiness.model import CheckResult, Status
from tests.services.alertmanager import Alertmanager
from tests.services.apps import audit_local, one, write_app
from tests.services.httpd import HttpServer

CHECK = "alert_delivery"


def run(tmp_path: Path, budget: float = 15, **section: Any) -> CheckResult:
    app = write_app(tmp_path / "app")
    profile = {
        CHECK: {"enabled": True, "poll_interval_s": 0.1, **section},
        "thresholds": {"alert_delivery_max_seconds": budget},
    }
    return one(audit_local(app, CHECK, profile))


def delivered_ids(am: Alertmanager) -> list[str]:
    return [
        a["labels"][TEST_LABEL]
        for r in am.receiver.requests_to("/hook", "POST")
        for a in r.json()["alerts"]
    ]


def test_delivered_alert_is_ready_with_its_latency(
    tmp_path: Path, alertmanager: Alertmanager
) -> None:
    result = run(
        tmp_path,
        alertmanager_url=alertmanager.url,
        receiver_query_url=alertmanager.received_url,
    )
    assert result.status is Status.READY, result.message
    d = result.details
    assert d["confirmed_by"] == "receiver"
    assert 0 < d["latency_s"] < 15
    assert f"in {d['latency_s']}s" in result.message
    assert d["test_id"] in delivered_ids(alertmanager)
    assert d["alertmanager"]["state"] == "active"
    assert d["resolved"] is True
    # Resolved at the end: Alertmanager no longer lists it as active.
    listed = alertmanager.alerts(**{TEST_LABEL: d["test_id"]})
    assert all(a["status"]["state"] != "active" for a in listed)


def test_silenced_test_alert_is_not_ready(tmp_path: Path, alertmanager: Alertmanager) -> None:
    silence = alertmanager.silence("alertname", "ReadinessTestAlert")
    result = run(
        tmp_path,
        alertmanager_url=alertmanager.url,
        receiver_query_url=alertmanager.received_url,
    )
    assert result.status is Status.NOT_READY
    assert "suppressed" in result.message and silence in result.message
    assert result.details["alertmanager"]["silenced_by"] == [silence]
    assert delivered_ids(alertmanager) == []


def test_alert_that_never_reaches_the_receiver_is_not_ready(
    tmp_path: Path, alertmanager: Alertmanager, http_server: Callable[[], HttpServer]
) -> None:
    elsewhere = http_server()
    elsewhere.route("/received", json=[])  # a receiver that never gets anything
    result = run(
        tmp_path,
        budget=2,
        alertmanager_url=alertmanager.url,
        receiver_query_url=f"{elsewhere.url}/received",
    )
    assert result.status is Status.NOT_READY
    assert "not delivered to the receiver within 2s" in result.message
    assert len(elsewhere.requests_to("/received")) >= 2


def test_without_a_receiver_an_active_alert_is_confirmed_by_alertmanager(
    tmp_path: Path, alertmanager: Alertmanager
) -> None:
    result = run(tmp_path, alertmanager_url=alertmanager.url)
    assert result.status is Status.READY
    assert result.details["confirmed_by"] == "alertmanager"
    assert "Alertmanager (active" in result.message


def test_webhook_mode_posts_a_notification_and_confirms_via_the_receiver(
    tmp_path: Path, http_server: Callable[[], HttpServer]
) -> None:
    hook = http_server()
    hook.route("/hook", method="POST", json={"ok": True})
    hook.route(
        "/received", handler=lambda req: [r.json() for r in hook.requests_to("/hook", "POST")]
    )
    result = run(
        tmp_path, webhook_url=f"{hook.url}/hook", receiver_query_url=f"{hook.url}/received"
    )
    assert result.status is Status.READY
    (sent,) = hook.requests_to("/hook", "POST")
    assert sent.json()["alerts"][0]["labels"][TEST_LABEL] == result.details["test_id"]


def test_unreachable_alertmanager_is_not_ready(tmp_path: Path) -> None:
    from tests.services.ports import closed_port

    result = run(tmp_path, alertmanager_url=f"http://127.0.0.1:{closed_port()}")
    assert result.status is Status.NOT_READY
    assert "ConnectionError" in result.message


def test_alert_delivery_is_skipped_until_enabled(tmp_path: Path) -> None:
    result = one(audit_local(write_app(tmp_path / "app"), CHECK))
    assert result.status is Status.SKIPPED
    assert "alert_delivery.enabled" in result.message


def test_an_alert_routed_to_a_receiver_without_integrations_is_not_delivered(
    tmp_path: Path,
) -> None:
    """kube-prometheus routes `severity: none` (the test alert's default) to a "null"
    receiver that notifies nobody. Without receiver_query_url the check said READY
    "confirmed by Alertmanager (active, not silenced or inhibited)"; real alerts routed
    the same way reach no one. A route to the webhook is still READY."""
    from tests.services.alertmanager import start_alertmanager
    from tests.services.cli import local_inventory, validate_check

    def null_route(config: dict[str, Any]) -> dict[str, Any]:
        config["route"]["routes"] = [{"receiver": "null", "matchers": ['severity="none"']}]
        config["receivers"].append({"name": "null"})
        return config

    app = write_app(tmp_path / "app")
    with start_alertmanager(null_route) as am:
        section = {"enabled": True, "poll_interval_s": 0.1, "alertmanager_url": am.url}
        inventory = local_inventory(tmp_path / "inv.yml", app, **{CHECK: section})
        result = validate_check(inventory, CHECK)
        assert result["status"] == "not_ready", result["message"]
        assert "routed only to receiver(s) null, which send no notification" in result["message"]
        paging = {**section, "labels": {"alertname": "ReadinessTestAlert", "severity": "page"}}
        inventory = local_inventory(tmp_path / "inv.yml", app, **{CHECK: paging})
        result = validate_check(inventory, CHECK)
        assert result["status"] == "ready", result["message"]
