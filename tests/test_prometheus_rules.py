"""The shipped alerting rules (examples/prometheus/readiness-rules.yml): valid for
`promtool check rules`, and evaluated by `promtool test rules` on the series a real
`readiness validate --format prometheus` writes (and on watch's own counters)."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from readiness.checks.monitoring import validate_rules
from readiness.store.watch import WatchState
from tests.services.apps import write_app
from tests.services.ports import closed_port
from tests.store.test_store_cli import READINESS

RULES = Path(__file__).resolve().parents[1] / "examples" / "prometheus" / "readiness-rules.yml"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:  # CI installs prometheus (.ci/run): a missing consumer fails
        pytest.fail("promtool not found: see the apt line of .ci/run")
    return path


def _series(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}" if inner else name


def test_the_shipped_rules_fire_on_what_readiness_writes(tmp_path: Path) -> None:
    check = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    app = write_app(tmp_path / "app", env={"MAHAVISHNU_AUTH__SECRET": None})
    inv = tmp_path / "inv.yml"
    host = {"ansible_connection": "local", "readiness": {"app_root": str(app)}}
    down = {"ansible_host": "127.0.0.1", "ansible_port": closed_port()}  # web2: unreachable
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"web1": host, "web2": down}}}))
    run = subprocess.run(
        [READINESS, "validate", "-i", str(inv), "-H", "all", "-c", "environment,configuration",
         "--format", "prometheus", "--store", "none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        check=False,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    written = {
        s.name: s
        for f in text_string_to_metric_families(run.stdout + "\n")
        for s in f.samples
        if s.name != "readiness_check_status"
    }
    statuses = [
        s
        for f in text_string_to_metric_families(run.stdout + "\n")
        for s in f.samples
        if s.name == "readiness_check_status"
    ]
    assert {(s.labels["host"], s.labels["check"], s.labels["status"]) for s in statuses} == {
        ("web1", "environment", "not_ready"),
        ("web1", "configuration", "not_ready"),
        ("web2", "environment", "unreachable"),
        ("web2", "configuration", "unreachable"),
    }
    up = [
        s
        for f in text_string_to_metric_families(run.stdout + "\n")
        for s in f.samples
        if s.name == "readiness_host_up"
    ]
    assert {(s.labels["host"], s.value) for s in up} == {("web1", 1.0), ("web2", 0.0)}
    watch_names = {
        s.name
        for f in text_string_to_metric_families(WatchState().metrics().decode())
        for s in f.samples
    }
    # every series the rules read is one readiness writes
    assert "readiness_last_run_timestamp_seconds" in written
    assert {"readiness_last_success_timestamp_seconds", "readiness_runs_failed_total"} <= (
        watch_names
    )
    inputs = [
        {"series": _series(s.name, s.labels), "values": f"{s.value:g}x180"}
        for s in [*statuses, *up]
    ]
    inputs += [  # written at time 0 and never again; watch: a success at 0, runs failing
        {"series": "readiness_last_run_timestamp_seconds", "values": "0x180"},
        {"series": "readiness_last_success_timestamp_seconds", "values": "0x180"},
        {"series": "readiness_runs_failed_total", "values": "0 0 0 1 2 3 3 3 3 3"},
    ]
    failing = [
        {"exp_labels": {**s.labels, "severity": "critical"},
         "exp_annotations": {
             "summary": f"web1 / {s.labels['check']}: not_ready",
             "description": f"readiness reports {s.labels['check']} on web1 as not_ready; "
             "`readiness show latest` has the finding and what to do.",
         }}
        for s in statuses
        if s.labels["host"] == "web1"  # web2's checks: not one alert each, but the one below
    ]  # fmt: skip
    not_audited = [
        {"exp_labels": {"host": "web2", "severity": "critical"},
         "exp_annotations": {
             "summary": "web2: not audited",
             "description": "readiness could not audit web2 (unreachable, or the run stopped "
             "before it); `readiness show latest` has the reason.",
         }}
    ]  # fmt: skip
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": inputs,
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": "ReadinessCheckFailing", "exp_alerts": []},
                    {"eval_time": "20m", "alertname": "ReadinessCheckFailing",
                     "exp_alerts": failing},
                    {"eval_time": "10m", "alertname": "ReadinessHostNotAudited",
                     "exp_alerts": []},
                    {"eval_time": "20m", "alertname": "ReadinessHostNotAudited",
                     "exp_alerts": not_audited},
                    {"eval_time": "8m", "alertname": "ReadinessWatchRunsFailing",
                     "exp_alerts": [{"exp_labels": {"severity": "warning"}, "exp_annotations": {
                         "summary": "readiness watch: runs failing",
                         "description": "readiness watch on  had 3 failed run(s) in 30 "
                         "minutes; its stderr says why."}}]},
                    {"eval_time": "1h", "alertname": "ReadinessReportStale", "exp_alerts": []},
                    {"eval_time": "150m", "alertname": "ReadinessReportStale",
                     "exp_alerts": [{"exp_labels": {"severity": "warning"}, "exp_annotations": {
                         "summary": "no readiness report for 2h 30m 0s",
                         "description": "The readiness textfile on  was last written "
                         "2h 30m 0s ago."}}]},
                    {"eval_time": "150m", "alertname": "ReadinessWatchNoSuccess",
                     "exp_alerts": [{"exp_labels": {"severity": "warning"}, "exp_annotations": {
                         "summary": "readiness watch: no passing run for 2h 30m 0s",
                         "description": "readiness watch on  last had a run with nothing "
                         "blocking 2h 30m 0s ago."}}]},
                ],
            }
        ],
    }  # fmt: skip
    test_file = tmp_path / "rules_test.yml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    evaluated = subprocess.run(
        [_promtool(), "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    assert "SUCCESS" in evaluated.stdout


# --- the monitoring check's rules validation against promtool ----------------------------------


def _generated_rule(r: random.Random, i: int) -> list[str]:
    lines = []
    kind = r.choice(["alert", "alert", "record", "both"])
    if kind in ("alert", "both"):
        lines.append(f"      - alert: Rule{i}")
    else:
        lines.append("      - record: " + r.choice(["job:up:sum", "up{job='x'}"]))
    if kind == "both":
        lines.append("        record: job:up:sum")
    lines.append("        expr: " + r.choice(["up == 0", "sum(up)"]))
    for key in ("for", "keep_firing_for"):
        if r.random() < 0.25 and (key == "for" or r.random() < 0.5):
            value = r.choice(["5m", "0s", "1h", "10 minutes", "5", "2d"])
            lines.append(f"        {key}: {value}")
    if r.random() < 0.25:
        lines.append(
            r.choice(["        labels:\n          severity: page", "        labels: [page]"])
        )
    if r.random() < 0.2:
        lines.append("        annotations:\n          summary: '{{ $labels.job }} down'")
    if r.random() < 0.15:
        lines.append("        severity: page")
    return lines


def _generated_rules(r: random.Random) -> str:
    """A rules file with a few of the structural mistakes Prometheus refuses a whole file
    for (its expressions, templates and label names are valid: PromQL and Go templates are
    not parsed by readiness; label-name rules differ between Prometheus 2 and 3)."""
    lines = ["groups:"]
    for _ in range(r.randint(1, 3)):
        lines.append(f"  - name: {r.choice(['app', 'app', 'infra', 'db'])}")
        if r.random() < 0.2:
            lines.append(f"    interval: {r.choice(['1m', '30s', '1h30m', '0', 'often', '5 m'])}")
        if r.random() < 0.15:
            lines.append(f"    limit: {r.choice(['10', '0', 'ten'])}")
        if r.random() < 0.1:
            lines.append("    owner: sre")
        lines.append("    rules:")
        for i in range(r.randint(1, 3)):
            lines += _generated_rule(r, i)
    if r.random() < 0.1:
        lines.append("version: 2")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("chunk", range(2))
def test_rules_files_are_judged_as_promtool_judges_them(tmp_path: Path, chunk: int) -> None:
    """80 seeded rules files: the monitoring check finds a problem exactly when
    ``promtool check rules`` refuses the file. Before, `severity:` beside `expr:`, a rule
    with both 'alert' and 'record', a repeated group name, a bad duration ('10 minutes'),
    `for:` on a recording rule or labels given as a list were judged valid (READY), while
    Prometheus refuses to load the whole file and no alert of it ever fires."""
    path = tmp_path / "alerts.yml"
    differ = []
    for seed in range(chunk * 40, chunk * 40 + 40):
        text = _generated_rules(random.Random(seed))
        path.write_text(text, encoding="utf-8")
        done = subprocess.run(
            [_promtool(), "check", "rules", str(path)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        problems, _ = validate_rules(text, str(path))
        if (done.returncode == 0) != (not problems):
            differ.append(f"seed {seed}: promtool {done.returncode}, readiness {problems}\n{text}")
    assert not differ, "\n".join(differ[:3])
