"""``observability_logging`` on real log files, with markers logged by a command or over HTTP."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from readiness.model import CheckResult, Status
from tests.services.apps import audit_local, one, write_app
from tests.services.httpd import HttpServer, RecordedRequest

CHECK = "observability_logging"

# The app's "log a line" command: appends one JSON record with the given message.
LOG_CMD = """\
import json, sys, time
with open(sys.argv[1], "a") as fh:
    fh.write(json.dumps({"ts": time.time(), "level": "info", "message": sys.argv[2]}) + "\\n")
"""


def json_lines(n: int) -> str:
    return "".join(
        json.dumps({"ts": 1700000000 + i, "level": "info", "message": f"request {i} served"}) + "\n"
        for i in range(n)
    )


def make_app(tmp_path: Path, log_text: str) -> Path:
    return write_app(tmp_path / "app", files={"bin/log.py": LOG_CMD, "logs/app.log": log_text})


def run(app: Path, wait: float = 5, **section: Any) -> CheckResult:
    cfg = {"enabled": True, "log_file": "logs/app.log", **section}
    profile = {CHECK: cfg, "thresholds": {"log_marker_wait_s": wait, "log_max_age_s": 300}}
    return one(audit_local(app, CHECK, profile))


def test_live_json_log_with_marker_from_a_command_is_ready(tmp_path: Path) -> None:
    app = make_app(tmp_path, json_lines(20))
    log = str(app / "logs" / "app.log")
    result = run(app, marker_command=[sys.executable, "bin/log.py", log, "{marker}"])
    assert result.status is Status.READY, result.message
    d = result.details
    assert d["lines_checked"] == 20 and d["age_s"] < 60
    assert d["marker"].startswith("readiness-marker-")
    assert d["marker"] in (app / "logs" / "app.log").read_text()
    assert 0 <= d["marker_s"] < 5


def test_marker_logged_through_the_apps_http_endpoint_appears(
    tmp_path: Path, http_server: Callable[[], HttpServer]
) -> None:
    app = make_app(tmp_path, json_lines(3))
    log = app / "logs" / "app.log"

    def log_endpoint(req: RecordedRequest) -> Any:
        with log.open("a") as fh:
            fh.write(json.dumps({"level": "info", "message": req.json()["message"]}) + "\n")
        return 202, {"logged": True}

    srv = http_server()
    srv.route("/debug/log", method="POST", handler=log_endpoint)
    result = run(app, marker_url=f"{srv.url}/debug/log")
    assert result.status is Status.READY, result.message
    (req,) = srv.requests_to("/debug/log", "POST")
    assert req.json() == {"level": "info", "message": result.details["marker"]}


def test_log_not_written_recently_is_not_ready(tmp_path: Path) -> None:
    app = make_app(tmp_path, json_lines(5))
    log = app / "logs" / "app.log"
    hour_ago = time.time() - 3600
    os.utime(log, (hour_ago, hour_ago))
    result = run(app)  # no marker: only age and format are judged
    assert result.status is Status.NOT_READY
    assert "was last written 360" in result.message  # 3600s or 3601s on a slow machine
    assert "log_max_age_s" in result.message


def test_lines_that_are_not_json_are_not_ready(tmp_path: Path) -> None:
    text = json_lines(4) + "Traceback (most recent call last):\n  File app.py\n" + json_lines(2)
    app = make_app(tmp_path, text)
    log = str(app / "logs" / "app.log")
    result = run(app, marker_command=[sys.executable, "bin/log.py", log, "{marker}"])
    assert result.status is Status.NOT_READY
    assert "2 of 8 recent log line(s) are not JSON objects" in result.message
    assert "Traceback" in result.details["bad_lines"][0]


def test_marker_that_never_reaches_the_file_is_not_ready_after_a_bounded_wait(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path, json_lines(5))
    elsewhere = str(app / "logs" / "other.log")
    t0 = time.monotonic()
    result = run(app, wait=1, marker_command=[sys.executable, "bin/log.py", elsewhere, "{marker}"])
    assert result.status is Status.NOT_READY
    assert "did not appear in" in result.message and "within 1s" in result.message
    assert result.details["marker"] in Path(elsewhere).read_text()
    assert time.monotonic() - t0 < 10


def test_marker_without_a_source_only_degrades(tmp_path: Path) -> None:
    result = run(make_app(tmp_path, json_lines(5)))
    assert result.status is Status.DEGRADED
    assert "no marker source configured" in result.message


def test_missing_log_file_is_not_ready(tmp_path: Path) -> None:
    app = make_app(tmp_path, "")
    result = run(app, log_file="logs/missing.log")
    assert result.status is Status.NOT_READY
    assert "logs/missing.log does not exist" in result.message


def test_logging_check_is_skipped_until_enabled(tmp_path: Path) -> None:
    result = one(audit_local(write_app(tmp_path / "app"), CHECK))
    assert result.status is Status.SKIPPED
    assert "observability_logging.enabled" in result.message


def test_a_quiet_or_just_rotated_log_that_takes_the_marker_is_live(tmp_path: Path) -> None:
    """The marker logged through the app appeared in the file, yet validate said NOT_READY
    "was last written 3600s ago" for a quiet service's log, and "has no complete lines" for
    one just rotated (empty): both were judged before the marker was written. Without a
    marker the age is still judged (test_log_not_written_recently_is_not_ready)."""
    from tests.services.cli import local_inventory, validate_check

    for text in (json_lines(5), ""):
        app = make_app(tmp_path, text)
        log = app / "logs" / "app.log"
        hour_ago = time.time() - 3600
        os.utime(log, (hour_ago, hour_ago))
        section = {
            "enabled": True,
            "log_file": "logs/app.log",
            "marker_command": [sys.executable, "bin/log.py", str(log), "{marker}"],
        }
        inventory = local_inventory(tmp_path / "inv.yml", app, **{CHECK: section})
        result = validate_check(inventory, CHECK)
        assert result["status"] == "ready", (text[:20], result["message"])
        assert result["details"]["marker"] in log.read_text()
