"""The ``format`` values a schema can enforce, checked with the standard library only.

jsonschema only asserts a format when an optional package for it is
importable (``rfc3339-validator`` for ``date-time``, ``rfc3987`` for ``uri``),
so the same schema would accept a value on one machine and refuse it on
another. This checker is fixed instead: the formats in ``ENFORCED_FORMATS``
are always checked, every other format is an annotation only (as Draft
2020-12 allows), whatever is installed.
"""

from __future__ import annotations

import datetime
import re

from jsonschema import Draft202012Validator, FormatChecker

_DATE = r"(\d{4})-(\d{2})-(\d{2})"
_TIME = r"(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))"
_DATE_RE = re.compile(_DATE, re.ASCII)
_TIME_RE = re.compile(_TIME, re.ASCII)
_DATE_TIME_RE = re.compile(_DATE + "[Tt]" + _TIME, re.ASCII)
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]*", re.ASCII)
_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _valid_date(year: str, month: str, day: str) -> bool:
    try:
        datetime.date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def _valid_time(
    hour: str, minute: str, second: str, off_hour: str | None, off_minute: str | None
) -> bool:
    # Second 60 is a leap second (RFC 3339 section 5.7).
    if int(hour) > 23 or int(minute) > 59 or int(second) > 60:
        return False
    return off_hour is None or (int(off_hour) <= 23 and int(off_minute or 0) <= 59)


def is_date(instance: object) -> bool:
    """RFC 3339 ``full-date``: ``2024-02-29``."""
    if not isinstance(instance, str):
        return True
    match = _DATE_RE.fullmatch(instance)
    return match is not None and _valid_date(*match.groups())


def is_time(instance: object) -> bool:
    """RFC 3339 ``full-time``, offset required: ``12:30:00Z``, ``12:30:00.5+02:00``."""
    if not isinstance(instance, str):
        return True
    match = _TIME_RE.fullmatch(instance)
    if match is None:
        return False
    hour, minute, second, _sign, off_hour, off_minute = match.groups()
    return _valid_time(hour, minute, second, off_hour, off_minute)


def is_date_time(instance: object) -> bool:
    """RFC 3339 ``date-time``: ``2024-02-29T12:30:00Z``, offset required."""
    if not isinstance(instance, str):
        return True
    match = _DATE_TIME_RE.fullmatch(instance)
    if match is None:
        return False
    year, month, day, hour, minute, second, _sign, off_hour, off_minute = match.groups()
    return _valid_date(year, month, day) and _valid_time(hour, minute, second, off_hour, off_minute)


def is_uri(instance: object) -> bool:
    """An absolute URI (RFC 3986): a scheme, then only URI characters, valid %-escapes.

    A syntax check, not a full grammar: ``https://example.com/a?b#c`` and
    ``urn:isbn:0451450523`` pass; ``/relative``, ``no scheme``, ``http://a b``
    and ``http://x/%zz`` do not.
    """
    if not isinstance(instance, str):
        return True
    return (
        _URI_RE.fullmatch(instance) is not None
        and _PERCENT_RE.search(instance) is None
        and instance.count("#") <= 1
    )


def _build() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checks("date")(is_date)
    checker.checks("time")(is_time)
    checker.checks("date-time")(is_date_time)
    checker.checks("uri")(is_uri)
    # jsonschema's own checks for these use the standard library alone.
    bundled = Draft202012Validator.FORMAT_CHECKER.checkers
    for name in ("email", "idn-email", "ipv4", "ipv6", "uuid", "regex"):
        func, raises = bundled[name]
        checker.checks(name, raises)(func)
    return checker


#: The checker every schema binding validates with.
FORMAT_CHECKER = _build()

#: The formats a value must satisfy; any other ``format`` is not checked.
ENFORCED_FORMATS = frozenset(FORMAT_CHECKER.checkers)
