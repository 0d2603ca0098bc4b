"""``graceful_shutdown``: real processes with real signal dispositions, read from /proc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from readiness.appconfig import AppConfig
from readiness.checks.graceful_shutdown import UNIT_FACT, decode_mask, parse_timespan
from readiness.model import Status
from readiness.profile import merge_layers
from readiness.registry import CheckContext, default_profile, get
from tests.services.apps import audit_local, one
from tests.services.cli import validate_check

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "mahavishnu" / "bin" / "mahavishnu-demo"

# Installs the dispositions named by argv[1], then writes the pidfile (so the pidfile
# existing means the handlers are in place), then idles for at most 120 s.
SERVICE = r"""
import os, signal, sys, time
mode, pidfile = sys.argv[1], sys.argv[2]
def handler(signum, frame):
    pass
signal.signal(signal.SIGINT, signal.SIG_DFL)
if mode in ("both", "term"):
    signal.signal(signal.SIGTERM, handler)
if mode == "both":
    signal.signal(signal.SIGINT, handler)
if mode == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "block":  # taken with sigwait(), as a daemon's main loop would
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
with open(pidfile + ".tmp", "w") as fh:
    fh.write("%d\n" % os.getpid())
os.replace(pidfile + ".tmp", pidfile)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    time.sleep(0.2)
"""


def _wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} did not appear within {timeout}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], Path]]]:
    """``service(mode)`` → (process, pidfile) of a real python process; killed at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(mode: str, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
        pidfile = tmp_path / f"{mode}-{len(started)}.pid"
        proc = subprocess.Popen([sys.executable, "-c", SERVICE, mode, str(pidfile), *extra])
        started.append(proc)
        _wait_for(pidfile)
        return proc, pidfile

    yield start
    for proc in started:
        _stop(proc)


def _audit(tmp_path: Path, profile: dict[str, Any], **kwargs: Any) -> Any:
    return one(audit_local(tmp_path, "graceful_shutdown", profile, **kwargs))


def test_a_service_handling_sigterm_and_sigint_is_ready(tmp_path: Path, service: Any) -> None:
    proc, pidfile = service("both")
    r = _audit(tmp_path, {"pidfile": str(pidfile)})
    assert r.status is Status.READY, r.message
    assert r.details["signals"]["pid"] == proc.pid
    assert {"SIGTERM", "SIGINT"} <= set(r.details["signals"]["caught"])


def test_a_service_handling_only_sigterm_is_degraded(tmp_path: Path, service: Any) -> None:
    _, pidfile = service("term")
    r = _audit(tmp_path, {"pidfile": str(pidfile)})
    assert r.status is Status.DEGRADED
    assert r.details["signals"]["sigterm"] == "caught"
    assert r.details["signals"]["sigint"] == "default"
    assert "SIGINT handler" in r.recommendations[0]


def test_a_service_with_default_dispositions_is_not_ready(tmp_path: Path, service: Any) -> None:
    _, pidfile = service("none")
    r = _audit(tmp_path, {"pidfile": str(pidfile)})
    assert r.status is Status.NOT_READY
    assert r.details["signals"]["sigterm"] == "default"
    assert "does not handle SIGTERM" in r.message
    assert any("Register SIGTERM handler for graceful shutdown" in x for x in r.recommendations)


def test_a_service_ignoring_sigterm_is_not_ready(tmp_path: Path, service: Any) -> None:
    _, pidfile = service("ignore")
    r = _audit(tmp_path, {"pidfile": str(pidfile)})
    assert r.status is Status.NOT_READY
    assert r.details["signals"]["sigterm"] == "ignored"
    assert "SIGTERM" in r.details["signals"]["ignored"]
    assert "ignores SIGTERM" in r.message


def test_the_service_is_found_by_process_match_without_a_pidfile(
    tmp_path: Path, service: Any
) -> None:
    token = f"readiness-shutdown-{uuid.uuid4().hex}"
    proc, _ = service("both", token)
    r = _audit(tmp_path, {"process_match": token})
    assert r.status is Status.READY, r.message
    assert r.details["signals"]["pid"] == proc.pid


def test_no_configured_service_is_not_ready_with_a_recommendation(tmp_path: Path) -> None:
    r = _audit(tmp_path, {})
    assert r.status is Status.NOT_READY
    assert r.details["signals"] == {"checked": False}
    assert "Set pidfile" in r.recommendations[0]


def test_a_stale_pidfile_is_reported_as_a_service_that_is_not_running(
    tmp_path: Path, service: Any
) -> None:
    proc, pidfile = service("both")
    _stop(proc)
    r = _audit(tmp_path, {"pidfile": str(pidfile)})
    assert r.status is Status.NOT_READY
    assert (
        f"service not running (pidfile {pidfile} names PID {proc.pid}, which no longer exists)"
    ) in r.message
    assert "FileNotFoundError" not in r.message
    assert "Start the service" in r.recommendations[0]


def test_a_missing_pidfile_is_not_ready_not_an_error(tmp_path: Path) -> None:
    r = _audit(tmp_path, {"pidfile": "run/nothing.pid"})
    assert r.status is Status.NOT_READY
    assert f"service not running (pidfile {tmp_path}/run/nothing.pid does not exist)" in r.message


def test_a_host_without_systemd_is_reported_as_such_never_guessed(
    tmp_path: Path, service: Any
) -> None:
    """This container has no systemd as PID 1: the unit's settings cannot be judged."""
    if Path("/run/systemd/system").exists():
        pytest.fail("this test proves the no-systemd handling; run it where systemd is not PID 1")
    _, pidfile = service("both")
    r = _audit(tmp_path, {"pidfile": str(pidfile), "systemd_unit": "mahavishnu.service"})
    assert r.status is Status.DEGRADED
    assert r.details["systemd"]["available"] is False
    assert "systemd is not available" in r.message


class _Pool:
    def close_all(self) -> None:
        pass


class _Observability:
    def flush_metrics(self) -> None:
        pass


class _GoodApp:
    pool_manager = _Pool()
    observability = _Observability()

    def shutdown(self) -> None:
        pass


class _BareApp:
    observability = object()


def test_an_app_object_with_cleanup_hooks_is_ready(tmp_path: Path, service: Any) -> None:
    _, pidfile = service("both")
    r = _audit(tmp_path, {"pidfile": str(pidfile)}, app_object=_GoodApp())
    assert r.status is Status.READY, r.message
    assert r.details["cleanup_procedures"] == {
        "cleanup_methods": ["shutdown"],
        "pool_manager": True,
        "worker_shutdown": True,
        "observability_flush": True,
    }


def test_an_app_object_without_cleanup_hooks_is_degraded(tmp_path: Path, service: Any) -> None:
    _, pidfile = service("both")
    r = _audit(tmp_path, {"pidfile": str(pidfile)}, app_object=_BareApp())
    assert r.status is Status.DEGRADED
    assert "Implement shutdown() or cleanup() method on app" in r.recommendations
    assert "Initialize pool_manager for graceful worker shutdown" in r.recommendations
    assert r.details["cleanup_procedures"]["observability_flush"] is False


def test_the_example_demo_service_passes_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    pidfile = tmp_path / "run" / "mahavishnu.pid"
    proc = subprocess.Popen(
        [sys.executable, str(DEMO), "--pidfile", str(pidfile)], stdout=subprocess.PIPE
    )
    try:
        _wait_for(pidfile)
        r = _audit(tmp_path, {"pidfile": "run/mahavishnu.pid"})
        assert r.status is Status.READY, r.message
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert b"flushing" in out
        assert not pidfile.exists()
    finally:
        _stop(proc)


def test_the_example_demo_service_daemonizes_with_its_pidfile_in_place(tmp_path: Path) -> None:
    pidfile = tmp_path / "mahavishnu.pid"
    done = subprocess.run(
        [sys.executable, str(DEMO), "--daemon", "--pidfile", str(pidfile)],
        timeout=15,
        check=False,
    )
    assert done.returncode == 0
    pid = int(pidfile.read_text())
    try:
        assert "SigCgt" in Path(f"/proc/{pid}/status").read_text()
        r = _audit(tmp_path, {"pidfile": str(pidfile)})
        assert r.status is Status.READY, r.message
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not pidfile.exists()


# Pure logic below: decoding and judging facts without a host.


@pytest.mark.parametrize(
    ("mask", "signals"),
    [
        ("0000000000000000", set()),
        ("0000000000004002", {2, 15}),
        ("0000000000000100", {9}),
        ("0000000180000000", {32, 33}),
    ],
)
def test_signal_masks_decode_bit_n_minus_one_as_signal_n(mask: str, signals: set[int]) -> None:
    assert decode_mask(mask) == signals


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1min 30s", 90.0),
        ("90", 90.0),
        ("500ms", 0.5),
        ("5s", 5.0),
        ("1h", 3600.0),
        ("bogus", None),
    ],
)
def test_systemd_timespans_parse_to_seconds(text: str, seconds: float | None) -> None:
    assert parse_timespan(text) == seconds


def _judge_unit(props: dict[str, str]) -> Any:
    profile = merge_layers(
        default_profile(), [("test", {"pidfile": "/run/x.pid", "systemd_unit": "x.service"})]
    )
    facts = {
        "app:process": {"found": True, "running": True, "pid": 42, "sigcgt": "0000000000004002"},
        UNIT_FACT: {"available": True, "properties": {"LoadState": "loaded", **props}},
    }
    ctx = CheckContext(host="h", profile=profile, facts=facts, app=AppConfig())
    return get("graceful_shutdown").evaluate(ctx)


def test_a_unit_stopping_with_sigterm_and_enough_time_is_ready() -> None:
    out = _judge_unit(
        {
            "KillSignal": "15",
            "TimeoutStopUSec": "1min 30s",
            "SendSIGKILL": "yes",
            "KillMode": "mixed",
        }
    )
    assert out.status is Status.READY, out.message
    assert out.details["systemd"]["kill_signal"] == "SIGTERM"
    assert out.details["systemd"]["timeout_stop_s"] == 90.0


def test_a_unit_stopping_with_sigkill_is_not_ready() -> None:
    out = _judge_unit({"KillSignal": "9", "TimeoutStopUSec": "90s"})
    assert out.status is Status.NOT_READY
    assert "KillSignal=SIGTERM" in out.recommendations[0]


def test_a_unit_kill_signal_the_process_does_not_catch_is_not_ready() -> None:
    out = _judge_unit({"KillSignal": "SIGUSR1", "TimeoutStopUSec": "90s"})
    assert out.status is Status.NOT_READY
    assert "SIGUSR1" in out.message


def test_a_short_stop_timeout_degrades() -> None:
    out = _judge_unit({"KillSignal": "15", "TimeoutStopUSec": "5s"})
    assert out.status is Status.DEGRADED
    assert "TimeoutStopSec=10s" in out.recommendations[0]


def test_a_unit_that_never_forces_a_hung_stop_degrades() -> None:
    out = _judge_unit({"KillSignal": "15", "TimeoutStopUSec": "infinity", "SendSIGKILL": "no"})
    assert out.status is Status.DEGRADED
    assert len(out.details["warnings"]) == 2


def test_a_unit_that_does_not_exist_is_not_ready() -> None:
    out = _judge_unit({"LoadState": "not-found", "KillSignal": "15", "TimeoutStopUSec": "90s"})
    assert out.status is Status.NOT_READY
    assert "does not exist" in out.message


def test_a_service_blocking_sigterm_is_undetermined_not_dying(tmp_path: Path, service: Any) -> None:
    """A service that blocks SIGTERM and takes it with sigwait()/signalfd does not die on
    it: validate said NOT_READY "does not handle SIGTERM: it dies without cleanup". Its
    masks cannot tell a sigwait loop from a signal left pending forever: DEGRADED, with
    the drill that proves it."""
    proc, pidfile = service("block")
    host = {"app_root": str(tmp_path), "pidfile": str(pidfile)}
    inv = tmp_path / "inv.yml"
    inv.write_text(
        json.dumps(
            {"all": {"hosts": {"local": {"ansible_connection": "local", "readiness": host}}}}
        )
    )
    result = validate_check(inv, "graceful_shutdown")
    assert result["status"] == "degraded", result["message"]
    assert f"process {proc.pid} blocks SIGTERM without a handler" in result["message"]
    assert "dies without cleanup" not in result["message"]
    assert result["details"]["signals"]["sigterm"] == "blocked"
    assert "SIGTERM" in result["details"]["signals"]["blocked"]
    assert any("graceful_shutdown_drill" in r for r in result["recommendations"])
