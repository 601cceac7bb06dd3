"""The one place where values become AMI headers or AsyncAGI command arguments.

Nothing reaches Asterisk as text unless it passed one of these checks. The rules are
whitelists, not escapes: a value that does not fit is refused with `UnsafeValue`, so no caller ID,
TwiML attribute or file name can add an AMI header (CR/LF), an AGI argument (space, quote),
a dialplan application argument (`,`, `|`) or leave the spool (`..`).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from adapter.pbx.base import PbxError

__all__ = [
    "MAX_AMI_LINE_BYTES",
    "UnsafeValue",
    "agi_digits",
    "agi_dtmf",
    "agi_int",
    "agi_path",
    "ami_channel",
    "ami_header_value",
    "dial_string",
]

# Asterisk's manager reads each line of an action into a 1025-byte buffer (1024 bytes and a NUL):
# a line whose CR/LF is not among the first 1024 bytes makes it discard the whole action
# (MESSAGE_LINE_TOO_LONG) without any Response, so the action would wait forever. The line is
# ``<name>: <value>`` and its CR/LF, all counted in UTF-8 bytes.
MAX_AMI_LINE_BYTES = 1024 - len("\r\n")

_PATH_RE = re.compile(r"/[A-Za-z0-9_./-]+")
_DIGITS_RE = re.compile(r"[0-9*#]*")
_DTMF_RE = re.compile(r"[0-9*#A-DwW]+")
_CHANNEL_RE = re.compile(r"[A-Za-z0-9_./@;:+*#=-]+")
# One Dial target (``PJSIP/+1555@trunk``, ``PJSIP/trunk/sip:a@b;transport=tcp``): no ``&`` (next
# target), ``,`` (next argument), ``|`` (old separator), parentheses, ``$``, quotes or spaces.
_DIAL_STRING_RE = re.compile(r"[A-Za-z0-9_./@;:+*#=~-]+")


class UnsafeValue(PbxError):
    """A value was refused before it could reach Asterisk."""


def ami_header_value(value: str, *, field: str) -> str:
    """The value of the AMI header `field`: no CR/LF/NUL, valid UTF-8, and the whole line
    ``field: value`` short enough for Asterisk to read (`MAX_AMI_LINE_BYTES`)."""
    if any(ch in value for ch in "\r\n\x00"):
        raise UnsafeValue(f"{field}: line break or NUL in AMI header value")
    try:
        size = len(f"{field}: {value}".encode())
    except UnicodeEncodeError:
        raise UnsafeValue(f"{field}: AMI header value is not valid Unicode text") from None
    if size > MAX_AMI_LINE_BYTES:
        raise UnsafeValue(
            f"{field}: AMI header line of {size} bytes, over Asterisk's {MAX_AMI_LINE_BYTES}"
        )
    return value


def ami_channel(value: str) -> str:
    """A channel name as Asterisk reported it (e.g. ``PJSIP/trunk-0000001a``)."""
    if not _CHANNEL_RE.fullmatch(value):
        raise UnsafeValue(f"channel name {value!r} has characters outside the channel set")
    return value


def dial_string(value: str) -> str:
    """One target of the Dial application, e.g. ``PJSIP/+15551230000@trunk``."""
    if not _DIAL_STRING_RE.fullmatch(value):
        raise UnsafeValue(f"Dial target {value!r} has characters outside the Dial-string set")
    return value


def agi_path(path: PurePosixPath, *, root: PurePosixPath) -> str:
    """An absolute file path inside `root` with only ``A-Za-z0-9_./-`` characters."""
    text = str(path)
    if not _PATH_RE.fullmatch(text) or not path.is_absolute():
        raise UnsafeValue(f"path {text!r} is not an absolute path of safe characters")
    if ".." in path.parts:
        raise UnsafeValue(f"path {text!r} contains '..'")
    if not path.is_relative_to(root):
        raise UnsafeValue(f"path {text!r} is outside {root}")
    return text


def agi_digits(value: str) -> str:
    """A set of DTMF keys as a quoted AGI argument (``"1234567890*#"``; may be empty)."""
    if not _DIGITS_RE.fullmatch(value):
        raise UnsafeValue(f"digits {value!r} are not a subset of 0-9 * #")
    return f'"{value}"'


def agi_dtmf(value: str) -> str:
    """DTMF to send with SendDTMF (``w`` pauses half a second, ``W`` a second, as on Twilio)."""
    if not _DTMF_RE.fullmatch(value):
        raise UnsafeValue(f"DTMF {value!r} has characters outside 0-9 * # A-D w W")
    return value


def agi_int(value: int, *, low: int, high: int, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UnsafeValue(f"{field}: {value!r} is not an integer in {low}..{high}")
    return int.__repr__(value)  # digits only, whatever an int subclass's __str__ says
