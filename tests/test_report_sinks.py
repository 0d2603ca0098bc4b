"""--report FORMAT[:PATH]: parsing, checks before the run, one render per format."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.errors import UsageError
from readiness.report import FORMATS, ReportSink, plan_sinks, render, write_reports
from readiness.report.sinks import FORMAT_OF_EXTENSION, parse_report_spec

from .report_fixtures import every_status_fleet


@pytest.mark.parametrize(
    ("spec", "sink"),
    [
        ("junit", ReportSink("junit")),
        ("junit:out/r.xml", ReportSink("junit", Path("out/r.xml"))),
        ("json:", ReportSink("json", None, True)),
        ("json:/tmp/a:b.json", ReportSink("json", Path("/tmp/a:b.json"))),
        ("fleet.html", ReportSink("html", Path("fleet.html"))),
        ("r.XML", ReportSink("junit", Path("r.XML"))),
        ("metrics.prom", ReportSink("prometheus", Path("metrics.prom"))),
    ],
)
def test_report_specs(spec: str, sink: ReportSink) -> None:
    assert parse_report_spec(spec) == sink


@pytest.mark.parametrize("spec", ["yaml", "yaml:out.yaml", "out.yaml", "", "c:/x.json"])
def test_bad_report_specs_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError, match="--report"):
        parse_report_spec(spec)


def test_every_extension_names_a_registered_format() -> None:
    assert set(FORMAT_OF_EXTENSION.values()) <= set(FORMATS)


def test_plan_keeps_format_for_stdout_unless_a_report_claims_it(tmp_path: Path) -> None:
    out = tmp_path / "r.xml"
    assert plan_sinks([f"junit:{out}"], "text") == (ReportSink("text"), ReportSink("junit", out))
    assert plan_sinks(["tap", f"junit:{out}"], "text") == (
        ReportSink("tap"),
        ReportSink("junit", out),
    )
    saved = tmp_path / "s.json"
    assert plan_sinks([], "json", str(saved)) == (ReportSink("json"), ReportSink("json", saved))
    assert plan_sinks([], "text", True)[1] == ReportSink("text", None, True)


@pytest.mark.parametrize(
    ("specs", "needle"),
    [
        (["tap", "json"], "only one report can go to stdout"),
        (["json:{d}/a.json", "{d}/a.json"], "two reports to one file"),
        (["json:{d}"], "it is a directory"),
        (["json:{d}/file.txt/r.json"], "is not a directory"),
    ],
)
def test_unwritable_or_conflicting_sinks_are_refused_before_the_run(
    tmp_path: Path, specs: list[str], needle: str
) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UsageError, match=needle):
        plan_sinks([s.format(d=tmp_path) for s in specs], "text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # nothing left behind


def test_several_reports_at_once_are_byte_identical_to_single_runs(tmp_path: Path) -> None:
    report = every_status_fleet()
    together = tmp_path / "together"
    specs = [f"{fmt}:{together / ('r-' + fmt)}" for fmt in FORMATS]
    stdout, written = write_reports(report, plan_sinks(specs, "text"))
    assert stdout == render(report, "text")
    assert len(written) == len(FORMATS)
    for fmt in FORMATS:
        alone = tmp_path / "alone" / fmt / ("r-" + fmt)
        _, [single] = write_reports(report, plan_sinks([f"{fmt}:{alone}"], "text"))
        assert single.read_bytes() == (together / ("r-" + fmt)).read_bytes(), fmt
        assert single.read_bytes() == (render(report, fmt) + "\n").encode(), fmt
