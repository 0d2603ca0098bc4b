"""Throwaway PostgreSQL 15 clusters on 127.0.0.1, started by the test suite itself.

``initdb``/``pg_ctl`` refuse to run as root, so they run as the ``postgres`` OS
user (``runuser``) on a ``mkdtemp`` dir chowned to it. Admin SQL goes over the
cluster's own unix socket (trust); test roles connect over TCP with real
passwords (scram-sha-256), so authentication failures are real. Every cluster
is stopped with ``pg_ctl -m immediate`` at teardown, also when a test fails.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from .ports import free_ports

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
# Known root for every cluster's dir (pidfile inside), so an exit trap can find leftovers.
PG_TMP_ROOT = Path(tempfile.gettempdir()) / "readiness-test-services"
_START_ATTEMPTS = 3


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, for a server to bind (:func:`free_ports`)."""
    return free_ports(1, host)[0]


def _as_postgres(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", PG_USER, "--", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class Role:
    """A login role with a real password (auth failures in tests are real ones)."""

    name: str
    password: str


@dataclass
class PgCluster:
    """One PostgreSQL cluster: data dir, unix socket dir and TCP port on 127.0.0.1."""

    root: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    @property
    def running(self) -> bool:
        res = _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "status", timeout=20)
        return res.returncode == 0

    def start(self) -> None:
        # fsync=off only: with synchronous_commit=off an immediate stop would lose commits.
        opts = (
            f"-c listen_addresses={self.host} -c port={self.port} "
            f"-c unix_socket_directories={self.socket_dir} -c fsync=off -c max_connections=40"
        )
        res = _as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.root / "server.log"),
            "-o",
            opts,
            "-t",
            "30",
            "-w",
            "start",
        )
        if res.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pg_ctl start failed: {res.stdout}{res.stderr}\n{log}")

    def stop(self) -> None:
        _as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"
        )

    def admin(
        self, query: str | sql.SQL | sql.Composed, params: Any = None, *, db: str = "postgres"
    ) -> Any:
        """Run admin SQL as the superuser over the unix socket; returns fetched rows (or [])."""
        with psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=PG_USER,
            dbname=db,
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def create_role(self, name: str, password: str, *, login: bool = True) -> None:
        self.admin(
            sql.SQL("CREATE ROLE {} WITH {} PASSWORD {}").format(
                sql.Identifier(name),
                sql.SQL("LOGIN" if login else "NOLOGIN"),
                sql.Literal(password),
            )
        )

    def new_role(self, prefix: str) -> Role:
        """A fresh login role ``<prefix>_<random>`` with a random password."""
        role = Role(f"{prefix}_{uuid.uuid4().hex[:8]}", f"pw-{secrets.token_urlsafe(18)}")
        self.create_role(role.name, role.password)
        return role

    def create_database(self, name: str, owner: str = PG_USER) -> None:
        self.admin(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner)
            )
        )

    def dsn(self, user: str, password: str, dbname: str) -> str:
        """A TCP ``postgresql://`` URL as an app would configure it."""
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(dbname, safe='')}"
        )


def _initdb(root: Path) -> None:
    pw = pwd.getpwnam(PG_USER)
    os.chown(root, pw.pw_uid, pw.pw_gid)
    res = _as_postgres(
        str(PG_BIN / "initdb"),
        "-D",
        str(root / "data"),
        "-U",
        PG_USER,
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C",
    )
    if res.returncode != 0:
        raise RuntimeError(f"initdb failed: {res.stdout}{res.stderr}")


def make_cluster() -> PgCluster:
    """initdb + start a new cluster; a failed start tears everything down before raising."""
    for binary in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / binary).exists():
            pytest.fail(f"PostgreSQL 15 is not installed: {PG_BIN / binary} is missing")
    if shutil.which("runuser") is None:
        pytest.fail("runuser (util-linux) is required to run initdb as postgres")
    PG_TMP_ROOT.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="pg-", dir=PG_TMP_ROOT))
    try:
        _initdb(root)
        last: Exception | None = None
        for _ in range(_START_ATTEMPTS):  # another job may grab the free port in between
            cluster = PgCluster(root=root, port=free_port())
            try:
                cluster.start()
                return cluster
            except RuntimeError as exc:
                last = exc
                cluster.stop()
        raise RuntimeError(f"could not start PostgreSQL after {_START_ATTEMPTS} attempts: {last}")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def destroy_cluster(cluster: PgCluster) -> None:
    cluster.stop()
    shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """The session's shared PostgreSQL cluster (never stopped by tests)."""
    cluster = make_cluster()
    try:
        yield cluster
    finally:
        destroy_cluster(cluster)


@pytest.fixture
def pg_stoppable() -> Iterator[PgCluster]:
    """A private cluster for one test, which may stop and start it at will."""
    cluster = make_cluster()
    try:
        yield cluster
    finally:
        destroy_cluster(cluster)
