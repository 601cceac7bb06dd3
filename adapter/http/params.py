"""Reading a REST request: the form body, paging and date filters, and the parameter rules the
Calls and Recordings resources share. Each refusal is an `ApiError` with Twilio's code."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request

from adapter.http.errors import ApiError, bad_request
from adapter.twiml import StartRecording

__all__ = [
    "CALL_SID",
    "MAX_FORM_BYTES",
    "MAX_PAGE_SIZE",
    "MAX_TWIML_BYTES",
    "RECORDING_SID",
    "Form",
    "absolute_url",
    "callback_url",
    "check_twiml",
    "choice",
    "events",
    "one",
    "paging",
    "parse_moment",
    "read_form",
    "recording_spec",
    "strip_json",
]

MAX_FORM_BYTES = 65536
MAX_PAGE_SIZE = 1000
MAX_TWIML_BYTES = 4000
CALL_SID = re.compile(r"CA[0-9a-f]{32}")
RECORDING_SID = re.compile(r"RE[0-9a-f]{32}")

Form = list[tuple[str, str]]


def strip_json(value: str) -> str:
    """A path segment without its ``.json`` suffix."""
    return value[:-5] if value.endswith(".json") else value


async def read_form(request: Request) -> Form:
    """The form-encoded body, every (name, value) pair in order; 413 when too large."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, 20001, "Request body too large")
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise bad_request("The request body is not UTF-8") from None


def one(form: Form, key: str) -> str | None:
    """The last value given for `key`, or None."""
    values = [v for k, v in form if k == key]
    return values[-1] if values else None


def choice(form: Form, key: str, allowed: set[str], default: str) -> str:
    """One of `allowed`; `default` when absent or empty."""
    value = one(form, key)
    if value is None or value == "":
        return default
    if value not in allowed:
        raise bad_request(f"{key} must be one of {', '.join(sorted(allowed))}, not {value!r}")
    return value


def events(form: Form, key: str) -> frozenset[str]:
    """Every event named by `key`, which may be repeated and hold several (space or comma)."""
    return frozenset(e for k, v in form if k == key for e in v.replace(",", " ").split())


def callback_url(value: str | None) -> str | None:
    """A status callback URL (absolute http(s)), or None when not given."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise bad_request(
            f"RecordingStatusCallback must be an absolute http(s) URL, not {value!r}", 11100
        )
    return value


def absolute_url(value: str) -> str:
    """A call's TwiML ``Url`` (absolute http(s))."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise bad_request(f"Url must be an absolute http(s) URL, not {value!r}", 21205)
    return value


def check_twiml(twiml: str) -> None:
    """Twilio's 21234 for inline ``Twiml`` longer than it accepts."""
    if len(twiml.encode()) > MAX_TWIML_BYTES:
        raise bad_request("Twiml is longer than 4000 characters", 21234)


def recording_spec(form: Form, *, default_trim: str) -> StartRecording:
    """The Recording* / Trim parameters of a REST request (mono by default)."""
    return StartRecording(
        name=None,
        recording_status_callback=callback_url(one(form, "RecordingStatusCallback")),
        recording_status_callback_method=choice(
            form, "RecordingStatusCallbackMethod", {"GET", "POST"}, "POST"),
        recording_status_callback_event=_recording_events(form),
        trim=choice(form, "Trim", {"trim-silence", "do-not-trim"}, default_trim),
        track=choice(form, "RecordingTrack", {"inbound", "outbound", "both"}, "both"),
        channels=choice(form, "RecordingChannels", {"mono", "dual"}, "mono"),
    )


def _recording_events(form: Form) -> frozenset[str]:
    found = events(form, "RecordingStatusCallbackEvent")
    if not found:
        return frozenset({"completed"})
    unknown = found - {"in-progress", "completed", "absent"}
    if unknown:
        raise bad_request(
            f"RecordingStatusCallbackEvent has unknown events: {sorted(unknown)}", 13621
        )
    return found


def parse_moment(key: str, value: str) -> tuple[datetime, bool]:
    """A DateCreated filter value: (instant, is_whole_day)."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC), True
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{key} must be YYYY-MM-DD or an ISO 8601 time, not {value!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), False


def paging(request: Request) -> tuple[int, int]:
    """``PageSize`` (1..MAX_PAGE_SIZE, 50) and ``Page`` (0 or more, 0) of a list request."""
    try:
        size = int(request.query_params.get("PageSize", "50"))
        page = int(request.query_params.get("Page", "0"))
    except ValueError:
        raise bad_request("PageSize and Page must be integers") from None
    if not 1 <= size <= MAX_PAGE_SIZE or page < 0:
        raise bad_request(f"PageSize must be 1..{MAX_PAGE_SIZE} and Page 0 or more")
    return size, page
