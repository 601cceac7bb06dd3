"""Twilio-style resource identifiers: a two-letter prefix and 32 lowercase hex digits."""

from __future__ import annotations

import re
import secrets

__all__ = ["CALL", "RECORDING", "TRANSCRIPTION", "is_sid", "new_sid"]

CALL = "CA"
RECORDING = "RE"
TRANSCRIPTION = "TR"
ACCOUNT = "AC"

_SID_RE = re.compile(r"[A-Z]{2}[0-9a-f]{32}")


def new_sid(prefix: str) -> str:
    """A new random SID such as ``RE`` followed by 32 hex digits."""
    if not re.fullmatch(r"[A-Z]{2}", prefix):
        raise ValueError(f"bad SID prefix {prefix!r}")
    return prefix + secrets.token_hex(16)


def is_sid(value: str, prefix: str | None = None) -> bool:
    """True when `value` is a well-formed SID (with the given prefix, if any)."""
    if not _SID_RE.fullmatch(value):
        return False
    return prefix is None or value.startswith(prefix)
