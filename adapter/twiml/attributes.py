"""Lexical rules for TwiML attribute values. Each parser returns None when the value is invalid.

Leniency (where Twilio documents none, these are our choices, see docs/twiml-support.md):
integers may have surrounding whitespace but are otherwise ASCII digits only ("5" and " 5 "
pass; "5.0", "-1", "+5", "1e3" do not) and at most 9 digits; booleans and HTTP methods are
case-insensitive.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = [
    "DTMF_CHARACTERS",
    "FINISH_KEYS",
    "RECORDING_STATUS_EVENTS",
    "fetchable_by_urlsplit",
    "fetchable_url",
    "integer_parser",
    "is_fetchable_url",
    "parse_bool",
    "parse_dtmf",
    "parse_events",
    "parse_finish_keys",
    "parse_integer",
    "parse_method",
]

_INTEGER = re.compile(r"[ \t\r\n]*([0-9]{1,9})[ \t\r\n]*")
FINISH_KEYS = frozenset("0123456789#*")
DTMF_CHARACTERS = frozenset("0123456789ABCD*#wW")
RECORDING_STATUS_EVENTS = frozenset({"in-progress", "completed", "absent"})
_FETCHABLE_SCHEMES = frozenset({"http", "https"})
# URLs that `urlsplit` reads as fetchable without a doubt, matched in one step: http(s) with a
# host, or a relative URL without a colon (so no scheme) that is not "//host" (so no host to
# check); only ASCII that urlsplit neither strips nor refuses (no brackets, tabs, line breaks).
_URL_CHARACTER = r"[A-Za-z0-9._~%!$&'()*+,;=@/?#-]"
_PLAIN_URL = re.compile(
    rf"https?://[A-Za-z0-9._~%!$&'()*+,;=@:-](?:{_URL_CHARACTER}|:)*|(?!//){_URL_CHARACTER}*"
)


def parse_integer(value: str, minimum: int = 0, maximum: int = 999_999_999) -> int | None:
    """A whole number within [minimum, maximum], or None."""
    match = _INTEGER.fullmatch(value)
    if match is None:
        return None
    number = int(match.group(1))
    return number if minimum <= number <= maximum else None


def integer_parser(
    minimum: int = 0, maximum: int = 999_999_999
) -> Callable[[str], int | None]:
    """`parse_integer` for one range, with the common case (only ASCII digits) read directly."""

    def parse(value: str) -> int | None:
        if not (value.isdigit() and value.isascii() and len(value) <= 9):
            return parse_integer(value, minimum, maximum)
        number = int(value)
        return number if minimum <= number <= maximum else None

    return parse


def parse_bool(value: str) -> bool | None:
    """``true`` or ``false`` in any letter case, or None."""
    lowered = value.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def parse_method(value: str) -> str | None:
    """``GET`` or ``POST`` (any letter case), upper-cased; or None."""
    upper = value.upper()
    return upper if upper in ("GET", "POST") else None


def parse_finish_keys(value: str) -> str | None:
    """Any string of 0-9, # and * (the empty string means "no key ends it"), or None."""
    return value if set(value) <= FINISH_KEYS else None


def parse_dtmf(value: str) -> str | None:
    """A non-empty string of 0-9, A-D, *, #, w (wait 0.5 s) and W (wait 1 s), or None."""
    return value if value and set(value) <= DTMF_CHARACTERS else None


def parse_events(value: str) -> frozenset[str] | None:
    """A space-separated, non-empty subset of in-progress, completed, absent; or None."""
    events = frozenset(value.split())
    if not events or not events <= RECORDING_STATUS_EVENTS:
        return None
    return events


def fetchable_url(value: str) -> str | None:
    """`value` when it is a relative URL or an absolute http(s) URL with a host, else None.

    Relative URLs are resolved by the interpreter against an http(s) document URL, so they can
    never name a local file; anything with another scheme (file:, ftp:, data:...) is refused.
    """
    if _PLAIN_URL.fullmatch(value) is not None or fetchable_by_urlsplit(value):
        return value
    return None


def is_fetchable_url(value: str) -> bool:
    """True when `fetchable_url` takes `value`."""
    return fetchable_url(value) is not None


def fetchable_by_urlsplit(value: str) -> bool:
    """`is_fetchable_url` the slow way, by `urlsplit`: what its fast path must agree with."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if not parts.scheme:
        return True
    return parts.scheme.lower() in _FETCHABLE_SCHEMES and bool(parts.netloc)
