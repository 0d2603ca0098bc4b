"""The machine and people formats (junit, nagios, prometheus, sarif, tap, html), each read
back by a real consumer, plus a test parametrised from the renderer table so every
registered format renders a fleet with every Status and hostile host text."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import yaml
from junitparser import Error, Failure, JUnitXml, Skipped
from prometheus_client.parser import text_string_to_metric_families
from sarif_pydantic import Sarif

from readiness.gates import GateReport, GateRow, QualityGate
from readiness.model import FleetReport, HostReport, Status
from readiness.report import EXTENSIONS, FORMATS, render, save
from readiness.report._clean import one_line, xml_text
from readiness.report.nagios import NagiosState, nagios_state

from .report_fixtures import CHECKS, HOSTILE, HOSTILE_HOST, TS, every_status_fleet, result
from .services.daemon import background_service, free_port
from .services.httpd import start_http_server

DATA = Path(__file__).parent / "data"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # CI installs it (.ci/run): a missing consumer fails, never skips
        pytest.fail(f"{name} not found: see the apt line of .ci/run")
    return path


# --- every registered format -------------------------------------------------------------


def _hosts_named(out: str, report: FleetReport) -> None:
    if len(report.hosts) == 1 and report.hosts[0].host == "local":
        assert report.check_names[0] in out.lower()  # one local host is not named in text
        return
    for host in report.hosts:
        if host.host != HOSTILE_HOST:
            assert host.host in out


def _json(out: str, report: FleetReport) -> None:
    assert FleetReport.from_dict(json.loads(out)).to_dict() == report.to_dict()


def _no_controls(out: str) -> None:
    """The formats of this module drop NUL and ESC from host text (text, table and
    markdown escaping belongs to the terminal renderers' own tests)."""
    assert "\x00" not in out and "\x1b" not in out


def _junit(out: str, report: FleetReport) -> None:
    _no_controls(out)
    assert len(JUnitXml.fromstring(out.encode())) == len(report.hosts)


NAGIOS_LINE = re.compile(
    r"^READINESS (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+ \| "
    r"(?:[a-z_]+=\d+;\d*;\d*;0;\d+)(?: [a-z_]+=\d+;\d*;\d*;0;\d+)*$"
)


def _nagios(out: str, report: FleetReport) -> None:
    _no_controls(out)
    lines = out.split("\n")
    assert NAGIOS_LINE.match(lines[0]), lines[0]
    assert all("|" not in line for line in lines[1:])  # no host can forge more perfdata


def _prometheus(out: str, report: FleetReport) -> None:
    _no_controls(out)
    families = {f.name: f for f in text_string_to_metric_families(out + "\n")}
    series = {
        (s.labels["host"], s.labels["check"], s.labels["status"])
        for s in families["readiness_check_status"].samples
    }
    assert series == {(r.host, r.check_name, r.status.value) for r in report.results}


# A SARIF embedded link (§3.11.6): `[text](N)` or `[text](URI)`, which viewers (GitHub code
# scanning among them) show as a link; a literal bracket is written `\[`.
EMBEDDED_LINK = re.compile(r"(?<!\\)\[(?:[^\]\\]|\\.)*(?<!\\)\]\(")


def _sarif(out: str, report: FleetReport) -> None:
    doc = json.loads(out)
    Sarif.model_validate(doc)  # the SARIF 2.1.0 object model: types and enums
    _known_sarif_keys(doc)
    findings = [r for r in report.results if r.status not in (Status.READY, Status.SKIPPED)]
    assert len(doc["runs"][0]["results"]) == len(findings)
    run = doc["runs"][0]
    texts = [r["message"]["text"] for r in run["results"]]
    texts += [n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"]]
    links = [t for t in texts if EMBEDDED_LINK.search(t)]
    assert not links, f"a host's text is an embedded link: {links[0]!r}"


def _markdown(out: str, report: FleetReport) -> None:
    """As GitHub renders a comment: no link, image or HTML; each table row whole."""
    from .cli.test_markdown_github import _on_github

    _hosts_named(out, report)
    page = _on_github(out)
    assert not {"a", "img", "script"} & page.tags, page.tags
    assert len(set(page.rows)) == 1, page.rows


def _tap(out: str, report: FleetReport) -> None:
    _no_controls(out)
    points = [line for line in out.split("\n") if re.match(r"(not )?ok \d+ - ", line)]
    assert out.startswith("TAP version 13\n1..") and len(points) == int(out.split("\n")[1][3:])


def _html(out: str, report: FleetReport) -> None:
    from .test_report_html import _Dom

    dom = _Dom()
    dom.feed(out)
    assert "img" not in dom.tags and dom.tags.count("script") == 2
    assert len(dom.rows) == len(report.hosts)
    assert all(len(cells) == len(report.check_names) for _, cells in dom.rows)


# One consumer-side check per format: a format added to FORMATS without one fails here.
READ_BACK: dict[str, Callable[[str, FleetReport], None]] = {
    "text": _hosts_named,
    "table": _hosts_named,
    "markdown": _markdown,
    "json": _json,
    "junit": _junit,
    "nagios": _nagios,
    "prometheus": _prometheus,
    "sarif": _sarif,
    "tap": _tap,
    "html": _html,
}


def test_every_registered_format_has_a_read_back_check_and_an_extension() -> None:
    assert set(READ_BACK) == set(FORMATS)
    assert set(EXTENSIONS) == set(FORMATS)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_renders_every_status_and_hostile_text(fmt: str) -> None:
    report = every_status_fleet()
    assert {r.status for r in report.results} == set(Status)
    out = render(report, fmt)
    assert out == render(report, fmt)  # deterministic: several sinks give identical bytes
    READ_BACK[fmt](out, report)


# --- JUnit --------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("fail_on", [Status.NOT_READY, Status.DEGRADED])
def test_junit_validates_against_the_schema(tmp_path: Path, fail_on: Status) -> None:
    path = _write(tmp_path, "r.xml", render(every_status_fleet(), "junit", fail_on=fail_on))
    res = subprocess.run(
        [_tool("xmllint"), "--noout", "--schema", str(DATA / "junit.xsd"), str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert "validates" in res.stderr


def _cases(path: Path) -> dict[tuple[str, str], list[object]]:
    xml = JUnitXml.fromfile(str(path))
    return {(suite.name, case.name): list(case.result) for suite in xml for case in suite}


def test_junit_read_back_by_junitparser_maps_each_status(tmp_path: Path) -> None:
    report = every_status_fleet()
    cases = _cases(_write(tmp_path, "r.xml", render(report, "junit")))
    assert len(cases) == len(CHECKS) * (len(Status) + 1) + 1  # + one row for 'gone'
    expected = {
        Status.SKIPPED: Skipped,
        Status.NOT_READY: Failure,
        Status.ERROR: Error,
        Status.UNREACHABLE: Error,
        Status.INTERRUPTED: Error,
    }
    for status in Status:
        for check in CHECKS:
            found = cases[(f"h-{status.value}", check)]
            if status in expected:
                assert [type(r) for r in found] == [expected[status]], (status, found)
            else:  # READY, and DEGRADED while it does not fail the run, pass
                assert found == [], (status, found)
    failure = cases[("h-not_ready", "environment")][0]
    assert isinstance(failure, Failure)
    assert failure.type == "not_ready"
    assert failure.text is not None and "fix environment on h-not_ready" in failure.text
    assert [type(r) for r in cases[("gone", "connection")]] == [Error]


def test_junit_degraded_is_a_failure_when_it_fails_the_run(tmp_path: Path) -> None:
    report = every_status_fleet()
    strict = _cases(_write(tmp_path, "a.xml", render(report, "junit", fail_on=Status.DEGRADED)))
    assert [type(r) for r in strict[("h-degraded", "environment")]] == [Failure]
    explicit = _cases(_write(tmp_path, "b.xml", render(report, "junit", degraded="failure")))
    assert [type(r) for r in explicit[("h-degraded", "environment")]] == [Failure]
    lenient = _cases(_write(tmp_path, "c.xml", render(report, "junit", degraded="pass")))
    assert lenient[("h-degraded", "environment")] == []


def test_junit_hostile_messages_survive_as_text(tmp_path: Path) -> None:
    out = render(every_status_fleet(), "junit")
    assert "<script>" not in out and "<img" not in out and "\x1b" not in out
    cases = _cases(_write(tmp_path, "r.xml", out))
    failure = cases[(HOSTILE_HOST, "environment")][0]
    assert isinstance(failure, Failure)
    assert failure.message == xml_text(one_line(HOSTILE))
    assert "]]>" in failure.message and "<script>alert(1)</script>" in failure.message
    assert failure.text is not None and "<img src=x onerror=" in failure.text
    assert "second line" in failure.text  # the body keeps the message's lines


def test_junit_durations_and_counts() -> None:
    xml = JUnitXml.fromstring(render(every_status_fleet(), "junit").encode())
    suite = next(s for s in xml if s.name == "h-not_ready")
    assert suite.tests == len(CHECKS) and suite.failures == len(CHECKS)
    assert suite.time == 1.5
    assert all(case.time == 0.25 for case in suite)


# --- Nagios ---------------------------------------------------------------------------


def _fleet(*statuses: Status, **kw: object) -> FleetReport:
    hosts = tuple(
        HostReport(f"n{i}", tuple(result(f"n{i}", c, s) for c in CHECKS))
        for i, s in enumerate(statuses)
    )
    return FleetReport(hosts, generated_at=TS, checks=CHECKS, **kw)  # type: ignore[arg-type]


def _gates(critical: bool, min_pass_rate: float = 100.0) -> GateReport:
    gate = QualityGate("security", "security", min_pass_rate, critical=critical)
    return GateReport((GateRow(gate, "fleet", passed=1, failed=1),))


@pytest.mark.parametrize(
    ("report", "fail_on", "state", "text"),
    [
        (_fleet(Status.READY, Status.READY), Status.NOT_READY, NagiosState.OK, "2/2 hosts ready"),
        (
            _fleet(Status.READY, Status.SKIPPED),
            Status.NOT_READY,
            NagiosState.OK,
            "1/2 hosts ready, 1 skipped",
        ),
        (
            _fleet(Status.READY, Status.DEGRADED),
            Status.NOT_READY,
            NagiosState.WARNING,
            "1/2 hosts degraded: n1 (environment, configuration, database_migration)",
        ),
        (
            _fleet(Status.READY, Status.DEGRADED),
            Status.DEGRADED,
            NagiosState.CRITICAL,
            "1/2 hosts not ready: n1 (environment, configuration, database_migration)",
        ),
        (
            _fleet(Status.NOT_READY, Status.DEGRADED, Status.UNREACHABLE),
            Status.NOT_READY,
            NagiosState.CRITICAL,
            "2/3 hosts not ready: n0 (environment, configuration, database_migration), "
            "n2 (unreachable)",
        ),
        (_fleet(Status.ERROR), Status.NOT_READY, NagiosState.CRITICAL, "1/1 hosts not ready"),
        (
            _fleet(Status.READY, Status.INTERRUPTED, interrupted=True, interrupted_by="SIGTERM"),
            Status.NOT_READY,
            NagiosState.UNKNOWN,
            "run interrupted (SIGTERM): 1/2 hosts audited",
        ),
        (_fleet(), Status.NOT_READY, NagiosState.UNKNOWN, "no host selected"),
        (
            _fleet(Status.READY, gates=_gates(critical=False)),
            Status.NOT_READY,
            NagiosState.WARNING,
            "quality gates warn, 1/1 hosts ready",
        ),
        (  # a non-critical gate's WARNING: the NOT_READY host is still called not ready
            _fleet(Status.READY, Status.NOT_READY, gates=_gates(critical=False)),
            Status.NOT_READY,
            NagiosState.WARNING,
            "quality gates warn, 1/2 hosts not ready: n1 (environment, configuration, "
            "database_migration)",
        ),
        (  # a 50 % gate passes over a NOT_READY host: never OK (it was OK, a DEGRADED WARNING)
            _fleet(Status.DEGRADED, Status.NOT_READY, gates=_gates(True, min_pass_rate=50)),
            Status.NOT_READY,
            NagiosState.WARNING,
            "quality gates pass, 1/2 hosts not ready: n1 (environment, configuration, "
            "database_migration)",
        ),
        (
            _fleet(Status.READY, Status.UNREACHABLE, gates=_gates(True, min_pass_rate=50)),
            Status.NOT_READY,
            NagiosState.WARNING,
            "quality gates pass, 1/2 hosts not ready: n1 (unreachable)",
        ),
        (
            _fleet(Status.READY, gates=_gates(critical=True)),
            Status.NOT_READY,
            NagiosState.CRITICAL,
            "quality gates fail, 1/1 hosts ready",
        ),
    ],
)
def test_nagios_state_and_line_for_each_fleet_state(
    report: FleetReport, fail_on: Status, state: NagiosState, text: str
) -> None:
    assert nagios_state(report, fail_on) is state
    first = render(report, "nagios", fail_on=fail_on).split("\n")[0]
    assert first.startswith(f"READINESS {state.name} - {text}"), first
    _nagios(first, report)
    n = len(report.hosts)
    assert f"ready={sum(h.status is Status.READY for h in report.hosts)};;;0;{n}" in first


def test_nagios_perfdata_thresholds_follow_fail_on() -> None:
    report = _fleet(Status.READY, Status.DEGRADED)
    assert " degraded=1;0;;0;2 " in render(report, "nagios")  # WARNING above 0
    assert " degraded=1;;0;0;2 " in render(report, "nagios", fail_on=Status.DEGRADED)
    assert " not_ready=0;;0;0;2 " in render(report, "nagios")


def test_nagios_names_at_most_five_hosts_and_lists_problems_below() -> None:
    report = _fleet(*([Status.NOT_READY] * 8))
    lines = render(report, "nagios").split("\n")
    assert lines[0].count("(environment") == 5 and ", … 3 more |" in lines[0]
    assert len(lines) == 1 + 8 * len(CHECKS)
    assert lines[1] == "n0: NOT_READY environment - environment is not_ready"


def test_nagios_hostile_message_stays_on_its_line() -> None:
    lines = render(every_status_fleet(), "nagios").split("\n")
    hostile = [line for line in lines if line.startswith(HOSTILE_HOST)]
    assert hostile and all("<script>" in line and "| perf" not in line for line in hostile)
    assert not any(line.startswith("second line") for line in lines)


# --- Prometheus -----------------------------------------------------------------------


def test_prometheus_text_passes_promtool(tmp_path: Path) -> None:
    path = save(render(every_status_fleet(), "prometheus"), tmp_path / "readiness.prom")
    with path.open("rb") as fh:
        res = subprocess.run(
            [_tool("promtool"), "check", "metrics"],
            stdin=fh,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout + res.stderr == ""  # not even a lint warning


def test_prometheus_metrics_values() -> None:
    report = every_status_fleet()
    families = {f.name: f for f in text_string_to_metric_families(render(report, "prometheus"))}
    up = {s.labels["host"]: s.value for s in families["readiness_host_up"].samples}
    assert up[HOSTILE_HOST] == 1.0 and up["h-ready"] == 1.0
    assert up["h-unreachable"] == 0.0 and up["h-interrupted"] == 0.0 and up["gone"] == 0.0
    stamp = families["readiness_last_run_timestamp_seconds"].samples[0].value
    assert stamp == TS.timestamp()
    assert families["readiness_run_duration_seconds"].samples[0].value == 1.5
    assert families["readiness_run_exit_code"].samples[0].value == 1.0


def _query(url: str, promql: str) -> list[dict[str, object]]:
    res = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=3)
    res.raise_for_status()
    return list(res.json()["data"]["result"])


def test_a_real_prometheus_scrapes_the_textfile(tmp_path: Path) -> None:
    """node-exporter's textfile collector serves the .prom file as it is; a loopback HTTP
    server does the same here, read from disk at every scrape."""
    prometheus_bin = _tool("prometheus")
    report = every_status_fleet()
    textfile = save(render(report, "prometheus"), tmp_path / "textfile" / "readiness.prom")
    with start_http_server() as server:
        server.route(
            "/metrics",
            handler=lambda _req: textfile.read_text(encoding="utf-8"),
            content_type="text/plain; version=0.0.4",
        )
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: textfile\n    static_configs: [{{targets: ['127.0.0.1:{server.port}']}}]\n"
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"

        def scraped() -> bool:
            try:
                return bool(_query(url, "readiness_host_up"))
            except (requests.RequestException, ValueError, KeyError):
                return False

        with background_service(
            "prometheus-textfile",
            [
                prometheus_bin,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            tmp_path,
            scraped,
            wait_s=30.0,
            poll_s=0.2,
        ):
            rows = _query(url, "readiness_check_status")
            got = {
                (m["host"], m["check"], m["status"])
                for m in (row["metric"] for row in rows)
                if isinstance(m, dict)
            }
            assert got == {(r.host, r.check_name, r.status.value) for r in report.results}
            hostile = _query(url, 'readiness_host_up{host="web\\"7\\\\x"}')
            assert len(hostile) == 1
            not_ready = _query(url, 'count(readiness_check_status{status="not_ready"})')
            assert not_ready[0]["value"][1] == str(  # type: ignore[index]
                sum(r.status is Status.NOT_READY for r in report.results)
            )


def test_prometheus_save_is_atomic_and_readable_by_the_collector(tmp_path: Path) -> None:
    target = tmp_path / "readiness.prom"
    target.write_text("old\n")
    save(render(every_status_fleet(), "prometheus"), target, mode=0o644)
    assert target.read_text().startswith("# HELP readiness_check_status")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["readiness.prom"]  # no temp left
    assert target.stat().st_mode & 0o777 == 0o644


# --- SARIF ------------------------------------------------------------------------------

# Property names of the SARIF 2.1.0 objects this renderer writes (OASIS spec §3): a typo'd
# key would be silently ignored by consumers, so the test refuses any other key.
SARIF_KEYS = {
    "$schema", "version", "runs", "tool", "driver", "name", "rules", "id",
    "shortDescription", "fullDescription", "text", "properties", "invocations",
    "executionSuccessful", "endTimeUtc", "exitCode", "toolExecutionNotifications", "level",
    "message", "results", "ruleId", "ruleIndex", "kind", "locations", "logicalLocations",
    "fullyQualifiedName", "physicalLocation", "artifactLocation", "uri", "region",
    "startLine", "partialFingerprints",
}  # fmt: skip


def _known_sarif_keys(node: object, in_properties: bool = False) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if not in_properties:
                assert key in SARIF_KEYS or key == "readinessFinding/v1", key
            _known_sarif_keys(value, in_properties or key in ("properties", "partialFingerprints"))
    elif isinstance(node, list):
        for item in node:
            _known_sarif_keys(item, in_properties)


def test_sarif_levels_locations_and_rules() -> None:
    report = every_status_fleet()
    doc = json.loads(render(report, "sarif"))
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(CHECKS)
    assert rules[0]["shortDescription"]["text"]  # from the check registry
    by_key = {(r["properties"]["host"], r["ruleId"]): r for r in run["results"]}
    assert by_key[("h-not_ready", "environment")]["level"] == "error"
    assert by_key[("h-degraded", "environment")]["level"] == "warning"
    assert by_key[("h-unreachable", "environment")]["level"] == "error"
    assert ("h-ready", "environment") not in by_key and ("h-skipped", "environment") not in by_key
    for (_host, rule), finding in by_key.items():
        assert rules[finding["ruleIndex"]]["id"] == rule
    location = by_key[("h-error", "configuration")]["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == (
        "file://h-error/srv/app/settings.yaml"
    )
    hostile = by_key[(HOSTILE_HOST, "environment")]
    # JSON keeps it exactly, escaped; but a viewer shows this text: U+2028 is shown as \u2028
    # and a bracket is escaped (no embedded link)
    shown = HOSTILE.replace("\u2028", "\\u2028").replace("\u202e", "\\u202e")
    assert hostile["message"]["text"].startswith(shown.replace("[", "\\[").replace("]", "\\]"))
    assert hostile["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith(
        "file://web%227%5Cx/"
    )
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert notes[0]["properties"] == {"host": "gone", "status": "unreachable"}
    strict = json.loads(render(report, "sarif", fail_on=Status.DEGRADED))
    levels = {r["level"] for r in strict["runs"][0]["results"]}
    assert levels == {"error"}


def test_sarif_file_location_with_a_line() -> None:
    from readiness.report.sarif import file_location

    assert file_location({"alert_rules_file": "/etc/a.yml", "alert_rules_line": 7}) == (
        "/etc/a.yml",
        7,
    )
    assert file_location({"settings_file": "/srv/s.yaml", "line": 3}) == ("/srv/s.yaml", 3)
    assert file_location({"settings_file": "relative.yaml"}) is None
    assert file_location({"log_file": "/var/log/x", "line": True}) == ("/var/log/x", None)


# --- TAP ------------------------------------------------------------------------------


def _prove(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("prove"), "-v", "-e", "cat", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_tap_read_by_prove(tmp_path: Path) -> None:
    report = every_status_fleet()
    res = _prove(_write(tmp_path, "r.tap", render(report, "tap")))
    assert "Parse errors" not in res.stdout, res.stdout
    assert res.returncode == 1  # failures present
    # points: 3 per host in Status order (skipped, ready, degraded, not_ready, error,
    # unreachable, interrupted), then the hostile host (not_ready, degraded, ready), 'gone'
    assert "Tests=25" in res.stdout and "Failed tests:  10-22, 25" in res.stdout, res.stdout
    assert "less 3 skipped subtests" in res.stdout
    strict = _prove(_write(tmp_path, "s.tap", render(report, "tap", fail_on=Status.DEGRADED)))
    assert "Failed tests:  7-23, 25" in strict.stdout, strict.stdout


def test_tap_hostile_text_cannot_forge_a_directive_or_a_line() -> None:
    out = render(every_status_fleet(), "tap")
    hostile = [line for line in out.split("\n") if HOSTILE_HOST.replace("\\", "\\\\") in line]
    assert hostile
    assert not any(line.startswith("second line") for line in out.split("\n"))
    skip = next(line for line in out.split("\n") if line.startswith("ok 1 "))
    assert skip == "ok 1 - h-skipped environment # SKIP environment is skipped"


def test_tap_of_a_ready_fleet_passes_prove(tmp_path: Path) -> None:
    res = _prove(_write(tmp_path, "ok.tap", render(_fleet(Status.READY, Status.SKIPPED), "tap")))
    assert res.returncode == 0, res.stdout
    assert "Result: PASS" in res.stdout


# Data TAP::Parser::YAMLish::Reader (what prove reads) misread when PyYAML wrote it: a key
# with a space, a single-quoted key, list items whose first word ends in ':', a list in a list.
YAMLISH_DETAILS = {
    "problems": ["/srv/app/config/alerts.yml:4: invalid YAML: found ''", "a : b", "http://x: y"],
    "a key": 1,
    "a: b": {"c d": [["x", "y:"], {"k k": 1}]},
    "values": [1, 2.5, 1e-05, None, True, False, "null", "", "~", "'q'", '"d"', "\\", '\\"', "#c"],
    "empty": {},
    "none": [],
}
# Every YAML block of a TAP stream as TAP::Parser (prove's parser) reads it, as JSON.
_TAP_PARSER = r"""
use TAP::Parser; use JSON::PP;
my $p = TAP::Parser->new({source => $ARGV[0]});
my @yaml;
while (my $r = $p->next) { push @yaml, $r->data if $r->is_yaml; }
die join("; ", $p->parse_errors) if $p->parse_errors;
print JSON::PP->new->canonical->encode(\@yaml);
"""


def _yamlish_text(value: object) -> object:
    """YAMLish has no types: every scalar but undef reads back as its text."""
    if isinstance(value, dict):
        return {k: _yamlish_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_yamlish_text(v) for v in value]
    if isinstance(value, (bool, float)):  # true, false, 1.0e-05: as YAML spells them
        return str(yaml.safe_dump(value)).split("\n", maxsplit=1)[0]
    return value if value is None else str(value)


def test_tap_yaml_blocks_read_back_the_same_by_prove_and_pyyaml(tmp_path: Path) -> None:
    """PyYAML wrote the blocks, and prove's YAMLish reader stopped at a key with a space
    or a list item like `alerts.yml:4: invalid YAML`: a parse error and a bad plan, so a
    run whose every point was ok failed, and the points after it were lost."""
    degraded = result("web1", "environment", Status.DEGRADED, "m: x")
    degraded = replace(degraded, details=YAMLISH_DETAILS, recommendations=("fix: it",))
    report = FleetReport(
        (HostReport("web1", (degraded, result("web1", "configuration", Status.READY))),),
        generated_at=TS,
        checks=("environment", "configuration"),
    )
    path = _write(tmp_path, "r.tap", render(report, "tap"))
    res = _prove(path)
    assert res.returncode == 0 and "Parse errors" not in res.stdout, res.stdout
    assert "Tests=2" in res.stdout and "Result: PASS" in res.stdout, res.stdout
    read = subprocess.run(
        [_tool("perl"), "-e", _TAP_PARSER, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    block = json.loads(read.stdout)[0]
    assert block["details"] == _yamlish_text(YAMLISH_DETAILS)
    assert block["message"] == "m: x" and block["recommendations"] == ["fix: it"]
    lines = path.read_text().split("\n")
    start = lines.index("  ---")
    text = "\n".join(line[2:] for line in lines[start + 1 : lines.index("  ...")])
    assert yaml.safe_load(text)["details"] == YAMLISH_DETAILS  # and YAML, typed


def test_tap_of_a_broken_alert_rules_file_is_read_whole_by_prove(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """monitoring quotes a broken rules file as `…/alerts.yml:4: invalid YAML: …`: in TAP
    prove read that item as a key, stopped with a parse error and lost the next point."""
    from .test_cli import inventory_for, run

    root = app_tree(files={"config/alerts.yml": "groups:\n- name: app\n  rules: [\n"})
    inv = str(inventory_for(tmp_path, root))
    res = run(
        "validate", "-i", inv, "-c", "monitoring,documentation", "--format", "tap",
        "--save", "r.tap", cwd=tmp_path, tool="readiness",
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "alerts.yml:4" in res.stdout
    proved = _prove(tmp_path / "r.tap")
    assert "Parse errors" not in proved.stdout, proved.stdout
    assert "Tests=2" in proved.stdout, proved.stdout


# --- through the command a user types -----------------------------------------------------


def _validate(tmp_path: Path, app_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from .test_cli import inventory_for, run

    inv = inventory_for(tmp_path, app_root)
    return run(
        "validate",
        "-i",
        str(inv),
        "-c",
        "environment,configuration",
        *args,
        cwd=tmp_path,
        tool="readiness",
    )


def test_validate_format_junit_through_the_cli(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    res = _validate(tmp_path, app_tree(), "--format", "junit", "--save", "out/r.xml")
    assert res.returncode == 0, res.stderr
    saved = tmp_path / "out" / "r.xml"
    assert saved.read_text() == res.stdout
    cases = _cases(saved)
    assert set(cases) == {("local", "environment"), ("local", "configuration")}
    lint = subprocess.run(
        [_tool("xmllint"), "--noout", "--schema", str(DATA / "junit.xsd"), str(saved)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert lint.returncode == 0, lint.stderr


def test_nagios_task_exit_codes_follow_the_plugin_convention(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    from .test_cli import inventory_for, run

    inv = str(inventory_for(tmp_path, app_tree()))
    ok = run("nagios", "-i", inv, "-c", "environment", cwd=tmp_path, tool="readiness")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("READINESS OK - 1/1 hosts ready | ")
    assert ok.stderr == ""
    crit = run("nagios", "-c", "environment")  # the bundled example has an insecure default
    assert crit.returncode == 2, crit.stdout + crit.stderr
    assert crit.stdout.startswith("READINESS CRITICAL - 1/1 hosts not ready: local (environment)")
    unknown = run("nagios", "-c", "nope", cwd=tmp_path, tool="readiness")
    assert unknown.returncode == 3
    assert unknown.stdout.startswith("READINESS UNKNOWN - unknown check 'nope'")
    # --format nagios elsewhere keeps readiness' exit codes (1 = not ready, not CRITICAL's 2)
    fmt = run("validate", "-c", "environment", "--format", "nagios")
    assert fmt.returncode == 1
    assert fmt.stdout.startswith("READINESS CRITICAL - ")


def test_nagios_task_never_says_ok_for_a_not_ready_host_a_lenient_gate_passes(
    tmp_path: Path,
) -> None:
    # check-config with 50 % gates over a sound and a weak-secret host: the gates pass (exit
    # 0, as docs/suites.md says), and nagios said "READINESS OK - 2/2 hosts not ready", exit
    # 0, while the same fleet without the weak host was a WARNING.
    from tests.services.apps import write_app
    from tests.services.cli import run_cli

    good = write_app(tmp_path / "good")
    weak = write_app(tmp_path / "weak", env={"MAHAVISHNU_AUTH__SECRET": "tooshort"})
    hosts = {
        name: {"ansible_connection": "local", "readiness": {"app_root": str(app)}}
        for name, app in (("local", good), ("local2", weak))
    }
    inv = tmp_path / "inv.yml"
    inv.write_text(json.dumps({"all": {"hosts": hosts}}))
    lenient = {"quality_gates": {g: {"min_pass_rate": 50} for g in ("configuration", "security")}}
    profile = tmp_path / "lenient.yml"
    profile.write_text(json.dumps(lenient))
    args = ("-i", str(inv), "--hosts", "all", "-c", "environment,configuration")
    res = run_cli("nagios", *args, "--suite", "check-config", "--profile", str(profile))
    assert res.returncode == 1, res.stdout + res.stderr
    head = res.stdout.splitlines()[0]
    assert head.startswith(
        "READINESS WARNING - quality gates pass, 1/2 hosts not ready: local2 (configuration) | "
    ), head
    assert " not_ready=1;;0;0;2 " in head
    suite = run_cli("check-config", *args, "--profile", str(profile), "--quiet")
    assert suite.returncode == 0, suite.stdout + suite.stderr  # the gates themselves pass


def test_validate_format_prometheus_saves_a_collector_readable_textfile(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    res = _validate(tmp_path, app_tree(), "--format", "prometheus", "--save", "tf/readiness.prom")
    assert res.returncode == 0, res.stderr
    saved = tmp_path / "tf" / "readiness.prom"
    assert saved.stat().st_mode & 0o777 == 0o644
    families = {f.name: f for f in text_string_to_metric_families(saved.read_text())}
    assert {s.labels["check"] for s in families["readiness_check_status"].samples} == {
        "environment",
        "configuration",
    }
    with saved.open("rb") as fh:
        lint = subprocess.run(
            [_tool("promtool"), "check", "metrics"],
            stdin=fh,
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert lint.returncode == 0, lint.stdout


def test_watch_serves_the_same_per_host_metrics_as_the_prometheus_report() -> None:
    from readiness.store.watch import WatchState

    report = every_status_fleet()
    served = {
        f.name: {(s.name, tuple(sorted(s.labels.items())), s.value) for s in f.samples}
        for f in text_string_to_metric_families(WatchState(report=report).metrics().decode())
    }
    written = {
        f.name: {(s.name, tuple(sorted(s.labels.items())), s.value) for s in f.samples}
        for f in text_string_to_metric_families(render(report, "prometheus"))
    }
    for name in ("readiness_check_status", "readiness_host_up"):
        assert served[name] == written[name], name
