"""Where the connection comes from: DB_URL in the environment or .env, how to read it, and the secrets in it to redact.

DB_URLs are read here, once, the way the tool and libpq must agree on: a password pasted without percent-encoding
(with '/', '?', '#', '%', '@' or ':' in it) is still the password, and normalise_db_url() rewrites the URL so that
libpq reads it exactly so.
Imports: stdlib (python-dotenv only when a .env file exists).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, unquote

from .errors import ConfigError, UsageError


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


REQUIRE_PLAN_ID_ENV = "MIGRATIONS_REQUIRE_PLAN_ID"  # apply and rollback refuse to run without a plan id
HISTORY_SCHEMA_ENV = "MIGRATIONS_SCHEMA"
DEFAULT_HISTORY_SCHEMA = "public"
_history_schema_flag: str | None = None


def set_history_schema(name: str | None) -> None:
    """Record --history-schema; it wins over MIGRATIONS_SCHEMA (scripts call this once, after parsing arguments)."""
    global _history_schema_flag
    _history_schema_flag = name


def history_schema() -> str:
    """Return the one schema that holds the history and snapshot tables, whatever the role's search_path."""
    return _history_schema_flag or os.environ.get(HISTORY_SCHEMA_ENV) or DEFAULT_HISTORY_SCHEMA


HISTORY_TABLE_ENV = "MIGRATIONS_TABLE"
DEFAULT_HISTORY_TABLE = "schema_migrations"
SNAPSHOT_SUFFIX = "_snapshots"
# Lowercase, so the table reads the same quoted or not in hand-written SQL; at most 46 characters, so the names the
# tool derives from it (NAME_snapshots, idx_NAME_version_dir) fit in PostgreSQL's 63 bytes, never cut short into
# another name's (PostgreSQL itself shortens the names it derives: sequences, primary keys).
HISTORY_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,45}", re.ASCII)
_history_table_flag: str | None = None


def set_history_table(name: str | None) -> None:
    """Record --history-table (it wins over MIGRATIONS_TABLE) and check the name in effect; a bad one is a usage
    error before anything connects."""
    global _history_table_flag
    _history_table_flag = name
    check_history_table_name(history_table(), "--history-table" if name is not None else HISTORY_TABLE_ENV)


def history_table() -> str:
    """Return the name of the history table (its schema: history_schema())."""
    if _history_table_flag is not None:  # even "": a usage error, never a silent fall back to the default
        return _history_table_flag
    return os.environ.get(HISTORY_TABLE_ENV) or DEFAULT_HISTORY_TABLE


def snapshot_table() -> str:
    """Return the name of the snapshot table, which follows the history table's: NAME_snapshots."""
    return history_table() + SNAPSHOT_SUFFIX


def check_history_table_name(name: str, source: str = "--history-table") -> str:
    """Return name if it can name the history table, else raise the usage error that says the rule."""
    if not HISTORY_TABLE_NAME.fullmatch(name):
        raise UsageError(f"{source} {name!r} is not a valid history table name: use lowercase letters, digits and "
                         "underscores, not starting with a digit, at most 46 characters.",
                         hint="For example: --history-table app_migrations (the snapshot table is then "
                              "app_migrations_snapshots).")
    return name


# ---- reading a DB_URL ---------------------------------------------------------------------------------------

SCHEMES = ("postgresql://", "postgres://")
URL_FORM = "Use the form postgresql://user:password@host:5432/dbname."
ENCODE_HINT = ("Write it as postgresql://user:password@host:5432/dbname and percent-encode special characters in "
               "the password (@ as %40, / as %2F, ? as %3F, # as %23, : as %3A, % as %25).")
ESCAPE = re.compile(r"(%[0-9A-Fa-f]{2})")
LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# host[:port][,host[:port]...] as libpq takes it; a port is digits, so "u:Ab" is no host, but a cut-off password.
HOST = r"(?:\[[0-9A-Fa-f:.%]*\]|[A-Za-z0-9._~%-]*)(?::[0-9]+)?"
HOST_LIST = re.compile(rf"{HOST}(?:,{HOST})*")
QUERY_ITEM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=[^=]*")  # a keyword, then a value (libpq refuses a second =)


@dataclass(frozen=True)
class DbUrl:
    """A postgresql:// URL cut into its parts, each as written (still percent-encoded, if it was)."""

    scheme: str                 # "postgresql://" or "postgres://"
    user: str | None            # None: no user info
    password: str | None        # None: no ':' in the user info
    netloc: str                 # host[:port][,host[:port]...], possibly empty
    path: str | None            # "/dbname", or None
    query: str | None           # what follows '?', or None


def parse_db_url(url: str, label: str = "DB_URL") -> DbUrl:
    """Cut a URL into its parts; the user info ends at the last '@' before the host (see choose_split)."""
    scheme = next((s for s in SCHEMES if url.startswith(s)), None)
    if scheme is None:
        raise ConfigError(f"{label} is not a valid PostgreSQL URL.", code="bad_db_url", hint=URL_FORM)
    rest = url[len(scheme):]
    split = choose_split(rest, label)
    userinfo, after = (None, rest) if split is None else (rest[:split], rest[split + 1:])
    netloc, path, query = split_location(after)
    if userinfo is None:
        return DbUrl(scheme, None, None, netloc, path, query)
    user, colon, password = userinfo.partition(":")
    return DbUrl(scheme, user, password if colon else None, netloc, path, query)


def choose_split(rest: str, label: str) -> int | None:
    """Return the index of the '@' that ends the user info (None: there is none), or raise when it is ambiguous.

    Each '@' (and "no user info") is a candidate reading; a reading is plausible when what follows is a host list
    with numeric ports, a database name without '/' and keyword=value query items. One plausible reading wins;
    with several, the standard reading wins when its user info is clean and the other '@'s sit in the query string
    after its /dbname (postgresql://u:pw@host/db?application_name=me@x); anything else could be either, and
    guessing would connect with a wrong password or print part of it.
    """
    ats = [i for i, char in enumerate(rest) if char == "@"]
    if not ats:
        return None
    readings = [split for split in (None, *ats) if plausible(rest, split)]
    if not readings:
        return ats[-1]  # nothing reads well: take the greedy reading and let the server say what is wrong
    first = readings[0]
    if len(readings) == 1:
        return first
    userinfo = "" if first is None else rest[:first]
    _, path, _ = split_location(rest if first is None else rest[first + 1:])
    if path and "@" not in path and not any(char in userinfo for char in "@/?"):
        return first
    raise ConfigError(f"{label} is ambiguous: an '@' in it could end the password at more than one place.",
                      code="bad_db_url", hint=ENCODE_HINT)


def plausible(rest: str, split: int | None) -> bool:
    """Say whether reading the '@' at split (None: no user info) as the end of the user info gives a sane URL."""
    userinfo, after = (None, rest) if split is None else (rest[:split], rest[split + 1:])
    netloc, path, query = split_location(after)
    if not HOST_LIST.fullmatch(netloc) or "/" in (path or "/")[1:]:  # a database name holds no '/'
        return False
    if userinfo is not None and any(char in userinfo.partition(":")[0] for char in "@/?"):
        return False
    return not query or all(QUERY_ITEM.fullmatch(item) for item in query.split("&"))


def split_location(after: str) -> tuple[str, str | None, str | None]:
    """Split what follows the user info into (hosts, "/path" or None, query or None), as libpq does."""
    query: str | None = None
    if "?" in after:
        after, query = after.split("?", 1)
    netloc, slash, dbname = after.partition("/")
    return netloc, slash + dbname if slash else None, query


def join_db_url(parts: DbUrl, label: str = "DB_URL") -> str:
    """Return the URL of parts with user and password percent-encoded, as libpq will read it."""
    path = parts.path
    if parts.user is None and path is None and "@" in (parts.query or ""):
        path = "/"  # libpq looks for the user info up to the first '@' or '/': give it the '/' first
    location = parts.netloc + (path or "") + ("?" + parts.query if parts.query is not None else "")
    if "%00" in location:
        raise ConfigError(f"{label} contains %00 (a zero byte), which PostgreSQL refuses.", code="bad_db_url",
                          hint=URL_FORM)
    location = LONE_PERCENT.sub("%25", location)
    if parts.user is None:
        return parts.scheme + location
    userinfo = encode_credential(parts.user, label)
    if parts.password is not None:
        userinfo += ":" + encode_credential(parts.password, label)
    return f"{parts.scheme}{userinfo}@{location}"


def encode_credential(text: str, label: str = "DB_URL") -> str:
    """Percent-encode a user name or password: a valid %XX is taken as already encoded, a lone % as a literal."""
    pieces = []
    for piece in ESCAPE.split(text):
        if ESCAPE.fullmatch(piece):
            if piece == "%00":
                raise ConfigError(f"{label} contains %00 (a zero byte) in the user or password, which PostgreSQL "
                                  "refuses.", code="bad_db_url", hint=ENCODE_HINT)
            pieces.append(piece)
        else:
            pieces.append(quote(piece, safe="", errors="surrogateescape"))
    encoded = "".join(pieces)
    try:  # the driver decodes the credentials as UTF-8: %91 alone would end in a traceback there
        unquote(encoded, errors="strict")
    except UnicodeDecodeError:
        raise ConfigError(f"{label}'s user or password, percent-decoded, is not UTF-8 text.", code="bad_db_url",
                          hint=ENCODE_HINT) from None
    return encoded


def normalise_db_url(url: str, label: str = "DB_URL") -> str:
    """Return an equivalent URL that libpq reads as the tool does: user and password percent-encoded."""
    return join_db_url(parse_db_url(url, label), label)


def with_database(url: str, dbname: str, label: str = "DB_URL") -> str:
    """Return url (normalised) pointing at database dbname on the same server, with the same credentials."""
    parts = parse_db_url(url, label)
    query = "&".join(item for item in (parts.query or "").split("&")
                     if item and unquote(item.partition("=")[0]) != "dbname")  # a dbname parameter beats the path
    return join_db_url(replace(parts, path="/" + quote(dbname, safe=""), query=query or None), label)


def describe_target(url: str, label: str = "DB_URL") -> str:
    """Return 'host:port/db' for messages: never the password."""
    try:
        parts = parse_db_url(url, label)
    except ConfigError:
        return f"the server in {label}"
    host = unquote(parts.netloc) or query_values(parts.query, "host")[:1] or ["local socket"]
    return f"{host if isinstance(host, str) else host[0]}{parts.path or '/'}"


def query_values(query: str | None, key: str) -> list[str]:
    """Return the decoded values of key in a query string."""
    items = (item.partition("=") for item in (query or "").split("&"))
    return [unquote(value) for name, _, value in items if unquote(name) == key]


# ---- the secrets to redact ----------------------------------------------------------------------------------

# Where libpq or Python may cut a misread URL, and so where a printed fragment of the password may start or end.
SEPARATORS = re.compile(r"[@/?#:%&=,\[\]]")
MIN_PIECE = 4       # shorter fragments are not redacted on their own: masking every "ab" would garble the output
MAX_SEPARATORS = 8  # beyond this, the pairs of cut points grow too many: only segments and their edges are kept


def password_forms(url: str | None) -> list[str]:
    """Return every form of the URL's password to redact, longest first.

    The password as the tool reads it, and any in the query string; also the greedy reading (up to the last '@')
    cut at every separator, since another parser (libpq before normalise_db_url, urlsplit) may cut it there and
    print a piece. Each form comes raw, percent-decoded (as text and as a message shows it) and percent-encoded.
    """
    if not url:
        return []
    start = re.search(r"postgres(?:ql)?://", url)
    if start is None:
        return []
    url = url[start.start():]
    rest = url[start.end() - start.start():]
    passwords = re.findall(r"[?&]password=([^&]*)", rest)
    greedy_user, _, greedy_password = rest.rpartition("@")[0].partition(":")
    if greedy_password and not any(char in greedy_user for char in "/?"):
        passwords.append(greedy_password)
    try:
        password = parse_db_url(url).password
        passwords += [password] if password else []
    except ConfigError:
        pass
    forms: set[str] = set()
    for password in passwords:
        for piece in password_pieces(password):
            decoded = unquote(piece, errors="surrogateescape")
            shown = unquote(piece, errors="replace")  # how a message shows bytes that are no UTF-8
            forms |= {piece, decoded, shown, quote(decoded, safe="", errors="surrogateescape"),
                      lenient_encoding(piece)}
    return sorted((form for form in forms if form), key=len, reverse=True)


def password_pieces(password: str) -> set[str]:
    """Return the password and each of its substrings, MIN_PIECE or longer, that starts and ends at a separator.

    A piece may keep the separators at its edges: libpq re-joins what it cut, e.g. hosts "u" and "11%" of a
    misread "u:1,11%" come back as "u,11%".
    """
    cuts = [match.start() for match in SEPARATORS.finditer(password)]
    bounds = sorted({0, len(password), *cuts, *(cut + 1 for cut in cuts)})
    reach = len(bounds) if len(cuts) <= MAX_SEPARATORS else 4  # many separators: a segment and its edges only
    pairs = [(a, b) for i, a in enumerate(bounds) for b in bounds[i + 1:i + 1 + reach]]
    return {password} | {password[a:b] for a, b in pairs if b - a >= MIN_PIECE}


def lenient_encoding(piece: str) -> str:
    """Return encode_credential(piece), or the piece itself when it holds a %00."""
    try:
        return encode_credential(piece)
    except ConfigError:
        return piece
