"""The probe's reads: an app user's symlink never makes a root audit read what it cannot.

readiness runs as root (locally, and over loopback sshd as root and with ``--sudo``); the
app tree belongs to ``nobody``, who turns the settings file, the env file, the README and
the alert rules into links to root-only 0600 files holding a canary. The canary must
appear nowhere (report, details, saved file) and every check must say it refused
(docs/security.md, "6. Reads of app-controlled paths").
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from readiness.model import FleetReport, Status
from readiness.probe import op_file, op_list, op_process, op_terminate
from tests.services.apps import audit_local, write_app

from .hostile import chown_tree

CANARY = "CANARY-root-only-9f3e2a"
BIN = Path(sys.executable).parent
SAVE_JSON = ("--format", "json", "--save")
CHECKS = ["configuration", "environment", "documentation", "monitoring"]
LINKED = {
    "settings/mahavishnu.yaml": "settings",
    ".env": "env",
    "README.md": "readme",
    "monitoring/rules.yml": "rules",
}


def _root_only(directory: Path, name: str) -> Path:
    """A root-owned 0600 file in a root-only 0700 directory, holding the canary."""
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)
    path = directory / name
    path.write_text(f"secret: {CANARY}\n{CANARY}=1\n# {CANARY}\n")
    path.chmod(0o600)
    return path


def _hostile_app(shared_root: Path) -> Path:
    """nobody's app tree whose settings, .env, README and alert rules link to root files."""
    root = write_app(
        shared_root / "app", files={"README.md": "# app\n", "monitoring/rules.yml": "groups: []\n"}
    )
    vault = shared_root / "root-only"
    for rel, name in LINKED.items():
        (root / rel).unlink()
        (root / rel).symlink_to(_root_only(vault, name))
    chown_tree(root)
    return root


PROFILE = {"alert_rules_file": "monitoring/rules.yml", "readme_file": "README.md"}


def _assert_refused_everywhere(report: FleetReport) -> None:
    text = json.dumps(report.to_dict(), default=str)
    assert CANARY not in text
    for result in report.results:
        assert result.status is not Status.READY, (result.check_name, result.message)
        refused = result.details.get("refused")
        assert refused, (result.check_name, result.message, result.details)
        assert any("symlink to a file the app user (nobody) cannot read" in r for r in refused)
    by = {r.check_name: r for r in report.results}
    assert any("README.md" in r for r in by["documentation"].details["refused"])
    assert any("rules.yml" in r for r in by["monitoring"].details["refused"])
    assert any(".env" in r for r in by["environment"].details["refused"])


def test_links_to_root_only_files_are_refused_never_read(shared_root: Path) -> None:
    root = _hostile_app(shared_root)
    report = audit_local(root, CHECKS, PROFILE)
    _assert_refused_everywhere(report)
    ready_ones = [r for r in report.results if r.status is Status.READY]
    assert ready_ones == []


def test_the_command_line_report_and_saved_file_hold_no_canary(shared_root: Path) -> None:
    root = _hostile_app(shared_root)
    inv = shared_root / "inv.yml"
    readiness = {"app_root": str(root), **PROFILE}
    inv.write_text(
        json.dumps(
            {"all": {"hosts": {"local": {"ansible_connection": "local", "readiness": readiness}}}}
        )
    )
    saved = shared_root / "report.json"
    res = subprocess.run(
        [
            str(BIN / "readiness"),
            "validate",
            "-i",
            str(inv),
            "-c",
            ",".join(CHECKS),
            *SAVE_JSON,
            str(saved),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
        cwd=shared_root,
    )
    assert res.returncode == 1, res.stderr
    assert CANARY not in res.stdout + res.stderr
    assert CANARY not in saved.read_text()
    data = json.loads(res.stdout)
    for check in data["hosts"][0]["checks"]:
        assert check["status"] != "ready", check
        assert "refused" in json.dumps(check["details"]), check


def test_the_probe_refuses_each_read_op_through_a_foreign_link(shared_root: Path) -> None:
    root = _hostile_app(shared_root)
    vault_link = root / "docs"
    vault_link.symlink_to(shared_root / "root-only")
    os.lchown(vault_link, *_nobody())
    for rel in LINKED:
        fact = op_file({"path": str(root / rel)})
        assert "text" not in fact and fact["read_refused"].endswith("cannot read"), fact
    listing = op_list({"path": str(vault_link)})
    assert "entries" not in listing and "read_refused" in listing
    # A link to a directory on the way is judged the same: nobody cannot search the vault.
    inner = op_file({"path": str(vault_link / "settings")})
    assert "text" not in inner and "read_refused" in inner


def _nobody() -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


# ---------------------------------------------------------------------------------------------
# Near misses that must keep working.


def test_a_link_inside_the_app_tree_to_another_app_file_is_read(shared_root: Path) -> None:
    """``current/.env -> ../shared/.env``, both nobody's: nobody can read it, so root may."""
    root = write_app(shared_root / "app")
    (root / "shared").mkdir()
    (root / ".env").rename(root / "shared" / ".env")
    (root / ".env").symlink_to("shared/.env")
    chown_tree(root)
    fact = op_file({"path": str(root / ".env")})
    assert "MAHAVISHNU_AUTH__SECRET" in fact["text"] and "read_refused" not in fact
    report = audit_local(root, ["environment"])
    assert report.results[0].status is Status.READY, report.results[0].message


def test_a_root_owned_link_in_a_root_owned_directory_is_followed(shared_root: Path) -> None:
    """Deployments where root manages ``current -> releases/N`` (and root-only files)."""
    base = shared_root / "srv"
    release = base / "releases" / "7"
    write_app(release)
    (base / "current").symlink_to("releases/7")
    report = audit_local(base / "current", ["environment"])
    assert report.results[0].status is Status.READY, report.results[0].message
    assert "refused" not in report.results[0].details
    secret = _root_only(shared_root / "vault", "env")
    (shared_root / "vault").chmod(0o755)
    (release / ".env").unlink()
    (release / ".env").symlink_to(secret)
    assert CANARY in op_file({"path": str(base / "current" / ".env")})["text"]


def test_run_as_the_app_user_itself_its_own_links_are_read(shared_root: Path) -> None:
    """The probe as nobody: nobody's links are nobody's reads; the root file stays closed."""
    root = _hostile_app(shared_root)
    (root / "own.yaml").write_text("mine: 1\n")
    (root / "link.yaml").symlink_to("own.yaml")
    chown_tree(root)
    # The probe's source on stdin (nobody may not read the checkout), as the controller ships it.
    code = "import json,sys; exec(sys.stdin.read()); print(json.dumps([op_file({'path': p}) for p in sys.argv[1:]]))"
    paths = [str(root / "link.yaml"), str(root / "settings/mahavishnu.yaml")]
    res = subprocess.run(
        ["runuser", "-u", "nobody", "--", "python3", "-S", "-c", code, *paths],
        input=Path(op_file.__code__.co_filename)
        .read_text()
        .replace('if __name__ == "__main__":', "if False:"),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd="/",
    )
    own, shadowed = json.loads(res.stdout)
    assert own["text"] == "mine: 1\n"
    assert CANARY not in res.stdout and "text" not in shadowed


# ---------------------------------------------------------------------------------------------
# Over loopback sshd, as root (login and --sudo).


@pytest.mark.ssh
@pytest.mark.parametrize("sudo", [False, True], ids=["root-login", "sudo"])
def test_over_ssh_as_root_links_to_root_only_files_are_refused(
    ssh_fleet: Any, ssh_options: Callable[..., Any], shared_root: Path, sudo: bool
) -> None:
    from readiness import validate
    from tests.services.sshd import host_entry, write_inventory

    root = _hostile_app(shared_root)
    entry = host_entry(ssh_fleet, ssh_fleet.hosts[3])
    entry["readiness"] = {"app_root": str(root), **PROFILE}
    inventory = write_inventory(shared_root / "inv.yml", {"h": entry})
    report = validate("h", CHECKS, inventory=str(inventory), options=ssh_options(sudo=sudo))
    assert report.hosts[0].address != "local"
    _assert_refused_everywhere(report)


# ---------------------------------------------------------------------------------------------
# The pidfile is the app's too: it may name any process on the host.


@contextlib.contextmanager
def _process(*, as_nobody: bool = False) -> Iterator[int]:
    """The pid of a sleeping process whose environment holds the canary (root's, or nobody's)."""
    argv = ["sleep", "30"]
    if as_nobody:
        argv = ["runuser", "-u", "nobody", "--", "env", f"MAHAVISHNU_PLANTED={CANARY}", *argv]
    env = {"PATH": os.environ["PATH"], "MAHAVISHNU_PLANTED": CANARY}
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        pid = _sleeping_pid(proc.pid)  # runuser forks: the sleep may be its child
        while pid is None and time.monotonic() < deadline:
            time.sleep(0.02)
            pid = _sleeping_pid(proc.pid)
        assert pid is not None, "the planted process did not start"
        yield pid
    finally:
        proc.kill()
        proc.wait(timeout=5)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _sleeping_pid(pid: int) -> int | None:
    todo = [pid]
    for _ in range(4):
        for p in todo:
            try:
                if Path(f"/proc/{p}/comm").read_text().strip() == "sleep":
                    return p
            except OSError:
                continue
        children = []
        for p in todo:
            for task in Path(f"/proc/{p}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    children += [int(c) for c in task.read_text().split()]
        todo = children
    return None


def _pidfile_app(shared_root: Path, pid: int) -> Path:
    root = write_app(shared_root / "app", files={"run/app.pid": f"{pid}\n"})
    chown_tree(root)
    return root


def test_a_pidfile_naming_a_root_process_does_not_give_root_its_environment(
    shared_root: Path,
) -> None:
    with _process() as pid:
        root = _pidfile_app(shared_root, pid)
        fact = op_process({"pidfile": str(root / "run/app.pid"), "env_prefixes": ["MAHAVISHNU_"]})
        assert fact["environ"] is None and "runs as root" in fact["read_refused"], fact
        report = audit_local(root, ["environment"], {"pidfile": "run/app.pid"})
    assert CANARY not in json.dumps(report.to_dict(), default=str)
    result = report.results[0]
    assert result.status is not Status.READY
    assert any("belongs to nobody" in r for r in result.details["refused"])


def test_the_drill_never_signals_a_process_a_foreign_pidfile_names(shared_root: Path) -> None:
    with _process() as pid:
        root = _pidfile_app(shared_root, pid)
        fact = op_terminate(
            {"target": {"pidfile": str(root / "run/app.pid")}, "min_others": 0, "grace": 1}
        )
        assert fact["signalled"] is False and "runs as root" in fact["refused"], fact
        assert fact["foreign_pidfile"] == str(root / "run/app.pid"), fact
        assert _running(pid), "root's process was signalled on nobody's word"


def test_the_drill_says_which_pidfile_it_refused_and_why_and_is_never_ready(
    shared_root: Path,
) -> None:
    """Through ``readiness validate``: another instance runs (so the drill would go ahead),
    but the canary's pidfile, written by nobody, names a root process."""
    with _process() as canary, _process() as other:
        root = write_app(
            shared_root / "app",
            files={"run/app.pid": f"{canary}\n", "run/web-2.pid": f"{other}\n"},
        )
        chown_tree(root)
        drill = {
            "enabled": True,
            "instances": [
                {"name": "web-1", "pidfile": "run/app.pid"},
                {"name": "web-2", "pidfile": "run/web-2.pid"},
            ],
            "canary": "web-1",
            "restart": {"command": ["true"]},
        }
        host = {
            "ansible_connection": "local",
            "readiness": {"app_root": str(root), "graceful_shutdown_drill": drill},
        }
        inventory = shared_root / "inventory.yml"
        inventory.write_text(json.dumps({"all": {"hosts": {"canary-host": host}}}))
        audit = ["-c", "graceful_shutdown_drill", "--format", "json", "-q", "--store", "none"]
        done = subprocess.run(
            [str(BIN / "readiness"), "validate", "-i", str(inventory), "-H", "all", *audit],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert _running(canary) and _running(other), "a process was signalled"
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["hosts"][0]["checks"][0]
    assert result["status"] == "degraded", result
    said = " ".join(result["details"]["warnings"])
    assert f"pidfile {root}/run/app.pid names process {canary}" in said, said
    assert f"the pidfile belongs to nobody, but process {canary} runs as root" in said, said
    assert "drill not run" in said and "was not tested" in said, said
    assert "take the service down" not in json.dumps(result), result


def _roots_pidfile(shared_root: Path, name: str, pid: int) -> Path:
    """A root daemon's own pidfile: root-owned, world-readable, in a root-owned directory."""
    run = shared_root / "root-run"
    run.mkdir(mode=0o755, exist_ok=True)
    path = run / name
    path.write_text(f"{pid}\n")
    path.chmod(0o644)
    return path


def test_a_pidfile_linked_to_a_root_daemons_pidfile_gives_neither_environment_nor_signal(
    shared_root: Path,
) -> None:
    """nobody makes its pidfiles links to root daemons' own pidfiles (``/run/sshd.pid`` is
    root's and world-readable). The file read is root's, but the link is nobody's word:
    root's environment was compared with the env file (its secret's length shown) and the
    drill SIGTERMed root's daemon. Through ``readiness validate``."""
    with _process() as canary, _process() as other:
        root = write_app(shared_root / "app", files={"run/keep": ""})
        (root / "run/app.pid").symlink_to(_roots_pidfile(shared_root, "daemon.pid", canary))
        (root / "run/web-2.pid").symlink_to(_roots_pidfile(shared_root, "other.pid", other))
        chown_tree(root)
        drill = {
            "enabled": True,
            "instances": [
                {"name": "web-1", "pidfile": "run/app.pid"},
                {"name": "web-2", "pidfile": "run/web-2.pid"},
            ],
            "canary": "web-1",
            "restart": {"command": ["true"]},
        }
        readiness = {
            "app_root": str(root),
            "pidfile": "run/app.pid",
            "graceful_shutdown_drill": drill,
            "thresholds": {"drill_grace_period_s": 2, "drill_restart_max_s": 2},
        }
        inventory = shared_root / "inventory.yml"
        host = {"ansible_connection": "local", "readiness": readiness}
        inventory.write_text(json.dumps({"all": {"hosts": {"h": host}}}))
        checks = "environment,graceful_shutdown_drill"
        audit = ["-c", checks, "--format", "json", "-q", "--store", "none"]
        done = subprocess.run(
            [str(BIN / "readiness"), "validate", "-i", str(inventory), "-H", "all", *audit],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert _running(canary) and _running(other), "root's daemon was signalled"
    assert CANARY not in done.stdout + done.stderr
    by = {c["check_name"]: c for c in json.loads(done.stdout)["hosts"][0]["checks"]}
    env = by["environment"]
    assert "process environment" not in json.dumps(env["details"]), env
    assert any("runs as root" in r for r in env["details"]["refused"]), env
    drilled = by["graceful_shutdown_drill"]
    assert drilled["status"] == "degraded", drilled
    said = " ".join(drilled["details"]["warnings"])
    assert f"the pidfile belongs to nobody, but process {canary} runs as root" in said, said


def test_a_pidfile_flipped_between_reads_never_gets_a_root_process_signalled(
    shared_root: Path,
) -> None:
    """The drill read the canary's pidfile twice: once for the PID it signals, once to
    judge its writer, and judged only when both named the same process. nobody flips its
    pidfile between root's PID and its own; signal 0 shows what would have been sent."""
    with _process() as victim, _process(as_nobody=True) as own:
        root = write_app(shared_root / "app", files={"run/keep": ""})
        run = root / "run"
        chown_tree(root)
        flip = (
            "import os\n"
            "a, b = 'a.tmp', 'b.tmp'\n"
            f"open(a, 'w').write('{victim}\\n'); open(b, 'w').write('{own}\\n')\n"
            "while True:\n"
            "    os.link(a, 'x.tmp'); os.rename('x.tmp', 'app.pid')\n"
            "    os.link(b, 'x.tmp'); os.rename('x.tmp', 'app.pid')\n"
        )
        uid, gid = _nobody()
        racer = subprocess.Popen(  # no runuser: it forks, and kill() must end the racer itself
            ["python3", "-S", "-c", flip],
            cwd=run,
            stdin=subprocess.DEVNULL,
            user=uid,
            group=gid,
            extra_groups=[],
        )
        try:
            deadline = time.monotonic() + 5
            while not (run / "app.pid").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            spec = {
                "target": {"pidfile": str(run / "app.pid")},
                "min_others": 0,
                "grace": 0,
                "kill_after": False,
                "signal": 0,
            }
            sent = [op_terminate(spec) for _ in range(400)]
        finally:
            racer.kill()
            racer.wait(timeout=5)
    wrong = [f for f in sent if f["pid"] == victim and f["signalled"]]
    assert not wrong, wrong[0]
    assert any(f["pid"] == victim and f.get("foreign_pidfile") for f in sent)


def test_a_pidfile_naming_the_app_users_own_process_is_read(shared_root: Path) -> None:
    with _process(as_nobody=True) as pid:
        root = _pidfile_app(shared_root, pid)
        fact = op_process({"pidfile": str(root / "run/app.pid"), "env_prefixes": ["MAHAVISHNU_"]})
    assert fact["environ"] == {"MAHAVISHNU_PLANTED": CANARY}, fact
    assert "read_refused" not in fact
