"""``workflow_execution``: real smoke workflow commands and a real loopback workflow API."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from readiness.checks.workflow_execution import extract_state
from readiness.model import Status
from tests.services.apps import audit_local, one
from tests.services.cli import local_inventory, validate_check
from tests.services.httpd import HttpServer, RecordedRequest

SMOKE_OK = """\
import json, sys, time
print("starting smoke workflow", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0)
print(json.dumps({"workflow": "smoke", "run": {"state": "completed"}, "state": "completed"}))
"""

SMOKE_FAILED = """\
import json
print(json.dumps({"workflow": "smoke", "state": "failed", "error": "adapter prefect: 503"}))
"""

# Writes its own pid and a child's pid, then hangs: the timeout must kill both.
SMOKE_HANG = """\
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open("pids.txt", "w") as fh:
    fh.write("%d %d" % (__import__("os").getpid(), child.pid))
time.sleep(600)
"""

SMOKE_TEXT = """\
print("run 42: step 1 ok")
print("run 42: finished with state=completed")
"""

SMOKE_CRASH = """\
import sys
sys.stderr.write("Traceback: ConnectionRefusedError: prefect api\\n")
sys.exit(3)
"""

# Prefect's spelling, printed with a CRLF line end.
SMOKE_UPPER = """\
import sys
sys.stdout.write('{"state": "COMPLETED"}\\r\\n')
"""
SCRIPTS = {
    "bin/smoke_upper.py": SMOKE_UPPER,
    "bin/smoke_ok.py": SMOKE_OK,
    "bin/smoke_failed.py": SMOKE_FAILED,
    "bin/smoke_hang.py": SMOKE_HANG,
    "bin/smoke_text.py": SMOKE_TEXT,
    "bin/smoke_crash.py": SMOKE_CRASH,
}


def _app(app_tree: Callable[..., Path]) -> Path:
    return app_tree(files=SCRIPTS)


def _command(script: str, *args: str, **extra: Any) -> dict[str, Any]:
    smoke = {"command": [sys.executable, f"bin/{script}", *args], "timeout_s": 10, **extra}
    return {"smoke_workflow": smoke}


def _gone(pid: int) -> bool:
    """True when the process no longer runs (absent, or a zombie awaiting its reaper)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_without_a_smoke_workflow_the_check_is_skipped_and_says_how_to_configure_it(
    app_tree: Callable[..., Path],
) -> None:
    r = one(audit_local(_app(app_tree), "workflow_execution"))
    assert r.status is Status.SKIPPED
    assert "opt-in" in r.message
    assert any("smoke_workflow" in rec for rec in r.recommendations)


def test_a_smoke_command_printing_a_completed_json_state_is_ready(
    app_tree: Callable[..., Path],
) -> None:
    r = one(audit_local(_app(app_tree), "workflow_execution", _command("smoke_ok.py")))
    assert r.status is Status.READY, r.message
    assert r.details["final_state"] == "completed"
    assert r.details["exit_code"] == 0
    assert 0 < r.details["duration_s"] < 10


def test_the_expected_state_matches_in_any_case_and_without_a_crlf(
    app_tree: Callable[..., Path],
) -> None:
    """Was NOT_READY "ended in state 'COMPLETED' (expected 'completed')": Prefect reports
    COMPLETED / Completed; a state is the same state in any case."""
    r = one(audit_local(_app(app_tree), "workflow_execution", _command("smoke_upper.py")))
    assert r.status is Status.READY, r.message
    assert r.details["final_state"] == "COMPLETED"


def test_an_http_smoke_workflow_reporting_prefects_spelling_is_polled_to_the_end(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    """Was polled to its timeout: the probe stops on an exact final state, and 'Completed'
    was not 'completed'."""
    srv = http_server()
    _workflow_api(srv, ["Pending", "Running", "Completed"])
    r = one(audit_local(_app(app_tree), "workflow_execution", _http_profile(srv)))
    assert r.status is Status.READY, r.message
    assert r.details["polls"] == 3


def test_a_nested_json_key_selects_the_state(app_tree: Callable[..., Path]) -> None:
    profile = _command("smoke_ok.py", json_key="run.state")
    r = one(audit_local(_app(app_tree), "workflow_execution", profile))
    assert r.status is Status.READY, r.message


def test_a_smoke_workflow_ending_failed_is_not_ready(app_tree: Callable[..., Path]) -> None:
    r = one(audit_local(_app(app_tree), "workflow_execution", _command("smoke_failed.py")))
    assert r.status is Status.NOT_READY
    assert "ended in state 'failed' (expected 'completed')" in r.message
    assert r.details["final_state"] == "failed"


def test_a_hanging_smoke_workflow_times_out_and_its_processes_are_killed(
    app_tree: Callable[..., Path],
) -> None:
    root = _app(app_tree)
    t0 = time.monotonic()
    r = one(audit_local(root, "workflow_execution", _command("smoke_hang.py", timeout_s=1.5)))
    assert time.monotonic() - t0 < 8
    assert r.status is Status.NOT_READY
    assert "did not finish within 1.5s" in r.message
    pids = [int(p) for p in (root / "pids.txt").read_text().split()]
    deadline = time.monotonic() + 5
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(p) for p in pids), f"still running: {pids}"


def test_a_smoke_workflow_slower_than_the_threshold_degrades(
    app_tree: Callable[..., Path],
) -> None:
    profile = {**_command("smoke_ok.py", "0.6"), "thresholds": {"workflow_max_duration_s": 0.3}}
    r = one(audit_local(_app(app_tree), "workflow_execution", profile))
    assert r.status is Status.DEGRADED, r.message
    assert r.details["duration_s"] >= 0.6
    assert any("workflow_max_duration_s" in rec for rec in r.recommendations)


def test_a_state_regex_reads_the_state_from_text_output(app_tree: Callable[..., Path]) -> None:
    profile = _command("smoke_text.py", state_regex=r"state=(\w+)")
    r = one(audit_local(_app(app_tree), "workflow_execution", profile))
    assert r.status is Status.READY, r.message
    assert r.details["final_state"] == "completed"


def test_a_crashing_smoke_command_is_not_ready_and_shows_its_error(
    app_tree: Callable[..., Path],
) -> None:
    r = one(audit_local(_app(app_tree), "workflow_execution", _command("smoke_crash.py")))
    assert r.status is Status.NOT_READY
    assert "exited with code 3" in r.message
    assert "ConnectionRefusedError" in r.message


def test_a_smoke_command_that_cannot_start_is_not_ready(app_tree: Callable[..., Path]) -> None:
    profile = {"smoke_workflow": {"command": ["/nonexistent/mahavishnu", "smoke"]}}
    r = one(audit_local(_app(app_tree), "workflow_execution", profile))
    assert r.status is Status.NOT_READY
    assert "could not be started" in r.message


def _workflow_api(srv: HttpServer, states: list[str]) -> None:
    """POST /workflows/smoke/runs → {"id": "r1"}; GET /runs/r1 walks through ``states``."""
    seen: list[str] = []

    def status(_req: RecordedRequest) -> dict[str, Any]:
        seen.append("poll")
        return {"id": "r1", "state": states[min(len(seen), len(states)) - 1]}

    srv.route("/workflows/smoke/runs", method="POST", status=201, json={"id": "r1"})
    srv.route("/runs/r1", handler=status)


def _http_profile(srv: HttpServer, **extra: Any) -> dict[str, Any]:
    smoke = {
        "url": f"{srv.url}/workflows/smoke/runs",
        "json": {"workflow": "smoke"},
        "poll_url": f"{srv.url}/runs/{{id}}",
        "poll_interval_s": 0.05,
        "timeout_s": 5,
        **extra,
    }
    return {"smoke_workflow": smoke}


def test_an_http_smoke_workflow_is_polled_until_completed(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server()
    _workflow_api(srv, ["pending", "running", "completed"])
    r = one(audit_local(_app(app_tree), "workflow_execution", _http_profile(srv)))
    assert r.status is Status.READY, r.message
    assert r.details["mode"] == "http"
    assert r.details["polls"] == 3
    assert srv.requests_to("/workflows/smoke/runs", "POST")[0].json() == {"workflow": "smoke"}


def test_an_http_smoke_workflow_that_never_finishes_times_out(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server()
    _workflow_api(srv, ["running"])
    t0 = time.monotonic()
    r = one(audit_local(_app(app_tree), "workflow_execution", _http_profile(srv, timeout_s=0.6)))
    assert time.monotonic() - t0 < 5
    assert r.status is Status.NOT_READY
    assert "did not reach a final state within 0.6s (last state 'running')" in r.message


def test_an_http_smoke_workflow_ending_failed_is_not_ready(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server()
    _workflow_api(srv, ["running", "failed"])
    r = one(audit_local(_app(app_tree), "workflow_execution", _http_profile(srv)))
    assert r.status is Status.NOT_READY
    assert "ended in state 'failed'" in r.message


def test_a_synchronous_http_smoke_workflow_is_judged_on_its_answer(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server().route("/smoke", method="POST", json={"state": "completed"})
    profile = {"smoke_workflow": {"url": f"{srv.url}/smoke", "timeout_s": 5}}
    r = one(audit_local(_app(app_tree), "workflow_execution", profile))
    assert r.status is Status.READY, r.message


def test_an_http_smoke_workflow_rejected_by_the_api_is_not_ready(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer]
) -> None:
    srv = http_server().route("/smoke", method="POST", status=500, body="boom")
    profile = {"smoke_workflow": {"url": f"{srv.url}/smoke", "timeout_s": 5}}
    r = one(audit_local(_app(app_tree), "workflow_execution", profile))
    assert r.status is Status.NOT_READY
    assert "HTTP 500" in r.message


def test_state_extraction_prefers_the_last_json_line_and_honours_named_groups() -> None:
    out = 'log line\n{"state": "running"}\n{"state": "completed"}\n'
    assert extract_state(out, json_key=None, regex=None) == "completed"
    assert extract_state("x STATE: done", json_key=None, regex=r"STATE: (?P<state>\w+)") == "done"
    assert extract_state("no state here", json_key="state", regex=None) is None


# A smoke workflow that logs ~110 KiB to stdout before it prints its state (and its run id).
SMOKE_VERBOSE = """\
import json
for i in range(2000):
    print("step", i, "of the smoke workflow: adapter call ok, took 12 ms")
print(json.dumps({"id": "run-7", "state": "completed"}))
"""


def test_a_smoke_workflow_logging_more_than_64_kib_before_its_state_is_judged_on_it(
    app_tree: Callable[..., Path], http_server: Callable[[], HttpServer], tmp_path: Path
) -> None:
    """The probe kept the first 64 KiB of the command's output and the state line, printed
    last, was cut off: workflow_execution said NOT_READY "the smoke workflow's output has no
    final state", workflow_benchmark "2/2 runs failed ... state None", and workflow_state's
    start_command "the start answer has no workflow id". The end of the output is kept."""
    root = app_tree(files={"smoke.py": SMOKE_VERBOSE})
    status = http_server().route("/runs/run-7", json={"id": "run-7", "state": "completed"})
    argv = [sys.executable, "smoke.py"]
    inventory = local_inventory(
        tmp_path / "inv.yml",
        root,
        smoke_workflow={"command": argv, "timeout_s": 20},
        workflow_benchmark={"runs": 2, "concurrency": 2, "time_cap_s": 20},
        workflow_state={
            "enabled": True,
            "start_command": argv,
            "status_url": status.url + "/runs/{id}",
        },
        benchmark_baseline_dir=None,
    )
    for check in ("workflow_execution", "workflow_benchmark", "workflow_state"):
        result = validate_check(inventory, check)
        assert result["status"] == "ready", (check, result["message"])
