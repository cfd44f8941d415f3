"""Private Redis and PostgreSQL servers that fault tests may stop and start at will.

The shared servers on 6379 and 5432 belong to everyone on the machine: an outage test
must never touch them. These run on a free loopback port, in a temporary folder, with a
password, and keep their data on disk so a restart finds it again.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from tests.conftest import require_service

PASSWORD: Final = "s3cret-ledger-pw"
PG_BIN: Final = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free and valid too."""
    for _ in range(200):
        port = random.randrange(20000, 30000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node in 20000-40000")


def _wait_for_port(port: int, up: bool, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not go {'up' if up else 'down'} in {seconds}s")


class PrivateRedis:
    """A redis-server of our own, with an append-only file fsynced on every write."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.folder),
                "--requirepass", PASSWORD,
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--logfile", str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for_port(self.port, up=True)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None
        _wait_for_port(self.port, up=False)


class PrivateRedisCluster:
    """Three redis-server primaries forming a Redis Cluster (no replicas, no password)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports: list[int] = []
        while len(self.ports) < 3:
            port = free_cluster_port()
            if port not in self.ports:
                self.ports.append(port)
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        for port in self.ports:
            node = self.folder / str(port)
            node.mkdir()
            command = [
                "redis-server",
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(node),
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(node / "nodes.conf"),
                "--save", "",
                "--appendonly", "no",
                "--logfile", str(node / "redis.log"),
            ]  # fmt: skip
            self.processes.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        for port in self.ports:
            _wait_for_port(port, up=True)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while b"cluster_state:ok" not in subprocess.run(
            ["redis-cli", "-p", str(self.ports[0]), "cluster", "info"],
            capture_output=True, check=False, timeout=10,
        ).stdout:  # fmt: skip
            if time.monotonic() > deadline:
                raise TimeoutError("the private Redis Cluster never reported cluster_state:ok")
            time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=20)
        self.processes = []


class PrivatePostgres:
    """A PostgreSQL 15 cluster of our own, run as the ``postgres`` OS user."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql://ledger:{PASSWORD}@127.0.0.1:{self.port}/ledger"

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            check=True,
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def init(self) -> None:
        pwfile = self.folder / "pw"
        pwfile.write_text(PASSWORD)
        shutil.chown(pwfile, "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"),
            "-D", str(self.data),
            "-U", "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
        )  # fmt: skip
        self.start()
        self._psql(f"CREATE ROLE ledger LOGIN PASSWORD '{PASSWORD}'")
        self._psql("CREATE DATABASE ledger OWNER ledger")

    def _psql(self, statement: str) -> None:
        self._as_postgres(
            str(PG_BIN / "psql"), "-h", str(self.folder), "-p", str(self.port),
            "-U", "postgres", "-d", "postgres", "-c", statement,
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=40"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.folder / "pg.log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_postgres(
                str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"
            )


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    require_service("redis-server", shutil.which("redis-server") is not None, "not installed")
    with tempfile.TemporaryDirectory(prefix="rg-redis-") as folder:
        server = PrivateRedis(Path(folder))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def private_redis_cluster() -> Iterator[PrivateRedisCluster]:
    found = shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None
    require_service("redis-server and redis-cli", found, "not installed")
    with tempfile.TemporaryDirectory(prefix="rg-cluster-") as folder:
        cluster = PrivateRedisCluster(Path(folder))
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    found = (PG_BIN / "initdb").exists() and shutil.which("runuser") is not None
    require_service("PostgreSQL 15 binaries", found, f"{PG_BIN}/initdb and runuser")
    folder = Path(tempfile.mkdtemp(prefix="rg-pg-"))
    try:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        server = PrivatePostgres(folder)
        server.init()
        try:
            yield server
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
