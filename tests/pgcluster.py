"""A throwaway PostgreSQL cluster of the tests' own: initdb, postgres on a free loopback port, stop/kill/restart.

Like the tests' mosquitto, the cluster is ours so tests can take it away under the service. PostgreSQL refuses to run
as root, so when the tests run as root the cluster belongs to the unprivileged `postgres` user (started with runuser).
PG_TEST_URL (postgresql://user@host:port/db) points the tests at a server they do not control instead: each test
still gets a fresh database on it, and tests that stop or kill the server are skipped with the reason printed.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness import LogWatcher, free_port

READY = "database system is ready to accept connections"


def _bindir() -> Path | None:
    """Where initdb and postgres live: PATH, pg_config, or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def _as_owner(argv: list[str]) -> list[str]:
    """PostgreSQL will not run as root: run it as `postgres` then."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@dataclass
class PgCluster:
    """One cluster in its own temporary folder; `url(db)` is a connection string for the superuser `postgres`."""

    bindir: Path
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cb-pg-")))
    proc: subprocess.Popen[bytes] | None = None
    log: LogWatcher | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def init(self) -> None:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.root.chmod(0o700)
        subprocess.run(
            _as_owner([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                       "--no-sync", "--no-instructions"]),
            check=True, capture_output=True, cwd=self.root,
        )  # fmt: skip

    def start(self) -> None:
        """Start and wait for the "ready to accept connections" line; TCP on 127.0.0.1 only, no Unix socket."""
        self.proc = subprocess.Popen(
            _as_owner([str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                       "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                       "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                       "-c", "max_connections=200", "-c", "logging_collector=off"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.root,
        )  # fmt: skip
        self.log = LogWatcher(self.proc.stderr)
        self.log.wait_for(READY, timeout=60)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): sessions are cut, the cluster shuts down cleanly."""
        self._signal(signal.SIGINT)

    def kill(self) -> None:
        """Crash: SIGKILL to the postmaster; its backends notice and exit, the next start recovers."""
        self._signal(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # With runuser in between, the postmaster is runuser's child: signal the postmaster by its pid file.
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text().split()[0]), sig)
        else:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        if self.log:
            self.log.join()
        if sig == signal.SIGKILL:
            # Orphaned backends hold the shared memory until they notice the postmaster is gone.
            subprocess.run(["pkill", "-KILL", "-f", f"postgres.*{self.data}"], check=False)

    def destroy(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _new_cluster() -> PgCluster:
    bindir = _bindir()
    if bindir is None:
        pytest.fail("PostgreSQL is not installed (make test installs it), and PG_TEST_URL is not set")
    cluster = PgCluster(bindir)
    cluster.init()
    cluster.start()
    return cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster | None]:
    """The session's shared cluster; None when PG_TEST_URL names a server to use instead."""
    if os.environ.get("PG_TEST_URL"):
        yield None
        return
    cluster = _new_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_url(pg_cluster: PgCluster | None) -> Iterator[str]:
    """A fresh, empty database for one test, on the session cluster (or PG_TEST_URL's server)."""
    import psycopg

    admin = os.environ.get("PG_TEST_URL") or (pg_cluster.url() if pg_cluster else "")
    name = f"t{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield admin.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def pg_private() -> Iterator[PgCluster]:
    """A cluster for one test alone, for tests that stop, kill or restart the database."""
    if os.environ.get("PG_TEST_URL"):
        pytest.skip("PG_TEST_URL names a server these tests do not control; they need to stop and kill their own")
    cluster = _new_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()
