"""--report FORMAT[:PATH]: parsing, checks before the run, one render per format."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from readiness.errors import UsageError
from readiness.model import FleetReport
from readiness.report import (
    EXTENSIONS,
    FORMATS,
    ReportSink,
    SaveTarget,
    plan_sinks,
    render,
    write_reports,
)
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
        (["json:{d}/", "json:{d}"], "two reports to one file: json:.*/ and json:"),
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


# --- through the command a user types ------------------------------------------------------


def test_one_validate_run_writes_every_format(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    from .test_cli import inventory_for, run
    from .test_report_formats import READ_BACK

    inv = inventory_for(tmp_path, app_tree())
    out = tmp_path / "out"
    files = {fmt: out / f"r.{EXTENSIONS[fmt]}" for fmt in FORMATS if EXTENSIONS[fmt] != "txt"}
    files.update({fmt: out / f"{fmt}.txt" for fmt in FORMATS if EXTENSIONS[fmt] == "txt"})
    args = [f"--report={fmt}:{path}" for fmt, path in files.items()]
    args.append(f"--report={out / 'by-extension.sarif'}")
    args.append("--report=junit")  # junit to stdout instead of text
    res = run(
        "validate", "-i", str(inv), "-c", "environment,configuration", *args,
        cwd=tmp_path, tool="readiness",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = FleetReport.from_dict(json.loads(files["json"].read_text()))
    for fmt, path in files.items():
        READ_BACK[fmt](path.read_text().rstrip("\n"), report)
    assert res.stdout == files["junit"].read_text()  # one render, every sink the same bytes
    assert (out / "by-extension.sarif").read_bytes() == files["sarif"].read_bytes()
    assert res.stderr.count("report saved to ") == len(files) + 1
    assert files["prometheus"].stat().st_mode & 0o777 == 0o644
    assert files["json"].stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["--report", "junit:/proc/version/r.xml"],
            "readiness: --report junit:/proc/version/r.xml: cannot write: "
            "/proc/version is not a directory\n",
        ),
        (
            ["--report", "json:/proc/"],
            "readiness: --report json:/proc/: cannot write in /proc: No such file or directory\n",
        ),
        (
            ["--report", "json:/dev/null"],
            "readiness: --report json:/dev/null: cannot write: /dev/null is not a regular file\n",
        ),
        (
            ["--save", "/dev/null"],
            "readiness: --save /dev/null: cannot write: /dev/null is not a regular file\n",
        ),
        (["--report", "yaml:r.yaml"], "unknown format"),
        (["--report", "tap", "--report", "json"], "only one report can go to stdout"),
        (["--json", "--save", "r.json", "--report", "r.json"], "two reports to one file"),
    ],
)
def test_a_bad_report_is_refused_before_the_run_with_exit_two(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    from .test_cli import run

    res = run("validate", "-c", "environment", *args, cwd=tmp_path, tool="readiness")
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert needle in res.stderr and "Traceback" not in res.stderr
    assert res.stdout == ""  # no audit ran, nothing printed
    assert list(tmp_path.iterdir()) == []


def test_format_json_and_save_stay_shorthands(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    from .test_cli import inventory_for, run

    inv = inventory_for(tmp_path, app_tree())
    res = run(
        "validate", "-i", str(inv), "-c", "environment", "--json", "--save", "s/r.json",
        cwd=tmp_path, tool="readiness",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "s" / "r.json").read_text() == res.stdout


def test_no_secret_reaches_any_report_file(app_tree: Callable[..., Path], tmp_path: Path) -> None:
    """The planted secrets of tests/test_secrets.py, through every registered format at once."""
    from .test_cli import inventory_for, run
    from .test_secrets import SENTINELS, leaky_app

    inv = inventory_for(tmp_path, leaky_app.__wrapped__(app_tree))  # type: ignore[attr-defined]
    out = tmp_path / "out"
    args = [f"--report={fmt}:{out / fmt}" for fmt in FORMATS]
    res = run("validate", "-i", str(inv), *args, cwd=tmp_path, tool="readiness")
    assert res.returncode == 1, res.stderr  # not ready (insecure default); every file written
    blobs = {fmt: (out / fmt).read_text() for fmt in FORMATS}
    for fmt, blob in {**blobs, "stdout": res.stdout, "stderr": res.stderr}.items():
        for secret in SENTINELS:
            assert secret not in blob, fmt


def test_save_and_report_read_one_extension_map(tmp_path: Path) -> None:
    """`--report x.markdown` was refused and `--save x.htm` saved text: two maps, each partial."""
    from readiness.report import plan_save

    assert parse_report_spec(str(tmp_path / "r.markdown")).fmt == "markdown"
    assert plan_save(str(tmp_path / "r.htm"), "text") == SaveTarget(
        "html", tmp_path / "r.htm", tmp_path
    )
    assert plan_save(str(tmp_path / "r.txt"), "nagios").fmt == "nagios"  # its own extension
    assert plan_save(str(tmp_path / "r.txt"), "json").fmt == "text"
    assert plan_save(str(tmp_path / "r.log"), "json").fmt == "json"
    assert list(tmp_path.iterdir()) == []  # each checked with a file that is removed again


def test_a_report_to_a_directory_gets_the_default_name_in_it(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """`--report json:out/` wrote a FILE named "out" (the slash was dropped); an existing
    directory was refused. Both now get the default name inside, as `--save DIR` does."""
    from .test_cli import inventory_for, run

    inv = inventory_for(tmp_path, app_tree())
    (tmp_path / "there").mkdir()
    args = ["--report", "json:new/", "--report", "markdown:there", "--save", "there/"]
    res = run(
        "validate", "-i", str(inv), "-c", "environment", "-q", *args,
        cwd=tmp_path, tool="readiness",
    )  # fmt: skip
    assert res.returncode in (0, 1), res.stderr
    [json_file] = (tmp_path / "new").iterdir()
    assert re.fullmatch(r"readiness-\d{8}T\d{6}Z\.json", json_file.name)
    assert json.loads(json_file.read_text())["schema"] == "readiness.report/1"
    names = sorted(p.suffix for p in (tmp_path / "there").iterdir())
    assert names == [".md", ".txt"], names  # --report markdown:there and --save there/
    clash = run(
        "validate", "-i", str(inv), "-c", "environment", "--report", "text:there",
        "--save", "there", cwd=tmp_path, tool="readiness",
    )  # fmt: skip
    assert clash.returncode == 2 and "two reports to one file" in clash.stderr, clash.stderr
