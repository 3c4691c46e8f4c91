"""A private PostgreSQL server for the demo: a throwaway cluster of its own, started
from the machine's PostgreSQL binaries on a free loopback port and removed at the end.

Reconciliation is set-based SQL written for PostgreSQL (the embedded SQLite database
records expectations only), so a demo that reconciles needs a PostgreSQL server even
on a machine where none is running. Nothing is installed or configured system-wide:
the cluster lives in a temporary folder, listens on 127.0.0.1 only (no Unix socket),
trusts local connections, and is stopped and deleted by :meth:`PrivatePostgres.stop`.

PostgreSQL refuses to run as root; as root the cluster is created and run as the
``postgres`` system user (present wherever the server package is installed).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from settlement.demo.network import free_port

#: Where distributions put the server binaries when they are not on PATH.
_BINARY_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin",
                 "/opt/homebrew/opt/postgresql@*/bin", "/usr/local/opt/postgresql@*/bin")
#: Settings for a disposable cluster: no durability, no socket, loopback only.
_SERVER_OPTIONS = ("-c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries were found, or the cluster did not start."""


def find_binaries() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, newest version first."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted((Path(p) for pattern in _BINARY_GLOBS for p in glob.glob(pattern)),
                        key=_version_key, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _version_key(folder: Path) -> tuple[int, ...]:
    digits = "".join(ch if ch.isdigit() else " " for ch in str(folder)).split()
    return tuple(int(d) for d in digits)


class PrivatePostgres:
    """A cluster in a temporary folder; :attr:`url` once :meth:`start` returned."""

    def __init__(self, binaries: Path, *, log_file: Path) -> None:
        self.binaries = binaries
        self.log_file = log_file
        self.port = 0
        self._folder: Path | None = None
        self._user = _run_as()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/settlement_demo"

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="settlement-demo-pg-"))
        self._folder = folder
        data = folder / "data"
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync",
                  "--locale=C")
        self.port = free_port()
        log = folder / "server.log"
        self._run("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60",
                  "-o", f"-p {self.port} {_SERVER_OPTIONS}", "start")
        self._create_database()

    def stop(self) -> None:
        folder, self._folder = self._folder, None
        if folder is None:
            return
        try:
            self._run("pg_ctl", "-D", str(folder / "data"), "-m", "immediate", "-w", "stop")
        except PostgresUnavailable:
            pass  # already gone: nothing left to stop
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        binary = self.binaries / program
        if not binary.is_file():
            raise PostgresUnavailable(f"{program} is not in {self.binaries}")
        command = [str(binary), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        with self.log_file.open("ab") as log:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False,  # noqa: S603
                                  cwd=self._folder or None, timeout=120)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{program} failed (exit {done.returncode}); see {self.log_file}")

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as admin:
            admin.execute("CREATE DATABASE settlement_demo")


def _run_as() -> str | None:
    """The user to run the server as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable("running as root and there is no postgres user to run the server as") from None
    return "postgres"
