"""The inline first request on a host whose environment leaves it no room (E2BIG).

The first probe request travels in the exec request (base64 arguments after the bootstrap).
A command's arguments share the kernel's room (ARG_MAX: a quarter of the stack limit, at
least 128 KiB) with its environment; a host whose login environment is huge fails that
exec before Python runs. Two places can fail, both reproduced here on real sshd hosts:
sshd's own exec of the shell (an environment sshd builds: ``SetEnv``, PAM, ~/.ssh/environment;
"/bin/bash: Argument list too long", exit 1) and the shell's exec of python3 (exports in the
shell's rc file; "bash: line 1: /usr/bin/python3: Argument list too long", exit 126). The
probe then sends the same request on stdin, once, on the same connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from readiness.bench import write_example_app
from readiness.collect import BootstrapRun, argv_too_long
from readiness.loopback import LoopbackFleet, LoopbackHost, start_fleet

from .services.sshd import commands_started, validate_fleet_json

# Exports as large as the room left allows, when the host's flag file exists; the rest of
# the stock rc file (it returns early in a non-interactive shell) follows unchanged.
_BIG_RC = """\
if [ -e "$HOME/big-env-${READINESS_LOOPBACK_HOST##*/}" ]; then
  n=$(( $(getconf ARG_MAX) - 16384 - $(env | wc -c) ))
  x=$(head -c 100000 /dev/zero | tr '\\0' x); i=0
  while [ "$n" -gt 100100 ]; do export BIG$i=$x; n=$((n - 100007)); i=$((i + 1)); done
  export BIGLAST=$(head -c "$n" /dev/zero | tr '\\0' y)
  unset x n i
fi
"""

KINDS = ("plain", "big_rc", "big_sshd_env", "python_cannot_run")


def _setup(index: int, host: LoopbackHost) -> None:
    kind = KINDS[index]
    if kind == "big_sshd_env":
        # sshd's own exec of the shell: its room is 128 KiB under this stack limit, and
        # sshd's environment holds ~110 KB (SetEnv cannot carry megabytes).
        host.stack_kib = 512
        host.env["BIG"] = "x" * 110_000
    elif kind == "python_cannot_run":
        shim_dir = host.dir / "bin"
        shim_dir.mkdir()
        # Its interpreter is a directory: the exec fails with EACCES (exit 126, as for E2BIG).
        shim = shim_dir / "python3"
        shim.write_text(f"#!{shim_dir}\n")
        shim.chmod(0o755)
        host.env["PATH"] = f"{shim_dir}:/usr/local/bin:/usr/bin:/bin"


@pytest.fixture(scope="module")
def e2big_fleet() -> Iterator[LoopbackFleet]:
    fleet = start_fleet(
        len(KINDS),
        host_setup=_setup,
        sshd_options=["LogLevel VERBOSE"],  # "Starting session: command ..." per command
    )
    try:
        home = fleet.root / "home"
        (home / ".bashrc").write_text(_BIG_RC + (home / ".bashrc").read_text())
        # Every host audits the same tree, the bundled example (a ~30 KB first request):
        # their reports differ only by the host's name.
        app = fleet.root / "example"
        write_example_app(0, app)
        app.chmod(0o755)
        fleet.write_inventory(host_vars=lambda _h: {"readiness": {"app_root": str(app)}})
        yield fleet
    finally:
        fleet.stop()


def _validate(fleet: LoopbackFleet) -> dict[str, dict[str, Any]]:
    before = {h.name: commands_started(h) for h in fleet.hosts}
    proc = validate_fleet_json(fleet)
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    hosts = {h["host"]: h for h in doc["hosts"]}
    for h in fleet.hosts:
        hosts[h.name]["commands"] = commands_started(h) - before[h.name]
    return hosts


def _outcome(host: dict[str, Any]) -> str:
    """Every check's verdict, message, details and advice; the host's name (tunnels name
    the host they go through) made neutral, so hosts on the same tree compare equal."""
    results = [
        (r["check_name"], r["status"], r["message"], r["details"], r["recommendations"])
        for r in host["checks"]
    ]
    return json.dumps(results, sort_keys=True).replace(host["host"], "<host>")


def test_a_host_whose_environment_leaves_no_room_gets_the_request_on_stdin(
    e2big_fleet: LoopbackFleet,
) -> None:
    plain, big_rc, big_sshd, no_python = e2big_fleet.hosts
    flag = e2big_fleet.root / "home" / f"big-env-{big_rc.name}"
    flag.touch()
    try:
        big = _validate(e2big_fleet)
    finally:
        flag.unlink()
    normal = _validate(e2big_fleet)

    # The reference host: one command, a real audit.
    assert normal[plain.name]["commands"] == big[plain.name]["commands"] == 1
    reference = _outcome(normal[plain.name])
    statuses = {r["status"] for r in normal[plain.name]["checks"]}
    assert len(normal[plain.name]["checks"]) == 8 and not statuses & {"error", "unreachable"}
    # The shell's exec of python3 failed (exit 126): retried on stdin, same verdicts as
    # the same host without the huge environment, which needs one command.
    assert big[big_rc.name]["commands"] == 2
    assert normal[big_rc.name]["commands"] == 1
    assert _outcome(big[big_rc.name]) == _outcome(normal[big_rc.name]) == reference
    # sshd's exec of the shell failed (exit 1): retried on stdin, same verdicts.
    assert big[big_sshd.name]["commands"] == normal[big_sshd.name]["commands"] == 2
    assert _outcome(big[big_sshd.name]) == reference
    # Another failure before Python ran (exit 126, "bad interpreter: Permission denied")
    # is not retried.
    for run in (big, normal):
        assert run[no_python.name]["commands"] == 1
        assert run[no_python.name]["status"] == "error"
        assert "Permission denied" in run[no_python.name]["reason"]


def _run(code: int, messages: str, *, started: bool = False, **kw: Any) -> BootstrapRun:
    base: dict[str, Any] = {"timed_out": False, "truncated": False, "duration_s": 0.1}
    return BootstrapRun(code, b"", messages, started=started, **{**base, **kw})


def test_only_an_exec_refused_for_its_argument_list_counts_as_too_long() -> None:
    assert argv_too_long(_run(1, "/bin/bash: Argument list too long"))
    assert argv_too_long(_run(126, "bash: line 1: /usr/bin/python3: Argument list too long"))
    # Python ran (it printed the frame): whatever it said, the request arrived.
    assert not argv_too_long(_run(1, "OSError: Argument list too long", started=True))
    assert not argv_too_long(_run(126, "bash: line 1: /x/python3: Permission denied"))
    assert not argv_too_long(_run(127, "bash: line 1: python3: command not found"))
    assert not argv_too_long(_run(2, "Argument list too long"))
    assert not argv_too_long(_run(1, "Argument list too long", timed_out=True))
    assert not argv_too_long(_run(1, "Argument list too long", truncated=True))
