"""A throw-away PostgreSQL server for the tests that need one (session scope).

The Debian PostgreSQL packages put ``initdb``/``pg_ctl`` in ``/usr/lib/postgresql/<version>/bin``
(sometimes also linked on the PATH). The server refuses to run as root, so as root it runs as the
``postgres`` user the package creates (or ``nobody`` when there is none) in a temporary folder owned
by that user; it listens on 127.0.0.1 at a free port, with password authentication, and is stopped
(``pg_ctl stop -m immediate``) and deleted at the end of the session, also when a test fails.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_USER = "appshot"


def find_pg_bin() -> Path | None:
    """Folder holding ``initdb`` and ``pg_ctl``: the PATH first, then the newest Debian install."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def _run_as() -> pwd.struct_passwd:
    """The account the server runs as: ourselves unless we are root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists to run PostgreSQL")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PostgresServer:
    """Connection settings of the running test server (the ``APPSHOT_PG_*`` variables of deploy/)."""

    host: str
    port: int
    user: str
    password: str
    db_name: str

    def env(self) -> dict[str, str]:
        return {"APPSHOT_PG_HOST": self.host, "APPSHOT_PG_PORT": str(self.port), "APPSHOT_PG_USER": self.user,
                "APPSHOT_PG_PASSWORD": self.password, "APPSHOT_PG_DB": self.db_name}

    def connect(self):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                dbname=self.db_name)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def new_database(self, name: str) -> PostgresServer:
        """A fresh, empty database on this server (so tests do not see each other's runs)."""
        connection = self.connect()
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        connection.close()
        return PostgresServer(self.host, self.port, self.user, self.password, name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (no initdb on the PATH or in /usr/lib/postgresql/*/bin); "
                    "install the Debian package postgresql-15")
    account = _run_as()
    root = Path(tempfile.mkdtemp(prefix="appshot-pg-"))
    os.chown(root, account.pw_uid, account.pw_gid)
    data, password = root / "data", secrets.token_hex(16)
    (root / "pwfile").write_text(password + "\n")
    os.chown(root / "pwfile", account.pw_uid, account.pw_gid)
    as_server_user = {"cwd": root, "env": {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"},
                      "capture_output": True, "text": True}
    if os.geteuid() == 0:  # drop to the server account (changing groups needs root)
        as_server_user.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
    port = _free_port()
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            subprocess.run([*pg_ctl, "stop", "-m", "immediate", "-w"], **as_server_user)
            shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)  # also when the session dies before the fixture's teardown
    try:
        steps = [
            [str(bin_dir / "initdb"), "-D", str(data), "-U", SERVER_USER, "--pwfile", str(root / "pwfile"),
             "--auth", "scram-sha-256", "-E", "UTF8", "--no-sync"],
            [*pg_ctl, "-l", str(root / "server.log"), "-w", "-t", "60", "start", "-o",
             f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c max_connections=50 -c fsync=off"],
        ]
        for command in steps:
            result = subprocess.run(command, **as_server_user)
            if result.returncode != 0:
                log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
                raise RuntimeError(f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr}\n{log}")
        yield PostgresServer("127.0.0.1", port, SERVER_USER, password, "postgres")
    finally:
        stop()
