"""Map the source tool's versions to this tool's YYYYMMDD_HHMMSS, deterministically and in the source's order.

Each version maps on its own (never by its position in the folder), so importing again after the other tool gained
a migration gives the earlier ones the same versions:
- a 14-digit timestamp YYYYMMDDHHMMSS (dbmate, goose -s, golang-migrate -format 20060102150405, Flyway
  V20240101120000) keeps its date and time;
- a 10-digit Unix time (golang-migrate -format unix) becomes that moment, in UTC;
- a sequence number N below 100,000,000 (golang-migrate -seq, goose) becomes 2000-01-01 00:00:00 UTC plus N
  seconds: 1 is 20000101_000001;
- a Flyway version A[.B[.C]] (not a timestamp) becomes 2000-01-01 plus A days, B minutes and C seconds
  (B < 1440, C < 60): 1 is 20000102_000000, 1.1 is 20000102_000100.
All of them stay before any migration generated today. The order is checked after mapping: two source versions
on one time, or a mix of kinds whose times cross, is a version_collision (exit 2) and nothing is written.
Pure: stdlib, errors, source.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..errors import UsageError
from .source import SourceFolder, version_key

EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
MAX_SEQUENCE = 100_000_000           # about three years of seconds: sequences stay in 2000-2003
UNIX_RANGE = (1_000_000_000, 9_999_999_999)
MAX_FLYWAY_DAYS = 3650               # Flyway versions stay before 2010
STAMP = "%Y%m%d_%H%M%S"


def map_version(tool: str, source_version: str) -> str:
    """Return the YYYYMMDD_HHMMSS a source version maps to, or raise naming why it cannot map."""
    key = version_key(tool, source_version)
    moment = timestamp_of(key[0]) if len(key) == 1 else None
    if moment is None and tool == "flyway":
        moment = flyway_moment(key)
    elif moment is None:
        number = key[0]
        if UNIX_RANGE[0] <= number <= UNIX_RANGE[1]:
            moment = datetime.fromtimestamp(number, timezone.utc)
        elif number < MAX_SEQUENCE:
            moment = EPOCH + timedelta(seconds=number)
    if moment is None:
        raise UsageError(f"Source version {source_version} of {tool} cannot be mapped to YYYYMMDD_HHMMSS: it is "
                         "neither a YYYYMMDDHHMMSS timestamp, a Unix time, nor a sequence number below "
                         f"{MAX_SEQUENCE:,}.", code="version_collision",
                         hint="See docs/switching.md for the mapping; rename the source file to one of those forms.")
    return moment.strftime(STAMP)


def timestamp_of(number: int) -> datetime | None:
    """Return the moment a 14-digit YYYYMMDDHHMMSS version names, or None if it is not one."""
    digits = str(number)
    if len(digits) != 14:
        return None
    try:
        return datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def flyway_moment(key: tuple[int, ...]) -> datetime | None:
    """Return 2000-01-01 plus A days, B minutes, C seconds for Flyway's A[.B[.C]], or None past the limits."""
    days, minutes, seconds = (list(key) + [0, 0])[:3]
    if len(key) > 3 or days >= MAX_FLYWAY_DAYS or minutes >= 1440 or seconds >= 60:
        return None
    return EPOCH + timedelta(days=days, minutes=minutes, seconds=seconds)


def map_folder(folder: SourceFolder) -> dict[str, str]:
    """Return source version -> YYYYMMDD_HHMMSS for the whole folder; refuse a collision or a crossed order."""
    mapped = {m.source_version: map_version(folder.tool, m.source_version) for m in folder.migrations}
    ordered = [m.source_version for m in folder.migrations]  # the readers give the source tool's order
    for earlier, later in zip(ordered, ordered[1:]):
        if mapped[earlier] >= mapped[later]:
            what = "both map to" if mapped[earlier] == mapped[later] else "would swap order:"
            raise UsageError(f"Source versions {earlier} and {later} {what} {mapped[earlier]} / {mapped[later]}.",
                             code="version_collision",
                             hint="Renumber one of them in the source (see docs/switching.md for the mapping), "
                                  "then import again.")
    return mapped
