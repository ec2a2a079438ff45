"""Where the connection comes from: DB_URL in the environment or .env, and the secrets in it to redact.

Imports: stdlib (python-dotenv only when a .env file exists).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .errors import ConfigError


def find_db_url() -> str | None:
    """Return DB_URL from the environment, else from .env in the working directory, else None."""
    url = os.environ.get("DB_URL")
    if not url and Path(".env").is_file():
        from dotenv import dotenv_values  # imported only when needed: keeps start-up lean
        url = dotenv_values(".env").get("DB_URL")
    return url or None


def read_db_url() -> str:
    """Return DB_URL or raise the no_db_url error."""
    url = find_db_url()
    if not url:
        raise ConfigError("DB_URL is not set.", code="no_db_url",
                          hint="export DB_URL=postgresql://user:password@host:5432/dbname (or put it in .env).")
    return url


def password_forms(url: str | None) -> list[str]:
    """Return every form of the URL's password to redact, longest first.

    libpq and Python split a URL with an unencoded '@' or '/' in the password at different places, so besides
    the password Python sees, the greedy reading (up to the last '@') and its pieces are redacted too.
    """
    if not url:
        return []
    forms: set[str] = set()
    userinfo = url.split("://", 1)[-1].split("?", 1)[0].rpartition("@")[0]
    greedy = userinfo.partition(":")[2]
    forms.add(greedy)
    forms.update(piece for piece in re.split(r"[@/:?#]", greedy) if len(piece) >= 3)
    try:
        parts = urlsplit(url)
        forms.update(parse_qs(parts.query).get("password", []))
        # Python's reading; a short fragment of a misparsed password is already covered by the pieces above, and
        # masking every "p" in the output would make it unreadable.
        if parts.password and (len(parts.password) >= 3 or parts.password == greedy or not greedy):
            forms.add(parts.password)
    except ValueError:
        pass
    forms |= {unquote(f) for f in forms} | {quote(f, safe="") for f in forms}
    return sorted((f for f in forms if f), key=len, reverse=True)


def describe_target(url: str, label: str = "DB_URL") -> str:
    """Return 'host:port/db' for messages: never the password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or parse_qs(parts.query).get("host", ["local socket"])[0]
        return f"{host}{':' + str(parts.port) if parts.port else ''}{parts.path or '/'}"
    except ValueError:
        return f"the server in {label}"
