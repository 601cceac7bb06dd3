"""The one place where values become ESL command text (``api`` arguments, ``sendmsg`` headers,
application arguments).

Nothing reaches FreeSWITCH as text unless it passed one of these checks. The rules are
whitelists, not escapes: a value that does not fit is refused with `UnsafeValue`. So no caller
ID, TwiML attribute or file name can

- end a command or add a header (CR, LF: a blank line ends an ESL command);
- add an argument (space: ``api`` commands and the ``record`` application split on spaces);
- expand a channel variable or an API call (``$``, ``{``, ``}``: FreeSWITCH expands
  ``${var}``, ``$${var}`` and ``${api(args)}`` in application arguments);
- select another file module or a relative path (``tone_stream://``, ``{var=x}/path``,
  ``file.wav`` resolved against ``sound_prefix``: lab notes §7.5, §8.1);
- leave the spool (``..``);
- in a ``bridge`` dial string: add a target (``,``, ``|``, ``:_:``) or variables (``{ } [ ]``,
  ``<``, ``>``, quotes, ``^``).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from adapter.addresses import CALLER_ID
from adapter.pbx.base import PbxError

__all__ = [
    "MAX_HEADER_VALUE",
    "UnsafeValue",
    "esl_call_sid",
    "esl_caller_id",
    "esl_dial_endpoint",
    "esl_dtmf",
    "esl_event_name",
    "esl_hangup_cause",
    "esl_header_value",
    "esl_int",
    "esl_path",
    "esl_terminators",
    "esl_uuid",
]

MAX_HEADER_VALUE = 1024

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_PATH_RE = re.compile(r"/[A-Za-z0-9_./-]+")
_TERMINATORS_RE = re.compile(r"[0-9*#]*")
_DTMF_RE = re.compile(r"[0-9*#A-DwW]+")
_CAUSE_RE = re.compile(r"[A-Z][A-Z_]{1,63}")
_EVENT_RE = re.compile(r"[A-Z][A-Z_]{1,63}")
_CALL_SID_RE = re.compile(r"CA[0-9a-f]{32}")
# One bridge endpoint such as ``sofia/gateway/trunk/+15551234567`` or
# ``sofia/external/sip:alice@example.com;transport=tcp``.
_ENDPOINT_RE = re.compile(r"[A-Za-z0-9_./@:;=+*#-]{1,512}")


class UnsafeValue(PbxError):
    """A value was refused before it could reach FreeSWITCH."""


def esl_header_value(value: str, *, field: str, limit: int = MAX_HEADER_VALUE) -> str:
    """A value for one ``sendmsg`` header line: no CR/LF/NUL, at most `limit` characters."""
    if any(ch in value for ch in "\r\n\x00"):
        raise UnsafeValue(f"{field}: line break or NUL in an ESL header value")
    if len(value) > limit:
        raise UnsafeValue(f"{field}: ESL header value longer than {limit}")
    return value


def esl_uuid(value: str) -> str:
    """A channel or application UUID (8-4-4-4-12 hex digits), as FreeSWITCH generates them."""
    if not _UUID_RE.fullmatch(value):
        raise UnsafeValue(f"{value!r} is not a UUID")
    return value


def esl_path(path: PurePosixPath, *, root: PurePosixPath) -> str:
    """An absolute file path inside `root` with only ``A-Za-z0-9_./-`` characters."""
    text = str(path)
    if not path.is_absolute() or not _PATH_RE.fullmatch(text):
        raise UnsafeValue(f"path {text!r} is not an absolute path of safe characters")
    if ".." in path.parts:
        raise UnsafeValue(f"path {text!r} contains '..'")
    if not path.is_relative_to(root) or path == root:
        raise UnsafeValue(f"path {text!r} is not a file inside {root}")
    return text


def esl_terminators(finish_on_key: str) -> str:
    """Twilio's finishOnKey as a ``playback_terminators`` value.

    An empty finishOnKey must become ``none``: with the variable unset FreeSWITCH stops on ``*``
    (lab notes §7.3), and ``any`` would also accept ``A``-``D``.
    """
    if not _TERMINATORS_RE.fullmatch(finish_on_key):
        raise UnsafeValue(f"finishOnKey {finish_on_key!r} is not a subset of 0-9 * #")
    return "".join(dict.fromkeys(finish_on_key)) or "none"


def esl_dtmf(value: str) -> str:
    """DTMF for ``send_dtmf`` (``w`` pauses half a second, ``W`` a second, as on Twilio)."""
    if not _DTMF_RE.fullmatch(value):
        raise UnsafeValue(f"DTMF {value!r} has characters outside 0-9 * # A-D w W")
    return value


def esl_int(value: int, *, low: int, high: int, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UnsafeValue(f"{field}: {value!r} is not an integer in {low}..{high}")
    return str(value)


def esl_hangup_cause(value: str) -> str:
    """A Q.850 cause name such as ``NORMAL_CLEARING``."""
    if not _CAUSE_RE.fullmatch(value):
        raise UnsafeValue(f"hangup cause {value!r} is not an upper-case cause name")
    return value


def esl_event_name(value: str) -> str:
    """An event type name such as ``CHANNEL_PROGRESS`` (``event plain``, ``nixevent``)."""
    if not _EVENT_RE.fullmatch(value):
        raise UnsafeValue(f"event name {value!r} is not an upper-case event type")
    return value


def esl_dial_endpoint(value: str) -> str:
    """One ``bridge`` endpoint: a channel technology path with no separators or variables.

    ``,`` and ``|`` separate targets, ``:_:`` starts an enterprise originate, ``{}``/``[]``/``<>``
    carry variables, ``$`` expands them; none of these may come from a template or a TwiML value.
    """
    if not _ENDPOINT_RE.fullmatch(value) or ":_:" in value or "/" not in value:
        raise UnsafeValue(f"dial endpoint {value!r} is not a plain technology/target string")
    return value


def esl_caller_id(value: str) -> str:
    """A caller ID number for ``origination_caller_id_number`` (``A-Za-z0-9+_.-``)."""
    if not CALLER_ID.fullmatch(value):
        raise UnsafeValue(f"callerId {value!r} has characters outside A-Za-z0-9+_.-")
    return value


def esl_call_sid(value: str) -> str:
    """A CallSid (``CA`` and 32 lower-case hex digits), as the adapter makes them."""
    if not _CALL_SID_RE.fullmatch(value):
        raise UnsafeValue(f"CallSid {value!r} is not CA + 32 hex digits")
    return value
