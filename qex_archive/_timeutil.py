"""Points in time as users write them, turned into Unix timestamps."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime

from .errors import InvalidInput

# Every command can show, compare and pack times in this range (years 1900 to 9999, UTC).
MIN_TIMESTAMP = -2_208_988_800.0
MAX_TIMESTAMP = 253_402_300_799.0
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def to_timestamp(value: object, what: str) -> float:
    """A Unix timestamp from a number, a ``datetime``, an ISO 8601 text or a relative age.

    Naive datetimes and ISO texts without an offset are local time; ``"3d"``/``"12h"``/``"30m"``
    mean that long before now.
    """
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a time, not a boolean")
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise InvalidInput(f"{what} must be a finite Unix timestamp, got {value!r}")
        return number
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        relative = _RELATIVE.match(value)
        if relative:
            return time.time() - float(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
        text = value.strip()
        try:
            return to_timestamp(float(text), what)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
        raise InvalidInput(
            f"{what} {value!r} is not a time; use ISO 8601 (2026-11-26 or 2026-11-26T14:30), "
            "a Unix timestamp, or an age like 3d, 12h, 30m"
        )
    raise InvalidInput(f"{what} must be a time, not {type(value).__name__}")


def timestamp_problem(value: object) -> str | None:
    """Why ``value`` cannot be a run's timestamp, or ``None`` when it can."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "is not a number (Unix seconds)"
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not MIN_TIMESTAMP <= number <= MAX_TIMESTAMP:
        return "is outside the years 1900 to 9999"
    return None


def run_timestamp(value: object) -> float:
    """A run's timestamp from what :func:`to_timestamp` accepts, within years 1900-9999."""
    number = to_timestamp(value, "timestamp")
    if timestamp_problem(number):
        raise InvalidInput(
            f"timestamp {value!r} is outside the years 1900 to 9999; give the time the run "
            "happened (Unix seconds, ISO 8601 or a datetime)"
        )
    return number


def iso_local(timestamp: object) -> str:
    """Local time with its UTC offset, to the second (a stored value that is no Unix time,
    from a row written by another tool, is shown as it is)."""
    moment = _moment(timestamp)
    return moment.astimezone().isoformat(timespec="seconds") if moment else str(timestamp)


def short_time(timestamp: object) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in local time, for tables."""
    moment = _moment(timestamp)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else str(timestamp)[:19]


def _moment(timestamp: object) -> datetime | None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(timestamp)
    except (ValueError, OverflowError, OSError):
        return None
