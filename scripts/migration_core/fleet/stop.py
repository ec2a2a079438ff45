"""How a fleet rollout asks a running apply or rollback to stop between migrations (not mid-statement, as a
signal does): it creates the file named in MIGRATIONS_STOP_FILE. Imports: stdlib only."""
from __future__ import annotations

import os

STOP_FILE_ENV = "MIGRATIONS_STOP_FILE"


def requested() -> bool:
    """Say whether the file named in MIGRATIONS_STOP_FILE exists: the run starts no further migration."""
    path = os.environ.get(STOP_FILE_ENV)
    return bool(path) and os.path.exists(path)
