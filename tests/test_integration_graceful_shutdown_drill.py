"""``graceful_shutdown_drill`` on real processes: SIGTERM a canary, time its exit, restart it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from readiness.model import CheckResult, Status
from tests.services.apps import audit_local, one, write_app

CHECK = "graceful_shutdown_drill"

# argv: pidfile mode ("clean" exits on SIGTERM after a short cleanup; "ignore" ignores it).
SERVICE = """\
import os, signal, sys, time
pidfile, mode = sys.argv[1], sys.argv[2]
def stop(signum, frame):
    time.sleep(0.2)  # finish in-flight work
    with open(pidfile + ".stopped", "w") as fh:
        fh.write("clean")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop if mode == "clean" else signal.SIG_IGN)
with open(pidfile + ".tmp", "w") as fh:
    fh.write(str(os.getpid()))
os.replace(pidfile + ".tmp", pidfile)
deadline = time.monotonic() + 300  # never outlive a test run
while time.monotonic() < deadline:
    time.sleep(0.05)
"""

# The restart command: starts the service detached and returns at once (like systemctl start).
START = """\
import subprocess, sys
subprocess.Popen([sys.executable, "bin/service.py", sys.argv[1], "clean"],
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL, start_new_session=True)
"""


def alive(pid: int) -> bool:
    try:
        with Path(f"/proc/{pid}/stat").open() as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class Fleet:
    """Service instances of one app tree; every process it (or a restart) started is killed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen[bytes]] = []
        (root / "run").mkdir(parents=True, exist_ok=True)

    def pidfile(self, name: str) -> Path:
        return self.root / "run" / f"{name}.pid"

    def start(self, name: str, mode: str = "clean") -> int:
        pidfile = self.pidfile(name)
        proc = subprocess.Popen(
            [sys.executable, "bin/service.py", str(pidfile), mode],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 10
        while read_pid(pidfile) != proc.pid:
            assert time.monotonic() < deadline, f"{name} did not start"
            time.sleep(0.02)
        return proc.pid

    def stop_all(self) -> None:
        pids = {read_pid(p) for p in (self.root / "run").glob("*.pid")}
        pids |= {p.pid for p in self.procs}
        for pid in pids:
            if pid is not None and alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Callable[[], Fleet]]:
    made: list[Fleet] = []

    def make() -> Fleet:
        root = write_app(tmp_path / "app", files={"bin/service.py": SERVICE, "bin/start.py": START})
        made.append(Fleet(root))
        return made[-1]

    yield make
    for f in made:
        f.stop_all()


def drill(fl: Fleet, names: list[str], grace: float = 5, **section: Any) -> CheckResult:
    cfg: dict[str, Any] = {
        "enabled": True,
        "instances": [{"name": n, "pidfile": f"run/{n}.pid"} for n in names],
        "canary": names[0],
        "restart": {"command": [sys.executable, "bin/start.py", str(fl.pidfile(names[0]))]},
        **section,
    }
    profile = {
        CHECK: cfg,
        "thresholds": {"drill_grace_period_s": grace, "drill_restart_max_s": 10},
    }
    return one(audit_local(fl.root, CHECK, profile))


def test_canary_that_exits_on_sigterm_is_ready_and_restarted(fleet: Callable[[], Fleet]) -> None:
    fl = fleet()
    old, other = fl.start("web-1"), fl.start("web-2")
    result = drill(fl, ["web-1", "web-2"])
    assert result.status is Status.READY, result.message
    d = result.details
    assert d["pid"] == old and d["exited_in_grace"] is True and d["killed"] is False
    assert 0.2 <= d["exit_s"] < 5
    assert (fl.root / "run" / "web-1.pid.stopped").read_text() == "clean"
    assert not alive(old)
    new = read_pid(fl.pidfile("web-1"))
    assert new == d["new_pid"] and new != old and new is not None and alive(new)
    assert alive(other), "the other instance must never be touched"
    assert d["others_running"] == [other]


def test_canary_ignoring_sigterm_is_not_ready_then_killed_and_restarted(
    fleet: Callable[[], Fleet],
) -> None:
    fl = fleet()
    old = fl.start("web-1", mode="ignore")
    fl.start("web-2")
    t0 = time.monotonic()
    result = drill(fl, ["web-1", "web-2"], grace=1)
    assert result.status is Status.NOT_READY
    assert "did not exit within its grace period of 1s" in result.message
    assert "killed with SIGKILL" in result.message
    assert result.details["killed"] is True and not alive(old)
    new = read_pid(fl.pidfile("web-1"))
    assert new is not None and new != old and alive(new), "restarted as documented"
    assert time.monotonic() - t0 < 15


def test_profile_with_only_one_instance_is_refused_without_signalling(
    fleet: Callable[[], Fleet],
) -> None:
    fl = fleet()
    pid = fl.start("web-1")
    result = drill(fl, ["web-1"])
    assert result.status is Status.NOT_READY
    assert "drill refused" in result.message and "at least two" in result.message
    assert alive(pid)


def test_drill_is_refused_on_the_host_when_no_other_instance_runs(
    fleet: Callable[[], Fleet],
) -> None:
    fl = fleet()
    pid = fl.start("web-1")  # web-2 is listed but not running
    result = drill(fl, ["web-1", "web-2"])
    assert result.status is Status.NOT_READY
    assert "no other instance of the service is running" in result.message
    assert alive(pid) and read_pid(fl.pidfile("web-1")) == pid


def test_failing_restart_command_says_the_canary_is_down(fleet: Callable[[], Fleet]) -> None:
    fl = fleet()
    fl.start("web-1")
    fl.start("web-2")
    restart = {"command": [sys.executable, "-c", "raise SystemExit(3)"]}
    result = drill(fl, ["web-1", "web-2"], restart=restart)
    assert result.status is Status.NOT_READY
    assert "restart command failed (exit code 3)" in result.message
    assert "DOWN" in result.message


def test_drill_is_skipped_until_enabled(tmp_path: Path) -> None:
    result = one(audit_local(write_app(tmp_path / "app"), CHECK))
    assert result.status is Status.SKIPPED
    assert "graceful_shutdown_drill.enabled" in result.message


@pytest.mark.ssh
def test_a_canary_the_non_root_audit_account_may_not_signal_is_undetermined(
    tmp_path: Path,
) -> None:
    """Over SSH as readiness-nopw (no --sudo), the canary runs as the app user (nobody): the
    kill is refused by the kernel. validate said NOT_READY "the drill could not run on the
    host: PermissionError ...", as if the drill had failed; nothing was signalled."""
    from readiness.loopback import start_fleet
    from tests.services.cli import run_cli
    from tests.services.sshd import NOPW_USER

    def write(index: int, root: Path) -> None:
        write_app(root, files={"bin/service.py": SERVICE})
        (root / ".env").chmod(0o644)
        (root / "run").mkdir()
        subprocess.run(["chown", "nobody", str(root / "run")], check=True, timeout=10)

    procs: list[subprocess.Popen[bytes]] = []
    with start_fleet(1, app_writer=write, extra_users=[NOPW_USER]) as ssh_fleet:
        root = ssh_fleet.hosts[0].app_root
        try:
            for name in ("web-1", "web-2"):
                argv = ["/usr/bin/python3", "bin/service.py", f"run/{name}.pid", "clean"]
                procs.append(
                    subprocess.Popen(
                        ["runuser", "-u", "nobody", "--", *argv],
                        cwd=root,
                        stdin=subprocess.DEVNULL,
                    )
                )
            deadline = time.monotonic() + 10
            while not all(read_pid(root / "run" / f"{n}.pid") for n in ("web-1", "web-2")):
                assert time.monotonic() < deadline, "the instances did not start"
                time.sleep(0.05)
            canary = read_pid(root / "run" / "web-1.pid")
            section = {
                "enabled": True,
                "instances": [{"name": n, "pidfile": f"run/{n}.pid"} for n in ("web-1", "web-2")],
                "canary": "web-1",
                "restart": {"command": ["true"]},
            }
            inventory = ssh_fleet.write_inventory(
                tmp_path / "inventory.yml",
                host_vars=lambda h: {
                    "ansible_user": NOPW_USER,
                    "readiness": {"app_root": str(h.app_root), CHECK: section},
                },
            )
            argv = ["validate", "-i", str(inventory), "--hosts", "fleet", "-c", CHECK]
            res = run_cli(*argv, "--known-hosts", str(ssh_fleet.known_hosts), "--format", "json")
            result = json.loads(res.stdout)["hosts"][0]["checks"][0]
            assert canary is not None and alive(canary), "the canary was stopped"
        finally:  # the services (runuser's children, by their pidfiles), then runuser
            for name in ("web-1", "web-2"):
                pid = read_pid(root / "run" / f"{name}.pid")
                if pid is not None and alive(pid):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            for proc in procs:
                proc.kill()
                proc.wait(timeout=10)
    assert result["status"] == "degraded", result["message"]
    assert "the canary was not signalled" in result["message"]
    assert "runs as nobody, and the probe runs as readiness-nopw" in result["message"]
    assert any("--sudo" in r for r in result["recommendations"])


def test_the_messages_name_the_signal_the_profile_chose(
    fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    """With signal: SIGINT the canary got SIGINT, but the READY message said "exited ...
    after SIGTERM" (and a failed drill "did not exit ... after SIGTERM", "Handle SIGTERM")."""
    from tests.services.cli import local_inventory, validate_check

    fl = fleet()
    old = fl.start("web-1")  # SIGINT: Python's default handler ends it (KeyboardInterrupt)
    fl.start("web-2")
    section = {
        "enabled": True,
        "signal": "SIGINT",
        "instances": [{"name": n, "pidfile": f"run/{n}.pid"} for n in ("web-1", "web-2")],
        "canary": "web-1",
        "restart": {"command": [sys.executable, "bin/start.py", str(fl.pidfile("web-1"))]},
    }
    thresholds = {"drill_grace_period_s": 5, "drill_restart_max_s": 10}
    inventory = local_inventory(
        tmp_path / "inv.yml", fl.root, thresholds=thresholds, **{CHECK: section}
    )
    result = validate_check(inventory, CHECK)
    assert result["status"] == "ready", result["message"]
    assert "after SIGINT" in result["message"] and "SIGTERM" not in result["message"]
    assert not alive(old)
    assert not (fl.root / "run" / "web-1.pid.stopped").exists(), "it was not SIGTERM"


# The app's restart script: records the uid it runs as (the app user controls this file).
RECORDING_RESTART = """\
import os, sys
with open(sys.argv[1], "a") as fh:
    fh.write("%d\\n" % os.getuid())
"""


@pytest.mark.parametrize("how", ["script", "module", "env", "timeout", "make"])
def test_a_restart_through_an_interpreter_runs_the_apps_script_as_the_app_user(
    how: str,
) -> None:
    """`restart: {command: [/usr/bin/python3, bin/restart.py]}` (or `python3 -m restart`) in
    an app tree the app user owns: only argv[0], root's interpreter, was judged, so the
    app's script ran as root under --sudo. The script (for -m/-c the working directory)
    now decides: it runs as its owner. `make restart`: the app's Makefile is the code. Through `env` too (`/usr/bin/env PYTHONUNBUFFERED=1
    python3 bin/restart.py`): `env` is root's and names no script, so the app's script ran
    as root."""
    import pwd
    import shutil
    import tempfile

    from tests.services.cli import local_inventory, validate_check

    base = Path(tempfile.mkdtemp(prefix="readiness-drill-"))
    base.chmod(0o755)
    record = base / "uids"
    record.write_text("")
    record.chmod(0o666)
    makefile = "restart:\n\tpython3 bin/restart.py $(RECORD)\n"
    app = write_app(base / "app", files={"bin/restart.py": RECORDING_RESTART, "Makefile": makefile})
    shutil.copy(app / "bin" / "restart.py", app / "restart.py")
    subprocess.run(["chown", "-R", "nobody", str(app)], check=True, timeout=10)
    run_dir = base / "run"
    run_dir.mkdir()
    sleepers = []
    try:
        for name in ("web-1", "web-2"):  # root's instances, root-written pidfiles
            sleepers.append(subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL))
            (run_dir / f"{name}.pid").write_text(str(sleepers[-1].pid))
        argv = {
            "script": ["/usr/bin/python3", "bin/restart.py", str(record)],
            "module": ["python3", "-m", "restart", str(record)],
            "env": ["/usr/bin/env", "-u", "X", "A=1", "python3", "bin/restart.py", str(record)],
            "timeout": ["timeout", "30", "python3", "bin/restart.py", str(record)],
            "make": ["make", "-s", "restart", f"RECORD={record}"],
        }[how]
        section = {
            "enabled": True,
            "instances": [
                {"name": n, "pidfile": str(run_dir / f"{n}.pid")} for n in ("web-1", "web-2")
            ],
            "canary": "web-1",
            "restart": {"command": argv},
        }
        thresholds = {"drill_grace_period_s": 5, "drill_restart_max_s": 2}
        inventory = local_inventory(
            base / "inv.yml", app, thresholds=thresholds, **{CHECK: section}
        )
        result = validate_check(inventory, CHECK)
        uids = [int(u) for u in record.read_text().split()]
    finally:
        for proc in sleepers:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)
    assert uids == [pwd.getpwnam("nobody").pw_uid], (uids, result["message"])


SWAPPING_CANARY = """\
import os, signal, sys, time
app = sys.argv[1]
def swap(*_):
    # The app user sees its service get SIGTERM, and puts its own script in place of
    # root's restart script: bin/ is its directory.
    os.rename(os.path.join(app, "evil.sh"), os.path.join(app, "bin", "restart.sh"))
    sys.exit(0)
signal.signal(signal.SIGTERM, swap)
with open(os.path.join(app, "run", "web-1.pid"), "w") as fh:
    fh.write(str(os.getpid()))
while True:
    time.sleep(0.1)
"""


def test_a_root_restart_script_in_the_app_users_directory_never_runs_the_apps_code_as_root() -> (
    None
):
    """`restart: {command: [<app>/bin/restart.sh]}`, the script root's (0755) but its
    directory the app user's. Only the script's owner was judged, before the canary was
    signalled; the restart ran seconds later, after the grace period. The app user swapped
    its own script in when its service got SIGTERM, and root ran it. Directories above
    the code count now: the app user's bin/ makes it the app user's code."""
    import pwd
    import shutil
    import tempfile

    from tests.services.cli import local_inventory, validate_check

    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="readiness-drill-"))
    base.chmod(0o755)
    record = base / "uids"
    record.write_text("")
    record.chmod(0o666)
    app = write_app(base / "app", files={"run/keep": ""})
    (app / "bin").mkdir()
    (app / "evil.sh").write_text(f"#!/bin/sh\necho evil-$(id -u) >> {record}\n")
    (app / "evil.sh").chmod(0o755)
    subprocess.run(["chown", "-R", "nobody", str(app)], check=True, timeout=10)
    script = app / "bin" / "restart.sh"
    script.write_text(f"#!/bin/sh\necho root-$(id -u) >> {record}\n")  # root's own script
    script.chmod(0o755)
    as_nobody = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    canary = subprocess.Popen(
        ["python3", "-S", "-c", SWAPPING_CANARY, str(app)], stdin=subprocess.DEVNULL, **as_nobody
    )
    other = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL, **as_nobody)
    try:
        (app / "run" / "web-2.pid").write_text(str(other.pid))
        os.chown(app / "run" / "web-2.pid", nobody.pw_uid, nobody.pw_gid)
        deadline = time.monotonic() + 5
        while not (app / "run" / "web-1.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        section = {
            "enabled": True,
            "instances": [
                {"name": n, "pidfile": str(app / "run" / f"{n}.pid")} for n in ("web-1", "web-2")
            ],
            "canary": "web-1",
            "restart": {"command": [str(script)]},
        }
        thresholds = {"drill_grace_period_s": 5, "drill_restart_max_s": 2}
        inventory = local_inventory(
            base / "inv.yml", app, thresholds=thresholds, **{CHECK: section}
        )
        result = validate_check(inventory, CHECK)
        said = record.read_text().split()
    finally:
        for proc in (canary, other):
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)
    assert "evil-0" not in said, (said, result["message"])
    assert said == [f"evil-{nobody.pw_uid}"], (said, result["message"])
