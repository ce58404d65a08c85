"""A throwaway PostgreSQL server for the tests: ``initdb`` and ``pg_ctl`` in a temporary folder, listening on a free
local port, deleted at the end. Each test that asks gets a database of its own on it (``new_database``), so tests stay
as isolated as their SQLite files in ``tmp_path``.

It needs the server's programs (Debian's ``postgresql-15`` package: ``pg_config --bindir``, else
``/usr/lib/postgresql/*/bin``) and nothing else: no service, no root. ``initdb`` refuses to run as root, so where the
tests run as root the server runs as the ``postgres`` user (``runuser``), in a folder it owns. Durability is switched
off (``fsync``, ``synchronous_commit``, ``full_page_writes``): a crash of the test machine loses nothing of value.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

SERVER_USER = "postgres"
"""The system user the server runs as when the tests run as root."""
SUPERUSER = "imagebot"
"""The cluster's superuser, whom the tests connect as (trust authentication: local and throwaway)."""
SPEED = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300", "shared_buffers=32MB")


def bindir() -> Path | None:
    """The folder of ``initdb``, ``pg_ctl`` and ``psql``, or None where PostgreSQL's server is not installed."""
    candidates = []
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        candidates.append(Path(found))
    candidates += [Path(path) for path in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    return next((path for path in candidates if all((path / name).is_file() for name in ("initdb", "pg_ctl", "psql"))),
                None)


def missing() -> str | None:
    """Why no cluster can be started here (the reason PostgreSQL tests are skipped with), or None."""
    if bindir() is None:
        return "PostgreSQL's server programs (initdb, pg_ctl) are not installed: apt install postgresql-15"
    if os.getuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"the tests run as root and there is no {SERVER_USER} user to run the PostgreSQL server as"
        if shutil.which("runuser") is None:
            return "the tests run as root and runuser (util-linux) is missing to run PostgreSQL as another user"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """One running server; ``with Cluster.started() as cluster``."""

    def __init__(self, root: Path, programs: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.programs = programs
        self.port = 0
        self._names = itertools.count(1)

    @classmethod
    @contextlib.contextmanager
    def started(cls) -> Iterator[Cluster]:
        programs = bindir()
        if programs is None:
            raise RuntimeError(missing())
        # Not under pytest's tmp_path: its folders are the test user's alone, and the server may run as another.
        cluster = cls(Path(tempfile.mkdtemp(prefix="imagebot-pg-")), programs)
        try:
            cluster._start()
            yield cluster
        finally:
            cluster._stop()
            shutil.rmtree(cluster.root, ignore_errors=True)

    def _as_server(self, *command: str) -> list[str]:
        """``command`` as the user the server runs as."""
        return ["runuser", "-u", SERVER_USER, "--", *command] if os.getuid() == 0 else list(command)

    def _start(self) -> None:
        if os.getuid() == 0:
            shutil.chown(self.root, SERVER_USER)
        subprocess.run(self._as_server(str(self.programs / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                                       "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"),
                       check=True, capture_output=True)
        for _attempt in range(5):  # a free port can be taken by someone else before the server binds it
            self.port = _free_port()
            options = " ".join([f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.root}",
                                *(f"-c {setting}" for setting in SPEED)])
            started = subprocess.run(self._as_server(str(self.programs / "pg_ctl"), "-D", str(self.data), "-o",
                                                     options, "-l", str(self.root / "server.log"), "-w", "-t", "60",
                                                     "start"), capture_output=True, text=True)
            if started.returncode == 0:
                return
        log = (self.root / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"PostgreSQL did not start: {started.stdout}{started.stderr}\n{log}")

    def _stop(self) -> None:
        if self.port:
            subprocess.run(self._as_server(str(self.programs / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                           "-w", "stop"), capture_output=True)

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql; what it printed (unaligned, tuples only)."""
        return subprocess.run([str(self.programs / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-d", self.url(database), "-c", statement],
                              check=True, capture_output=True, text=True).stdout

    def new_database(self) -> str:
        """A new, empty database; its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)
