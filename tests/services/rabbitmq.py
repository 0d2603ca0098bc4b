"""A real rabbitmq-server on loopback with a user and a password: the AMQP broker of
tests/engine/test_rabbitmq_engine.py.

Everything is private to the test: its own epmd (Erlang's port mapper) on a free
loopback port instead of the shared daemon on 4369 (ERL_EPMD_PORT points the node at
it), a unique node name, the AMQP listener and the Erlang distribution port on
127.0.0.1, the database, logs, configuration and Erlang cookie (HOME) under a fresh
directory in $TMPDIR. Both processes run in their own process group with pidfiles under
PIDFILE_ROOT (``.ci/run``'s exit trap kills what a dying pytest left), and are killed
(group by group, by PID) on the way out. A missing rabbitmq-server fails the test: it is
installed by ``.ci/run``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .daemon import PIDFILE_ROOT
from .ports import free_ports

__all__ = ["RABBITMQ_SERVER", "RabbitMQServer", "rabbitmq_server"]

# the server script itself: /usr/sbin/rabbitmq-server would `su rabbitmq`, which cannot
# write this test's directories
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
EPMD = "/usr/bin/epmd"
START_WAIT_S = 90.0  # Erlang boots slowly on a loaded 2-core machine


@dataclass
class RabbitMQServer:
    port: int
    user: str
    password: str
    dir: Path

    @property
    def url(self) -> str:
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{self.port}//"

    def answers(self) -> bool:
        """The AMQP listener answers a protocol header with Connection.Start (a method frame)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"AMQP\x00\x00\x09\x01")
                s.settimeout(2)
                return s.recv(1)[:1] == b"\x01"
        except OSError:
            return False


def _epmd_answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@contextmanager
def _group(
    name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` in its own process group (rabbitmq-server is a shell script with an Erlang VM
    and helpers below it); the whole group is stopped by PID on exit."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=log_path.parent,
            start_new_session=True,
        )
    PIDFILE_ROOT.mkdir(parents=True, exist_ok=True)
    pidfile = PIDFILE_ROOT / f"{name}-{proc.pid}.pid"
    pidfile.write_text(f"{proc.pid}\n")
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        # the script may be gone while the VM below it is not: kill what is left of the group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        pidfile.unlink(missing_ok=True)


def _wait(what: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_WAIT_S
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"{what} not ready within {START_WAIT_S:.0f}s:\n{tail}")
        time.sleep(0.2)


@contextmanager
def rabbitmq_server() -> Iterator[RabbitMQServer]:
    for binary in (RABBITMQ_SERVER, EPMD):
        if not Path(binary).exists():
            pytest.fail(f"{binary} not found: apt-get install -y rabbitmq-server (see .ci/run)")
    workdir = Path(tempfile.mkdtemp(prefix="rabbitmq-"))
    node_port, epmd_port, dist_port = free_ports(3)  # found together: three different ports
    server = RabbitMQServer(node_port, "readiness", "canary-" + secrets.token_hex(12), workdir)
    (workdir / "rabbitmq.conf").write_text(
        f"default_user = {server.user}\n"
        f"default_pass = {server.password}\n"
        "default_vhost = /\n"
        "log.console = true\n"
        "log.console.level = warning\n"
        "log.file = false\n"
    )
    (workdir / "enabled_plugins").write_text("[].\n")
    (workdir / "rabbitmq-env.conf").write_text("")
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": str(workdir),  # the Erlang cookie is created here
        "LANG": "C.UTF-8",
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "ERL_EPMD_PORT": str(epmd_port),
        "RABBITMQ_NODENAME": f"readiness-{secrets.token_hex(4)}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(server.port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(workdir / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(workdir / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(workdir / "log"),
        "RABBITMQ_PID_FILE": str(workdir / "rabbitmq.pid"),
    }
    try:
        epmd_argv = [EPMD, "-address", "127.0.0.1", "-port", str(epmd_port)]
        with _group("epmd", epmd_argv, workdir / "epmd.log", env) as epmd:
            _wait("epmd", lambda: _epmd_answers(epmd_port), epmd, workdir / "epmd.log")
            log = workdir / "rabbitmq.log"
            with _group("rabbitmq", [RABBITMQ_SERVER], log, env) as proc:
                _wait("rabbitmq-server", server.answers, proc, log)
                yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
