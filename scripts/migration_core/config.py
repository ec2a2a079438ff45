"""Where the connection comes from: DB_URL in the environment or .env, and the secrets in it to redact.

Imports: stdlib (python-dotenv only when a .env file exists).
"""
from __future__ import annotations

import os
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
    """Return the URL's password as written, percent-decoded and re-encoded, longest first, for redaction."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
        password = parts.password or parse_qs(parts.query).get("password", [""])[0]
    except ValueError:
        # Unparseable URL: redact everything between '//' and the last '@' so nothing slips through.
        head = url.split("//", 1)[-1].rsplit("@", 1)
        password = head[0].split(":", 1)[-1] if len(head) == 2 else ""
    if not password:
        return []
    return sorted({password, unquote(password), quote(password, safe="")}, key=len, reverse=True)


def describe_target(url: str) -> str:
    """Return 'host:port/db' for messages: never the password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or parse_qs(parts.query).get("host", ["local socket"])[0]
        return f"{host}{':' + str(parts.port) if parts.port else ''}{parts.path or '/'}"
    except ValueError:
        return "the server in DB_URL"
