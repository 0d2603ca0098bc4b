"""Renderers: the original text layout (golden file), table, json schema, markdown, save."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from readiness.errors import UsageError
from readiness.model import CheckResult, FleetReport, HostReport, Status
from readiness.report import default_save_path, render, save

GOLDEN = Path(__file__).parent / "golden"
TS = datetime(2025, 2, 5, 10, 30, tzinfo=timezone.utc)


def _fleet() -> FleetReport:
    def r(
        name: str, status: Status, msg: str, host: str, recs: tuple[str, ...] = ()
    ) -> CheckResult:
        return CheckResult(
            name, status, msg, {"checked": ["MAHAVISHNU_REPOS_PATH"], "missing": []}, recs, TS, host
        )

    web = HostReport(
        "web1",
        (
            r(
                "environment",
                Status.READY,
                "All required environment variables are properly configured",
                "web1",
            ),
            r(
                "configuration",
                Status.DEGRADED,
                "Configuration has 1 issue(s) that should be addressed",
                "web1",
                ("Configure llamaindex adapter properly",),
            ),
        ),
        address="10.0.0.5",
        groups=("web",),
    )
    db = HostReport(
        "db1",
        tuple(
            CheckResult(
                n,
                Status.UNREACHABLE,
                "connection refused",
                {},
                ("Check the host is up",),
                TS,
                "db1",
            )
            for n in ("environment", "configuration")
        ),
        address="10.0.0.9",
        groups=("db",),
        reason="connection refused",
    )
    return FleetReport((web, db), generated_at=TS)


@pytest.mark.parametrize("fmt", ["text", "table", "markdown"])
def test_renderers_match_their_golden_files(fmt: str) -> None:
    out = render(_fleet(), fmt)
    golden = GOLDEN / f"fleet.{fmt}"
    if os.environ.get("READINESS_UPDATE_GOLDEN"):
        golden.write_text(out + "\n")
    assert out + "\n" == golden.read_text()


def test_text_report_keeps_the_original_sections() -> None:
    out = render(_fleet(), "text")
    for needle in (
        "PRODUCTION READINESS VALIDATION REPORT",
        "Generated: 2025-02-05T10:30:00Z",
        "SUMMARY",
        "Total Checks: 4",
        "OVERALL STATUS:",
        "DETAILED RESULTS",
        "Recommendations:",
    ):
        assert needle in out


def test_table_shows_unreachable_reasons_and_fits_80_columns_for_few_checks() -> None:
    out = render(_fleet(), "table")
    assert "db1: connection refused" in out
    assert max(len(line) for line in out.splitlines()[:4]) <= 80


def test_table_can_group_rows_by_inventory_group() -> None:
    out = render(_fleet(), "table", group_by="group")
    assert "[web]" in out and "[db]" in out


def test_json_follows_the_versioned_schema() -> None:
    data = json.loads(render(_fleet(), "json"))
    assert data["schema"] == "readiness.report/1"
    assert data["overall_status"] == "unreachable"
    assert data["exit_code"] == 1
    assert data["summary"]["unreachable"] == 2
    assert [h["host"] for h in data["hosts"]] == ["web1", "db1"]
    assert data["hosts"][0]["checks"][1]["status"] == "degraded"
    assert data["hosts"][1]["reason"] == "connection refused"


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="valid: text, table, json, markdown"):
        render(_fleet(), "yaml")


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = save("hello", tmp_path / "sub" / "r.txt")
    assert path.read_text() == "hello\n"
    assert [p.name for p in path.parent.iterdir()] == ["r.txt"]
    assert default_save_path(_fleet(), "json").name == "readiness-20250205T103000Z.json"


def _wide(n_hosts: int, checks: list[str]) -> FleetReport:
    hosts = tuple(
        HostReport(
            f"h{i}", tuple(CheckResult(c, Status.READY, "ok", {}, (), TS, f"h{i}") for c in checks)
        )
        for i in range(n_hosts)
    )
    return FleetReport(hosts, generated_at=TS)


def test_many_checks_on_few_hosts_are_shown_as_check_rows() -> None:
    checks = [f"check_number_{i}" for i in range(12)]
    out = render(_wide(2, checks), "table")
    header = out.splitlines()[0].split()
    assert header == ["check", "h0", "h1"]
    assert "check_number_11" in out and "verdict" in out


def test_a_wide_fleet_keeps_one_row_per_host() -> None:
    checks = ["environment", "configuration"]
    out = render(_wide(3, checks), "table")
    assert out.splitlines()[0].split() == ["host", "env", "config", "verdict"]


def test_column_names_never_collide() -> None:
    out = render(_wide(12, ["cache_hits", "cache_misses", "environment"]), "table")
    header = out.splitlines()[0].split()
    assert header == ["host", "cache_hits", "cache_misses", "env", "verdict"]


def test_emit_writes_through_a_stream_with_a_buffer_but_no_encoding() -> None:
    """A wrapper around stdout (as some tools install) may have ``buffer`` but neither
    ``encoding`` nor ``errors``: the report still goes out whole, as UTF-8."""
    import io

    from readiness.report import emit

    class Bare:
        def __init__(self) -> None:
            self.buffer = io.BytesIO()

        def write(self, text: str) -> int:
            raise AssertionError("the bytes go to the buffer")

        def flush(self) -> None:
            return None

    out = Bare()
    assert emit("état: prêt", out)  # type: ignore[arg-type]
    assert out.buffer.getvalue() == "état: prêt\n".encode()
