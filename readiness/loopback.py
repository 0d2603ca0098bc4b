"""A fleet of real OpenSSH servers on loopback addresses, for tests and benchmarks.

Each "host" is its own ``/usr/sbin/sshd -D`` on its own 127.0.x.y address and free port,
with its own ed25519 host key, config, log, HOME with stock dotfiles and app tree. The
fleet also writes a client key, a known_hosts file and an inventory (group ``fleet``).
PID files live under :data:`TEMP_ROOT` so :func:`cleanup_leftovers` can stop what a
crashed run left behind. Everything is stopped by PID, never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "CENSUS_VAR",
    "MAX_HOSTS",
    "SSHD",
    "TEMP_ROOT",
    "LoopbackFleet",
    "LoopbackHost",
    "census",
    "cleanup_leftovers",
    "hang_forced_command",
    "hang_python",
    "keypair",
    "start_fleet",
]

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
TEMP_ROOT = Path(tempfile.gettempdir()) / "readiness-loopback"
MAX_HOSTS = 1000
# Set in every session of a loopback host (``<fleet dir>/<host>``): a process census key.
CENSUS_VAR = "READINESS_LOOPBACK_HOST"
_READY_TIMEOUT = 10.0

AppWriter = Callable[[int, Path], None]


@dataclass
class LoopbackHost:
    name: str
    address: str
    port: int
    dir: Path
    host_key_line: str  # "ssh-ed25519 AAAA..."
    proc: subprocess.Popen[bytes] | None = None
    # Extra session environment (sshd ``SetEnv``) and sshd_config lines for this host only,
    # e.g. ``PATH`` with a hanging ``python3`` shim first, or a ``ForceCommand``.
    env: dict[str, str] = field(default_factory=dict)
    sshd_lines: list[str] = field(default_factory=list)
    # sshd's stack limit (``ulimit -s``, KiB) when set: the kernel's room for a command's
    # arguments and environment is a quarter of it (at least 128 KiB), as on a host whose
    # limits.conf lowers it.
    stack_kib: int | None = None

    @property
    def marker(self) -> str:
        """The value of :data:`CENSUS_VAR` in every session this host starts."""
        return f"{self.dir.parent.parent.name}/{self.name}"

    @property
    def known_hosts_name(self) -> str:
        return f"[{self.address}]:{self.port}"

    @property
    def log(self) -> Path:
        return self.dir / "sshd.log"

    @property
    def app_root(self) -> Path:
        return self.dir / "app"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def census(self) -> list[int]:
        """PIDs of live processes started by this host's sessions (found by their marker).

        Every session of the host gets ``READINESS_LOOPBACK_HOST=<marker>`` in its
        environment, and children inherit it: this finds what a run left behind.
        """
        return census(f"{CENSUS_VAR}={self.marker}")

    def log_since(self, offset: int) -> str:
        """sshd's log from byte ``offset`` on (a size taken earlier with ``log.stat()``): what
        it wrote since then, when earlier runs on the same host wrote to it too."""
        with self.log.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def accepted_logins(self) -> int:
        """sshd's own count of successful logins (independent of the client's counters)."""
        if not self.log.exists():
            return 0
        return self.log.read_text(errors="replace").count("Accepted publickey")


@dataclass
class LoopbackFleet:
    root: Path
    hosts: list[LoopbackHost]
    client_key: Path
    known_hosts: Path
    inventory: Path
    user: str = "root"
    extra_users: list[str] = field(default_factory=list)

    def __enter__(self) -> LoopbackFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_inventory(
        self,
        path: Path | None = None,
        *,
        host_vars: Callable[[LoopbackHost], dict[str, Any]] | None = None,
    ) -> Path:
        """(Re)write an inventory of every host in group ``fleet``; returns its path."""
        hosts: dict[str, Any] = {}
        for h in self.hosts:
            entry: dict[str, Any] = {
                "ansible_host": h.address,
                "ansible_port": h.port,
                "ansible_user": self.user,
                "ansible_ssh_private_key_file": str(self.client_key),
                "readiness": {"app_root": str(h.app_root)},
            }
            entry.update(host_vars(h) if host_vars else {})
            hosts[h.name] = entry
        target = path or self.inventory
        target.write_text(
            yaml.safe_dump({"all": {"children": {"fleet": {"hosts": hosts}}}}, sort_keys=False)
        )
        return target

    def leftovers(self) -> dict[str, list[int]]:
        """Every host's live session processes (see :meth:`LoopbackHost.census`), if any."""
        found = {h.name: h.census() for h in self.hosts}
        return {name: pids for name, pids in found.items() if pids}

    def cpu_seconds(self) -> float:
        """CPU used by every sshd and its reaped children (sessions, shells, probes)."""
        return sum(process_cpu_s(h.pid) for h in self.hosts if h.pid is not None)

    def wait_until_sessions_reaped(self, timeout: float = 10.0) -> bool:
        """Wait (bounded) until no sshd of the fleet has a child left: a connection's CPU
        reaches the listener's cutime/cstime only once the listener has reaped it. False if
        some were still alive at the deadline."""
        listeners = {h.pid for h in self.hosts if h.pid is not None}
        deadline = time.monotonic() + timeout
        while _children_of(listeners):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        for h in self.hosts:
            _stop(h)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)
        if self.root.parent == TEMP_ROOT:  # the shared parent too, once no fleet uses it
            with contextlib.suppress(OSError):
                TEMP_ROOT.rmdir()


def _stat_fields(pid: int | str) -> list[str]:
    """/proc/PID/stat's fields after the command name (which may hold spaces and ")"):
    state, ppid, ..., utime, stime, cutime, cstime (indexes 11-14), ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and its reaped children (utime stime cutime cstime); 0 if the
    process is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return sum(int(v) for v in _stat_fields(pid)[11:15]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def _children_of(parents: set[int]) -> list[int]:
    """Live processes whose parent is one of ``parents`` (a /proc scan: this kernel may lack
    /proc/PID/task/TID/children)."""
    found: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(_stat_fields(proc.name)[1]) in parents:
                found.append(int(proc.name))
    return found


def census(entry: str) -> list[int]:
    """PIDs of live processes whose environment holds ``entry`` (``NAME=value``)."""
    wanted = entry.encode()
    found: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
    return found


def keypair(path: Path) -> str:
    """Write an unencrypted OpenSSH ed25519 private key to ``path``; return the public line."""
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    pub = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return pub.decode()


def hang_python(host: LoopbackHost) -> None:
    """Make ``python3`` on this host hang before any Python code runs (a shim first on PATH).

    The shim leaves a second process behind it in the background, as a wedged
    interpreter start-up (an NFS-stuck import, a hung wrapper) would.
    """
    shim_dir = host.dir / "hung-bin"
    shim_dir.mkdir(exist_ok=True)
    shim = shim_dir / "python3"
    shim.write_text("#!/bin/sh\nsleep 100000 &\nexec sleep 100001\n")
    shim.chmod(0o755)
    host.env["PATH"] = f"{shim_dir}:/usr/local/bin:/usr/bin:/bin"


def hang_forced_command(host: LoopbackHost) -> None:
    """Give this host an sshd ``ForceCommand`` that never ends (our command never runs)."""
    host.sshd_lines.append("ForceCommand while :; do sleep 1; done")


def _address(index: int) -> str:
    return f"127.0.{index // 250}.{2 + index % 250}"


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _stock_home(base: Path) -> Path:
    home = base / "home"
    home.mkdir(exist_ok=True)
    for name in (".bashrc", ".profile"):
        src = Path("/etc/skel") / name
        (home / name).write_text(src.read_text() if src.exists() else "")
    return home


_CONFIG = """\
ListenAddress {address}:{port}
HostKey {dir}/host_ed25519
PidFile {dir}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
UseDNS no
MaxStartups 100:30:200
MaxSessions 20
AllowTcpForwarding local
Subsystem sftp {sftp}
SetEnv HOME={home} {marker}={marker_value}{env}
"""


def _prepare_host(root: Path, index: int, home: Path) -> LoopbackHost:
    name = f"h{index:04d}"
    hdir = root / "hosts" / name
    hdir.mkdir(parents=True)
    hdir.chmod(0o755)
    pub = keypair(hdir / "host_ed25519")
    return LoopbackHost(name, _address(index), 0, hdir, " ".join(pub.split()[:2]))


def _launch(host: LoopbackHost, root: Path, home: Path, extra: Sequence[str] = ()) -> None:
    host.port = _free_port(host.address)
    config = host.dir / "sshd_config"
    config.write_text(
        _CONFIG.format(
            address=host.address,
            port=host.port,
            dir=host.dir,
            root=root,
            sftp=SFTP_SERVER,
            home=home,
            marker=CENSUS_VAR,
            marker_value=host.marker,
            env="".join(f" {k}={v}" for k, v in host.env.items()),
        )
        + "".join(f"{line}\n" for line in [*extra, *host.sshd_lines])
    )
    argv = [SSHD, "-D", "-e", "-f", str(config)]
    if host.stack_kib is not None:  # the shell execs sshd: same PID, the lower limit
        argv = ["/bin/sh", "-c", 'ulimit -s "$0" && exec "$@"', str(host.stack_kib), *argv]
    with host.log.open("ab") as log:
        host.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    (root / "pids" / f"{host.name}.pid").write_text(str(host.proc.pid))


def _ready(host: LoopbackHost, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if host.proc is not None and host.proc.poll() is not None:
            return False
        with (
            contextlib.suppress(OSError),
            socket.create_connection((host.address, host.port), timeout=1) as s,
        ):
            s.settimeout(max(0.1, deadline - time.monotonic()))
            if s.recv(64).startswith(b"SSH-2.0-"):
                return True
        time.sleep(0.02)
    return False


def _start_one(host: LoopbackHost, root: Path, home: Path, extra: Sequence[str] = ()) -> None:
    """Start sshd, retrying on a new port if another process took ours meanwhile."""
    for _attempt in range(3):
        _launch(host, root, home, extra)
        if _ready(host, time.monotonic() + _READY_TIMEOUT):
            return
        _stop(host)
    tail = host.log.read_text(errors="replace")[-800:] if host.log.exists() else ""
    raise RuntimeError(f"sshd for {host.name} on {host.address} did not start: {tail}")


def start_fleet(
    n: int,
    *,
    app_writer: AppWriter | None = None,
    user: str = "root",
    extra_users: Sequence[str] = (),
    workers: int = 8,
    sshd_options: Sequence[str] = (),
    host_setup: Callable[[int, LoopbackHost], None] | None = None,
) -> LoopbackFleet:
    """Start ``n`` sshd hosts; the caller must ``stop()`` the fleet (or use ``with``).

    ``sshd_options`` are extra sshd_config lines for every host (e.g. ``LogLevel DEBUG1``);
    ``host_setup(index, host)`` may set one host's ``env`` and ``sshd_lines`` before it starts.
    """
    if not 1 <= n <= MAX_HOSTS:
        raise ValueError(f"fleet size must be 1..{MAX_HOSTS}, got {n}")
    if not Path(SSHD).exists():
        raise RuntimeError(f"{SSHD} not found: apt-get install -y openssh-server")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    root = _fleet_dir()
    root.chmod(0o755)  # non-root test users read authorized_keys and their app tree
    (root / "pids").mkdir()
    home = _stock_home(root)
    client_key = root / "client_ed25519"
    (root / "authorized_keys").write_text(keypair(client_key) + "\n")
    (root / "authorized_keys").chmod(0o644)
    fleet = LoopbackFleet(
        root, [], client_key, root / "known_hosts", root / "inventory.yml", user, list(extra_users)
    )
    try:
        fleet.hosts = [_prepare_host(root, i, home) for i in range(n)]
        for i, h in enumerate(fleet.hosts):
            if app_writer is not None:
                app_writer(i, h.app_root)
            if host_setup is not None:
                host_setup(i, h)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(lambda h: _start_one(h, root, home, sshd_options), fleet.hosts))
    except BaseException:
        fleet.stop()
        raise
    fleet.known_hosts.write_text(
        "".join(f"{h.known_hosts_name} {h.host_key_line}\n" for h in fleet.hosts)
    )
    fleet.write_inventory()
    return fleet


def stop_process_groups(procs: Sequence[subprocess.Popen[Any]], *, grace_s: float) -> None:
    """SIGTERM the process group of each of ``procs`` (each started with
    ``start_new_session``), then SIGKILL a group whose leader has not ended within
    ``grace_s``. All are asked first, so they stop together, not one grace period each."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _stop(host: LoopbackHost) -> None:
    if host.proc is not None:
        stop_process_groups([host.proc], grace_s=5)
    host.proc = None


def _fleet_dir() -> Path:
    """A new fleet directory under TEMP_ROOT; a fleet stopping meanwhile may remove an empty
    TEMP_ROOT between the mkdir and the mkdtemp, so that is tried again."""
    for attempt in range(3):
        TEMP_ROOT.mkdir(exist_ok=True)
        try:
            return Path(tempfile.mkdtemp(prefix="fleet-", dir=TEMP_ROOT))
        except FileNotFoundError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def cleanup_leftovers(base: Path = TEMP_ROOT) -> int:
    """Stop sshd processes a crashed run left under ``base`` (matched by PID and config path)."""
    stopped = 0
    for pidfile in base.glob("fleet-*/pids/*.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if str(pidfile.parent.parent).encode() in cmdline:
                os.killpg(pid, signal.SIGKILL)
                stopped += 1
    for fleet_dir in base.glob("fleet-*"):
        with contextlib.suppress(OSError):
            shutil.rmtree(fleet_dir)
    return stopped
