"""``monitoring`` against a real Prometheus, a loopback Grafana stand-in and real files."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from readiness.checks.monitoring import validate_rules
from readiness.model import CheckResult, Status
from tests.services.apps import audit_local, one
from tests.services.cli import local_inventory, run_cli, validate_check
from tests.services.httpd import HttpServer
from tests.services.ports import closed_port
from tests.services.prometheus import PrometheusServer

pytestmark = pytest.mark.prometheus

RULES = """\
groups:
  - name: mahavishnu
    rules:
      - alert: MahavishnuDown
        expr: up{job="mahavishnu"} == 0
        for: 2m
      - alert: MahavishnuSlow
        expr: histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[5m])) > 2
      - record: job:up:sum
        expr: sum(up)
"""

DASHBOARD = json.dumps({"title": "Mahavishnu overview", "panels": [{"id": 1, "type": "stat"}]})

AppMaker = Callable[..., Path]


def files(**changes: str | None) -> dict[str, str]:
    base: dict[str, str | None] = {
        "config/alerts.yml": RULES,
        "dashboards/mahavishnu.json": DASHBOARD,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
def grafana(http_server: Callable[[], HttpServer]) -> HttpServer:
    srv = http_server()
    srv.route("/api/health", json={"commit": "abc", "database": "ok", "version": "10.4.0"})
    return srv


def audit(
    app_tree: AppMaker,
    prometheus: PrometheusServer,
    grafana: HttpServer,
    tree: dict[str, str] | None = None,
    **profile: Any,
) -> CheckResult:
    root = app_tree(files=files() if tree is None else tree)
    merged = {"prometheus_url": prometheus.url, "grafana_url": grafana.url, **profile}
    return one(audit_local(root, ["monitoring"], merged))


def test_monitoring_is_ready_when_everything_is_in_place(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    result = audit(app_tree, prometheus, grafana)
    assert result.status is Status.READY, result.message
    assert "2 alert rule(s), 1 dashboard(s)" in result.message
    targets = result.details["prometheus"]["targets"]
    assert [t["target"] for t in targets] == [f"mahavishnu/{prometheus.up_instance}"]
    assert targets[0]["health"] == "up"
    assert result.details["grafana"] == {
        "url": grafana.url,
        "healthy": True,
        "database": "ok",
        "version": "10.4.0",
    }
    assert result.details["alert_rules"]["records"] == 1
    assert result.details["dashboards"]["titles"] == ["Mahavishnu overview"]
    assert result.recommendations == ()


def test_prometheus_on_a_closed_port_makes_monitoring_not_ready(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = audit(app_tree, prometheus, grafana, prometheus_url=url)
    assert result.status is Status.NOT_READY
    assert f"Prometheus at {url} is not ready (connection refused)" in result.message
    assert result.recommendations[0].startswith("Start Prometheus server for metrics collection")
    assert result.details["prometheus"]["ready"] is False


def test_prometheus_answering_503_on_ready_is_not_ready(
    app_tree: AppMaker,
    prometheus: PrometheusServer,
    grafana: HttpServer,
    http_server: Callable[[], HttpServer],
) -> None:
    starting = http_server().route("/-/ready", status=503, body="Service Unavailable")
    result = audit(app_tree, prometheus, grafana, prometheus_url=starting.url)
    assert result.status is Status.NOT_READY
    assert "HTTP 503: Service Unavailable" in result.message


def test_app_target_that_is_down_is_named_with_its_last_error(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    result = audit(app_tree, prometheus, grafana, prometheus_job=prometheus.down_job)
    assert result.status is Status.NOT_READY
    problem = result.details["problems"][0]
    assert problem.startswith(
        f"Prometheus target {prometheus.down_job}/{prometheus.down_instance} is down: "
    )
    assert "connection refused" in problem
    assert any("/metrics so Prometheus can scrape it" in r for r in result.recommendations)


def test_job_without_active_targets_is_not_ready(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    result = audit(app_tree, prometheus, grafana, prometheus_job="billing")
    assert result.status is Status.NOT_READY
    assert "no active target for job 'billing'" in result.message
    assert any("Add a scrape job 'billing'" in r for r in result.recommendations)


def test_instance_match_picks_the_app_target_among_the_job(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    hit = audit(app_tree, prometheus, grafana, prometheus_instance=prometheus.up_instance)
    assert hit.status is Status.READY, hit.message
    miss = audit(app_tree, prometheus, grafana, prometheus_instance="127.0.0.9:1")
    assert miss.status is Status.NOT_READY
    assert "instance '127.0.0.9:1'" in miss.message


def test_unhealthy_grafana_degrades_monitoring(
    app_tree: AppMaker,
    prometheus: PrometheusServer,
    http_server: Callable[[], HttpServer],
) -> None:
    sick = http_server().route("/api/health", status=503, json={"database": "failing"})
    result = audit(app_tree, prometheus, sick)
    assert result.status is Status.DEGRADED
    assert "is unhealthy (HTTP 503, database 'failing')" in result.message
    assert result.recommendations[0].startswith("Start Grafana server for visualization")


def test_grafana_answering_200_without_database_ok_degrades(
    app_tree: AppMaker,
    prometheus: PrometheusServer,
    http_server: Callable[[], HttpServer],
) -> None:
    odd = http_server().route("/api/health", json={"database": "migrating"})
    result = audit(app_tree, prometheus, odd)
    assert result.status is Status.DEGRADED
    assert result.details["grafana"]["healthy"] is False


def test_slow_grafana_is_cut_off_at_the_timeout(
    app_tree: AppMaker,
    prometheus: PrometheusServer,
    http_server: Callable[[], HttpServer],
) -> None:
    slow = http_server().route("/api/health", json={"database": "ok"}, delay=10.0)
    result = audit(app_tree, prometheus, slow, thresholds={"monitoring_http_timeout_s": 1})
    assert result.status is Status.DEGRADED
    assert "not reachable (no answer within 1s)" in result.message
    assert result.duration_s < 1 + 2.0, result.duration_s
    assert len(slow.requests_to("/api/health")) == 1


def test_missing_rules_file_is_not_ready_with_the_original_recommendation(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    result = audit(app_tree, prometheus, grafana, tree=files(**{"config/alerts.yml": None}))
    assert result.status is Status.NOT_READY
    assert "alert rules file" in result.message
    assert "config/alerts.yml does not exist" in result.message
    assert "Create config/alerts.yml with alert rules" in result.recommendations


def test_invalid_rules_yaml_names_file_and_line(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    broken = "groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: [up\n"
    result = audit(app_tree, prometheus, grafana, tree=files(**{"config/alerts.yml": broken}))
    assert result.status is Status.NOT_READY
    problem = result.details["problems"][0]
    assert "/config/alerts.yml:" in problem
    assert "invalid YAML" in problem
    assert problem.split("alerts.yml:")[1].split(":")[0].isdigit()


def test_rules_without_alert_or_expr_are_named_with_their_lines(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    text = (
        "groups:\n"
        "  - name: app\n"
        "    rules:\n"
        "      - alert: NoExpr\n"
        "        for: 1m\n"
        "      - expr: up == 0\n"
        "      - alert: Fine\n"
        "        expr: up == 0\n"
    )
    result = audit(app_tree, prometheus, grafana, tree=files(**{"config/alerts.yml": text}))
    assert result.status is Status.NOT_READY
    problems = result.details["problems"]
    assert any(
        p.endswith("alerts.yml:4: group 'app' rule #1 (NoExpr) has no 'expr'") for p in problems
    )
    assert any(
        p.endswith("alerts.yml:6: group 'app' rule #2 has neither 'alert' nor 'record'")
        for p in problems
    )
    assert result.details["alert_rules"]["alerts"] == 2


def test_rules_file_that_is_not_a_rules_document_is_not_ready(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    result = audit(
        app_tree, prometheus, grafana, tree=files(**{"config/alerts.yml": "alerts:\n  - up\n"})
    )
    assert result.status is Status.NOT_READY
    assert "needs a top-level 'groups' list" in result.message


def test_broken_dashboard_json_degrades_monitoring(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    tree = files(**{"dashboards/broken.json": '{"title": "x", "panels": [}'})
    result = audit(app_tree, prometheus, grafana, tree=tree)
    assert result.status is Status.DEGRADED
    assert result.details["dashboards"]["invalid"] == ["broken.json"]
    assert result.details["dashboards"]["valid"] == 1
    assert "broken.json is not valid JSON" in result.message
    assert "Re-export dashboards/broken.json from Grafana" in result.recommendations


def test_missing_dashboards_degrade_monitoring(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    result = audit(
        app_tree, prometheus, grafana, tree=files(**{"dashboards/mahavishnu.json": None})
    )
    assert result.status is Status.DEGRADED
    assert "dashboards directory" in result.message
    assert "does not exist" in result.message


def test_dashboards_read_are_bounded_by_the_profile(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    tree = files(**{f"dashboards/team/d{i}.json": DASHBOARD for i in range(3)})
    result = audit(
        app_tree, prometheus, grafana, tree=tree, thresholds={"monitoring_max_dashboards": 2}
    )
    assert result.status is Status.READY, result.message
    dashboards = result.details["dashboards"]
    assert (dashboards["found"], dashboards["read"], dashboards["not_read"]) == (4, 2, 2)
    # READY said "2 dashboard(s)" as if they were all there were
    assert result.message.endswith(
        "2 dashboard(s) (2 more not read: thresholds.monitoring_max_dashboards)"
    ), result.message


def test_password_in_the_prometheus_url_never_reaches_the_report(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    url = f"http://scraper:Hunter2Hunter2@127.0.0.1:{closed_port()}"
    result = audit(app_tree, prometheus, grafana, prometheus_url=url)
    assert result.status is Status.NOT_READY
    assert "Hunter2Hunter2" not in json.dumps(result.to_dict())


def test_bundled_example_is_ready_when_prometheus_and_grafana_run(
    prometheus: PrometheusServer, grafana: HttpServer
) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "mahavishnu"
    profile = {"prometheus_url": prometheus.url, "grafana_url": grafana.url}
    result = one(audit_local(example, ["monitoring"], profile))
    assert result.status is Status.READY, result.message
    assert result.details["alert_rules"]["alerts"] == 3


def test_rules_validation_counts_groups_alerts_and_records() -> None:
    problems, counts = validate_rules(RULES, "alerts.yml")
    assert problems == []
    assert counts == {"groups": 1, "alerts": 2, "records": 1}


def test_rules_validation_refuses_a_group_without_rules() -> None:
    problems, _ = validate_rules("groups:\n  - name: empty\n", "a.yml")
    assert problems == ["a.yml:2: group 'empty' has no 'rules' list"]


def test_prometheus_asking_for_credentials_is_undetermined_not_down(
    app_tree: AppMaker, grafana: HttpServer, http_server: Callable[[], HttpServer], tmp_path: Path
) -> None:
    """Prometheus behind basic auth (web.config.yml protects /-/ready too) is running:
    validate said NOT_READY "Prometheus at … is not ready (HTTP 401: Unauthorized)" with
    "Start Prometheus server". Without credentials it cannot be told (DEGRADED, never
    READY); with them in prometheus_url the same server is asked and judged."""
    login = "Basic " + base64.b64encode(b"audit:Hunter2Hunter2").decode()
    guarded = http_server().route(
        "/-/ready",
        handler=lambda req: "Ready" if req.headers.get("Authorization") == login else (401, ""),
    )
    guarded.route("/api/v1/targets", status=401)
    root = app_tree(files=files())
    inv = tmp_path / "inv.yml"

    def validate(prometheus_url: str) -> dict[str, Any]:
        profile = {
            "app_root": str(root),
            "prometheus_url": prometheus_url,
            "grafana_url": grafana.url,
        }
        host = {"ansible_connection": "local", "readiness": profile}
        inv.write_text(json.dumps({"all": {"hosts": {"local": host}}}))
        res = run_cli("validate", "-i", str(inv), "-c", "monitoring", "--format", "json")
        assert "Hunter2Hunter2" not in res.stdout + res.stderr
        result: dict[str, Any] = json.loads(res.stdout)["hosts"][0]["checks"][0]
        return result

    result = validate(guarded.url)
    assert result["status"] == "degraded", result["message"]
    assert (
        "asks for credentials (HTTP 401), so whether it is ready cannot be told"
        in (result["message"])
    )
    assert result["details"]["prometheus"]["ready"] is None
    assert not any("Start Prometheus" in r for r in result["recommendations"])
    result = validate(guarded.url.replace("http://", "http://audit:Hunter2Hunter2@"))
    assert result["details"]["prometheus"]["ready"] is True


def test_alert_rules_spelled_yaml_are_the_alert_rules_file(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer, tmp_path: Path
) -> None:
    """config/alerts.yaml where the profile (and the seed) say config/alerts.yml: the same
    rules to Prometheus, but validate said NOT_READY "alert rules file …/config/alerts.yml
    does not exist". With neither spelling it still does."""
    root = app_tree(files=files(**{"config/alerts.yml": None, "config/alerts.yaml": RULES}))
    profile = {"app_root": str(root), "prometheus_url": prometheus.url, "grafana_url": grafana.url}
    inv = tmp_path / "inv.yml"
    host = {"ansible_connection": "local", "readiness": profile}
    inv.write_text(json.dumps({"all": {"hosts": {"local": host}}}))
    result = validate_check(inv, "monitoring")
    assert result["status"] == "ready", result["message"]
    rules = result["details"]["alert_rules"]
    assert (rules["file"], rules["alerts"]) == (str(root / "config" / "alerts.yaml"), 2)
    (root / "config" / "alerts.yaml").unlink()
    result = validate_check(inv, "monitoring")
    assert result["status"] == "not_ready"
    assert f"alert rules file {root / 'config' / 'alerts.yml'} does not exist" in result["message"]


def test_each_host_is_judged_on_its_own_target_of_a_fleet_wide_job(
    app_tree: AppMaker, grafana: HttpServer, http_server: Callable[[], HttpServer], tmp_path: Path
) -> None:
    """One scrape job for the whole fleet (job mahavishnu: web-1:8000 up, web-2:8000 down):
    validate of web-1 said NOT_READY "Prometheus target mahavishnu/web-2:8000 is down",
    blaming each host for every other one. A host is judged on the target that names it;
    web-2 is still NOT_READY, and a host no target names is judged on the whole job."""

    def target(instance: str, health: str) -> dict[str, Any]:
        return {
            "labels": {"job": "mahavishnu", "instance": instance},
            "scrapeUrl": f"http://{instance}/metrics",
            "health": health,
            "lastError": "" if health == "up" else "connection refused",
            "lastScrape": "2026-11-28T23:59:00Z",
        }

    targets = [target("web-1.prod.example:8000", "up"), target("web-2.prod.example:8000", "down")]
    prom = http_server().route("/-/ready", body="Prometheus Server is Ready.\n")
    prom.route("/api/v1/targets", json={"status": "success", "data": {"activeTargets": targets}})
    root = app_tree(files=files())
    profile = {"app_root": str(root), "prometheus_url": prom.url, "grafana_url": grafana.url}
    hosts = {
        name: {"ansible_connection": "local", "readiness": profile}
        for name in ("web-1", "web-2", "elsewhere")
    }
    inv = tmp_path / "inv.yml"
    inv.write_text(json.dumps({"all": {"hosts": hosts}}))
    argv = ["validate", "-i", str(inv), "--hosts", "all", "-c", "monitoring", "--format", "json"]
    res = run_cli(*argv)
    results = {h["host"]: h["checks"][0] for h in json.loads(res.stdout)["hosts"]}
    assert results["web-1"]["status"] == "ready", results["web-1"]["message"]
    assert [t["target"] for t in results["web-1"]["details"]["prometheus"]["targets"]] == [
        "mahavishnu/web-1.prod.example:8000"
    ]
    assert results["web-2"]["status"] == "not_ready"
    assert "target mahavishnu/web-2.prod.example:8000 is down" in results["web-2"]["message"]
    assert len(results["elsewhere"]["details"]["prometheus"]["targets"]) == 2


def test_grafana_behind_an_authenticating_proxy_is_undetermined_not_unhealthy(
    app_tree: AppMaker,
    prometheus: PrometheusServer,
    http_server: Callable[[], HttpServer],
    tmp_path: Path,
) -> None:
    """Grafana behind oauth2-proxy answers 401 on /api/health: validate said "Grafana … is
    unhealthy (HTTP 401, database None)" and sent the operator to its database
    connection. Its health cannot be told (still DEGRADED, as "cannot tell")."""
    proxied = http_server().route("/api/health", status=401, body="Unauthorized")
    root = app_tree(files=files())
    profile = {"app_root": str(root), "prometheus_url": prometheus.url, "grafana_url": proxied.url}
    inv = tmp_path / "inv.yml"
    host = {"ansible_connection": "local", "readiness": profile}
    inv.write_text(json.dumps({"all": {"hosts": {"local": host}}}))
    result = validate_check(inv, "monitoring")
    assert result["status"] == "degraded", result["message"]
    assert (
        "asks for credentials (HTTP 401), so whether it is healthy cannot be told"
        in (result["message"])
    )
    assert "unhealthy" not in result["message"]
    assert result["details"]["grafana"]["healthy"] is None
    assert not any("database connection" in r for r in result["recommendations"])


def test_a_rules_file_prometheus_refuses_is_not_ready_through_the_command_line(
    app_tree: AppMaker, prometheus: PrometheusServer, grafana: HttpServer, tmp_path: Path
) -> None:
    """`severity: page` beside `expr:` (instead of under `labels:`) is the usual mistake:
    Prometheus refuses to load the whole file, so none of its alerts ever fires. The check
    said READY ("2 alert rule(s)"); a real `readiness validate` now says NOT_READY and
    names the line. (tests/test_prometheus_rules.py compares with promtool.)"""
    text = RULES.replace("        for: 2m\n", "        for: 2m\n        severity: page\n")
    root = app_tree(files=files(**{"config/alerts.yml": text}))
    inventory = local_inventory(
        tmp_path / "inv.yml", root, prometheus_url=prometheus.url, grafana_url=grafana.url
    )
    result = validate_check(inventory, "monitoring")
    assert result["status"] == "not_ready", result["message"]
    assert any(
        p.endswith("alerts.yml:4: group 'mahavishnu' rule #1 (MahavishnuDown) has unknown key "
                   "'severity' (Prometheus refuses the whole file)")
        for p in result["details"]["problems"]
    ), result["details"]  # fmt: skip
