"""Twilio's JSON shapes for the Recording, Transcription and Call resources, and the paging
envelope."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from adapter.db.store import CallRow, RecordingRow
from adapter.db.transcriptions import TranscriptionRow

__all__ = ["API", "call_json", "page_json", "recording_json", "rfc2822", "transcription_json"]

API = "/2010-04-01"


def rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment is not None else None


def recording_json(public_base_url: str, row: RecordingRow, *, call_scoped: bool = False
                   ) -> dict[str, Any]:
    """The Recording resource. `uri` is the call-scoped one when fetched under a call."""
    account = f"{API}/Accounts/{row.account_sid}"
    uri = (f"{account}/Calls/{row.call_sid}/Recordings/{row.sid}.json" if call_scoped
           else f"{account}/Recordings/{row.sid}.json")
    return {
        "account_sid": row.account_sid,
        "api_version": "2010-04-01",
        "call_sid": row.call_sid,
        "conference_sid": None,
        "channels": row.channels,
        "date_created": rfc2822(row.date_created),
        "date_updated": rfc2822(row.date_updated),
        "start_time": rfc2822(row.start_time),
        # Twilio reports -1 until the duration is known.
        "duration": str(row.duration) if row.duration is not None else "-1",
        "sid": row.sid,
        "price": None,
        "price_unit": "USD",
        "status": row.status,
        "source": row.source,
        "error_code": row.error_code,
        "track": row.track,
        "encryption_details": None,
        "media_url": f"{public_base_url}{account}/Recordings/{row.sid}",
        "uri": uri,
        "subresource_uris": {
            "add_on_results": f"{account}/Recordings/{row.sid}/AddOnResults.json",
            "transcriptions": f"{account}/Recordings/{row.sid}/Transcriptions.json",
        },
    }


def transcription_json(row: TranscriptionRow) -> dict[str, Any]:
    """The Transcription resource (its `uri` is the account-level one, as on Twilio)."""
    return {
        "account_sid": row.account_sid,
        "api_version": "2010-04-01",
        "date_created": rfc2822(row.date_created),
        "date_updated": rfc2822(row.date_updated),
        "duration": str(row.duration) if row.duration is not None else None,
        "price": None,
        "price_unit": "USD",
        "recording_sid": row.recording_sid,
        "sid": row.sid,
        "status": row.status,
        "transcription_text": row.transcription_text,
        "type": "fast",
        "uri": f"{API}/Accounts/{row.account_sid}/Transcriptions/{row.sid}.json",
    }


def call_json(row: CallRow) -> dict[str, Any]:
    """The Call resource."""
    account = f"{API}/Accounts/{row.account_sid}"
    return {
        "sid": row.sid,
        "account_sid": row.account_sid,
        "parent_call_sid": row.parent_call_sid,
        "to": row.to,
        "to_formatted": row.to,
        "from": row.from_,
        "from_formatted": row.from_,
        "caller_name": row.caller_name,
        "status": row.status,
        "direction": row.direction,
        "start_time": rfc2822(row.start_time),
        "end_time": rfc2822(row.end_time),
        "duration": str(row.duration) if row.duration is not None else None,
        "date_created": rfc2822(row.date_created),
        "date_updated": rfc2822(row.date_updated),
        "api_version": "2010-04-01",
        "answered_by": None,
        "forwarded_from": None,
        "group_sid": None,
        "phone_number_sid": None,
        "price": None,
        "price_unit": "USD",
        "queue_time": "0",
        "trunk_sid": None,
        "uri": f"{account}/Calls/{row.sid}.json",
        "subresource_uris": {
            "recordings": f"{account}/Calls/{row.sid}/Recordings.json",
        },
    }


def page_json(key: str, items: Sequence[dict[str, Any]], *, path: str, page: int,
              page_size: int, has_next: bool, filters: Sequence[tuple[str, str]] = ()
              ) -> dict[str, Any]:
    """Twilio's 2010-04-01 paging envelope around one page of `items`."""

    def uri(number: int) -> str:
        query = urlencode([*filters, ("PageSize", str(page_size)), ("Page", str(number))])
        return f"{path}?{query}"

    start = page * page_size
    return {
        key: list(items),
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1) if has_next else None,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "page": page,
        "page_size": page_size,
        "start": start,
        "end": start + max(len(items) - 1, 0),
        "uri": uri(page),
    }
