"""DB_URL reading: a password pasted without percent-encoding is still the password, and libpq reads the
normalised URL exactly as the tool does (issue 9). libpq's own parser (psycopg2's parse_dsn) is the judge; no
server is needed.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from psycopg2.extensions import parse_dsn

from migration_core import config
from migration_core.errors import ConfigError

SPEC_PASSWORD = "Ab/Sup3rS3cretMiddle%Qz?Tail9"
SPEC_URL = f"postgresql://u:{SPEC_PASSWORD}@host/db"
ENCODE_HINT = "percent-encode special characters in the password"


def decoded(text: str) -> str:
    """Return what a URL component means: each valid %XX decoded, a lone % kept as it is."""
    return unquote(re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", text), errors="strict")


def libpq_reads(url: str) -> dict[str, str]:
    return parse_dsn(config.normalise_db_url(url))


def substrings(text: str, length: int = 4) -> set[str]:
    return {text[i:i + length] for i in range(len(text) - length + 1)}


# ---- what libpq reads from the normalised URL ---------------------------------------------------------------

READINGS = {
    # url: (user, password, host, port, dbname) that libpq must read
    "the_issue_example": (SPEC_URL, ("u", SPEC_PASSWORD, "host", None, "db")),
    "encoded_password_stays_as_it_is": ("postgresql://u:Sup3r-S3cret%21%40x@h:5432/d",
                                        ("u", "Sup3r-S3cret!@x", "h", "5432", "d")),
    "at_sign_in_password": ("postgresql://u:p@ss@h/d", ("u", "p@ss", "h", None, "d")),
    "slash_in_password": ("postgresql://u:a/b@h:6/d", ("u", "a/b", "h", "6", "d")),
    "question_mark_in_password": ("postgresql://u:a?b@h/d", ("u", "a?b", "h", None, "d")),
    "hash_in_password": ("postgresql://u:a#b@h/d", ("u", "a#b", "h", None, "d")),
    "colon_in_password": ("postgresql://u:a:b@h/d", ("u", "a:b", "h", None, "d")),
    "lone_percent_is_a_literal": ("postgresql://u:50%off@h/d", ("u", "50%off", "h", None, "d")),
    "valid_escape_is_already_encoded": ("postgresql://u:a%2Fb@h/d", ("u", "a/b", "h", None, "d")),
    "quote_backslash_space_and_non_ascii": ('postgresql://u:a"b\\c d€é@h/d', ("u", 'a"b\\c d€é', "h", None, "d")),
    "no_password": ("postgresql://u@h/d", ("u", None, "h", None, "d")),
    "no_user_info": ("postgresql://h:5/d", (None, None, "h", "5", "d")),
    "at_sign_in_a_query_value_only": ("postgresql://h/d?application_name=me@x", (None, None, "h", None, "d")),
    "at_sign_in_a_query_value_without_a_path": ("postgresql://h?application_name=me@x",
                                                (None, None, "h", None, None)),
    "clean_password_and_at_sign_in_the_query": ("postgresql://u:pw@h/d?application_name=me@x",
                                                ("u", "pw", "h", None, "d")),
    "socket_directory_in_the_query": ("postgresql:///d?host=/tmp", (None, None, "/tmp", None, "d")),
    "several_hosts": ("postgresql://u:a/b@h1:5,h2:6/d", ("u", "a/b", "h1,h2", "5,6", "d")),
    "postgres_scheme": ("postgres://u:a?b@h/d", ("u", "a?b", "h", None, "d")),
    "at_sign_then_slash_in_password": ("postgresql://u:Xq@Yq/Zq@h/d", ("u", "Xq@Yq/Zq", "h", None, "d")),
    "digits_then_slash_in_password": ("postgresql://admin:1234/xyzw@h/d", ("admin", "1234/xyzw", "h", None, "d")),
}


@pytest.mark.parametrize("url, expected", list(READINGS.values()), ids=list(READINGS))
def test_libpq_reads_the_normalised_url_as_the_tool_does(url, expected):
    read = libpq_reads(url)

    assert (read.get("user"), read.get("password"), read.get("host"), read.get("port"), read.get("dbname")) == expected


def test_the_issue_example_is_encoded_as_expected():
    assert config.normalise_db_url(SPEC_URL) == "postgresql://u:Ab%2FSup3rS3cretMiddle%25Qz%3FTail9@host/db"


def test_normalising_twice_changes_nothing():
    for url, _ in READINGS.values():
        once = config.normalise_db_url(url)
        assert config.normalise_db_url(once) == once, url


AMBIGUOUS = {
    # url: the password its author meant
    "at_sign_in_password_and_in_the_query": ("postgresql://u:p@ss@h/d?application_name=a@b", "p@ss"),
    "digits_then_slash_in_password_and_no_database": ("postgresql://admin:1234/xyzw@h", "1234/xyzw"),
    "at_sign_then_query_like_text_in_password": ("postgresql://u:pQ@sZ?w=rJ@h/d", "pQ@sZ?w=rJ"),
}


@pytest.mark.parametrize("url, password", list(AMBIGUOUS.values()), ids=list(AMBIGUOUS))
def test_an_ambiguous_url_is_refused_without_echoing_the_password(url, password):
    with pytest.raises(ConfigError) as raised:
        config.normalise_db_url(url, "DB_URL")

    error = raised.value
    assert error.code == "bad_db_url" and ENCODE_HINT in error.hint and "DB_URL" in error.message
    shown = error.message + error.hint
    assert not [piece for piece in substrings(password, 3) if piece in shown], shown


@pytest.mark.parametrize("url", ["not-a-url", "mysql://u:p@h/d", "", "host=h dbname=d"])
def test_a_url_that_is_not_postgresql_is_a_bad_db_url(url):
    with pytest.raises(ConfigError) as raised:
        config.normalise_db_url(url, "--against")

    assert raised.value.code == "bad_db_url" and "--against" in raised.value.message


def test_a_zero_byte_escape_is_refused_without_echoing_the_password():
    with pytest.raises(ConfigError) as raised:
        config.normalise_db_url("postgresql://u:Secret%00Rest@h/d")

    assert raised.value.code == "bad_db_url" and "Secret" not in raised.value.message + raised.value.hint


# ---- with_database and describe_target ----------------------------------------------------------------------

def test_with_database_keeps_credentials_host_and_options_and_drops_a_dbname_parameter():
    url = f"postgresql://u:{SPEC_PASSWORD}@h:5433/old?dbname=other&sslmode=disable"

    read = parse_dsn(config.with_database(url, "verify_1a2b"))

    assert read == {"user": "u", "password": SPEC_PASSWORD, "host": "h", "port": "5433", "dbname": "verify_1a2b",
                    "sslmode": "disable"}


def test_with_database_adds_a_path_where_there_was_none():
    assert parse_dsn(config.with_database("postgresql://u:p?w@h", "x y"))["dbname"] == "x y"


@pytest.mark.parametrize("url, described", [
    (SPEC_URL, "host/db"),
    ("postgresql://u:a/b@h:5432/d", "h:5432/d"),
    ("postgresql:///d?host=/tmp", "/tmp/d"),
    ("postgresql://u:p@ss@h/d?application_name=a@b", "the server in DB_URL"),
])
def test_describe_target_names_host_port_and_database_only(url, described):
    assert config.describe_target(url) == described


# ---- password_forms -----------------------------------------------------------------------------------------

def test_password_forms_cover_the_password_raw_decoded_and_encoded():
    forms = config.password_forms("postgresql://u:Sup3r-S3cret%21%40x@h/d")

    assert {"Sup3r-S3cret%21%40x", "Sup3r-S3cret!@x"} <= set(forms)
    assert forms == sorted(forms, key=len, reverse=True)


def test_password_forms_cover_the_pieces_another_parser_may_cut_out():
    forms = set(config.password_forms(SPEC_URL))

    assert {SPEC_PASSWORD, "Sup3rS3cretMiddle", "Sup3rS3cretMiddle%Qz", "Tail9", "Qz?Tail9"} <= forms
    assert "Ab" not in forms  # too short to be redacted as a fragment: it would garble the output


def test_password_forms_find_a_url_given_as_flag_equals_url_and_in_the_query():
    assert "Sup3rSecret" in config.password_forms("--against=postgresql://u:Sup3rSecret@h/d")
    assert "Qu3ryS3cret!" in config.password_forms("postgresql://u@h/d?password=Qu3ryS3cret%21")


def test_password_forms_take_no_query_value_for_a_password():
    forms = config.password_forms("postgresql://host/db?application_name=a:bcdef@x")

    assert "bcdef" not in forms and forms == []


# ---- properties ---------------------------------------------------------------------------------------------

# Every character a password may hold, but '=': without it no '@' can start a plausible query string, so the URL
# has one reading only and must never be refused. NUL is left out: no URL and no environment can carry it.
PASSWORD_CHARS = st.sampled_from(list("/?#%@:\"\\ &,[]QZJabc019AF€éЖ🙂"))
PASSWORDS = st.text(PASSWORD_CHARS, min_size=1, max_size=24)


def means_utf8(password: str) -> bool:
    try:
        decoded(password)
        return "\x00" not in decoded(password)
    except UnicodeDecodeError:
        return False


@settings(max_examples=300, deadline=None)
@given(password=PASSWORDS)
@example(password=SPEC_PASSWORD)
@example(password="%%41%zz%")
@example(password="@/?@")
def test_any_password_without_an_equals_sign_is_read_by_libpq_exactly(password):
    assume(means_utf8(password))
    url = f"postgresql://app_user:{password}@db.example.com:5432/app"

    read = libpq_reads(url)

    assert read == {"user": "app_user", "password": decoded(password), "host": "db.example.com", "port": "5432",
                    "dbname": "app"}


@settings(max_examples=300, deadline=None)
@given(password=st.text(st.sampled_from(list("/?#%@:=&QZab1é")), min_size=1, max_size=20),
       query=st.sampled_from(["", "?sslmode=disable", "?application_name=me@x"]))
def test_libpq_agrees_with_the_tool_or_the_url_is_refused_without_an_echo(password, query):
    assume(means_utf8(password))
    url = f"postgresql://u:{password}@h:5/d{query}"

    try:
        parts = config.parse_db_url(url)
        normalised = config.normalise_db_url(url)
    except ConfigError as error:
        assert error.code == "bad_db_url" and ENCODE_HINT in error.hint
        assert not [piece for piece in substrings(password) if piece in error.message + error.hint]
        return
    read = parse_dsn(normalised)
    assert read.get("user") == (parts.user and decoded(parts.user))
    assert read.get("password") == (parts.password and decoded(parts.password))
    assert config.normalise_db_url(normalised) == normalised


def test_a_password_that_percent_decodes_to_bytes_that_are_not_utf8_is_a_bad_url_not_a_traceback():
    # Found by the fuzz test: psycopg2 decodes the credentials as UTF-8, so %91 ended in a UnicodeDecodeError.
    with pytest.raises(ConfigError) as caught:
        config.normalise_db_url("postgresql://u:%91Q@h/db")
    assert caught.value.code == "bad_db_url" and "%91Q" not in caught.value.message
    assert config.normalise_db_url("postgresql://u:%C3%A9Q@h/db") == "postgresql://u:%C3%A9Q@h/db"
