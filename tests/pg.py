"""A real, throwaway PostgreSQL for the tests: initdb + pg_ctl in a temp dir on a free port, run as an unprivileged
user when the tests run as root (initdb refuses root), password login through a passfile, gone at the end."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

#: Set (CI does) to make a missing PostgreSQL fail the run instead of skipping its tests.
REQUIRE_ENV = "KINKO_REQUIRE_POSTGRES"
USER = "kinko"
#: Settings for a fast throwaway cluster (PostgreSQL's own durability is not what these tests are about).
_SETTINGS = ("-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
             "-c max_connections=300 -c shared_buffers=32MB -c log_min_messages=warning")


def find_bin(name: str) -> Path | None:
    """A PostgreSQL server program: on PATH, else in Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    found = shutil.which(name)
    if found:
        return Path(found)
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]) if candidates else None


def missing() -> str | None:
    """Why no cluster can be started here (None: it can)."""
    absent = [name for name in ("initdb", "pg_ctl", "pg_dump") if find_bin(name) is None]
    return f"PostgreSQL programs not found: {', '.join(absent)} (apt-get install postgresql)" if absent else None


def _run_as() -> str | None:
    """The unprivileged user to run the server as when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("kinko-test", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "kinko-test"],
                   check=True, capture_output=True)
    return "kinko-test"


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """One PostgreSQL server: `url(db)` for a database in it, `create_database()` for a fresh one."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="kinko-pg-"))
        self.user = _run_as()
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.passfile = self.root / "client" / "pgpass"
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)
        (self.root / "client").mkdir(mode=0o700)  # the client side's files stay ours (root's)
        self._initdb()

    def _as_user(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        extra = {"user": self.user, "group": pwd.getpwnam(self.user).pw_gid, "extra_groups": []} if self.user else {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return subprocess.run(args, cwd=self.root, env=env, text=True, capture_output=True, check=False,
                              **extra, **kwargs)  # type: ignore[call-overload, no-any-return]

    def _initdb(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.user:
            os.chown(pwfile, pwd.getpwnam(self.user).pw_uid, -1)
        done = self._as_user([str(find_bin("initdb")), "-D", str(self.data), "-U", USER, "-E", "UTF8",
                              "--locale=C", "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-sync"])
        pwfile.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr[-2000:]}")

    def start(self) -> None:
        for _attempt in range(5):  # a free port can be taken between choosing and binding it: choose again
            port = self.port or free_port()
            started = self._as_user([str(find_bin("pg_ctl")), "-D", str(self.data), "-l", str(self.log), "-w",
                                     "-t", "60", "-o", f"-p {port} -k {self.root} {_SETTINGS}", "start"])
            if started.returncode == 0:
                self.port = port
                self.passfile.write_text(f"127.0.0.1:{port}:*:{USER}:{self.password}\n")
                self.passfile.chmod(0o600)
                return
            if self.port:
                break
        raise RuntimeError(f"pg_ctl start failed: {started.stderr[-1000:]} {self.log_text()[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        self._as_user([str(find_bin("pg_ctl")), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres", *, with_passfile: bool = True) -> str:
        query = f"?passfile={self.passfile}" if with_passfile else ""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}{query}"

    def admin(self, sql: str, dbname: str = "postgres") -> None:
        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:16]}"
        self.admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def dump(self, url: str) -> bytes:
        """pg_dump of a whole database (plain SQL, data included), as an operator's backup would be."""
        dbname = database_of(url)
        env = {**os.environ, "PGPASSFILE": str(self.passfile)}
        done = subprocess.run([str(find_bin("pg_dump")), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER,
                               "--no-password", dbname], env=env, capture_output=True, check=True)
        return done.stdout

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""
